"""`run_stage`: the lifecycle every stage shares, as a library function.

A stage run is: describe the input → decide the configuration → prepare the output (refuse a
changed configuration, skip a finished one, resume a partial one) → start a timer → check the
input → drive the work under a progress bar → finalize (validate, move into place, sidecar) →
summary. Each stage module builds a :class:`StagePlan` (its configuration and the callables
that differ) and calls :func:`run_stage`; the click commands only parse options, call the stage
and print the :class:`StageResult`. Evaluation, post-training and the demo call the same stage
functions, never the commands.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoreaware.core.executors import failures_error
from scoreaware.core.executors import run_job as _run_job
from scoreaware.core.jobs import ExecutorOptions, ShardFailure
from scoreaware.core.output import StageOutput, Validator
from scoreaware.core.progress import Timer, progress
from scoreaware.core.provenance import read_provenance


@dataclass
class StageResult:
    """What a stage run did, for the caller to print or inspect.

    :param skipped: the output was already complete with the same configuration; nothing ran.
    :param lines: the human summary (counts, quarantine reasons, timing).
    :param outputs: stream -> {"path", "items"} of the written files.
    """

    stage: str
    output: Path
    skipped: bool = False
    lines: list[str] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    provenance: dict | None = None
    seconds: float = 0.0
    title: str = ""
    message: str = ""

    def report(self) -> list[str]:
        """The summary lines, then one ``→ path  (items stream)`` line per written file."""
        files = [f"→ {info['path']}  ({info['items']} {stream})" for stream, info in self.outputs.items()]
        return [*self.lines, *files]


@dataclass
class StagePlan:
    """One stage run: its configuration and the parts of the lifecycle that differ by stage.

    :param config: the options that decide what the stage writes (compared on ``resume`` and
        on reruns; a difference is refused naming the option).
    :param drive: ``(out, bar) -> report``: does the work, writing into `out`.
    :param summary: ``(out, report, seconds) -> lines`` after finalize.
    :param finalize: ``(out, report) -> kwargs`` for :meth:`StageOutput.finalize`.
    :param check: input checks run once the output is prepared, before any expensive step.
    :param total: items the bar counts (or a callable giving it, evaluated after `check`).
    :param output_options: further :class:`StageOutput` arguments (``counted_streams``,
        ``schema_stage``, ``stream_paths``).
    """

    stage: str
    output: Path
    config: dict
    drive: Callable[[StageOutput, Any], Any]
    summary: Callable[[StageOutput, Any, float], list[str]]
    finalize: Callable[[StageOutput, Any], dict] = lambda out, report: {}
    check: Callable[[], None] | None = None
    total: int | Callable[[], int | None] | None = None
    unit: str = "cut"
    title: str = ""
    input_manifest: Path | None = None
    streams: Iterable[str] = ()
    output_options: Mapping[str, Any] = field(default_factory=dict)
    validator: Validator | None = None


def run_stage(plan: StagePlan, *, resume: bool = False, overwrite: bool = False) -> StageResult:
    """Run `plan` through the whole lifecycle; returns what happened.

    :raises StageError: a changed configuration, bad input, a schema failure of the output,
        or failed Ray shards (the partial output stays for ``resume``).
    """
    out = prepare_output(plan.output, plan.stage, resume, overwrite, streams=plan.streams, config=plan.config,
                         input_manifest=plan.input_manifest, validator=plan.validator, **plan.output_options)
    title = plan.title or plan.stage
    if isinstance(out, StageResult):
        return out
    timer = Timer()
    if plan.check is not None:
        plan.check()
    total = plan.total() if callable(plan.total) else plan.total
    with out, progress(total, title, plan.unit) as bar:
        bar.update(out.resumed_items)
        report = plan.drive(out, bar)
    provenance = out.finalize(**plan.finalize(out, report))
    lines = plan.summary(out, report, timer.seconds)
    return StageResult(plan.stage, Path(plan.output), lines=lines, outputs=provenance["outputs"],
                       provenance=provenance, seconds=timer.seconds, title=title)


def prepare_output(path: Path, stage: str, resume: bool, overwrite: bool, streams=(),
                   **kwargs) -> StageOutput | StageResult:
    """A `StageOutput` to write into, or a skipped `StageResult` when the output is complete.

    `kwargs` go to `StageOutput` (``config``: the options that decide the output, compared on
    --resume and on reruns; ``input_manifest``: the manifest read, whose lineage continues).
    """
    out = StageOutput(path, stage=stage, resume=resume, overwrite=overwrite, streams=streams, **kwargs)
    if out.check() == "skip":
        sidecar = read_provenance(path) or {}
        kept = (sidecar.get("outputs", {}).get("cuts") or {}).get("items", "?")
        if out.has_partial:  # a kill after the final rename left the work folder behind
            shutil.rmtree(out.partial_dir, ignore_errors=True)
        return StageResult(stage, Path(path), skipped=True, provenance=sidecar,
                           outputs=sidecar.get("outputs", {}),
                           message=f"✓ {path} is already complete ({kept} cuts); nothing to do. "
                                   "Pass --overwrite to redo it.")
    return out


def drive(job, manifest: Path, out: StageOutput, executor: ExecutorOptions, bar, on_cut: Callable | None = None,
          on_other: Callable | None = None) -> dict:
    """Run `job` on the chosen executor into `out`: cuts written, rejections quarantined,
    anything else (a caption's `Failed`) given to `on_other`. Returns the executor's report.

    :raises StageError: after the loop, when Ray shards failed (the rest stays in the partial
        output, so --resume redoes only their cuts).
    """
    failures, report = [], {}
    for item in _run_job(job, manifest, out.done_ids, executor, out.partial_dir, report):
        if isinstance(item, ShardFailure):
            failures.append(item)
            continue
        if hasattr(item, "reason"):
            out.reject(item)
        elif hasattr(item, "custom"):
            out.write(item)
            if on_cut:
                on_cut(item)
        elif on_other:
            on_other(item)
        bar.update(1)
    if failures:  # raised inside the caller's `with out`: the partial output is closed and kept
        raise failures_error(failures, out.path)
    return report


def ignore(line: str) -> None:
    """The default `log` of a library driver: the line is dropped (a command passes its printer)."""


# --------------------------------------------------------------------------- stage options
# Each stage's frozen `Config` dataclass is the one list of its options: the click command's
# options are checked against its fields in a test (tests/cli/test_stage_options.py), --resume
# compares `output_options(config)`, and provenance records `recorded_options(config)`.
def option(default: Any = None, *, changes_output: bool = True, **kwargs) -> Any:
    """A stage option (a dataclass field). ``changes_output=False`` marks one that cannot change
    what the stage writes (threads, batch size, device, trust flags): --resume ignores it."""
    return field(default=default, metadata={"changes_output": changes_output}, **kwargs)


def output_options(config: Any) -> dict:
    """The options of `config` that decide the output: what --resume and a rerun compare
    (`StageOutput` reads them as JSON gives them back: tuples as lists, paths as strings)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.metadata.get("changes_output", True)}


