"""Select: the top fraction of cuts by a z-blend of reward and CLAP score (expert iteration).

Within each group (``group_by``: a custom field such as ``dataset``, or everything), every score
is z-normalized, ``z = (x − mean) / std`` over that group, because reward scales differ across
sources (Jamendo sits about +1 above FMA). The combined score is the weighted sum of z-scores
(default: reward and CLAP, equal weights). The top ``top`` fraction overall (``ceil(top·N)``
cuts; ties broken by id, so the choice is deterministic) is selected, each with
``combined_score`` and ``selection_rank`` (1 = best). With ``per_group`` the quota is taken
within each group instead (``ceil(top·K)`` of a group of K): expert iteration's per-prompt
selection, where every prompt keeps its best candidates however its scores compare to others'.

Pass 1 reads only the score columns into a table; pass 2 streams the manifest again and writes
the selected cuts. ``oversample`` writes a fine-tuning mixture: a base manifest plus every
selected cut K times under distinct ids (``{id}_x{k}``), as the expert-iteration recipe
oversamples its keepers 5× into the full training mixture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import StageOutput, sibling
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import StagePlan, StageResult, option, output_options, recorded_options, run_stage
from scoreaware.schemas.fields import CLAP_SCORE, COMBINED_SCORE, REWARD, SELECTION_RANK
from scoreaware.schemas.validation import check_input, validate_manifest

STAGE = "select"
SCORE_FIELDS = {REWARD: REWARD, "clap": CLAP_SCORE}


@dataclass(frozen=True)
class SelectConfig:
    """Options of the select stage (`curate select`'s options, one for one)."""

    top: float = 0.1
    weights: Mapping[str, float] = field(default_factory=lambda: {"reward": 1.0, "clap": 1.0})
    group_by: str | None = None
    per_group: bool = False  # ceil(top·K) within each group of K, not ceil(top·N) overall
    # the mixture (base + the selected cuts this many times) is its own output, with its own resume
    oversample: int | None = option(None, changes_output=False)
    # a control: the same number of cuts (per group too) drawn at random with this seed instead of
    # the best by score: expert iteration's "same extra steps, no selection" arm
    random_seed: int | None = None

    def __post_init__(self) -> None:
        if self.per_group and not self.group_by:
            raise ValueError("per_group needs group_by (the field whose groups each keep their top fraction)")
        if not 0 < self.top <= 1:
            raise ValueError(f"--top must be in (0, 1], got {self.top}")
        unknown = set(self.weights) - set(SCORE_FIELDS)
        if unknown:
            raise ValueError(f"unknown score {sorted(unknown)}; weights can name {sorted(SCORE_FIELDS)}")
        if not any(w != 0 for w in self.weights.values()):
            raise ValueError("at least one weight must be non-zero")


def parse_weights(value: str) -> dict[str, float]:
    """``"reward=1,clap=1"`` -> ``{"reward": 1.0, "clap": 1.0}``; ValueError naming the text."""
    weights = {}
    for part in value.split(","):
        name, _, number = part.partition("=")
        try:
            weights[name.strip()] = float(number)
        except ValueError:
            raise ValueError(f"expected name=weight pairs like reward=1,clap=1, got {value!r}") from None
    return weights


def score_table(cuts: Iterable[Cut], config: SelectConfig) -> pd.DataFrame:
    """Pass 1: id, group and the weighted score fields of every cut."""
    fields = [SCORE_FIELDS[name] for name, w in config.weights.items() if w != 0]
    rows = []
    for cut in cuts:
        custom = cut.custom or {}
        row = {"id": cut.id, "group": custom.get(config.group_by) if config.group_by else "all"}
        for f in fields:
            row[f] = custom.get(f)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["id", "group", *fields])
    for f in fields:
        table[f] = pd.to_numeric(table[f], errors="coerce")
        missing = table.loc[table[f].isna(), "id"].tolist()
        if missing:
            raise ValueError(f"{len(missing)} cuts have no {f} (first: {missing[:3]}); score them first or "
                             f"set its weight to 0")
    if config.group_by and table["group"].isna().any():
        missing = table.loc[table["group"].isna(), "id"].tolist()[:3]
        raise ValueError(f"cuts without the --group-by field {config.group_by!r} (first: {missing})")
    return table


def combine(table: pd.DataFrame, config: SelectConfig) -> pd.DataFrame:
    """Add per-group z-scores, ``combined_score`` and ``selection_rank``; mark the selected rows."""
    table = table.copy()
    combined = np.zeros(len(table))
    for name, weight in config.weights.items():
        if weight == 0:
            continue
        f = SCORE_FIELDS[name]
        grouped = table.groupby("group")[f]
        std = grouped.transform(lambda s: s.std(ddof=0)).replace(0.0, 1.0)  # a constant group scores 0
        table[f"z_{name}"] = (table[f] - grouped.transform("mean")) / std
        combined += weight * table[f"z_{name}"].to_numpy()
    if config.random_seed is not None:  # the control: a seeded random order, the same quota
        order = np.random.default_rng(config.random_seed).permutation(len(table))
        by_id = dict(zip(sorted(table["id"]), order))  # keyed by id: the input's order does not matter
        combined = -np.array([by_id[i] for i in table["id"]], dtype=float)
    table[COMBINED_SCORE] = combined
    # rank on rounded scores so float noise (±1e-16) cannot break what is a tie: ties go by id
    table["_key"] = np.round(combined, 9)
    table = table.sort_values(["_key", "id"], ascending=[False, True], kind="stable").drop(columns="_key")
    table[SELECTION_RANK] = np.arange(1, len(table) + 1)
    if config.per_group:  # rank within the group (the table is already in rank order) against its own quota
        within = table.groupby("group").cumcount() + 1
        quota = table.groupby("group")["id"].transform("size").map(lambda k: math.ceil(config.top * k))
        table["selected"] = within <= quota
    else:
        table["selected"] = table[SELECTION_RANK] <= math.ceil(config.top * len(table))
    return table


