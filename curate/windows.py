"""Fixed-window arithmetic: where the windows of a cut start, how long they are, their ids.

Windows start at ``k * hop`` for k = 0, 1, ... while the start lies inside the cut and the
previous window did not already reach the end. Each lasts ``window`` seconds or up to the
end of the cut (the tail). A tail shorter than ``min_duration`` is dropped. Times are kept on
a millisecond grid so that ids (``{recording}_{start_ms}``) are exact and stable.
"""

from __future__ import annotations

from dataclasses import dataclass

MS = 1000


@dataclass(frozen=True)
class Window:
    """One window, in milliseconds relative to the start of its source cut."""

    start_ms: int
    duration_ms: int

    @property
    def start(self) -> float:
        return self.start_ms / MS

    @property
    def duration(self) -> float:
        return self.duration_ms / MS

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


def to_ms(seconds: float) -> int:
    """Seconds -> whole milliseconds (rounded)."""
    return int(round(seconds * MS))


def plan_windows(
    duration: float, window: float, hop: float | None = None, min_duration: float | None = None
) -> list[Window]:
    """The windows of a cut of `duration` seconds.

    :param window: window length in seconds (> 0).
    :param hop: distance between window starts; defaults to `window` (no overlap).
    :param min_duration: shortest tail kept; defaults to `window` (full windows only).
    """
    window_ms = to_ms(window)
    hop_ms = to_ms(window if hop is None else hop)
    min_ms = to_ms(window if min_duration is None else min_duration)
    total_ms = int(duration * MS + 1e-6)  # floor: a window never runs past the audio
    if window_ms <= 0 or hop_ms <= 0:
        raise ValueError(f"window and hop must be ≥ 1 ms, got window={window}, hop={hop}")
    if min_ms > window_ms:
        raise ValueError(f"min_duration ({min_duration}) cannot exceed the window ({window})")
    windows = []
    start = 0
    while start < total_ms:
        length = min(window_ms, total_ms - start)
        if length >= min_ms and length > 0:
            windows.append(Window(start, length))
        if start + window_ms >= total_ms:
            break
        start += hop_ms
    return windows


def window_id(recording_id: str, source_offset: float, w: Window) -> str:
    """``{recording}_{start_ms}``, with the start measured in the recording."""
    return f"{recording_id}_{to_ms(source_offset) + w.start_ms}"
