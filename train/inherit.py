"""Where a run starts: a fresh run, a resumed checkpoint, or a parent it inherits from.

A run started from a parent (``init_from``) inherits what the parent learned with: its latent and
score normalization, its encode info (codec, text encoder, CLAP model) and its CFG null; a
manifest encoded differently is refused, and the weights load strictly (a new score head only
with ``init_new_head``, reported). A resumed run takes its saved configuration, with only the keys
a resumed run may change applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from lhotse.array import Array

from scoreaware.core.errors import StageError
from scoreaware.core.files import content_digest
from scoreaware.core.locations import missing_message
from scoreaware.train.config import TrainConfig, resume_config
from scoreaware.train.data import Normalization, check_finite, check_scores, compute_normalization, encode_info
from scoreaware.train.model import FluxAudio
from scoreaware.train.model_paths import DIGESTS, MODEL_FIELDS, load_training_checkpoint, require_models
from scoreaware.train.objective import NullConditioning
from scoreaware.train.repa import RepaLoss

# encode-info fields a child run must share with its parent (the spaces the model lives in)
INHERITED_ENCODE = ("codec", "latent_channels", "text_encoder", "text_dim", "clap_dim", "clap_model", "clap_weights")


@dataclass
class Start:
    """What a run starts from: its configuration, the checkpoint it resumes (or None), the parent
    it inherits from (or None), the encode info and the normalization it trains with."""

    config: TrainConfig
    checkpoint: dict | None
    parent: dict | None
    info: dict
    norm: Normalization
    manifest_sha256: str = ""

    @property
    def nulls(self) -> NullConditioning:
        """The CFG null: the resumed run's or the parent's, else the manifest's encode info."""
        source = self.checkpoint or self.parent
        return nulls_from_checkpoint(source) if source and "null" in source else load_nulls(self.info)


def starting_point(config: TrainConfig | None, resume_dir: Path | None, unsafe_pickle: bool, explicit: dict | None,
                   log=print) -> Start:
    """Load the checkpoint to resume and the parent to inherit from, and settle the encode info
    and the normalization the run trains with."""
    checkpoint = parent = None
    if resume_dir is not None:
        path = latest_checkpoint(resume_dir)
        if path is None:
            saved = Path(resume_dir) / "config.json"
            if saved.is_file():  # the run started, then stopped before writing anything to continue from
                every = json.loads(saved.read_text()).get("ckpt_every")
                raise StageError(f"{resume_dir} stopped before its first checkpoint (one is written every {every} "
                                 "steps): there is nothing to resume; run the same training again without --resume "
                                 "(into a new folder) or lower ckpt_every")
            raise StageError(f"{resume_dir} is not a training run (no checkpoints/ and no config.json)")
        checkpoint = load_training_checkpoint(path, unsafe_pickle=unsafe_pickle)
        config, changed = resume_config(checkpoint["config"], explicit or {})
        if changed:
            log(f"resuming {resume_dir} with {', '.join(f'{k}={v}' for k, v in changed.items())}")
        done = int(checkpoint.get("step", 0))
        if config.steps < done:
            raise StageError(f"{resume_dir} has trained {done} steps; steps={config.steps} cannot shorten it "
                             f"(its checkpoints are in {resume_dir}/checkpoints): pass steps above {done} to extend it")
        if config.steps == done:
            log(f"{resume_dir} has already trained its {done} steps: nothing to do (pass --set steps=N, N > {done}, "
                "to extend it)")
    manifest_sha256 = content_digest(config.manifest) if Path(config.manifest).is_file() else ""
    recorded = (checkpoint or {}).get("manifest_sha256")
    if recorded and not manifest_sha256:
        raise StageError(missing_message(latest_checkpoint(resume_dir), "config.manifest", config.manifest,
                                         config.manifest, recorded, None))
    if recorded and manifest_sha256 != recorded:  # shuffled, truncated or replaced: other steps, other data
        raise StageError(f"manifest {config.manifest} changed since {resume_dir} started (sha256 {recorded[:12]}… → "
                         f"{manifest_sha256[:12] or 'missing'}…): --resume continues the same data; restore it, or "
                         "start a new run (--set init_from=... to fine-tune from this one)")
    info = encode_info(config.manifest)
    require_models(info, f"the encode info of {config.manifest}")  # a run whose text encoder moved cannot sample
    if config.init_from:
        parent = load_training_checkpoint(config.init_from, unsafe_pickle=unsafe_pickle, what="parent checkpoint")
        try:
            check_inheritance(parent, info, config.manifest)
        except ValueError as exc:
            raise StageError(str(exc)) from None
        # the manifest's own record where it has one (the same model, maybe at another path, is here)
        inherited = parent.get("encode", {})
        info = {**info, **{k: v for k, v in inherited.items() if k in INHERITED_ENCODE and k not in info}}
    if checkpoint:
        norm = Normalization.from_dict(checkpoint["norm"])
    elif parent:  # the child sees its data as the parent did
        check_finite(config.manifest, (config.score_field, config.clap_field))
        norm = child_normalization(Normalization.from_dict(parent["norm"]), config)
    else:
        norm = compute_normalization(config.manifest, config.score_field, config.score_group_by, config.clap_field)
    if not checkpoint and config.objective == "flow":  # CRPO pairs carry a fixed pair score and use logit-normal t
        try:
            check_scores(config.manifest, norm, config.timesteps, config.unscored, config.score_head != "none")
        except ValueError as exc:
            raise StageError(str(exc)) from None
    return Start(config, checkpoint, parent, info, norm, manifest_sha256)


