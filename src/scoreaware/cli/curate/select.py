"""`scoreaware curate filter` and `scoreaware curate select`."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.options import (
    manifest_path,
    output_options,
    print_result,
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
def filter_cmd(manifest: Path, rejected: Path | None, output: Path, resume: bool, overwrite: bool,
               **options) -> None:
    """Keep the cuts of MANIFEST that pass every rule; rejected cuts keep the rule and value.

    The CLAP percentile threshold is computed over the whole manifest in one streaming pass.
    """
    from scoreaware.curate.stages.filter import FilterConfig, run_filter

    if options["clap_percentile"] is None and options["min_clap"] is None:
        options["clap_percentile"] = FilterConfig.clap_percentile  # the default rule: the bottom decile
    try:
        filter_config = FilterConfig(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    print_result(run_filter(manifest, output, filter_config, rejected=rejected, resume=resume, overwrite=overwrite))


def _weights(value: str) -> dict[str, float]:
    from scoreaware.curate.stages.select import parse_weights

    try:
        return parse_weights(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("select", context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--top", type=click.FloatRange(0, 1, min_open=True), default=0.1, help="Fraction of cuts selected.")
@click.option("--weights", default="reward=1,clap=1", callback=lambda ctx, param, value: _weights(value),
              help="Weights of the z-normalized scores.")
@click.option("--group-by", default=None, help="custom field whose groups are z-normalized separately (e.g. dataset).")
@click.option("--per-group", is_flag=True,
              help="Take the top fraction within each --group-by group (ceil(top·K) of K), not overall.")
@click.option("--oversample", type=click.IntRange(1), default=None,
              help="Also write a mixture: the base manifest plus the selected cuts this many times.")
@click.option("--random-seed", type=int, default=None,
              help="A control: select the same number of cuts at random (this seed) instead of the best by score.")
@click.option("--mixture", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Mixture output [default: OUTPUT's .mixture.jsonl.gz sibling].")
@click.option("--mixture-base", type=manifest_path(), default=None, help="Base of the mixture [default: MANIFEST].")
@output_options("select.jsonl.gz")
def select_cmd(manifest: Path, mixture: Path | None, mixture_base: Path | None, output: Path, resume: bool,
               overwrite: bool, **options) -> None:
    """Select the top fraction of MANIFEST by z-blended reward and CLAP score (expert iteration)."""
    from scoreaware.curate.stages.select import SelectConfig, run_select

    try:
        select_config = SelectConfig(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    print_result(run_select(manifest, output, select_config, mixture=mixture, mixture_base=mixture_base,
                            resume=resume, overwrite=overwrite))
