"""Shipping weights in half the bytes: floating tensors stored as float16, loaded as float32.

The embedded default's models share a 30 MiB budget. Stored in float16 they take half of it, and
every loader still builds the model in float32: the config files keep ``"dtype": "float32"``,
``from_pretrained`` (transformers, diffusers) upcasts what it reads, and ``load_state_dict``
copies into the float32 parameters. What float16 costs is a relative rounding of at most 2^-11 per
weight (weights under 6e-5 in size round more coarsely); each model's card is measured on the
stored, rounded weights, through its loader.

A value float16 cannot hold (|x| > 65 504, or not finite) is refused rather than rounded to
infinity, and integer tensors (position ids) are kept as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from scoreaware.core.checkpoints import load_checkpoint

FLOAT16_MAX = float(torch.finfo(torch.float16).max)  # 65 504


def halved(tensors: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """`tensors` with every floating one as float16; ValueError naming the first that does not fit."""
    out = {}
    for name, value in tensors.items():
        if not value.is_floating_point():
            out[name] = value
            continue
        if not torch.isfinite(value).all() or (value.numel() and value.abs().max().item() > FLOAT16_MAX):
            raise ValueError(f"{where}: tensor {name!r} holds values float16 cannot store "
                             f"(largest |x| {value.abs().max().item():.4g}, limit {FLOAT16_MAX:g})")
        out[name] = value.to(torch.float16)
    return out


def _replace(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def store_half(path: str | os.PathLike) -> tuple[int, int]:
    """Rewrite `path` (a ``*.safetensors`` file, a folder of them, or one of our ``.pt`` checkpoints
    with a ``state_dict``) with float16 tensors, atomically; (bytes before, bytes after).

    Nothing is written unless every file can be halved. Idempotent: a halved file stays the same.
    """
    path = Path(path)
    files = sorted(path.rglob("*.safetensors")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path}: no *.safetensors file to store in float16")
    plans = []
    for file in files:
        if file.suffix == ".safetensors":
            with safe_open(str(file), "pt") as opened:
                metadata = opened.metadata()
            tensors = halved(load_file(file), str(file))
            plans.append((file, lambda tmp, t=tensors, m=metadata: save_file(t, tmp, metadata=m)))
        else:
            blob = load_checkpoint(file, what="checkpoint to store in float16")
            if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
                raise ValueError(f"{file}: expected a checkpoint with a state_dict")
            blob = {**blob, "state_dict": halved(dict(blob["state_dict"]), str(file))}
            plans.append((file, lambda tmp, b=blob: torch.save(b, tmp)))
    before = sum(file.stat().st_size for file in files)
    for file, write in plans:
        _replace(file, write)
    return before, sum(file.stat().st_size for file in files)