def child_normalization(inherited: Normalization, config: TrainConfig) -> Normalization:
    """A child's normalization: the parent's, except what the parent never saw. A parent trained
    without CLAP scores recorded the placeholder range (0, 1), which would read raw CLAP cosines
    as S̃ and flatten the score-aware schedule: the child's own robust range replaces it. A parent
    without score statistics hands a new score head the child's own (its field and grouping)."""
    if tuple(inherited.clap_range) != (0.0, 1.0) and inherited.score_stats:
        return inherited
    own = compute_normalization(config.manifest, config.score_field, config.score_group_by, config.clap_field)
    if tuple(inherited.clap_range) == (0.0, 1.0):
        inherited = replace(inherited, clap_range=own.clap_range)
    if not inherited.score_stats:
        inherited = replace(inherited, score_stats=own.score_stats, score_field=own.score_field,
                            score_group_by=own.score_group_by)
    return inherited


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoints/*.pt`` of a run folder (None when it has none)."""
    found = sorted((Path(run_dir) / "checkpoints").glob("*.pt"))
    return found[-1] if found else None


def load_nulls(info: dict) -> NullConditioning:
    """The CFG null (the empty string's features) recorded at encode time."""

    text = Array.from_dict(info["null"]["text_tokens"]).load()
    clap = Array.from_dict(info["null"]["clap_text"]).load()
    return NullConditioning(torch.from_numpy(text).float(), torch.from_numpy(clap).float())


def nulls_from_checkpoint(state: dict) -> NullConditioning:
    return NullConditioning(state["null"]["text_tokens"].float(), state["null"]["clap_text"].float())


def same_encoding(key: str, theirs: dict, ours: dict) -> bool:
    """Whether two encode infos agree on `key`: equal values, or for a model recorded as a local folder
    (text encoder, CLAP, the codec's weights) equal content digests: the same model at another path,
    such as the demo's T5 stand-in, rebuilt from its seed in every working folder."""
    a, b = theirs.get(key), ours.get(key)
    digests_a, digests_b = theirs.get(DIGESTS) or {}, ours.get(DIGESTS) or {}

    def same_digest(name: str) -> bool:
        return bool(digests_a.get(name)) and digests_a.get(name) == digests_b.get(name)

    if key == "codec" and isinstance(a, dict) and isinstance(b, dict):
        settings = ({k: v for k, v in d.items() if k != "model"} for d in (a, b))
        return next(settings) == next(settings) and (a.get("model") == b.get("model") or same_digest("codec.model"))
    return a == b or (key in MODEL_FIELDS and same_digest(key))


def check_inheritance(parent: dict, info: dict, manifest: str) -> None:
    """Refuse to fine-tune a parent on data encoded into other spaces."""
    theirs = parent.get("encode", {})
    differ = [f"{k}: parent {theirs.get(k)!r}, manifest {info.get(k)!r}" for k in INHERITED_ENCODE
              if k in theirs and k in info and not same_encoding(k, theirs, info)]
    if differ:
        raise ValueError(f"{manifest} was encoded differently from the parent checkpoint ({'; '.join(differ)}); "
                         "encode it with the parent's codec, text encoder and CLAP model")


def load_parent_weights(backbone: FluxAudio, repa: RepaLoss | None, parent: dict, allow_new_head: bool) -> list[str]:
    """The parent's EMA into the backbone strictly (and its REPA projectors when they fit);
    returns what was initialized fresh, to report."""
    fresh = []
    try:
        missing, unexpected = backbone.load_state_dict(parent["ema"], strict=False)
    except RuntimeError as exc:  # shapes differ: another preset, width or codec
        mismatches = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise ValueError("the parent checkpoint does not fit this model: " + "; ".join(mismatches[:3])) from None
    new_head = [k for k in missing if k.startswith("score_embed.")]
    other = [k for k in missing if not k.startswith("score_embed.")]
    if other or unexpected or (new_head and not allow_new_head):
        raise ValueError(
            "the parent checkpoint does not fit this model: "
            + (f"missing {other[:4]} " if other else "") + (f"unexpected {unexpected[:4]} " if unexpected else "")
            + (f"no score head in the parent ({new_head[0]}, ...): set init_new_head=true to add one "
               "(it starts as a no-op)" if new_head and not allow_new_head else ""))
    if new_head:
        fresh.append("score head (zero-initialized output)")
    if repa is not None:
        theirs = {k.removeprefix("repa."): v for k, v in parent["model"].items() if k.startswith("repa.")}
        ours = repa.state_dict()
        if theirs.keys() == ours.keys() and all(theirs[k].shape == ours[k].shape for k in ours):
            repa.load_state_dict(theirs)
        else:
            fresh.append("REPA projectors")
    return fresh
