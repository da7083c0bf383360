"""GEmo-CLAP objectives (Emo-CLAP, SL-GEmo-CLAP, ML-GEmo-CLAP) against a numpy computation written here from eq. 4-7."""

import numpy as np
import pytest
import torch
from gemo_clap.modeling import LossInputs, emo_clap_loss, kl_contrastive_loss, ml_gemo_clap_loss, sl_gemo_clap_loss

# ------------------------------------------------------------------------------------------ numpy reference


def np_softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def np_target(matrix: np.ndarray, mode: str) -> np.ndarray:
    return np_softmax(matrix) if mode == "softmax" else matrix / matrix.sum(axis=1, keepdims=True)


def np_kl_rows(target: np.ndarray, logits: np.ndarray) -> float:
    """Mean over rows of KL(target_row || softmax(logits_row)), with 0 * log 0 = 0."""
    safe = np.where(target > 0, target, 1.0)
    terms = np.where(target > 0, target * (np.log(safe) - np_log_softmax(logits)), 0.0)
    return float(terms.sum(axis=1).mean())


def np_task(logits_audio: np.ndarray, logits_text: np.ndarray, ground_truth: np.ndarray, mode: str) -> float:
    """Mean of the two directions: audio->text against M, text->audio against M.T."""
    audio_to_text = np_kl_rows(np_target(ground_truth, mode), logits_audio)
    text_to_audio = np_kl_rows(np_target(ground_truth.T, mode), logits_text)
    return (audio_to_text + text_to_audio) / 2


def np_same(labels) -> np.ndarray:
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :]).astype(np.float64)


# -------------------------------------------------------------------------------------------------- cases

CASES = {
    "3x3": {
        "audio": [[2.0, -1.0, 0.5], [0.3, 1.2, -0.7], [1.1, 0.0, 2.4]],
        "text": [[1.5, 0.2, -0.3], [-1.0, 0.8, 0.4], [0.9, -0.6, 1.7]],
        "gender_audio": [[0.4, -0.2, 1.0], [1.3, 0.1, -0.5], [-0.8, 0.6, 0.2]],
        "gender_text": [[0.7, 1.1, -0.4], [0.0, -1.2, 0.9], [0.5, 0.3, -0.1]],
        "emotion": [0, 1, 0],
        "gender": [1, 1, 0],
    },
    "4x4": {
        "audio": [[3.0, 0.1, -1.0, 0.5], [0.2, 2.2, 0.4, -0.3], [-0.5, 0.6, 1.8, 0.9], [1.0, -0.2, 0.3, 2.5]],
        "text": [[2.5, -0.4, 0.0, 1.2], [0.7, 1.9, -0.8, 0.1], [0.3, 0.2, 2.1, -0.6], [-1.1, 0.5, 0.8, 1.4]],
        "gender_audio": [[1.0, 0.0, 0.5, -0.5], [0.2, 0.9, -0.3, 0.4], [-0.6, 0.1, 1.3, 0.2], [0.8, -0.9, 0.0, 0.6]],
        "gender_text": [[0.3, 0.6, -0.2, 1.1], [1.4, -0.5, 0.7, 0.0], [0.1, 0.9, 0.4, -1.0], [-0.3, 0.2, 1.6, 0.5]],
        "emotion": [2, 0, 2, 1],
        "gender": [0, 1, 1, 0],
    },
}
MODES = ["softmax", "row"]


def tensors(case: dict) -> dict:
    out = {
        key: torch.tensor(case[key], dtype=torch.float64) for key in ("audio", "text", "gender_audio", "gender_text")
    }
    out.update(emotion=torch.tensor(case["emotion"]), gender=torch.tensor(case["gender"]))
    return out


def arrays(case: dict) -> dict:
    return {key: np.asarray(value, dtype=np.float64) for key, value in case.items()}


# -------------------------------------------------------------------------------------------------- tests


