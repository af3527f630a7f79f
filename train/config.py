"""Training configuration: one frozen dataclass, named presets, TOML files, strict overrides.

Resolution order: dataclass defaults → preset (`--preset`) → TOML file (`--config`) →
``--set key=value`` overrides. Unknown keys and values of the wrong type are errors (nanoGPT
raises too). The resolved config is saved in the run folder and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from scoreaware.core.files import is_url
from scoreaware.schemas.fields import CLAP_SCORE

# the keys that name files: absolute when typed, relative to the artifact when stored (train.model_paths)
CONFIG_PATHS = ("manifest", "val_manifest", "init_from")

@dataclass(frozen=True)
class TrainConfig:
    # data
    manifest: str = ""  # `train encode` output
    val_manifest: str = ""
    max_frames: int = 512  # latent frames per example (longer cuts are cropped from their start)
    score_field: str = "reward"  # conditioning score (z-normalized per group)
    score_group_by: str = ""  # custom field whose groups normalize the score separately
    clap_field: str = CLAP_SCORE  # drives the beta timestep sampler
    unscored: str = "error"  # a beta run's cut without clap_field: error | uniform (trained as S̃ = 1: uniform t)
    # model
    model: str = "tiny"  # tiny | small | S | L
    score_head: str = "none"  # none | global_adaln | input_add | token
    repa: tuple[str, ...] = ()  # REPA targets: clap, muq
    repa_coeff: float = 0.5
    repa_depth: int = 0  # 0: the preset's depth
    repa_width: int = 2048  # projector width (REPA's default)
    # objective
    objective: str = "flow"  # flow (flow matching + REPA) | crpo (CLAP-ranked preference pairs)
    timesteps: str = "logit_normal"  # uniform | logit_normal | beta
    beta_lambda: float = 1.0
    text_dropout: float = 0.1
    score_dropout: float = 0.1
    crpo_beta: float = 2000.0  # β of the DPO term (TangoFlux, ttm-humanpref)
    crpo_lambda_fm: float = 1.0  # weight of the winner's flow-matching loss (the "DPO-FM + FM" stabilizer)
    # optimization
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine (after warmup)
    warmup: int = 100
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    precision: str = "auto"  # auto (bf16 on supporting GPUs, else fp32) | fp32 | bf16
    compile: bool = False  # torch.compile the training forward (dynamic shapes; costs its compile time once)
    init_from: str = ""  # parent checkpoint: its EMA weights, normalization and encode info start the run
    init_new_head: bool = False  # allow a score head the parent does not have (initialized to a no-op, reported)
    # bookkeeping
    run_dir: str = "runs"
    seed: int = 0
    log_every: int = 10
    val_every: int = 0  # 0: only at the end
    ckpt_every: int = 500
    num_workers: int = 0
    device: str = "auto"


PRESETS: dict[str, dict] = {
    # CPU: the demo and the tests
    "tiny": dict(model="tiny", batch_size=8, steps=300, lr=2e-3, warmup=20, max_frames=256, log_every=10,
                 ckpt_every=100, ema_decay=0.99, repa_width=128),
    # FluxAudio-S recipe of the 120M reward-conditioned system (GPU)
    "S": dict(model="S", score_head="global_adaln", batch_size=64, steps=200_000, lr=1e-4, warmup=1000,
              max_frames=430, ckpt_every=5000, log_every=100),
    # the 450M score-aware system (GPU): Beta schedule and REPA
    "L": dict(model="L", timesteps="beta", repa=("clap", "muq"), batch_size=64, steps=1_000_000, lr=1e-4,
              warmup=1000, max_frames=430, ckpt_every=10_000, log_every=100),
}


# keys a resumed run may change (with --set); the rest define what the run is and stay as saved
RESUMABLE_KEYS = {"steps", "log_every", "val_every", "ckpt_every", "val_manifest", "num_workers", "device"}


class ConfigError(ValueError):
    """A configuration key or value the trainer does not accept."""


def _coerce(name: str, kind, value):
    origin = typing.get_origin(kind)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return tuple(str(v) for v in value)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}") from None


def explicit_values(preset: str | None = None, path: str | None = None, overrides: dict | None = None) -> dict:
    """The keys a user set (preset, TOML, --set, in that order), coerced; unknown keys rejected."""
    return _layers(preset, path, overrides)


def resolve(preset: str | None = None, path: str | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults → preset → TOML file → overrides, with unknown keys and bad types rejected."""
    return validated(TrainConfig(**_layers(preset, path, overrides)))


def resume_config(saved: dict, explicit: dict) -> tuple[TrainConfig, dict]:
    """The saved run's config with the explicitly given keys applied: (config, applied changes).

    Only `RESUMABLE_KEYS` may change; anything else would make the resumed run a different run.
    """
    config = config_from_dict(saved)
    changes = {k: v for k, v in explicit.items() if getattr(config, k) != v}
    fixed = sorted(set(changes) - RESUMABLE_KEYS)
    if fixed:
        raise ConfigError(f"a resumed run keeps its configuration; cannot change {fixed} "
                          f"(start a new run with --set init_from=... to fine-tune instead)")
    return dataclasses.replace(config, **changes), changes


