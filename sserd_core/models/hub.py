"""Local folder or Hugging Face Hub repo id → a local model folder; publishing a folder.

A model *folder* is what :func:`sserd_core.models.convert.convert_checkpoint` writes:
``config.json`` + ``diffusion_pytorch_model.safetensors`` (an :class:`SSERDNet`), a model
card ``README.md`` and optionally ``emotion_prototypes.safetensors``. A repo id
(``owner/name``) is fetched with ``huggingface_hub.snapshot_download`` into the usual
Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE`` or ``cache_dir``); with
``HF_HUB_OFFLINE=1`` only the cache is used.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

from ..errors import SSERDError

MODEL_FILES = ["config.json", "*.safetensors", "README.md", "*.json"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _offline() -> bool:
    """Offline mode, read at call time (``HF_HUB_OFFLINE`` or huggingface_hub's own constant)."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - very old huggingface_hub
        return False


def is_model_dir(path: Union[str, os.PathLike]) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file()


def resolve_model_dir(path_or_repo_id: Union[str, os.PathLike], *, revision: Optional[str] = None,
                      cache_dir: Optional[Union[str, os.PathLike]] = None, token: Optional[str] = None,
                      local_files_only: Optional[bool] = None) -> Path:
    """A local folder holding the model files for ``path_or_repo_id``.

    - an existing folder with ``config.json`` is returned as is;
    - an ``owner/name`` repo id is downloaded (or, offline / ``local_files_only``, looked up)
      in the Hugging Face cache.

    Raises :class:`SSERDError` with what to do when the path is not a model folder, the
    repo id is not cached while offline, or the Hub cannot be reached.
    """
    text = str(path_or_repo_id)
    p = Path(text).expanduser()
    if p.exists():
        if is_model_dir(p):
            return p
        if p.is_file() and p.suffix in (".pt", ".pth", ".ckpt"):
            raise SSERDError(f"{p.name} is an official checkpoint; convert it first: sserd convert {p} MODEL_DIR, "
                             f"then pass MODEL_DIR.")
        raise SSERDError(f"{p} is not a SSERD model folder (no config.json). Convert a checkpoint with "
                         f"`sserd convert` or give a Hugging Face repo id.")
    if not _REPO_ID.match(text):
        raise SSERDError(f"Model '{text}' is neither an existing folder nor a Hugging Face repo id (owner/name).")
    offline = _offline() if local_files_only is None else local_files_only or _offline()
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                            RevisionNotFoundError)
    except ImportError:  # pragma: no cover - extra not installed
        raise SSERDError("Loading from the Hub needs huggingface_hub: pip install 'comfyui-sserd[neural]'.") from None
    try:
        folder = snapshot_download(text, revision=revision, cache_dir=str(cache_dir) if cache_dir else None,
                                   allow_patterns=MODEL_FILES, token=token, local_files_only=offline)
    except LocalEntryNotFoundError:
        where = f" in {cache_dir}" if cache_dir else ""
        where += f" (and there is no local folder '{text}')"
        if offline:
            raise SSERDError(f"Model {text} is not in the Hugging Face cache{where} and HF_HUB_OFFLINE is set; "
                             f"download it once online or pass a local model folder.") from None
        raise SSERDError(f"Cannot reach the Hugging Face Hub to download {text} and it is not cached{where}; "
                         f"check the connection or pass a local model folder.") from None
    except RepositoryNotFoundError:
        raise SSERDError(f"Hugging Face repo {text} does not exist or is private (log in with a token).") from None
    except RevisionNotFoundError:
        raise SSERDError(f"Revision {revision} of {text} does not exist.") from None
    except HfHubHTTPError as exc:
        raise SSERDError(f"Downloading {text} failed: {str(exc).splitlines()[0][:200]}") from None
    except OSError as exc:
        raise SSERDError(f"Downloading {text} failed: {exc}") from None
    folder = Path(folder)
    if not is_model_dir(folder):
        raise SSERDError(f"Hugging Face repo {text} has no config.json; it is not a converted SSERD model.")
    return folder


def push_to_hub(folder: Union[str, os.PathLike], repo_id: str, *, token: Optional[str] = None, private: bool = False,
                commit_message: str = "Upload SSERD model", api=None) -> str:
    """Publish a converted model folder to the Hub repo ``repo_id`` (created if needed); return the commit URL.

    ``api`` is a ``huggingface_hub.HfApi`` (made from ``token`` if not given).
    """
    folder = Path(folder)
    if not is_model_dir(folder):
        raise SSERDError(f"{folder} is not a SSERD model folder (no config.json); convert a checkpoint first.")
    if not _REPO_ID.match(repo_id):
        raise SSERDError(f"'{repo_id}' is not a Hugging Face repo id (owner/name).")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                             commit_message=commit_message, allow_patterns=MODEL_FILES)
    return str(getattr(info, "commit_url", info))
