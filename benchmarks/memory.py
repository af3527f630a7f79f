"""Peak memory of a block of code, sampled from /proc/self/status (Linux) by a thread."""

from __future__ import annotations

import ctypes
import gc
import threading

FIELDS = ("VmRSS", "RssAnon", "RssFile")


class PeakMemory:
    """Peak growth (MiB) of resident (VmRSS), anonymous (RssAnon) and file-backed (RssFile) memory."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval

    def __enter__(self) -> PeakMemory:
        self.base = self._read()
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            for key, value in self._read().items():
                self.peak[key] = max(self.peak[key], value)

    @staticmethod
    def _read() -> dict[str, int]:
        found = dict.fromkeys(FIELDS, 0)
        with open("/proc/self/status") as f:
            for line in f:
                name = line.split(":", 1)[0]
                if name in found:
                    found[name] = int(line.split()[1]) * 1024
        return found

    def growth_mib(self, key: str = "VmRSS") -> float:
        return (self.peak[key] - self.base[key]) / 2**20


def release_free_memory() -> None:
    """Collect garbage and hand the allocator's free pages back to the OS (glibc `malloc_trim`),
    so that the next `PeakMemory` measures what its block allocates, not what another block freed."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: growth may then be understated
        pass
