"""GEmo-CLAP training objectives (Pan et al., 2023, eq. 4-7).

Every loss compares the audio-to-text and text-to-audio similarity logits of a batch with a ground-truth
matrix built from the batch's labels: KL(target || softmax(logits)) per row, averaged over rows and over
the two directions.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


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
    raise ValueError(f"target normalisation must be 'softmax' or 'row', got {mode!r}")


def kl_contrastive_loss(
    logits_per_audio: torch.Tensor, logits_per_text: torch.Tensor, ground_truth: torch.Tensor, target: str = "softmax"
) -> torch.Tensor:
    """Mean of KL(target || softmax(logits)) over the audio->text rows and the text->audio rows (eq. 4-5)."""
    ground_truth = ground_truth.to(logits_per_audio.dtype)
    audio_loss = F.kl_div(
        logits_per_audio.log_softmax(dim=-1), normalise_target(ground_truth, target), reduction="batchmean"
    )
    text_loss = F.kl_div(
        logits_per_text.log_softmax(dim=-1), normalise_target(ground_truth.T, target), reduction="batchmean"
    )
    return (audio_loss + text_loss) / 2


def emo_clap_loss(
    logits_per_audio: torch.Tensor, logits_per_text: torch.Tensor, emotion_labels: torch.Tensor, target: str = "softmax"
) -> torch.Tensor:
    """Emo-CLAP: the ground truth is the same-emotion matrix `M_e`."""
    return kl_contrastive_loss(logits_per_audio, logits_per_text, same_label_matrix(emotion_labels), target)


def sl_gemo_clap_loss(
    logits_per_audio: torch.Tensor,
    logits_per_text: torch.Tensor,
    emotion_labels: torch.Tensor,
    gender_labels: torch.Tensor,
    alpha: float,
    target: str = "softmax",
) -> torch.Tensor:
    """SL-GEmo-CLAP (eq. 6): one KL task with the ground truth `a*M_e + (1-a)*M_g`."""
    ground_truth = alpha * same_label_matrix(emotion_labels) + (1 - alpha) * same_label_matrix(gender_labels)
    return kl_contrastive_loss(logits_per_audio, logits_per_text, ground_truth, target)


def ml_gemo_clap_loss(
    emotion_logits: tuple[torch.Tensor, torch.Tensor],
    gender_logits: tuple[torch.Tensor, torch.Tensor],
    emotion_labels: torch.Tensor,
    gender_labels: torch.Tensor,
    alpha: float,
    target: str = "softmax",
) -> torch.Tensor:
    """ML-GEmo-CLAP (eq. 7): `a_e*L_emotion + (1-a_e)*L_gender`, each a KL task on the shared audio embeddings.

    `emotion_logits` are the (audio->text, text->audio) logits against the emotion prompts, `gender_logits`
    the same against the gender prompts.
    """
    emotion_loss = kl_contrastive_loss(*emotion_logits, same_label_matrix(emotion_labels), target)
    gender_loss = kl_contrastive_loss(*gender_logits, same_label_matrix(gender_labels), target)
    return alpha * emotion_loss + (1 - alpha) * gender_loss
