"""gemo-clap: GEmo-CLAP speech emotion recognition on Hugging Face.

Import map (the repository folders are installed as parts of this package):
``modeling_gemo_clap/`` -> ``gemo_clap.modeling``, ``processing/`` -> ``gemo_clap.processing``,
``train/`` -> ``gemo_clap.train``, ``model_cards/`` -> ``gemo_clap.model_cards``.
"""

__version__ = "0.1.0"
