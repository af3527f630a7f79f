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
@json_option
def run_cmd(spec: Path, output: Path, resamples: int, overwrite: bool, as_json: bool) -> None:
    """Train, generate and score every arm × training seed of SPEC, then the table (each arm against
    the first, prompt as the unit, Holm-adjusted) and its plot. The same command resumes a killed run.
    """
    from scoreaware.experiment.run import run_experiment

    payload, lines = run_experiment(spec, output, overwrite, resamples,
                                    log=lambda line: click.echo(line, err=as_json))
    emit(as_json, payload, "experiment run", lines)
