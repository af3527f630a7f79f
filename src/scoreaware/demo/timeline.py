"""Where the demo's time goes: each step is timed and the total is broken down at the end."""

from __future__ import annotations

import contextlib
import time

import click


class Timeline:
    """Named steps with their wall time, in order; a step entered twice accumulates."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.steps: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str, group: str | None = None):
        """Print a banner, time the block, book it under `group` (or `name`)."""
        click.secho(f"\n── {name} " + "─" * max(4, 66 - len(name)), fg="cyan")
        began = time.perf_counter()
        try:
            yield
        finally:
            key = group or name
            self.steps[key] = self.steps.get(key, 0.0) + time.perf_counter() - began

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start

    def table(self) -> list[str]:
        """Lines of 'step  seconds  share', largest first, then the total."""
        total = self.total
        width = max((len(k) for k in self.steps), default=10)
        lines = [f"{name:<{width}}  {seconds:7.1f} s  {100 * seconds / total:5.1f} %"
                 for name, seconds in sorted(self.steps.items(), key=lambda kv: -kv[1])]
        rest = total - sum(self.steps.values())
        lines.append(f"{'(other)':<{width}}  {rest:7.1f} s  {100 * rest / total:5.1f} %")
        lines.append(f"{'total':<{width}}  {total:7.1f} s")
        return lines

    def as_dict(self) -> dict:
        return {"steps": {k: round(v, 2) for k, v in self.steps.items()}, "total": round(self.total, 2)}
