"""Publishing to the Hugging Face Hub: the files of a model folder, its model card, `gemo-clap push`."""
