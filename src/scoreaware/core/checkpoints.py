"""Loading checkpoints without running their code.

``torch.load`` unpickles: a checkpoint can carry objects whose unpickling runs arbitrary code.
Every checkpoint a user passes (reward heads, laion_clap ``.pt`` files, training runs) is
loaded with ``weights_only=True``, which accepts only tensors and plain data (numbers,
strings, lists, dicts). A third-party file that needs pickle loads only when the user says
they trust it (``--unsafe-pickle``), and a warning says that it did.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import zipfile
from typing import Any

import torch

from scoreaware.core.errors import StageError

log = logging.getLogger(__name__)


class CheckpointError(StageError):
    """A checkpoint that cannot be loaded safely (or at all); the message says what to do."""


def load_checkpoint(path: str | os.PathLike, *, unsafe_pickle: bool = False, what: str = "checkpoint") -> Any:
    """``torch.load(path)`` on the CPU with ``weights_only=True`` (pickle only if `unsafe_pickle`).

    :raises CheckpointError: the file needs pickle and `unsafe_pickle` is off, or it is not a
        PyTorch checkpoint at all.
    """

    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):  # neither torch.save format
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (it starts with {head!r})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not unsafe_pickle:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{path}: this {what} holds Python objects that only pickle can load, and unpickling runs "
                f"whatever code the file carries ({reason}). If you trust where it came from, pass --unsafe-pickle"
            ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    # Here only when the weights-only load refused the file and the user passed --unsafe-pickle:
    # `weights_only` is that flag's negation, so the one pickle load names what allows it.
    log.warning("loading %s with pickle because --unsafe-pickle was given: it can run code", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not unsafe_pickle)
    except Exception as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: str | os.PathLike, exc: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
                           f"{str(exc).strip()[:200]})")


def forced_weights_only():
    """A context in which every ``torch.load`` (also inside third-party code) is weights-only."""

    @contextlib.contextmanager
    def scope():
        previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
            else:
                os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous

    return scope()
