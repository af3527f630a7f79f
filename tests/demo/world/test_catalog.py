"""The shipped catalog of music21 works is music21's own index, filtered; the split is a hash of the id."""

from __future__ import annotations

from scoreaware.demo.world import catalog


def test_shipped_catalog_matches_music21s_index():
    assert list(catalog._all_works()) == catalog.index_works()


def test_split_depends_on_the_work_id_only():
    assert catalog.split_of("bach/bwv66.6.mxl") == catalog.split_of("bach/bwv66.6.mxl")
    counts = {"train": 0, "test": 0}
    for work in catalog.works(("oneill",)):
        counts[work.split] += 1
    assert 0.15 < counts["test"] / sum(counts.values()) < 0.25


def test_every_default_collection_is_public_domain():
    assert all(catalog.COLLECTIONS[c].public_domain for c in catalog.DEFAULT_COLLECTIONS)
    assert not catalog.COLLECTIONS["essen"].public_domain
