"""The validation flow loss of a finished checkpoint on another manifest (held-out segments),
computed after training by the loop's own `validate`: per timestep bin on a fixed grid of t and
fixed noise, so checkpoints of different runs are compared on identical draws.

Used where a run was trained without a `val_manifest`, or to score several runs on one held-out
set (an experiment's arms). The manifest must be encoded as the checkpoint's training data was
(same codec and text encoder); the EMA weights, the ones sampling uses, are measured.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.train.config import config_from_dict
from scoreaware.train.data import Normalization, encode_info
from scoreaware.train.inherit import check_inheritance, nulls_from_checkpoint
from scoreaware.train.loop import validate
from scoreaware.train.objective import Trainable
from scoreaware.train.sample import load_generator


def held_out_flow(checkpoint: str | os.PathLike, manifest: str | os.PathLike, batch_size: int | None = None) -> dict:
    """{"val_flow": mean over bins, "val_flow_per_bin": [TIME_BINS floats]} of `checkpoint`'s EMA
    weights on `manifest` (an encoded manifest of held-out segments)."""
    model, state = load_generator(checkpoint)
    if "config" not in state:
        raise StageError(f"{checkpoint}: not a `train fit` checkpoint: it has no config")
    try:
        check_inheritance(state, encode_info(manifest), str(manifest))
    except ValueError as exc:
        raise StageError(str(exc)) from None
    # no REPA and no score dropout: the flow loss alone, every row with its own score
    # (the batch size of training by default: the fixed noise is drawn batch by batch, so the same
    # batches give exactly the loss the loop logged)
    trained = config_from_dict(state["config"])
    config = replace(trained, repa=(), batch_size=batch_size or trained.batch_size, objective="flow")
    if count_lines(manifest) == 0:
        raise StageError(f"{manifest}: no segments to validate on")
    result = validate(Trainable(model, None), str(manifest), Normalization.from_dict(state["norm"]), config,
                      nulls_from_checkpoint(state),
                      torch.device("cpu"), repa_spec={})
    return {"val_flow": result["val_flow"], "val_flow_per_bin": result["val_flow_per_bin"]}
