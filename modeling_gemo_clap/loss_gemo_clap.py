"""GEmo-CLAP training objectives (Pan et al., 2023, eq. 4-7), the table of variants, and the loss module.

Every loss compares the audio-to-text and text-to-audio similarity logits of a batch with a ground-truth
matrix built from the batch's labels: KL(target || softmax(logits)) per row, averaged over rows and over
the two directions. All variant losses take one signature, `loss(inputs: LossInputs, alpha, target_normalisation)`,
and the variant table (`choices_gemo_clap.VARIANTS`) says per variant which one it uses and what it needs;
`GEmoClapLoss` builds the inputs from embeddings and labels and applies the configured variant's loss (training
gathers them over processes first: `gemo_clap.train.global_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .choices_gemo_clap import TARGET_NORMALISATIONS, VARIANTS


def same_label_matrix(labels: torch.Tensor) -> torch.Tensor:
    """`M[i, j] = 1` where items `i` and `j` share the label, else 0 (float, `[batch, batch]`)."""
    labels = labels.reshape(-1)
    return (labels[:, None] == labels[None, :]).float()


def normalise_target(matrix: torch.Tensor, mode: str = "softmax") -> torch.Tensor:
    """Turn a ground-truth matrix into row distributions: softmax of the rows (paper) or rows divided by their sums."""
    if mode == "softmax":
        return matrix.softmax(dim=-1)
    if mode == "row":
        return matrix / matrix.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(matrix.dtype).tiny)
    raise ValueError(f"target_normalisation must be one of {TARGET_NORMALISATIONS}, got {mode!r}")


def kl_contrastive_loss(
    logits_per_audio: torch.Tensor,
    logits_per_text: torch.Tensor,
    ground_truth: torch.Tensor,
    target_normalisation: str = "softmax",
) -> torch.Tensor:
    """Mean of KL(target || softmax(logits)) over the audio->text rows and the text->audio rows (eq. 4-5)."""
    ground_truth = ground_truth.to(logits_per_audio.dtype)
    audio_loss = F.kl_div(
        logits_per_audio.log_softmax(dim=-1),
        normalise_target(ground_truth, target_normalisation),
        reduction="batchmean",
    )
    text_loss = F.kl_div(
        logits_per_text.log_softmax(dim=-1),
        normalise_target(ground_truth.T, target_normalisation),
        reduction="batchmean",
    )
    return (audio_loss + text_loss) / 2


def scaled_logits(
    audio_embeds: torch.Tensor, text_embeds: torch.Tensor, scale_audio: torch.Tensor, scale_text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio->text, text->audio) scaled cosine similarities of normalised embeddings, each with its own inverse
    temperature: `[audio, text]` and `[text, audio]`."""
    return (scale_audio * audio_embeds) @ text_embeds.T, (scale_text * text_embeds) @ audio_embeds.T


@dataclass
class LossInputs:
    """One batch as the losses see it: `[batch, batch]` logits against one prompt per audio, and the labels.

    `gender_logits_per_audio` / `gender_logits_per_text` are the logits against one gender prompt per audio
    (variants that train gender prompts)."""

    logits_per_audio: torch.Tensor
    logits_per_text: torch.Tensor
    emotion_labels: torch.Tensor
    gender_labels: torch.Tensor | None = None
    gender_logits_per_audio: torch.Tensor | None = None
    gender_logits_per_text: torch.Tensor | None = None


def emo_clap_loss(inputs: LossInputs, alpha: float = 1.0, target_normalisation: str = "softmax") -> torch.Tensor:
    """Emo-CLAP: the ground truth is the same-emotion matrix `M_e` (`alpha` is unused)."""
    return kl_contrastive_loss(
        inputs.logits_per_audio, inputs.logits_per_text, same_label_matrix(inputs.emotion_labels), target_normalisation
    )