def write_selected(cuts: Iterable[Cut], ranked: pd.DataFrame, skip_ids: Iterable[str] = ()) -> Iterator[Cut]:
    """Pass 2: the selected cuts, in input order, with their combined score and rank."""
    chosen = ranked[ranked["selected"]].set_index("id")
    skip = set(skip_ids)
    for cut in cuts:
        if cut.id in chosen.index and cut.id not in skip:
            row = chosen.loc[cut.id]
            custom = dict(cut.custom or {})
            custom.update(combined_score=float(row[COMBINED_SCORE]), selection_rank=int(row[SELECTION_RANK]))
            yield fastcopy(cut, custom=custom)


def oversampled(base: Iterable[Cut], selected: Iterable[Cut], times: int) -> Iterator[Cut]:
    """The mixture: every base cut, then each selected cut `times` times with ids ``{id}_x{k}``."""
    yield from base
    for cut in selected:
        for k in range(1, times + 1):
            yield fastcopy(cut, id=f"{cut.id}_x{k}")


def run_select(manifest: Path, output: Path, select_config: SelectConfig = SelectConfig(), *,
               mixture: Path | None = None, mixture_base: Path | None = None, resume: bool = False,
               overwrite: bool = False) -> StageResult:
    """Select the top fraction of `manifest` by z-blended reward and CLAP score; with
    `oversample`, also write the mixture (its own output, so a kill between the two is
    completed by a rerun)."""
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], **output_options(select_config))
    oversample = select_config.oversample
    state: dict = {}

    def check() -> None:
        check_input(manifest)
        try:
            state["ranked"] = combine(score_table(read_cuts(manifest), select_config), select_config)
        except ValueError as exc:
            raise StageError(str(exc)) from None

    def drive_select(out, bar):
        for cut in write_selected(read_cuts(manifest), state["ranked"], skip_ids=out.done_ids):
            out.write(cut)
            bar.update(1)

    def finalize(out, report):
        ranked = state["ranked"]
        chosen = ranked[ranked["selected"]]
        state["cutoff"] = float(chosen[COMBINED_SCORE].min()) if len(chosen) else None
        return dict(options=dict(manifest=str(manifest), **recorded_options(select_config), selected=int(len(chosen)),
                                 of=int(len(ranked)),
                                 combined_score_cutoff=state["cutoff"], output=str(output)), inputs=[source])

    def summary(out, report, seconds):
        ranked = state["ranked"]
        chosen = ranked[ranked["selected"]]
        lines = [f"selected {len(chosen)} of {len(ranked)} cuts (top {select_config.top:g}"
                 + (f" of each {select_config.group_by})" if select_config.per_group else ")")]
        if len(chosen):
            lines.append(f"combined score: selected ≥ {state['cutoff']:.3f}, overall median "
                         f"{ranked['combined_score'].median():.3f}")
        for name, weight in select_config.weights.items():
            column = {REWARD: REWARD, "clap": CLAP_SCORE}[name]
            if weight and column in ranked and len(chosen):
                lines.append(f"{column}: selected mean {chosen[column].mean():.4f} vs all {ranked[column].mean():.4f}")
        return lines

    result = run_stage(StagePlan(STAGE, Path(output), config, drive_select, summary, finalize, check=check,
                                 input_manifest=Path(manifest), validator=validate_manifest),
                       resume=resume, overwrite=overwrite)
    if oversample:
        target = mixture or sibling(output, "mixture")
        mixed = run_mixture(mixture_base or manifest, output, target, oversample, overwrite=overwrite)
        if mixed is not None:
            result.outputs = {**(result.outputs if not result.skipped else {}), "mixture": mixed.outputs_main}
            result.lines.append(f"mixture: base + {oversample}× the selected cuts, {mixed.summary.kept} cuts → "
                                f"{target}")
    return result


class _Mixed:
    def __init__(self, out: StageOutput, provenance: dict) -> None:
        self.summary = out.summary
        self.outputs_main = provenance["outputs"]["cuts"]


def run_mixture(base: Path, selected: Path, target: Path, oversample: int, *, overwrite: bool = False) -> _Mixed | None:
    """The base manifest plus the selected cuts `oversample` times, into `target` (None when that
    output is already complete with the same inputs)."""
    mix_config = dict(base_sha256=describe_input(base)["sha256"], selected_sha256=describe_input(selected)["sha256"],
                      oversample=oversample)
    mix = StageOutput(target, stage="mixture", overwrite=overwrite, resume=True, config=mix_config,
                      input_manifest=selected, schema_stage="mixture", validator=validate_manifest)
    if mix.check() == "skip":
        return None
    with mix:
        for cut in oversampled(read_cuts(base), read_cuts(selected), oversample):
            mix.write(cut)
    provenance = mix.finalize(options=dict(base=str(base), selected=str(selected)),
                              inputs=[describe_input(selected), describe_input(base)])
    return _Mixed(mix, provenance)
