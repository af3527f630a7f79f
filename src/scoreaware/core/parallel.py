"""Bounded, order-preserving thread map for I/O-and-DSP work.

libsndfile decoding and scipy filtering release the GIL, so threads use both cores without the
pickling cost of processes. At most `prefetch` items are in flight, so memory does not grow
with the corpus; results come back in input order, so outputs are deterministic.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

# decoding threads by default: two, or one on a one-core machine
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int = 1, prefetch: int | None = None
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in input order, computing up to `prefetch` ahead."""
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    prefetch = prefetch or 2 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= prefetch:
                head, future = pending.popleft()
                yield head, future.result()
        while pending:
            head, future = pending.popleft()
            yield head, future.result()
