"""A file's emotion timeline as users get it: the JSON result and its files (`result`), the text formats
(`exports`: JSON, CSV, SRT, WebVTT, RTTM, the run's summary) and the picture (`plot`). Torch-free."""
