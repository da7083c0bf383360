"""Finding and loading a trained model, for every entry point (predict, evaluate, export-onnx, push, the app): a
model folder or Hub repo id checked before any Hub call, the zero-shot pipeline of a checkpoint, the ONNX runner of
an export."""

from __future__ import annotations

import json
from pathlib import Path

HUB_TIMEOUT_SECONDS = 5.0  # how long one request to the Hub may take


def local_folder_or_repo_id(name: str | Path) -> str | Path:
    """`name` unchanged when it is an existing folder or a Hub repo id the Hub (or, offline, the local cache) can
    give; otherwise one-line errors: the folder does not exist (rather than a failed Hub connection for a mistyped
    local path), the Hub cannot be reached, or offline the repo is not in the cache (rather than minutes of
    retries and transformers' loading error)."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(name).exists():
        if not Path(name).is_dir():
            raise NotADirectoryError(f"{name} is a file, not a model folder")
        return name
    text = str(name)
    try:
        validate_repo_id(text)
        looks_local = text.startswith((".", "/", "~"))
    except HFValidationError:
        looks_local = True
    if looks_local:
        raise FileNotFoundError(f"model folder {text} does not exist (and it is not a Hub repo id)")
    if constants.HF_HUB_OFFLINE:
        if not isinstance(try_to_load_from_cache(text, "config.json"), str):
            raise FileNotFoundError(
                f"{text} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: pass a local folder, "
                "or download it with network first"
            )
    else:
        check_on_hub(text)
    return name


def check_on_hub(repo_id: str, timeout: float = HUB_TIMEOUT_SECONDS) -> None:
    """One quick request (no retries) for the repo's `config.json`: a one-line error when the Hub cannot be reached
    or has no such repo, instead of minutes of retries and transformers' loading error."""
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    try:
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=timeout)
    except httpx2.TransportError as error:
        raise ConnectionError(
            f"cannot reach the Hugging Face Hub for {repo_id} ({error}): pass a local folder or set HF_HUB_OFFLINE=1 "
            "(for a model already in the local cache)"
        ) from None
    except GatedRepoError:
        raise PermissionError(
            f"{repo_id} is a gated repo on the Hub: accept its terms on its page and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"no model {repo_id} on the Hub (a private one needs hf auth login)") from None
    except EntryNotFoundError:
        raise FileNotFoundError(f"{repo_id} on the Hugging Face Hub has no config.json: not a model") from None


def check_model_folder(model: str | Path) -> None:
    """A local model folder must hold a gemo-clap checkpoint (`config.json` with `model_type` "gemo_clap");
    otherwise `ValueError` saying so, instead of transformers' long loading error. Hub repo ids pass unchecked."""
    folder = Path(model)
    if not folder.is_dir():
        return
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    if model_type != "gemo_clap":
        hint = " (an ONNX export: use --onnx)" if (folder / "gemo_clap_onnx.json").is_file() else ""
        raise ValueError(f"{folder} is not a gemo-clap model folder: no config.json with model_type gemo_clap{hint}")


def load_classifier(model: str | Path, trust_remote_code: bool = False):
    """The zero-shot pipeline of a model folder or repo id: the installed code, or with `trust_remote_code` the
    checkpoint's own."""
    from transformers import pipeline

    from .modeling import PIPELINE_TASK, GEmoClapModel, GEmoClapProcessor

    model = str(local_folder_or_repo_id(model))
    check_model_folder(model)
    if trust_remote_code:
        return pipeline(PIPELINE_TASK, model=model, trust_remote_code=True)
    return classifier_of(GEmoClapModel.from_pretrained(model), GEmoClapProcessor.from_pretrained(model))


def classifier_of(model, processor):
    """The zero-shot pipeline of a model in memory and its processor (the installed gemo-clap code)."""
    from .modeling import GEmoClapZeroShotAudioClassificationPipeline

    return GEmoClapZeroShotAudioClassificationPipeline(
        model=model, processor=processor, tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor
    )


def load_onnx_runner(folder: str | Path, trust_remote_code: bool = False):
    """The onnxruntime runner of an exported folder, called like the pipeline (no torch imported)."""
    from .onnx.runtime import GEmoClapOnnxRunner

    if trust_remote_code:
        raise ValueError("--trust-remote-code applies to --model only; an --onnx folder runs no checkpoint code")
    return GEmoClapOnnxRunner(folder)
