"""Where a model or a pretrained tower comes from: an existing folder, or a Hub repo id checked with one quick
request (offline: in the local cache) before anything is downloaded, so a mistyped path or an unreachable Hub is
one line instead of minutes of retries."""

from __future__ import annotations

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
