"""Evaluation: zero-shot predictions and scores, the SER metric module, cross-validation reports, `gemo-clap evaluate`."""
