"""Independent training runs side by side on one machine: a process per run, the cores split.

Why: on a small CPU one tiny model's step does not keep every core busy. Measured on 2 cores with
the demo's tiny preset (batch 16, 216 frames): 60 steps took 28.5 s on 2 threads and 42 s on 1,
and two 1-thread runs side by side finished both in 40 s against 57 s one after the other.

Each run goes through `fit_or_resume` in its own spawned process (no forked torch or OpenMP
state), so an interrupted run resumes like any other and a failing run loses no other. A run's
own output goes to ``<run root>/fit.log``; the parent shows one bar (or a line every 30 s off a
terminal) over both runs' steps, read from those logs. Workers die with the parent
(``PR_SET_PDEATHSIG`` on Linux), so a killed command leaves no orphan still writing a run.
"""

from __future__ import annotations

import os
import re
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from scoreaware.core.progress import progress
from scoreaware.train.fit import finished_run, fit_or_resume

LOG_NAME = "fit.log"
WORKER_PROGRESS_SECONDS = "5"  # how often a worker writes its progress line, for the parent's bar
STEP_LINE = re.compile(r"train fit: (\d+)/(\d+) step")


@dataclass(frozen=True)
class FitJob:
    """One `fit_or_resume` call: the run's folder, its `key=value` overrides and preset."""

    name: str
    run_root: Path
    overrides: tuple[str, ...]
    preset: str | None = None

    @property
    def log(self) -> Path:
        return self.run_root / LOG_NAME


@dataclass(frozen=True)
class FitOutcome:
    checkpoint: Path
    trained_now: bool  # False: the run had already finished and was only found
    seconds: float


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fit_side_by_side(jobs: list[FitJob], workers: int | None = None, log=print) -> dict[str, FitOutcome]:
    """Run `jobs` with up to `workers` at a time (default: one per job, at most one per core), each
    with cores // workers threads; with one worker, in this process one after the other.

    :raises: the first failing run's own exception, after every other run has finished.
    """
    done = {job.name: FitOutcome(path, False, 0.0) for job in jobs if (path := finished_run(job.run_root))}
    for name, outcome in done.items():
        log(f"{name}: already trained → {outcome.checkpoint}")
    jobs = [job for job in jobs if job.name not in done]  # a worker process costs ~15 s of imports
    cores = available_cores()
    workers = min(len(jobs), cores) if workers is None else max(1, min(workers, len(jobs)))
    if workers <= 1:
        return {**done, **{job.name: _fit(job, log) for job in jobs}}
    threads = max(1, cores // workers)
    log(f"{len(jobs)} runs side by side, {workers} at a time with {threads} thread(s) each; their output: "
        + ", ".join(str(job.log) for job in jobs))
    for job in jobs:
        job.run_root.mkdir(parents=True, exist_ok=True)
    offsets = {job.name: job.log.stat().st_size if job.log.is_file() else 0 for job in jobs}
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_setup,
                               initargs=(threads,))
    with pool:
        futures: dict[Future, FitJob] = {pool.submit(_worker_fit, job): job for job in jobs}
        _follow(futures, offsets)
    outcomes, failures = {}, []
    for future, job in futures.items():
        error = future.exception()
        if error is None:
            outcomes[job.name] = future.result()
            continue
        if isinstance(error, BrokenProcessPool):  # the process itself died (killed, out of memory)
            error = RuntimeError(f"{job.name}: its training process died ({error}); rerun to resume from its last "
                                 "checkpoint")
        failures.append((job, error))
    for job, error in failures:
        log(f"{job.name} failed: {error} (its output: {job.log})")
    if failures:
        raise failures[0][1]
    for name, outcome in outcomes.items():
        log(f"{name}: trained in {outcome.seconds:.0f} s → {outcome.checkpoint}")
    return {**done, **outcomes}


def _fit(job: FitJob, log) -> FitOutcome:
    """A job not yet finished (the caller set finished ones aside): train it, or resume it."""
    began = time.perf_counter()
    return FitOutcome(fit_or_resume(job.run_root, job.overrides, job.preset, log=log), True,
                      time.perf_counter() - began)


def _follow(futures: dict[Future, FitJob], offsets: dict[str, int], poll: float = 2.0) -> None:
    """One bar over every run's steps, advanced from the progress lines in their logs."""
    done_steps = {job.name: 0 for job in futures.values()}
    totals = {job.name: 0 for job in futures.values()}
    bar = None
    pending = set(futures)
    while pending:
        pending = wait(pending, timeout=poll).not_done
        for job in futures.values():
            step = _last_step(job.log, offsets[job.name])
            if step is not None:
                done_steps[job.name], totals[job.name] = step
        if bar is None and all(totals.values()):
            bar = progress(sum(totals.values()), "train fit (side by side)", "step")
        if bar is not None:
            bar.update(sum(done_steps.values()) - bar.n)
    if bar is not None:
        bar.close()


def _last_step(log: Path, offset: int) -> tuple[int, int] | None:
    if not log.is_file():
        return None
    with log.open("rb") as handle:
        handle.seek(offset)
        matches = STEP_LINE.findall(handle.read().decode("utf-8", "replace"))
    return (int(matches[-1][0]), int(matches[-1][1])) if matches else None


# ----------------------------------------------------------------------------- in the workers
def _worker_setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["SCOREAWARE_PROGRESS_SECONDS"] = WORKER_PROGRESS_SECONDS
    if sys.platform.startswith("linux"):  # die with the parent rather than write a run nobody waits for
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_fit(job: FitJob) -> FitOutcome:
    """`_fit` with this process's output (Python's and native libraries') appended to the run's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    with job.log.open("ab") as sink:
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            import torch

            print(f"── {job.name}: {time.strftime('%Y-%m-%d %H:%M:%S')}, process {os.getpid()}, "
                  f"{torch.get_num_threads()} thread(s), into {job.run_root} ──", flush=True)
            return _fit(job, lambda line: print(line, flush=True))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
