"""Small randomly initialised towers that need no download (demo, tests, CI, benchmarks), saved in the same
Hugging Face layout as pretrained ones so `GEmoClapModel.from_encoders` treats both alike."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    PreTrainedTokenizerFast,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
)
from transformers.models.whisper.modeling_whisper import WhisperModel

from ..modeling import AUDIO_TOWERS
from ..processing.audio import SAMPLING_RATE

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
PROMPT_WORDS = "the emotion is speaker a an of angry happy sad neutral calm fearful disgust surprised bored female male"
# Larger than the usual 0.02 so that, in a freshly initialised tower, the input (not the positional or bias
# terms) dominates the hidden states: different clips and prompts then start with different embeddings.
RANDOM_INIT_STD = 0.15


def tiny_audio_config(kind: str = "wavlm", hidden_size: int = 64, layers: int = 2):
    """A small audio-tower config of `kind` (wav2vec2 family: 7-layer CNN with a 320-sample stride; or whisper)."""
    if kind == "whisper":
        return WhisperConfig(
            d_model=hidden_size,
            encoder_layers=layers,
            encoder_attention_heads=4,
            encoder_ffn_dim=hidden_size * 2,
            decoder_layers=1,
            decoder_attention_heads=4,
            decoder_ffn_dim=hidden_size * 2,
            num_mel_bins=80,
            max_source_positions=1500,
            vocab_size=64,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
            begin_suppress_tokens=None,
            init_std=RANDOM_INIT_STD,
        )
    if kind not in AUDIO_TOWERS:
        raise ValueError(f"audio tower kind must be one of {tuple(AUDIO_TOWERS)}, got {kind!r}")
    return AutoConfig.for_model(
        kind,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden_size * 2,
        conv_dim=(32,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        mask_time_prob=0.0,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        feat_proj_dropout=0.0,
        vocab_size=32,
        initializer_range=RANDOM_INIT_STD,
    )


def build_prompt_tokenizer(words: str = PROMPT_WORDS) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the prompt vocabulary, with BERT-style [CLS] ... [SEP] framing."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + sorted(set(words.lower().split())))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )


def save_tiny_encoders(
    output_dir: str | Path, audio_kind: str = "wavlm", hidden_size: int = 64, layers: int = 2, seed: int = 0
) -> tuple[Path, Path]:
    """Save a random audio tower (+ feature extractor) and a random BERT text tower (+ prompt tokenizer) into
    `output_dir/audio` and `output_dir/text`; returns the two folders."""
    import torch

    torch.manual_seed(seed)
    output_dir = Path(output_dir)
    audio_dir, text_dir = output_dir / "audio", output_dir / "text"
    audio_config = tiny_audio_config(audio_kind, hidden_size, layers)
    if audio_kind == "whisper":
        WhisperModel(audio_config).save_pretrained(audio_dir)
        WhisperFeatureExtractor(feature_size=80).save_pretrained(audio_dir)
    else:
        AutoModel.from_config(audio_config).save_pretrained(audio_dir)
        Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=SAMPLING_RATE,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        ).save_pretrained(audio_dir)
    tokenizer = build_prompt_tokenizer()
    text_config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=RANDOM_INIT_STD,
    )
    AutoModel.from_config(text_config).save_pretrained(text_dir)
    tokenizer.save_pretrained(text_dir)
    return audio_dir, text_dir
