"""`scoreaware experiment`: ablations as files (a thin command over `scoreaware.experiment`)."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.eval import emit, json_option


@click.group()
def experiment() -> None:
    """Ablations: arms that change one thing from a base, over training seeds, compared per prompt."""


@experiment.command("run", context_settings=dict(show_default=True))
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--resamples", type=click.IntRange(10), default=2000,
              help="Sign flips and bootstrap draws over prompts for the table's tests.")
@click.option("--overwrite", is_flag=True, help="Start over (another experiment file is refused otherwise).")
@click.option("--seeds", default=None, help="Comma-separated training seeds to run now (a subset of the file's); "
              "cells finished by earlier runs stay in the table, so a long design can be run in parts.")
@click.option("--yes", is_flag=True, help="Start a run estimated at over a day here without asking.")
@json_option
def run_cmd(spec: Path, output: Path, resamples: int, overwrite: bool, seeds: str | None, yes: bool,
            as_json: bool) -> None:
    """Train, generate and score every arm × training seed of SPEC, then the table (each arm against
    the first, prompt as the unit, Holm-adjusted) and its plot. The same command resumes a killed run.
    """
    from scoreaware.experiment.run import run_experiment

    subset = None
    if seeds is not None:
        try:
            subset = tuple(int(s) for s in seeds.split(","))
        except ValueError:
            raise click.BadParameter(f"expected integers like 0,1,2, got {seeds!r}", param_hint="--seeds") from None
    payload, lines = run_experiment(spec, output, overwrite, resamples,
                                    log=lambda line: click.echo(line, err=as_json), seeds=subset, yes=yes)
    emit(as_json, payload, "experiment run", lines)


@experiment.command("plan", context_settings=dict(show_default=True))
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pilot", type=click.Path(exists=True, path_type=Path), default=None,
              help="A previous run's output folder (or its seed_deltas.csv): the SD of each contrast's seed deltas.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=0.05)
@click.option("--power", type=click.FloatRange(0.5, 1, max_open=True), default=0.8)
@json_option
def plan_cmd(spec: Path, pilot: Path | None, alpha: float, power: float, as_json: bool) -> None:
    """What SPEC's design can detect before anything trains: per pre-registered contrast, the minimum
    detectable effect at POWER (Holm over its family), the units a margin-sized effect needs, metrics
    that cannot reach significance at this size, and what the design costs here."""
    from scoreaware.experiment.plan import plan_experiment

    payload, lines = plan_experiment(spec, pilot, alpha, power)
    emit(as_json, payload, "experiment plan", lines)


@experiment.command("merge", context_settings=dict(show_default=True))
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("parts", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run folder the parts' finished cells move into.")
@click.option("--resamples", type=click.IntRange(10), default=2000,
              help="Sign flips and bootstrap draws over prompts for the table's tests.")
@json_option
def merge_cmd(spec: Path, parts: tuple[Path, ...], output: Path, resamples: int, as_json: bool) -> None:
    """Move the finished arm × seed cells of PARTS (run folders of SPEC made by `experiment run
    --seeds …` on other processes or machines) into OUTPUT, then write OUTPUT's tables over every
    finished cell. Parts made from another experiment file, or a cell finished twice, are refused
    before anything moves."""
    from scoreaware.experiment.merge import merge_runs
    from scoreaware.experiment.run import run_experiment

    report = merge_runs(output, list(parts), log=lambda line: click.echo(line, err=as_json))
    payload, lines = run_experiment(spec, output, resamples=resamples, log=lambda line: click.echo(line, err=as_json),
                                    seeds=())
    moved = sum(len(cells) for cells in report["moved"].values())
    emit(as_json, {**payload, "merged": report}, "experiment merge",
         [f"{moved} cells moved from {len(parts)} part(s) into {output}", *lines])
