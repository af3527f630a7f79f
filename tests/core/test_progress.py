"""Off a terminal, long work reports one line every few seconds instead of nothing."""

import io

from scoreaware.core.progress import LineProgress, progress


def test_lines_are_written_at_the_interval_and_at_the_end(monkeypatch):
    out = io.StringIO()
    clock = iter([0.0, 1.0, 2.0, 31.0, 32.0, 65.0, 70.0, 70.0])
    monkeypatch.setattr("scoreaware.core.progress.time.perf_counter", lambda: next(clock))
    bar = LineProgress(100, "segment", "window", every=30.0, file=out)  # start at 0.0
    bar.update(10)  # 1.0: too soon
    bar.update(10)  # 2.0: too soon
    bar.set_postfix(loss="0.512")
    bar.update(10)  # 31.0: a line
    bar.update(10)  # 32.0
    bar.update(10)  # 65.0: a line
    bar.close()  # 70.0: the last line
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("segment: 30/100 window (30 %)") and "loss=0.512" in lines[0]
    assert lines[-1].startswith("segment: 50/100 window (50 %)")


def test_off_a_terminal_progress_is_lines(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert isinstance(progress(10, "x", "cut"), LineProgress)
