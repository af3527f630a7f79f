"""What an executor runs: a `StageJob` (setup once, process cuts), its options, its failures.

Kept apart from the executors so the local and the Ray executor both import it and neither
imports the other's module at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lhotse.cut import Cut


def _own_id(cut: Cut) -> list[str]:
    return [cut.id]


@dataclass(frozen=True)
class StageJob:
    """What an executor needs to run a stage.

    :param name: the stage, for messages ("score clap").
    :param setup: () -> state, called once per process (local) or per actor (Ray).
    :param process: (state, cuts, skip_ids) -> cuts, rejections (and stage-specific items such
        as a caption's `Failed`), in input order where the stage keeps one.
    :param output_ids: the ids a cut becomes in the output (a segment's windows; by default
        the cut's own id), so a shard whose outputs are all written is skipped on --resume.
    """

    name: str
    setup: Callable[[], Any]
    process: Callable[[Any, Iterable[Cut], frozenset[str]], Iterator[Any]]
    output_ids: Callable[[Cut], list[str]] = _own_id


@dataclass(frozen=True)
class ShardFailure:
    """A shard whose `process` raised on Ray: its cuts are not written, so --resume redoes them."""

    shard: int
    cut_ids: list[str]
    error: str


@dataclass(frozen=True)
class ExecutorOptions:
    """``--executor`` and its Ray settings (see `executor_options` in the CLI)."""

    kind: str = "local"
    address: str | None = None
    actors: int = 2
    shard_size: int = 64
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0

    @property
    def on_ray(self) -> bool:
        return self.kind == "ray"
