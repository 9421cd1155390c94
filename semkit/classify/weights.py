"""Network weights: found in the usual caches, else downloaded with their hash checked.

torchvision's weight files live in the torch hub cache (``$TORCH_HOME/hub/checkpoints``, default
``~/.cache/torch``) and carry the first hex digits of their SHA-256 in their names
(``resnet18-f37072fd.pth``). A missing file is downloaded as torchvision does, with a progress bar,
from its official location or from a mirror holding the same file names (``SEMKIT_WEIGHTS_URL``),
and kept only when its hash matches. timm's weights live in the Hugging Face hub cache
(``$HF_HOME/hub``, default ``~/.cache/huggingface/hub``), which timm fills itself.

``weights="random"`` (`RANDOM`) builds an architecture untrained, from a fixed seed, offline.
``SEMKIT_OFFLINE=1`` (or ``download=False``) sends no request at all: weights come from the caches
or from a file, and the error for a missing file says which file to put where.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable
from urllib.error import URLError

import torch
from torch import nn

#: Set to 1 (or true, yes, on) to never download: weights come from the caches or a file.
OFFLINE = "SEMKIT_OFFLINE"
#: A base URL holding torchvision's weight files under their own names, used instead of the official location.
MIRROR = "SEMKIT_WEIGHTS_URL"
#: ``weights="random"``: the architecture untrained (the same initialization every time), built offline.
RANDOM = "random"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # as torch.hub reads it


class HashMismatchError(RuntimeError, ValueError):
    """A downloaded file whose SHA-256 is not the one its name promises (corrupted or tampered with).

    A RuntimeError, as torch.hub's own hash check raises, and a ValueError: the data are bad.
    """


def _is_set(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


def offline_reason(download: bool = True, *, hub: bool = False) -> str | None:
    """Why no request may be sent (``download=False``, ``SEMKIT_OFFLINE``, for the hub ``HF_HUB_OFFLINE``), or None."""
    if not download:
        return "download=False"
    if _is_set(OFFLINE):
        return f"{OFFLINE}={os.environ[OFFLINE]}"
    if hub and _is_set("HF_HUB_OFFLINE"):
        return f"HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']}"
    return None


def torch_cache() -> Path:
    """The folder torchvision keeps downloaded weights in (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def source_url(url: str) -> str:
    """Where a weight file is downloaded from: the mirror named by ``SEMKIT_WEIGHTS_URL`` if set, else ``url``."""
    mirror = os.environ.get(MIRROR, "").strip()
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def cached_weights(url: str, what: str, *, download: bool = True) -> Path:
    """The weight file of ``url`` in the torch hub cache, downloaded (hash checked) when it is not there.

    ``what`` names the network in messages. Offline, a missing file raises FileNotFoundError saying
    which file to put where; no request is sent.
    """
    name = url.rsplit("/", 1)[-1]
    path = torch_cache() / name
    if path.is_file():
        return path
    source = source_url(url)
    reason = offline_reason(download)
    if reason is not None:
        raise FileNotFoundError(
            f"offline ({reason}): the weights of {what} are not in the cache and semkit sends no request. "
            f"Put the file {name} (from {source}) at {path}, or pass weights='/path/to/file.pth'."
        )
    match = _HASH_IN_NAME.search(name)
    try:
        download_file(source, path, hash_prefix=match.group(1) if match else None)
    except ConnectionError as e:
        raise ConnectionError(
            f"{e}. Put the file {name} at {path}, set {MIRROR} to a mirror that holds it, "
            f"or pass weights='/path/to/file.pth'."
        ) from e
    return path


def download_file(url: str, dest: str | os.PathLike, hash_prefix: str | None = None, *, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` with a progress bar, kept only when its SHA-256 starts with ``hash_prefix``.

    The file is written aside and moved into place whole (torch.hub.download_url_to_file); a failed
    download leaves nothing behind, not even the folders made for it. A hash that does not match raises
    HashMismatchError, a server that cannot be reached or answers with an error ConnectionError.
    """
    dest = Path(dest)
    made = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]  # deepest first
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=hash_prefix, progress=progress)
    except BaseException as e:
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty: another download is using it
                break
        if isinstance(e, RuntimeError) and "invalid hash value" in str(e):
            raise HashMismatchError(
                f"refused {url}: its SHA-256 hash does not start with {hash_prefix}, the hash its name promises "
                f"({e}). The file is corrupted or was tampered with; nothing was kept in {dest.parent}."
            ) from None
        if isinstance(e, URLError):
            raise ConnectionError(f"cannot download {url} ({getattr(e, 'reason', e)})") from e
        raise
    return dest


def hub_cache() -> Path:
    """The Hugging Face hub cache, where timm keeps its weights."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_cached_file(repo_id: str, filenames: tuple[str, ...]) -> Path | None:
    """The first of ``filenames`` of a hub repository (``id`` or ``id@revision``) in the hub cache; no request."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = repo_id.partition("@")
    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str):
            return Path(found)
    return None


def untrained(build: Callable[[], nn.Module]) -> nn.Module:
    """The module ``build()`` makes, initialized from a fixed seed (the same weights each time), torch's RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def looks_like_path(text: str) -> bool:
    """Whether a ``weights`` string names a file rather than a tag."""
    return os.sep in text or text.endswith((".pth", ".pt", ".bin", ".ckpt", ".safetensors")) or Path(text).exists()


def load_weights(model: nn.Module, state: dict, path: Path, what: str) -> None:
    """Load a state dict into ``model``; a clear ValueError naming the file where it does not fit."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"the weights in {path} do not fit {what}: {str(e).splitlines()[0]}") from None


def read_state_dict(path: Path, what: str) -> dict:
    """A state dict of tensors from a torch file (never unpickling objects) or a .safetensors file."""
    if not path.exists():
        raise FileNotFoundError(f"weights file for {what} not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as e:
            raise ValueError(f"cannot read the weights for {what} from {path}: {str(e).splitlines()[0]}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"cannot load weights for {what} from {path} as a plain state dict "
            f"(semkit never unpickles arbitrary objects): {str(e).splitlines()[0]}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors for {what}")
    return state
