"""Fixtures shared by the curation tests."""

import pytest
from lhotse import CutSet

from scoreaware.testing.dummies import file_cut, tone, write_audio


@pytest.fixture
def scored(tmp_path):
    """20 cuts with known scores: clap = 0.00, 0.05, ..., 0.95; reward = 10 − index; two groups."""
    path = write_audio(tmp_path / "a.wav", tone(2.0))
    cuts = []
    for i in range(20):
        custom = dict(caption=f"clip {i}", clap_score=round(0.05 * i, 2), reward=float(10 - i),
                      loudness_lufs=-20.0 + i, dataset="jamendo" if i % 2 == 0 else "fma")
        if i == 7:
            custom["caption"] = "  "
        cuts.append(file_cut(path, cut_id=f"c{i:02d}", **custom))
    out = tmp_path / "scored.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(out)
    return out
