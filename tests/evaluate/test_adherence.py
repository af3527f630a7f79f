"""Attribute adherence: the judge's hits per prompt, beside chance and the ceiling (known answers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.evaluate.adherence import adherence, judge_run


def test_rates_take_the_prompt_as_the_unit_and_chance_from_the_prompt_set():
    # prompt a: 3 clips, all right; prompt b: 1 clip, wrong -> clips 0.75, prompts 0.5
    rows = [{"prompt_id": "a", "instrument": "violin", "tempo_band": "slow", "mode": "major", "hit_instrument": 1,
             "hit_tempo_band": 1, "hit_mode": 1, "instrument_margin": 0.5, "mode_margin": 0.2}] * 3 + [
        {"prompt_id": "b", "instrument": "flute", "tempo_band": "fast", "mode": "minor", "hit_instrument": 0,
         "hit_tempo_band": 0, "hit_mode": 0, "instrument_margin": -0.3, "mode_margin": -0.1}]
    found = adherence(rows, {"instrument": 0.9, "tempo_band": 0.6, "mode": 0.8})
    assert found["prompts"] == 2 and found["clips"] == 4
    item = found["instrument"]
    assert item["rate_clips"] == 0.75 and item["rate_prompts"] == 0.5 and item["chance"] == 0.5
    assert item["halfway"] == pytest.approx(0.7) and item["met"] is False
    assert found["instrument_margin"]["mean_prompts"] == pytest.approx(0.1)
    assert adherence([], {}) == {}


def _samples(folder, rows_audio):
    folder.mkdir()
    rows = []
    for i, (attributes, audio) in enumerate(rows_audio):
        sf.write(folder / f"c{i}.wav", audio.T, 44_100)
        rows.append({"id": f"c{i}", "path": f"c{i}.wav", "prompt": "x", "prompt_id": f"p{i // 2}", "seed": i % 2,
                     "attributes": attributes})
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def renders():
    """Reference renders of 6 prompts of the shipped set: 'generated' clips that are the prompt exactly."""
    from scoreaware.demo.world.prompts import read_shipped, reference_render

    rows = read_shipped()[:6]
    return [(row, reference_render(row, seconds=8.0)) for row in rows]


def test_renders_of_the_prompt_adhere_and_the_wrong_instrument_does_not(tmp_path, renders):
    right = _samples(tmp_path / "right", [({k: r[k] for k in ("instrument", "tempo_band", "mode")}, a)
                                          for r, a in renders for _ in range(2)])
    found = judge_run(right, DEFAULT_MODELS / "judge")
    assert found["prompts"] == 6 and found["instrument"]["rate_prompts"] >= 5 / 6, found
    assert (right / "eval" / "judge.csv").is_file() and (right / "eval" / "judge.json").is_file()
    record = json.loads((right / "eval" / "judge.json").read_text())  # portable: relative to itself, with a digest
    assert not Path(record["judge"]).is_absolute() and len(record["judge_sha256"]) == 64
    assert (right / "eval" / record["judge"]).resolve() == (DEFAULT_MODELS / "judge").resolve()
    # the same audio under another instrument's prompt: the judge must not confirm it
    shifted = [r for r, _ in renders[1:]] + [renders[0][0]]
    wrong = _samples(tmp_path / "wrong", [({"instrument": s["instrument"] if s["instrument"] != r["instrument"]
                                            else "trumpet", "tempo_band": r["tempo_band"], "mode": r["mode"]}, a)
                                          for (r, a), s in zip(renders, shifted) for _ in range(2)])
    assert judge_run(wrong, DEFAULT_MODELS / "judge")["instrument"]["rate_prompts"] <= 1 / 6
    assert np.isfinite(found["mode_margin"]["mean_prompts"])


def test_clips_without_attributes_are_not_judged(tmp_path, renders):
    folder = _samples(tmp_path / "plain", [({}, renders[0][1])])
    assert judge_run(folder, DEFAULT_MODELS / "judge") == {}


def test_the_adherence_curve_is_drawn_from_per_prompt_rates(tmp_path):
    from scoreaware.evaluate.adherence import adherence_curve

    def table(hit: int) -> list[dict]:
        return [{"prompt_id": p, "instrument": "violin", "tempo_band": "slow", "mode": m, "hit_instrument": hit,
                 "hit_tempo_band": 0, "hit_mode": hit, "instrument_margin": 0.0, "mode_margin": 0.0}
                for p, m in (("a", "major"), ("b", "minor"))]

    ceilings = {"instrument": 0.9, "tempo_band": 0.6, "mode": 0.8, "mode_balanced": 0.75}
    points = [(600, adherence(table(0), ceilings)), (1200, adherence(table(1), ceilings))]
    assert points[1][1]["mode"]["per_prompt"] == [1.0, 1.0] and points[1][1]["mode"]["ceiling"] == 0.75
    out = adherence_curve(points, ceilings, tmp_path / "curve.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