# (key, smallest allowed, whether the bound itself is allowed, the largest allowed or None): a value
# outside is refused before anything is built (steps=0 would exit with no checkpoint, batch_size=0
# fail in a reshape)
RANGES = (("steps", 1, True, None), ("batch_size", 1, True, None), ("max_frames", 1, True, None),
          ("warmup", 0, True, None), ("log_every", 1, True, None), ("ckpt_every", 1, True, None),
          ("val_every", 0, True, None), ("num_workers", 0, True, None), ("lr", 0, False, None),
          ("weight_decay", 0, True, None), ("grad_clip", 0, True, None), ("beta_lambda", 0, True, None),
          ("repa_coeff", 0, True, None), ("repa_depth", 0, True, None), ("repa_width", 1, True, None),
          ("text_dropout", 0, True, 1), ("score_dropout", 0, True, 1), ("ema_decay", 0, True, 1))


# the names a key may take, checked before anything is built (tests/train/test_config.py checks them against
# the model presets, the samplers and the score heads, which live in modules that import torch)
CHOICES = {"model": ("tiny", "small", "S", "L"), "score_head": ("none", "global_adaln", "input_add", "token"),
           "objective": ("flow", "crpo"), "timesteps": ("uniform", "logit_normal", "beta"),
           "lr_schedule": ("constant", "cosine"), "precision": ("auto", "fp32", "bf16")}
REPA_TARGETS = ("clap", "muq")


def validated(config: TrainConfig) -> TrainConfig:
    for key, low, inclusive, high in RANGES:
        value = getattr(config, key)
        if not math.isfinite(value) or (value < low if inclusive else value <= low) or (
                high is not None and value >= high):
            bound = f"{'≥' if inclusive else '>'} {low}" + (f" and < {high}" if high is not None else "")
            raise ConfigError(f"{key} = {value!r}: must be {bound}")
    for key, allowed in CHOICES.items():
        if getattr(config, key) not in allowed:
            raise ConfigError(f"{key} = {getattr(config, key)!r} not implemented; choose from {', '.join(allowed)}")
    unknown = sorted(set(config.repa) - set(REPA_TARGETS))
    if unknown:
        raise ConfigError(f"repa = {','.join(config.repa)}: {', '.join(unknown)} is no REPA target; choose from "
                          f"{', '.join(REPA_TARGETS)}")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", config.device):
        raise ConfigError(f"device = {config.device!r}: choose auto, cpu, cuda, cuda:N or mps")
    if config.unscored not in ("error", "uniform"):
        raise ConfigError(f"unscored {config.unscored!r}: choose error (refuse cuts without {config.clap_field}) or "
                          "uniform (train them with uniform t, as perfectly aligned)")
    return config


def _layers(preset: str | None, path: str | None, overrides: dict | None) -> dict:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    hints = typing.get_type_hints(TrainConfig)
    values: dict = {}
    layers = []
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"preset {preset!r} not implemented; choose from {list(PRESETS)}")
        layers.append(("preset " + preset, PRESETS[preset]))
    if path:
        with open(path, "rb") as f:
            layer = tomllib.load(f)
        # a relative file path in the TOML is relative to the TOML (as in an experiment file), not
        # to the folder the command is run from; a URL stays
        folder = os.path.dirname(os.path.abspath(path))
        layers.append((str(path), {k: (os.path.join(folder, v) if k in CONFIG_PATHS and isinstance(v, str) and v
                                       and not os.path.isabs(v) and not is_url(v) else v)
                                   for k, v in layer.items()}))
    if overrides:
        layers.append(("--set", overrides))
    for source, layer in layers:
        unknown = sorted(set(layer) - fields.keys())
        if unknown:
            hints_for = [difflib.get_close_matches(k, list(fields), n=1) for k in unknown]
            guesses = [f"{k!r} → did you mean {m[0]!r}?" for k, m in zip(unknown, hints_for) if m]
            raise ConfigError(f"{source}: unknown keys {unknown}" + (f" ({'; '.join(guesses)})" if guesses else "")
                              + " — `scoreaware train fit --help` lists every key")
        for key, value in layer.items():
            values[key] = _coerce(key, hints[key], value)
    return values


def parse_overrides(pairs: tuple[str, ...]) -> dict:
    """``key=value`` strings -> dict (values coerced later, against the field types)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def save_config(config: dict, path: Path) -> None:
    """A run config (`dataclasses.asdict`, its paths as they should be stored) as JSON."""
    path.write_text(json.dumps(config, indent=1) + "\n")


def config_from_dict(data: dict) -> TrainConfig:
    hints = typing.get_type_hints(TrainConfig)
    return TrainConfig(**{k: _coerce(k, hints[k], v) for k, v in data.items() if k in hints})


def config_keys_help() -> list[str]:
    """One line per `TrainConfig` key: ``name = default  (type) comment``, as `--help` lists them."""
    comments = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=[^#]*#\s*(.*)", line)
        if match:
            comments[match.group(1)] = match.group(2)
    hints = typing.get_type_hints(TrainConfig)
    lines = []
    for f in dataclasses.fields(TrainConfig):
        kind = getattr(hints[f.name], "__name__", str(hints[f.name]))
        default = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        note = f"  {comments[f.name]}" if f.name in comments else ""
        lines.append(f"{f.name}={default!s}  ({kind}){note}")
    return lines
