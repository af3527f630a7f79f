"""`fit`: `train fit` as a library call (configuration layers → the training loop's `main`)."""

from __future__ import annotations

import json
from pathlib import Path

from scoreaware.train.config import ConfigError, TrainConfig, explicit_values, parse_overrides, validated
from scoreaware.train.loop import main


def fit(overrides: tuple[str, ...] = (), *, preset: str | None = None, config_path: str | None = None,
        manifest: str | None = None, resume_dir: Path | None = None, unsafe_pickle: bool = False) -> Path:
    """Train (or resume `resume_dir` with its saved configuration); returns the run folder.

    :param overrides: ``key=value`` strings over the preset and the TOML file; unknown keys fail.
    :raises ConfigError: an unknown key, a bad value, or no training manifest.
    """
    values = parse_overrides(overrides)
    if manifest:
        values["manifest"] = manifest
    explicit = explicit_values(preset, config_path, values)
    config = None if resume_dir is not None else validated(TrainConfig(**explicit))
    if config is not None and not config.manifest:
        raise ConfigError("no training manifest: pass --manifest or set manifest in the config")
    return main(config, resume_dir, unsafe_pickle=unsafe_pickle, explicit=explicit)


def fit_or_resume(run_root: Path, overrides: tuple[str, ...], preset: str | None = None,
                  log=print) -> Path:
    """Train into `run_root` unless a run there finished (then its last checkpoint) or was
    interrupted (then it resumes, with its saved configuration); the last checkpoint."""

    runs = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir()) if run_root.is_dir() else []
    if runs:
        last = sorted((runs[-1] / "checkpoints").glob("*.pt"))
        config = json.loads((runs[-1] / "config.json").read_text())
        if last and int(last[-1].stem) >= config["steps"]:
            log(f"✓ {runs[-1]} already trained ({config['steps']} steps)")
            return last[-1]
        if last:
            fit(resume_dir=runs[-1])
            return sorted((runs[-1] / "checkpoints").glob("*.pt"))[-1]
    fit(overrides, preset=preset)
    run = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir())[-1]
    return sorted((run / "checkpoints").glob("*.pt"))[-1]
