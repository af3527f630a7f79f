"""Batches normalize a cut's score only for a model that reads it."""

import dataclasses

import pytest
from lhotse import CutSet

from scoreaware.core.manifests import read_cuts
from scoreaware.train.data import LatentBatches, compute_normalization


def test_a_model_without_a_score_head_needs_no_score_statistics(encoded):
    """A child of a parent trained on unscored data inherits no score statistics: a score-conditioned
    child is refused by name, a child without a score head trains with every score null."""
    norm = dataclasses.replace(compute_normalization(encoded, "clap_score", "", "clap_score"), score_stats={})
    cuts = CutSet.from_cuts(list(read_cuts(encoded))[:2])
    with pytest.raises(ValueError, match="no normalization statistics"):
        LatentBatches(norm, 32)[cuts]
    batch = LatentBatches(norm, 32, scores=False)[cuts]
    assert not batch["score_mask"].any() and batch["latent"].shape[0] == 2
