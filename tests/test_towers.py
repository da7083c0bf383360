"""Building a model from pretrained towers (`gemo_clap.train.towers`)."""

from __future__ import annotations

import logging


def test_building_from_a_full_whisper_checkpoint_reports_no_unused_decoder(tiny_encoders, caplog, capfd):
    from gemo_clap.train.towers import build_model_and_processor

    audio, text = tiny_encoders("whisper")  # a WhisperModel folder: encoder and decoder weights
    with caplog.at_level(logging.INFO):
        model, _ = build_model_and_processor(audio, text)
    printed = capfd.readouterr()
    assert "LOAD REPORT" not in caplog.text + printed.out + printed.err
    assert type(model.audio_model).__name__ == "WhisperEncoder"
