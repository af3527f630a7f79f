"""Comparing two runs of a stage (local vs Ray executor) cut by cut."""

import gzip
import json

import numpy as np
import pytest

from scoreaware.core.manifests import read_cuts


def same_manifest(local, on_ray, float_tol: float = 1e-5) -> int:
    """Assert the two manifests agree cut by cut; returns the number of cuts compared."""
    a, b = list(read_cuts(local)), list(read_cuts(on_ray))
    assert [c.id for c in a] == [c.id for c in b]
    for x, y in zip(a, b):
        assert (x.start, x.duration, x.recording.id) == (y.start, y.duration, y.recording.id), x.id
        assert set(x.custom or {}) == set(y.custom or {}), x.id
        for key, value in (x.custom or {}).items():
            other = y.custom[key]
            if hasattr(value, "storage_key"):  # a Lhotse array: compare what it holds
                np.testing.assert_allclose(x.load_custom(key), y.load_custom(key), atol=float_tol, err_msg=key)
            elif isinstance(value, float):
                assert value == pytest.approx(other, abs=float_tol), (x.id, key)
            else:
                assert value == other, (x.id, key)
    quarantined = [sorted(r["id"] for r in _quarantine(p)) for p in (local, on_ray)]
    assert quarantined[0] == quarantined[1]
    return len(a)


def _quarantine(path):
    name = str(path).replace(".jsonl.gz", ".quarantine.jsonl.gz")
    with gzip.open(name, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]