def sl_gemo_clap_loss(inputs: LossInputs, alpha: float, target_normalisation: str = "softmax") -> torch.Tensor:
    """SL-GEmo-CLAP (eq. 6): one KL task with the ground truth `a*M_e + (1-a)*M_g`."""
    ground_truth = alpha * same_label_matrix(inputs.emotion_labels) + (1 - alpha) * same_label_matrix(
        inputs.gender_labels
    )
    return kl_contrastive_loss(inputs.logits_per_audio, inputs.logits_per_text, ground_truth, target_normalisation)


def ml_gemo_clap_loss(inputs: LossInputs, alpha: float, target_normalisation: str = "softmax") -> torch.Tensor:
    """ML-GEmo-CLAP (eq. 7): `a_e*L_emotion + (1-a_e)*L_gender`, each a KL task on the shared audio embeddings,
    the emotion task against the emotion prompts, the gender task against the gender prompts."""
    emotion_loss = kl_contrastive_loss(
        inputs.logits_per_audio, inputs.logits_per_text, same_label_matrix(inputs.emotion_labels), target_normalisation
    )
    gender_loss = kl_contrastive_loss(
        inputs.gender_logits_per_audio,
        inputs.gender_logits_per_text,
        same_label_matrix(inputs.gender_labels),
        target_normalisation,
    )
    return alpha * emotion_loss + (1 - alpha) * gender_loss


class GEmoClapLoss:
    """The configured variant's loss from normalised embeddings (one prompt embedding per audio) and labels."""

    def __init__(self, variant: str, alpha: float, target_normalisation: str = "softmax"):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
        self.variant, self.alpha, self.target_normalisation = VARIANTS[variant], alpha, target_normalisation
        loss = self.variant.loss
        self.variant_loss = loss if callable(loss) else globals()[loss]  # a shipped variant names its function

    @classmethod
    def from_config(cls, config) -> GEmoClapLoss:
        """The loss of a `GEmoClapConfig` (variant, its alpha field, target normalisation)."""
        variant = VARIANTS.get(config.variant)
        alpha = getattr(config, variant.alpha_field) if variant and variant.alpha_field else 1.0
        return cls(config.variant, alpha, config.target_normalisation)

    def loss(self, inputs: LossInputs) -> torch.Tensor:
        """The variant's loss of a batch's logits and labels."""
        return self.variant_loss(inputs, self.alpha, self.target_normalisation)

    def loss_inputs(
        self,
        audio_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        logit_scales: tuple[torch.Tensor, torch.Tensor],
        emotion_labels: torch.Tensor | None,
        gender_labels: torch.Tensor | None = None,
        gender_text_embeds: torch.Tensor | None = None,
    ) -> LossInputs:
        """The logits and labels the loss compares, after checking that the batch holds what the variant needs."""
        batch, variant = audio_embeds.shape[0], self.variant
        if text_embeds.shape[0] != batch:
            raise ValueError(
                f"training needs one prompt per audio: got {batch} audios and {text_embeds.shape[0]} prompts"
            )
        if emotion_labels is None or emotion_labels.numel() != batch:
            raise ValueError(f"emotion_labels must hold one label per audio ({batch})")
        if variant.needs_gender_labels and (gender_labels is None or gender_labels.numel() != batch):
            raise ValueError(f"variant {variant.name!r} needs gender_labels, one per audio ({batch})")
        if variant.needs_gender_prompts and (gender_text_embeds is None or gender_text_embeds.shape[0] != batch):
            raise ValueError(f"variant {variant.name!r} needs gender_input_ids (one gender prompt per audio)")
        logits = scaled_logits(audio_embeds, text_embeds, *logit_scales)
        inputs = LossInputs(*logits, emotion_labels.reshape(-1), gender_labels)
        if gender_text_embeds is not None:
            inputs.gender_logits_per_audio, inputs.gender_logits_per_text = scaled_logits(
                audio_embeds, gender_text_embeds, *logit_scales
            )
        return inputs
