"""GEmo-CLAP without torch at run time: `export` (torch) writes a checkpoint's audio side and fixed label prompts
as one ONNX graph; `runtime` runs it with onnxruntime and numpy `features`, called like the zero-shot pipeline;
`cli` is `gemo-clap export-onnx`. Nothing is imported here, so the runner never pulls in torch."""
