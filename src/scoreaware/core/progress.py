"""Progress for long work: a tqdm bar on a terminal, periodic one-line reports elsewhere (nohup,
cluster logs, CI), and wall-clock timing."""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm


def log_every() -> float:
    """Seconds between progress lines off a terminal (SCOREAWARE_PROGRESS_SECONDS, default 30), read
    when a bar starts, so a worker process can report more often than its parent."""
    return float(os.environ.get("SCOREAWARE_PROGRESS_SECONDS", "30"))


class LineProgress:
    """The part of tqdm's interface the stages use, reporting one line every `every` seconds
    (and at the end) instead of redrawing a bar: ``segment: 120/467 window (26 %), 12.3/s``."""

    def __init__(self, total: int | None, desc: str, unit: str, every: float | None = None, file=None,
                 initial: int = 0) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.every = log_every() if every is None else every
        self.file = file or sys.stderr
        self.n = self.initial = initial
        self.postfix: dict = {}
        self.start = self.last = time.perf_counter()

    def update(self, count: int = 1) -> None:
        self.n += count
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def _line(self, now: float) -> None:
        rate = (self.n - self.initial) / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        share = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        eta = f", about {(self.total - self.n) / rate:.0f} s left" if self.total and rate > 0 else ""
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}{of} {self.unit}{share}, {rate:.1f}/s{eta}{extra}", file=self.file, flush=True)

    def close(self) -> None:
        if self.n > self.initial and time.perf_counter() - self.start >= self.every:
            self._line(time.perf_counter())

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int | None, desc: str, unit: str, initial: int = 0) -> tqdm | LineProgress:
    """A tqdm bar on stderr when it is a terminal; otherwise a line every `log_every()` seconds."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True, leave=False)
    return LineProgress(total, desc, unit, initial=initial)


class Timer:
    """Seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
