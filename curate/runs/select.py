"""`run_filter`, `run_select` and `run_mixture`: keep the cuts that pass every rule, the top
fraction by blended score, and the base-plus-oversampled mixture."""

from __future__ import annotations

from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import StageOutput, sibling
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import StagePlan, StageResult, done_line, rejected_line, run_stage
from scoreaware.curate.stages.filter import FilterConfig, apply_filter, resolve_thresholds
from scoreaware.curate.stages.select import SelectConfig, combine, oversampled, score_table, write_selected
from scoreaware.schemas.validation import check_input, validate_manifest


def run_filter(manifest: Path, output: Path, filter_config: FilterConfig = FilterConfig(), *,
               rejected: Path | None = None, resume: bool = False, overwrite: bool = False) -> StageResult:
    """Keep the cuts of `manifest` that pass every rule of `filter_config`; rejected cuts keep
    the rule and value (in `rejected`, default OUTPUT's .rejected sibling). The CLAP percentile
    threshold comes from one streaming pass over the whole manifest."""
    c = filter_config
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], clap_percentile=c.clap_percentile, min_clap=c.min_clap,
                  min_duration=c.min_duration, max_duration=c.max_duration, min_lufs=c.min_lufs,
                  require_caption=c.require_caption, caption_field=c.caption_field)
    state: dict = {}

    def check() -> None:
        check_input(manifest)
        try:
            state["thresholds"] = resolve_thresholds(read_cuts(manifest), filter_config)
        except ValueError as exc:
            raise StageError(str(exc)) from None

    def drive_filter(out, bar):
        for kept, cut in apply_filter(read_cuts(manifest), filter_config, state["thresholds"], skip_ids=out.done_ids):
            if kept:
                out.write(cut)
            else:
                out.write_to("rejected", cut, reason=cut.custom["filter_rule"])
            bar.update(1)

    def finalize(out, report):
        return dict(options=dict(manifest=str(manifest), resolved_min_clap=state["thresholds"].min_clap,
                                 output=str(output)), inputs=[source])

    def summary(out, report, seconds):
        thresholds = state["thresholds"]
        lines = [done_line(out) + f", rejected {out.summary.quarantined}"
                 + ("; the input is empty, so is the output" if thresholds.scored_cuts == 0 and not out.summary.kept
                    and not out.summary.quarantined else ""),
                 rejected_line(out.summary.rejected).replace("quarantined", "rejected by rule")]
        if thresholds.min_clap is not None:
            how = f"p{thresholds.clap_percentile:g} of {thresholds.scored_cuts} scores" if thresholds.clap_percentile \
                is not None else "absolute"
            lines.append(f"CLAP threshold {thresholds.min_clap:.4f} ({how})")
        return lines + [f"took {seconds:.1f} s"]

    return run_stage(StagePlan(
        "filter", Path(output), config, drive_filter, summary, finalize, check=check,
        total=lambda: count_lines(manifest), input_manifest=Path(manifest), validator=validate_manifest,
        output_options=dict(counted_streams={"rejected": "filter_rule"},
                            stream_paths={"rejected": rejected or sibling(output, "rejected")})),
        resume=resume, overwrite=overwrite)


def run_select(manifest: Path, output: Path, select_config: SelectConfig = SelectConfig(), *,
               oversample: int | None = None, mixture: Path | None = None, mixture_base: Path | None = None,
               resume: bool = False, overwrite: bool = False) -> StageResult:
    """Select the top fraction of `manifest` by z-blended reward and CLAP score; with
    `oversample`, also write the mixture (its own output, so a kill between the two is
    completed by a rerun)."""
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], top=select_config.top, weights=select_config.weights,
                  group_by=select_config.group_by, per_group=select_config.per_group)
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
        state["cutoff"] = float(chosen["combined_score"].min()) if len(chosen) else None
        return dict(options=dict(manifest=str(manifest), selected=int(len(chosen)), of=int(len(ranked)),
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
            column = {"reward": "reward", "clap": "clap_score"}[name]
            if weight and column in ranked and len(chosen):
                lines.append(f"{column}: selected mean {chosen[column].mean():.4f} vs all {ranked[column].mean():.4f}")
        return lines

    result = run_stage(StagePlan("select", Path(output), config, drive_select, summary, finalize, check=check,
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
