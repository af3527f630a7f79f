"""`scoreaware curate filter` and `scoreaware curate select`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import (
    Timer,
    done_line,
    manifest_path,
    output_options,
    prepare_output,
    print_summary,
    progress,
    rejected_line,
    stage_command,
)


@click.command("filter", context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--clap-percentile", type=click.FloatRange(0, 100, max_open=True), default=None,
              help="Drop cuts below this percentile of the manifest's CLAP scores [default: 10 unless --min-clap].")
@click.option("--min-clap", type=click.FloatRange(-1, 1), default=None, help="Absolute CLAP threshold instead.")
@click.option("--min-duration", type=float, default=None, help="Drop cuts shorter than this (s).")
@click.option("--max-duration", type=float, default=None, help="Drop cuts longer than this (s).")
@click.option("--min-lufs", type=float, default=None, help="Drop cuts quieter than this loudness.")
@click.option("--require-caption/--allow-no-caption", default=True, help="Drop cuts without a caption.")
@click.option("--caption-field", default="caption")
@click.option("--rejected", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the rejected cuts go [default: OUTPUT's .rejected.jsonl.gz sibling].")
@output_options("filter.jsonl.gz")
@stage_command
def filter_cmd(manifest: Path, clap_percentile: float | None, min_clap: float | None, min_duration: float | None,
               max_duration: float | None, min_lufs: float | None, require_caption: bool, caption_field: str,
               rejected: Path | None, output: Path, resume: bool, overwrite: bool) -> None:
    """Keep the cuts of MANIFEST that pass every rule; rejected cuts keep the rule and value.

    The CLAP percentile threshold is computed over the whole manifest in one streaming pass.
    """
    from curate.io import count_lines, describe_input, sibling
    from curate.manifests import check_input, read_cuts
    from curate.stages.filter import FilterConfig, apply_filter, resolve_thresholds

    if clap_percentile is None and min_clap is None:
        clap_percentile = 10.0
    try:
        filter_config = FilterConfig(clap_percentile=clap_percentile, min_clap=min_clap, min_duration=min_duration,
                                     max_duration=max_duration, min_lufs=min_lufs, require_caption=require_caption,
                                     caption_field=caption_field)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], clap_percentile=clap_percentile, min_clap=min_clap,
                  min_duration=min_duration, max_duration=max_duration, min_lufs=min_lufs,
                  require_caption=require_caption, caption_field=caption_field)
    rejected_path = rejected if rejected is not None else sibling(output, "rejected")
    out = prepare_output(output, "filter", resume, overwrite, counted_streams={"rejected": "filter_rule"},
                         config=config, input_manifest=manifest, stream_paths={"rejected": rejected_path})
    if out is None:
        return
    timer = Timer()
    check_input(manifest)
    try:
        thresholds = resolve_thresholds(read_cuts(manifest), filter_config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    with out, progress(count_lines(manifest), "filter", "cut") as bar:
        for kept, cut in apply_filter(read_cuts(manifest), filter_config, thresholds, skip_ids=out.done_ids):
            if kept:
                out.write(cut)
            else:
                out.write_to("rejected", cut, reason=cut.custom["filter_rule"])
            bar.update(1)
    provenance = out.finalize(options=dict(manifest=str(manifest), resolved_min_clap=thresholds.min_clap,
                                           output=str(output)), inputs=[source])
    lines = [done_line(out) + f", rejected {out.summary.quarantined}"
             + ("; the input is empty, so is the output" if thresholds.scored_cuts == 0 and not out.summary.kept
                and not out.summary.quarantined else ""),
             rejected_line(out.summary.rejected).replace("quarantined", "rejected by rule")]
    if thresholds.min_clap is not None:
        how = f"p{thresholds.clap_percentile:g} of {thresholds.scored_cuts} scores" if thresholds.clap_percentile \
            is not None else "absolute"
        lines.append(f"CLAP threshold {thresholds.min_clap:.4f} ({how})")
    lines.append(f"took {timer.seconds:.1f} s")
    print_summary("filter", lines, provenance["outputs"])


def _weights(value: str) -> dict[str, float]:
    weights = {}
    for part in value.split(","):
        name, _, number = part.partition("=")
        try:
            weights[name.strip()] = float(number)
        except ValueError:
            raise click.BadParameter(f"expected name=weight pairs like reward=1,clap=1, got {value!r}") from None
    return weights


@click.command("select", context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--top", type=click.FloatRange(0, 1, min_open=True), default=0.1, help="Fraction of cuts selected.")
@click.option("--weights", default="reward=1,clap=1", help="Weights of the z-normalized scores.")
@click.option("--group-by", default=None, help="custom field whose groups are z-normalized separately (e.g. dataset).")
@click.option("--oversample", type=click.IntRange(1), default=None,
              help="Also write a mixture: the base manifest plus the selected cuts this many times.")
@click.option("--mixture", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Mixture output [default: OUTPUT's .mixture.jsonl.gz sibling].")
@click.option("--mixture-base", type=manifest_path(), default=None, help="Base of the mixture [default: MANIFEST].")
@output_options("select.jsonl.gz")
@stage_command
def select_cmd(manifest: Path, top: float, weights: str, group_by: str | None, oversample: int | None,
               mixture: Path | None, mixture_base: Path | None, output: Path, resume: bool, overwrite: bool) -> None:
    """Select the top fraction of MANIFEST by z-blended reward and CLAP score (expert iteration)."""
    from curate.io import StageOutput, describe_input, sibling
    from curate.manifests import check_input, read_cuts
    from curate.stages.select import SelectConfig, combine, oversampled, score_table, write_selected

    try:
        select_config = SelectConfig(top=top, weights=_weights(weights), group_by=group_by)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], top=top, weights=select_config.weights, group_by=group_by)
    target = mixture or sibling(output, "mixture")
    out = prepare_output(output, "select", resume, overwrite, config=config, input_manifest=manifest)
    timer = Timer()
    lines: list[str] = []
    if out is not None:
        check_input(manifest)
        try:
            ranked = combine(score_table(read_cuts(manifest), select_config), select_config)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        with out:
            for cut in write_selected(read_cuts(manifest), ranked, skip_ids=out.done_ids):
                out.write(cut)
        chosen = ranked[ranked["selected"]]
        cutoff = float(chosen["combined_score"].min()) if len(chosen) else None
        provenance = out.finalize(options=dict(manifest=str(manifest), selected=int(len(chosen)), of=int(len(ranked)),
                                               combined_score_cutoff=cutoff, output=str(output)), inputs=[source])
        lines += [f"selected {len(chosen)} of {len(ranked)} cuts (top {top:g})"]
        if len(chosen):
            lines.append(f"combined score: selected ≥ {cutoff:.3f}, overall median "
                         f"{ranked['combined_score'].median():.3f}")
        for name, weight in select_config.weights.items():
            column = {"reward": "reward", "clap": "clap_score"}[name]
            if weight and column in ranked and len(chosen):
                lines.append(f"{column}: selected mean {chosen[column].mean():.4f} vs all {ranked[column].mean():.4f}")
        outputs = provenance["outputs"]
    else:
        outputs = {}
    if oversample:  # its own output: a kill between select and the mixture is completed by a rerun
        base = mixture_base or manifest
        mix_config = dict(base_sha256=describe_input(base)["sha256"], selected_sha256=describe_input(output)["sha256"],
                          oversample=oversample)
        mix = StageOutput(target, stage="mixture", overwrite=overwrite, resume=True, config=mix_config,
                          input_manifest=output, schema_stage="mixture")
        if mix.check() != "skip":
            with mix:
                for cut in oversampled(read_cuts(base), read_cuts(output), oversample):
                    mix.write(cut)
            mixed = mix.finalize(options=dict(base=str(base), selected=str(output)),
                                 inputs=[describe_input(output), describe_input(base)])
            outputs["mixture"] = mixed["outputs"]["cuts"]
            lines.append(f"mixture: base + {oversample}× the selected cuts, {mix.summary.kept} cuts → {target}")
    if out is None and not lines:
        return
    lines.append(f"took {timer.seconds:.1f} s")
    print_summary("select", lines, outputs)
