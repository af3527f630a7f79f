"""Model paths recorded in encode info and checkpoints, by the rule of `scoreaware.core.locations`.

A model named by a local folder (``--text-encoder models/t5``) is recorded relative to the file
that records it (the ``.encode.json``, the checkpoint), with its content digest under
``model_sha256``, and resolved against that file's folder when read, so a checkpoint works from any
working directory and moves with its project. A local model that is missing is a one-line error
naming the file, the recorded path, its digest and the option that overrides it; it is never
passed on as a Hub id. Anything that is not a local folder (a Hub id such as
``google/flan-t5-large``) is kept as it is.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from scoreaware.core.checkpoints import load_checkpoint
from scoreaware.core.errors import StageError
from scoreaware.core.files import is_url
from scoreaware.core.locations import locate, record, require
from scoreaware.core.manifests import relativize
from scoreaware.train.config import CONFIG_PATHS

MODEL_FIELDS = ("text_encoder", "clap_model", "muq_model")  # plus codec.model (the Oobleck VAE)
DIGESTS = "model_sha256"  # {field: sha256} of every model recorded as a local folder


def _slots(info: dict) -> Iterator[tuple[str, dict, str]]:
    """(field name, the dict holding it, its key) of every model path in `info`."""
    for name in MODEL_FIELDS:
        if isinstance(info.get(name), str) and info[name]:
            yield name, info, name
    codec = info.get("codec")
    if isinstance(codec, dict) and isinstance(codec.get("model"), str) and codec["model"]:
        yield "codec.model", codec, "model"


def relative_models(info: dict, folder: Path) -> dict:
    """`info` with every model that is a local folder written relative to `folder`, with its digest."""
    out = copy.deepcopy(info)
    digests = dict(out.get(DIGESTS) or {})
    for name, holder, key in _slots(out):
        if name in digests:  # located from an earlier record: its digest stands (a checkpoint save rehashes nothing)
            holder[key] = relativize(holder[key], Path(folder).resolve())
            continue
        holder[key], digest = record(holder[key], folder)
        if digest:
            digests[name] = digest
    out[DIGESTS] = {name: digests[name] for name, _, _ in _slots(out) if name in digests}
    return out


def resolved_models(info: dict, folder: Path) -> dict:
    """`info` with every model recorded relative to `folder` made absolute again (Hub ids kept);
    a missing local model stays an absolute path, so `load_model` names it instead of the Hub."""
    out = copy.deepcopy(info)
    digests = out.get(DIGESTS) or {}
    for name, holder, key in _slots(out):
        holder[key] = locate(holder[key], folder, local=name in digests)
    return out


def require_models(info: dict, artifact: str | os.PathLike) -> None:
    """A `StageError` for the first model `info` records as a local folder that is not there."""
    digests = info.get(DIGESTS) or {}
    for name, holder, key in _slots(info):
        require(holder[key], artifact=artifact, field=name, digest=digests.get(name))


def load_model(field: str, value: str, source: str | os.PathLike, loader: Callable, *, digest: str | None = None,
               override: str | None = None):
    """``loader(value)``, or a `StageError` naming the field and the file that recorded it."""
    require(value, artifact=source, field=field, digest=digest, override=override)
    try:
        return loader(value)
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise StageError(f"{source}: {field} = {value!r} is neither a folder here (paths are recorded relative to "
                         f"the file) nor a model that could be loaded ({type(exc).__name__}: {detail})") from None


# run-config keys that name files (config.CONFIG_PATHS): absolute while a run trains (they were typed
# relative to where it started, or to the TOML), written relative to the artifact that records them
# (config.json: the run folder; a checkpoint: its folder)
def absolute_paths(values: dict) -> dict:
    """`values` (config keys a user set) with every local file path made absolute from here."""
    return {k: (os.path.abspath(v) if k in CONFIG_PATHS and isinstance(v, str) and v and not is_url(v) else v)
            for k, v in values.items()}


def relative_config(config: dict, folder: Path) -> dict:
    """A run config (dict) with its file paths written relative to `folder`."""
    folder = Path(folder).resolve()
    return {k: (relativize(v, folder) if k in CONFIG_PATHS and isinstance(v, str) and v else v)
            for k, v in config.items()}


def resolved_config(config: dict, folder: Path) -> dict:
    """A run config read from an artifact in `folder`, its relative file paths made absolute from there."""
    return {k: (locate(v, folder, local=True) if k in CONFIG_PATHS and isinstance(v, str) and v else v)
            for k, v in config.items()}


def portable_state(state: dict, folder: Path) -> dict:
    """A checkpoint dict as written into `folder`: models and config paths relative to it."""
    state = dict(state)
    if isinstance(state.get("encode"), dict):
        state["encode"] = relative_models(state["encode"], folder)
    if isinstance(state.get("config"), dict):
        state["config"] = relative_config(state["config"], folder)
    return state


def load_training_checkpoint(path: str | os.PathLike, *, unsafe_pickle: bool = False,
                             what: str = "training checkpoint") -> dict:
    """A `train fit` checkpoint (weights-only), its recorded models and files resolved against its folder."""
    state = load_checkpoint(path, unsafe_pickle=unsafe_pickle, what=what)
    if isinstance(state, dict) and isinstance(state.get("encode"), dict):
        state["encode"] = resolved_models(state["encode"], Path(path).parent)
    if isinstance(state, dict) and isinstance(state.get("config"), dict):
        state["config"] = resolved_config(state["config"], Path(path).parent)
    return state