def test_reference_targets_match_the_paper_by_hand():
    """Emotions [0, 1, 0]: M_e rows are [1,0,1], [0,1,0], [1,0,1]; softmax turns [1,0,1] into [e, 1, e] / (2e + 1)."""
    m_e = np_same([0, 1, 0])
    np.testing.assert_array_equal(m_e, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    e = np.e
    np.testing.assert_allclose(np_target(m_e, "softmax")[0], [e / (2 * e + 1), 1 / (2 * e + 1), e / (2 * e + 1)])
    np.testing.assert_allclose(np_target(m_e, "row")[0], [0.5, 0.0, 0.5])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_emo_clap_loss_matches_numpy(name, mode):
    t, a = tensors(CASES[name]), arrays(CASES[name])
    expected = np_task(a["audio"], a["text"], np_same(a["emotion"]), mode)
    loss = emo_clap_loss(LossInputs(t["audio"], t["text"], t["emotion"]), target_normalisation=mode)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_sl_gemo_clap_loss_matches_numpy(name, mode):
    alpha = 0.3
    t, a = tensors(CASES[name]), arrays(CASES[name])
    ground_truth = alpha * np_same(a["emotion"]) + (1 - alpha) * np_same(a["gender"])
    expected = np_task(a["audio"], a["text"], ground_truth, mode)
    loss = sl_gemo_clap_loss(LossInputs(t["audio"], t["text"], t["emotion"], t["gender"]), alpha, mode)
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-9)
    # the gender term matters: without it (plain Emo-CLAP) the value differs
    assert abs(loss.item() - np_task(a["audio"], a["text"], np_same(a["emotion"]), mode)) > 1e-3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_ml_gemo_clap_loss_matches_numpy(name, mode):
    alpha = 0.7
    t, a = tensors(CASES[name]), arrays(CASES[name])
    emotion_task = np_task(a["audio"], a["text"], np_same(a["emotion"]), mode)
    gender_task = np_task(a["gender_audio"], a["gender_text"], np_same(a["gender"]), mode)
    loss = ml_gemo_clap_loss(
        LossInputs(t["audio"], t["text"], t["emotion"], t["gender"], t["gender_audio"], t["gender_text"]), alpha, mode
    )
    assert loss.item() == pytest.approx(alpha * emotion_task + (1 - alpha) * gender_task, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_text_direction_uses_transposed_ground_truth(mode):
    """With an asymmetric ground truth the text->audio rows must be compared with M.T, not M."""
    a = arrays(CASES["3x3"])
    ground_truth = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    loss = kl_contrastive_loss(
        torch.tensor(a["audio"]), torch.tensor(a["text"]), torch.tensor(ground_truth), target_normalisation=mode
    ).item()
    assert loss == pytest.approx(np_task(a["audio"], a["text"], ground_truth, mode), rel=1e-6)
    untransposed = np_target(ground_truth, mode)
    wrong = (np_kl_rows(untransposed, a["audio"]) + np_kl_rows(untransposed, a["text"])) / 2
    assert abs(loss - wrong) > 1e-3


@pytest.mark.parametrize("mode", MODES)
def test_single_emotion_batch_has_uniform_target(mode):
    """All items share one emotion: M_e is all ones, so both normalisations give the uniform target 1/n and
    the loss is -log(n) - mean(log_softmax(logits)) per direction."""
    a = arrays(CASES["4x4"])
    labels = torch.tensor([3, 3, 3, 3])
    loss = emo_clap_loss(
        LossInputs(torch.tensor(a["audio"]), torch.tensor(a["text"]), labels), target_normalisation=mode
    ).item()
    closed_form = np.mean([-np.log(4) - np_log_softmax(a[key]).mean() for key in ("audio", "text")])
    assert loss == pytest.approx(closed_form, rel=1e-6)
    assert loss == pytest.approx(np_task(a["audio"], a["text"], np.ones((4, 4)), mode), rel=1e-6)
    equal_logits = torch.full((4, 4), 1.7, dtype=torch.float64)
    assert emo_clap_loss(
        LossInputs(equal_logits, equal_logits, labels), target_normalisation=mode
    ).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_batch_of_one_gives_zero_loss(mode):
    logits = torch.tensor([[5.3]])
    labels, genders = torch.tensor([2]), torch.tensor([1])
    assert emo_clap_loss(LossInputs(logits, logits, labels), target_normalisation=mode).item() == 0.0
    assert sl_gemo_clap_loss(LossInputs(logits, logits, labels, genders), 0.3, mode).item() == 0.0
    assert ml_gemo_clap_loss(LossInputs(logits, logits, labels, genders, logits, logits), 0.7, mode).item() == 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_sl_with_alpha_one_equals_emo_clap_exactly(name, mode):
    t = tensors(CASES[name])
    sl = sl_gemo_clap_loss(LossInputs(t["audio"], t["text"], t["emotion"], t["gender"]), 1.0, mode)
    assert torch.equal(sl, emo_clap_loss(LossInputs(t["audio"], t["text"], t["emotion"]), target_normalisation=mode))


def test_ml_with_alpha_one_equals_emo_clap_exactly():
    t = tensors(CASES["4x4"])
    ml = ml_gemo_clap_loss(
        LossInputs(t["audio"], t["text"], t["emotion"], t["gender"], t["gender_audio"], t["gender_text"]), 1.0
    )
    assert torch.equal(ml, emo_clap_loss(LossInputs(t["audio"], t["text"], t["emotion"])))


def test_unknown_target_normalisation_raises():
    t = tensors(CASES["3x3"])
    with pytest.raises(ValueError, match="'hard'"):
        emo_clap_loss(LossInputs(t["audio"], t["text"], t["emotion"]), target_normalisation="hard")


@pytest.mark.parametrize("variant", ["emo", "sl", "ml"])
def test_gradients_flow_and_are_finite(variant):
    t = tensors(CASES["4x4"])
    leaves = {key: t[key].clone().requires_grad_(True) for key in ("audio", "text", "gender_audio", "gender_text")}
    if variant == "emo":
        loss = emo_clap_loss(LossInputs(leaves["audio"], leaves["text"], t["emotion"]))
        used = ("audio", "text")
    elif variant == "sl":
        loss = sl_gemo_clap_loss(LossInputs(leaves["audio"], leaves["text"], t["emotion"], t["gender"]), 0.3)
        used = ("audio", "text")
    else:
        logits = (
            leaves["audio"],
            leaves["text"],
            t["emotion"],
            t["gender"],
            leaves["gender_audio"],
            leaves["gender_text"],
        )
        loss = ml_gemo_clap_loss(LossInputs(*logits), 0.7)
        used = ("audio", "text", "gender_audio", "gender_text")
    loss.backward()
    for key in used:
        grad = leaves[key].grad
        assert grad is not None and torch.isfinite(grad).all()
        assert grad.abs().sum() > 0
        # d KL / d logits = (softmax(logits) - target) / rows / 2 per direction: each row sums to zero
        torch.testing.assert_close(grad.sum(dim=1), torch.zeros(4, dtype=torch.float64), atol=1e-7, rtol=0)
