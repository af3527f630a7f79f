import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoreaware.curate.windows import Window, plan_windows, to_ms, window_id


@pytest.mark.parametrize(
    "duration, window, hop, min_duration, expected",
    [
        (30.0, 10.0, None, None, [(0, 10000), (10000, 10000), (20000, 10000)]),
        (25.0, 10.0, None, None, [(0, 10000), (10000, 10000)]),  # 5 s tail dropped
        (25.0, 10.0, None, 5.0, [(0, 10000), (10000, 10000), (20000, 5000)]),  # tail kept
        (30.0, 10.0, 5.0, None, [(0, 10000), (5000, 10000), (10000, 10000), (15000, 10000), (20000, 10000)]),
        (9.0, 10.0, None, None, []),  # too short for one window
        (9.0, 10.0, None, 4.0, [(0, 9000)]),
        (10.0004, 10.0, None, None, [(0, 10000)]),
    ],
)
def test_plan_windows_examples(duration, window, hop, min_duration, expected):
    got = [(w.start_ms, w.duration_ms) for w in plan_windows(duration, window, hop, min_duration)]
    assert got == expected


durations = st.floats(min_value=0.0, max_value=600.0, allow_nan=False)
windows = st.floats(min_value=0.5, max_value=30.0)


@settings(max_examples=300, deadline=None)
@given(duration=durations, window=windows, hop_ratio=st.floats(0.1, 2.0), min_ratio=st.floats(0.0, 1.0))
def test_window_invariants(duration, window, hop_ratio, min_ratio):
    hop, min_duration = window * hop_ratio, window * min_ratio
    planned = plan_windows(duration, window, hop, min_duration)
    total_ms = int(duration * 1000 + 1e-6)
    window_ms, hop_ms, min_ms = to_ms(window), to_ms(hop), to_ms(min_duration)
    for w in planned:
        assert 0 <= w.start_ms and w.end_ms <= total_ms  # inside the audio
        assert w.duration_ms <= window_ms and w.duration_ms >= max(min_ms, 1)  # no window too long/short
        assert w.start_ms % hop_ms == 0  # on the hop grid
    starts = [w.start_ms for w in planned]
    assert starts == sorted(set(starts))  # strictly increasing: unique ids
    for a, b in zip(planned, planned[1:]):
        assert b.start_ms - a.start_ms == hop_ms  # consecutive windows one hop apart
        assert a.end_ms - b.start_ms <= max(0, window_ms - hop_ms)  # overlap never exceeds window - hop
    if hop_ms <= window_ms:
        # coverage: everything up to the end is covered, except a dropped tail shorter than min_duration
        covered_until = planned[-1].end_ms if planned else 0
        assert total_ms - covered_until < max(min_ms, 1) or covered_until == total_ms


@settings(max_examples=100, deadline=None)
@given(duration=durations, window=windows)
def test_ids_are_unique_and_stable(duration, window):
    planned = plan_windows(duration, window, None, 0.0)
    ids = [window_id("rec", 0.0, w) for w in planned]
    assert len(ids) == len(set(ids))
    assert ids == [window_id("rec", 0.0, w) for w in plan_windows(duration, window, None, 0.0)]


def test_id_counts_milliseconds_in_the_recording():
    assert window_id("1085700", 0.0, Window(20000, 10000)) == "1085700_20000"
    assert window_id("1085700", 30.0, Window(0, 10000)) == "1085700_30000"


def test_rejects_impossible_settings():
    with pytest.raises(ValueError, match="min_duration"):
        plan_windows(30.0, 10.0, None, 11.0)
    with pytest.raises(ValueError, match="≥ 1 ms"):
        plan_windows(30.0, 0.0)
