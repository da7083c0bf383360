"""GEmo-CLAP model, processor and zero-shot pipeline (the files that travel to the Hub with each checkpoint).

Importing this package registers the classes with the `transformers` Auto classes, so `save_pretrained` writes
an `auto_map` and checkpoints load anywhere with `trust_remote_code=True`, and locally without it. Where torch is
not installed (an ONNX deployment), only the torch-free modules can be imported from it: `audio_gemo_clap`,
`timeline_gemo_clap` (the emotion timeline), `driver_gemo_clap` (the inference driver the pipeline and the ONNX
runner share), `streaming_gemo_clap` (the timeline of live audio: `EmotionStream`),
`vad_gemo_clap` (speech detection with onnxruntime), `choices_gemo_clap` (variants, poolings, tower kinds) and
`configuration_gemo_clap` (the configuration, with transformers).
"""

try:
    import torch  # noqa: F401
except ImportError:
    __all__ = []
else:
    from transformers import AutoConfig, AutoModel, AutoProcessor

    from .audio_tower_gemo_clap import AUDIO_TOWERS, AudioTower, audio_tower
    from .choices_gemo_clap import VARIANTS, Variant, register_variant
    from .configuration_gemo_clap import (
        DEFAULT_EMOTION_LABELS,
        DEFAULT_GENDER_LABELS,
        DEFAULT_MAX_AUDIO_SECONDS,
        GEmoClapConfig,
    )
    from .loss_gemo_clap import (
        GEmoClapLoss,
        LossInputs,
        emo_clap_loss,
        kl_contrastive_loss,
        ml_gemo_clap_loss,
        same_label_matrix,
        sl_gemo_clap_loss,
    )
    from .modeling_gemo_clap import GEmoClapModel, GEmoClapOutput, GEmoClapPreTrainedModel
    from .pipeline_gemo_clap import PIPELINE_TASK, GEmoClapZeroShotAudioClassificationPipeline
    from .processing_gemo_clap import GEmoClapProcessor

    GEmoClapConfig.register_for_auto_class()
    GEmoClapModel.register_for_auto_class("AutoModel")
    GEmoClapProcessor.register_for_auto_class("AutoProcessor")
    AutoConfig.register(GEmoClapConfig.model_type, GEmoClapConfig, exist_ok=True)
    AutoModel.register(GEmoClapConfig, GEmoClapModel, exist_ok=True)
    AutoProcessor.register(GEmoClapConfig, GEmoClapProcessor, exist_ok=True)

    __all__ = [
        "AUDIO_TOWERS",
        "DEFAULT_EMOTION_LABELS",
        "DEFAULT_GENDER_LABELS",
        "DEFAULT_MAX_AUDIO_SECONDS",
        "PIPELINE_TASK",
        "VARIANTS",
        "AudioTower",
        "GEmoClapConfig",
        "GEmoClapLoss",
        "GEmoClapModel",
        "GEmoClapOutput",
        "GEmoClapPreTrainedModel",
        "GEmoClapProcessor",
        "GEmoClapZeroShotAudioClassificationPipeline",
        "LossInputs",
        "Variant",
        "audio_tower",
        "emo_clap_loss",
        "kl_contrastive_loss",
        "ml_gemo_clap_loss",
        "register_variant",
        "same_label_matrix",
        "sl_gemo_clap_loss",
    ]
