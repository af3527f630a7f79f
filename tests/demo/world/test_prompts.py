"""The evaluation prompt set: many distinct, balanced combinations, each tied to a held-out work."""

from __future__ import annotations

from collections import Counter

import pytest

from scoreaware.demo.world import catalog
from scoreaware.demo.world.prompts import SHIPPED, combinations, evaluation_prompts, prompts_csv, read_shipped
from scoreaware.train.prompts import read_prompts


def test_combinations_are_distinct_and_balanced():
    rows = combinations(48)
    keys = [(r["instrument"], r["tempo_band"], r["mode"], r["collection"]) for r in rows]
    assert len(set(keys)) == 48
    assert set(Counter(r["instrument"] for r in rows).values()) == {4}
    assert set(Counter(r["mode"] for r in rows).values()) == {24}
    assert set(Counter(r["tempo_band"] for r in rows).values()) == {16}
    assert max(Counter(r["collection"] for r in rows).values()) - min(Counter(r["collection"] for r in rows).values()) \
        <= 1
    with pytest.raises(ValueError, match="only 360"):
        combinations(361)


def test_shipped_prompt_set_is_what_the_code_writes_and_reads_as_prompts(tmp_path):
    rows = evaluation_prompts(48)
    assert SHIPPED.read_text() == prompts_csv(rows)
    prompts = read_prompts(SHIPPED)
    assert len(prompts) == 48 and len({p.text for p in prompts}) == 48
    assert prompts[0].extra["instrument"] == rows[0]["instrument"]
    assert read_shipped() == [{k: str(v) for k, v in r.items()} for r in rows]


def test_every_prompt_work_is_held_out_and_in_the_prompted_mode():
    from scoreaware.demo.world.render import excerpt

    test_works = {w.id: w for w in catalog.works(split="test")}
    rows = read_shipped()
    assert all(r["work_id"] in test_works for r in rows)
    for row in rows[:6]:
        work = test_works[row["work_id"]]
        assert excerpt(work.source, work.number, 10.0, int(row["tempo_bpm"])).mode == row["mode"]


def test_reference_render_plays_the_prompt():
    import numpy as np

    from scoreaware.demo.world.prompts import reference_render

    audio = reference_render(read_shipped()[0], seconds=3.0)
    assert audio.shape == (2, 3 * 44_100) and np.sqrt(np.mean(audio**2)) > 0.01
