"""Model paths recorded in encode info and checkpoints, stored as manifests store audio.

A model named by a local folder (``--text-encoder models/t5``) is recorded relative to the file
that records it (the ``.encode.json``, the checkpoint) and resolved against that file's folder when
read, so a checkpoint works from any working directory and moves with its project. Anything that
is not a local folder (a Hub id such as ``google/flan-t5-large``) is kept as it is.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

from scoreaware.core.checkpoints import load_checkpoint
from scoreaware.core.errors import StageError
from scoreaware.core.manifests import relativize

MODEL_FIELDS = ("text_encoder", "clap_model", "muq_model")  # plus codec.model (the Oobleck VAE)


def _map_models(info: dict, fn: Callable[[str], str]) -> dict:
    out = copy.deepcopy(info)
    for name in MODEL_FIELDS:
        if isinstance(out.get(name), str) and out[name]:
            out[name] = fn(out[name])
    codec = out.get("codec")
    if isinstance(codec, dict) and isinstance(codec.get("model"), str) and codec["model"]:
        codec["model"] = fn(codec["model"])
    return out


def relative_models(info: dict, folder: Path) -> dict:
    """`info` with every model that is a local folder written relative to `folder`."""
    folder = Path(folder).resolve()
    return _map_models(info, lambda value: relativize(value, folder) if os.path.exists(value) else value)


def resolved_models(info: dict, folder: Path) -> dict:
    """`info` with every model recorded relative to `folder` made absolute again (Hub ids kept)."""
    folder = Path(folder).resolve()

    def resolve(value: str) -> str:  # normpath, not resolve(): a symlinked model folder stays the link
        candidate = os.path.normpath(os.path.join(folder, value))
        return candidate if not os.path.isabs(value) and os.path.exists(candidate) else value

    return _map_models(info, resolve)


def load_model(field: str, value: str, source: str | os.PathLike, loader: Callable):
    """``loader(value)``, or a `StageError` naming the field and the file that recorded it."""
    try:
        return loader(value)
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise StageError(f"{source}: {field} = {value!r} is neither a folder here (paths are recorded relative to "
                         f"the file) nor a model that could be loaded ({type(exc).__name__}: {detail})") from None


def load_training_checkpoint(path: str | os.PathLike, *, unsafe_pickle: bool = False,
                             what: str = "training checkpoint") -> dict:
    """A `train fit` checkpoint (weights-only), its recorded model folders resolved against its own."""
    state = load_checkpoint(path, unsafe_pickle=unsafe_pickle, what=what)
    if isinstance(state, dict) and isinstance(state.get("encode"), dict):
        state["encode"] = resolved_models(state["encode"], Path(path).parent)
    return state