def recorded_options(config: Any) -> dict:
    """Every option of `config`, for the provenance sidecar."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


# --------------------------------------------------------------------------- summary lines
def ray_line(report: dict) -> str | None:
    """'ray: 12 of 12 shards on 2 actors, …' for a stage summary (None for the local executor)."""
    if "shards" not in report:
        return None
    seconds = report.get("shard_seconds") or []
    line = (f"ray: {report['shards_run']} of {report['shards']} shards on {report['actors']} actors, "
            f"{sum(seconds):.1f} s in the stage's code, {report.get('wall_seconds', 0.0):.1f} s wall")
    if report.get("ready_after"):  # actor start-up: process, imports and the stage's setup (models)
        line += (f"; actors ready after {max(report['ready_after']):.1f} s "
                 f"(setup {max(report['setup_seconds']):.1f} s of it)")
    return line + (f"; {report['failed']} shard(s) failed" if report.get("failed") else "")


def score_summary(out: StageOutput, seconds: float, values: list[float], field: str) -> list[str]:
    """A scoring stage's summary: counts, the distribution of `field` this run, the rate."""
    lines = [done_line(out, "scored"), rejected_line(out.summary.rejected)]
    if values:
        lines.append(f"{field} (this run): min {min(values):.4f}  median {statistics.median(values):.4f}  "
                     f"mean {statistics.fmean(values):.4f}  max {max(values):.4f}")
    done = out.summary.this_run.get("kept", 0)
    rate = done / seconds if seconds else 0.0
    lines.append(f"took {seconds:.1f} s ({rate:.1f} cuts/s)")
    return lines


def done_line(out: StageOutput, what: str = "kept") -> str:
    """'kept N (M of them before --resume)': whole-output counts after `finalize`."""
    before = out.summary.this_run.get("resumed_from_items", 0) if out.summary.this_run else 0
    text = f"{what} {out.summary.kept}"
    if before:
        text += f" ({out.summary.kept - out.summary.this_run.get('kept', 0)} of them written before --resume)"
    return text


def rejected_line(rejected) -> str:
    """'quarantined N: reason n, …'."""
    if not rejected:
        return "quarantined 0"
    return f"quarantined {sum(rejected.values())}: " + ", ".join(f"{k} {v}" for k, v in rejected.most_common())
