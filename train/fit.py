"""`fit`: `train fit` as a library call (configuration layers → the training loop's `main`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from scoreaware.train.config import ConfigError, TrainConfig, explicit_values, parse_overrides, validated
from scoreaware.train.loop import main
from scoreaware.train.model_paths import absolute_paths


def fit(overrides: tuple[str, ...] = (), *, preset: str | None = None, config_path: str | None = None,
        manifest: str | None = None, resume_dir: Path | None = None, unsafe_pickle: bool = False) -> Path:
    """Train (or resume `resume_dir` with its saved configuration); returns the run folder.

    :param overrides: ``key=value`` strings over the preset and the TOML file; unknown keys fail.
    :raises ConfigError: an unknown key, a bad value, or no training manifest.
    """
    values = parse_overrides(overrides)
    if manifest:
        values["manifest"] = manifest
    explicit = absolute_paths(explicit_values(preset, config_path, values))  # typed from here; stored portably
    config = None if resume_dir is not None else validated(TrainConfig(**explicit))
    if config is not None and not config.manifest:
        raise ConfigError("no training manifest: pass --manifest or set manifest in the config")
    return main(config, resume_dir, unsafe_pickle=unsafe_pickle, explicit=explicit)


def finished_run(run_root: Path) -> Path | None:
    """The last checkpoint of the newest run under `run_root` if it reached its configured steps."""
    runs = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir()) if run_root.is_dir() else []
    if not runs:
        return None
    last = sorted((runs[-1] / "checkpoints").glob("*.pt"))
    if not last or not (runs[-1] / "config.json").is_file():
        return None
    config = json.loads((runs[-1] / "config.json").read_text())
    return last[-1] if last and int(last[-1].stem) >= config["steps"] else None


def fit_or_resume(run_root: Path, overrides: tuple[str, ...], preset: str | None = None,
                  log=print) -> Path:
    """Train into `run_root` unless a run there finished (then its last checkpoint) or was
    interrupted (then it resumes, with its saved configuration); the last checkpoint."""

    finished = finished_run(run_root)
    if finished is not None:
        log(f"✓ {finished.parent.parent} already trained ({int(finished.stem)} steps)")
        return finished
    runs = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir()) if run_root.is_dir() else []
    if runs and any((runs[-1] / "checkpoints").glob("*.pt")):
        fit(resume_dir=runs[-1])
        return sorted((runs[-1] / "checkpoints").glob("*.pt"))[-1]
    for orphan in runs:  # killed before its first checkpoint: nothing to resume, and a second run folder
        shutil.rmtree(orphan)  # beside it would show TensorBoard two runs of one arm × seed
    fit(overrides, preset=preset)
    run = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir())[-1]
    return sorted((run / "checkpoints").glob("*.pt"))[-1]
