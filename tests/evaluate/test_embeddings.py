"""MERT embedding sets of a manifest: several layer settings from one decode and forward per cut."""

import numpy as np
from lhotse.utils import fastcopy

from scoreaware.core.manifests import read_cuts
from scoreaware.curate.scoring.reward import load_mert
from scoreaware.evaluate.embeddings import mert_embedding_sets


def test_both_mert_sets_match_each_set_alone_and_skip_the_same_unreadable_cut(ingested, tiny_mert):
    mert = load_mert(str(tiny_mert))
    cuts = list(read_cuts(ingested))[:3]
    broken = fastcopy(cuts[1], id="broken", recording=fastcopy(cuts[1].recording, sources=[
        fastcopy(cuts[1].recording.sources[0], source="does-not-exist.wav")]))
    cuts.insert(1, broken)
    both = mert_embedding_sets(cuts, mert, ("last", "all"), window_seconds=2.0)
    alone = {name: mert_embedding_sets(cuts, mert, (name,), window_seconds=2.0)[name] for name in ("last", "all")}
    for name in ("last", "all"):
        assert both[name].ids == alone[name].ids == [c.id for c in cuts if c.id != "broken"]
        np.testing.assert_allclose(both[name].embeddings, alone[name].embeddings, rtol=1e-5, atol=1e-6)
        assert both[name].embeddings.shape == (3, mert.dim) and both[name].fingerprint["layers"] == name
        assert both[name].fingerprint["window"] == 2 * mert.sampling_rate
    assert not np.allclose(both["last"].embeddings, both["all"].embeddings, atol=1e-3)
