"""Progress bars and wall-clock timing for long work (on stderr, hidden when it is not a terminal)."""

from __future__ import annotations

import time

from tqdm import tqdm


def progress(total: int | None, desc: str, unit: str) -> tqdm:
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=None, leave=False)


class Timer:
    """Seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
