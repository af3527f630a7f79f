"""`experiment merge` on run folders built by hand: what moves, what is refused before anything
moves, and an interrupted merge finished by the same call (the end-to-end merge of two real
parts is in test_experiment.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoreaware.core.errors import StageError
from scoreaware.experiment.merge import merge_runs

CLAIM = {"experiment_sha256": "a" * 64, "manifest_sha256": "b" * 64}


def run_folder(root: Path, cells: dict[str, str], claim: dict = CLAIM) -> Path:
    """A run folder whose cells ("<arm>/seed<k>" → state) each hold a runs/ and samples/ folder."""
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps(claim))
    status = {}
    for cell, state in cells.items():
        for sub in ("runs", "samples"):
            (root / sub / cell).mkdir(parents=True)
            (root / sub / cell / "made_by.txt").write_text(root.name)
        status[cell] = {"state": state, "samples": f"samples/{cell}", "checkpoint": f"runs/{cell}/c.pt",
                        "seconds": 10.0} if state == "done" else {"state": state, "error": "boom"}
    (root / "status.json").write_text(json.dumps(status))
    return root


def test_finished_cells_move_with_their_status_and_unfinished_ones_stay(tmp_path):
    out = run_folder(tmp_path / "out", {"base/seed0": "done", "base/seed1": "failed"})
    part = run_folder(tmp_path / "part", {"base/seed1": "done", "arm/seed1": "done", "arm/seed2": "failed"})
    report = merge_runs(out, [part], log=lambda line: None)
    status = json.loads((out / "status.json").read_text())
    assert {c: e["state"] for c, e in status.items()} == {"base/seed0": "done", "base/seed1": "done",
                                                          "arm/seed1": "done"}
    assert status["arm/seed1"]["checkpoint"] == "runs/arm/seed1/c.pt"  # relative: holds in the new folder
    for cell in ("base/seed1", "arm/seed1"):  # OUT's failed attempt at base/seed1 is replaced by the part's
        assert (out / "samples" / cell / "made_by.txt").read_text() == "part"
        assert not (part / "runs" / cell).exists()
    assert json.loads((part / "status.json").read_text()) == {"arm/seed2": {"state": "failed", "error": "boom"}}
    assert (part / "runs" / "arm" / "seed2").is_dir()
    assert report["moved"][str(part)] == ["arm/seed1", "base/seed1"] and report["left"][str(part)] == ["arm/seed2"]


@pytest.mark.parametrize("make_part, message", [
    (lambda root: run_folder(root, {"arm/seed1": "done"}, {**CLAIM, "manifest_sha256": "c" * 64}),
     "made from another experiment"),
    (lambda root: run_folder(root, {"base/seed0": "done"}), "base/seed0 is finished in both"),
    (lambda root: root.mkdir() or root, "no run.json"),
])
def test_a_part_that_does_not_belong_is_refused_before_anything_moves(tmp_path, make_part, message):
    out = run_folder(tmp_path / "out", {"base/seed0": "done"})
    good = run_folder(tmp_path / "good", {"arm/seed3": "done"})
    bad = make_part(tmp_path / "bad")
    before = (out / "status.json").read_text()
    with pytest.raises(StageError, match=message):
        merge_runs(out, [good, bad], log=lambda line: None)
    assert (out / "status.json").read_text() == before and (good / "runs" / "arm" / "seed3").is_dir()


def test_a_cell_finished_in_two_parts_is_refused(tmp_path):
    out = run_folder(tmp_path / "out", {})
    a, b = (run_folder(tmp_path / name, {"arm/seed1": "done"}) for name in ("a", "b"))
    with pytest.raises(StageError, match="arm/seed1 is finished in more than one part"):
        merge_runs(out, [a, b], log=lambda line: None)
    assert json.loads((out / "status.json").read_text()) == {}


def test_an_interrupted_merge_is_finished_by_the_same_call(tmp_path):
    out = run_folder(tmp_path / "out", {"base/seed0": "done"})
    part = run_folder(tmp_path / "part", {"arm/seed1": "done", "arm/seed2": "done"})
    merge_runs(out, [part], log=lambda line: None)
    # as if killed after OUT's status was written and before the part's: the part still lists arm/seed1
    (part / "status.json").write_text(json.dumps({"arm/seed1": json.loads((out / "status.json").read_text())[
        "arm/seed1"]}))
    report = merge_runs(out, [part], log=lambda line: None)
    assert report["moved"][str(part)] == ["arm/seed1"]
    assert json.loads((part / "status.json").read_text()) == {}
    assert sorted(json.loads((out / "status.json").read_text())) == ["arm/seed1", "arm/seed2", "base/seed0"]
