"""Training runs side by side in worker processes: finished, resumed, failed and killed runs."""

import json
import os

import numpy as np
import pytest

from scoreaware.train.config import ConfigError
from scoreaware.train.fit import fit_or_resume
from scoreaware.train.side_by_side import FitJob, available_cores, fit_side_by_side


def jobs(encoded, root, steps=6, extra=()):
    common = (f"manifest={encoded}", "batch_size=4", "max_frames=32", "log_every=1", "ckpt_every=2",
              f"steps={steps}", *extra)
    return [FitJob(name, root / name, (*common, f"run_dir={root / name}", f"score_head={head}"), "tiny")
            for name, head in (("baseline", "none"), ("scored", "global_adaln"))]


def losses(checkpoint):
    return [h["loss"] for h in json.loads((checkpoint.parent.parent / "history.json").read_text())]


def test_two_runs_train_in_workers_and_match_the_same_runs_in_process(encoded, tmp_path):
    lines = []
    outcomes = fit_side_by_side(jobs(encoded, tmp_path / "sbs"), workers=2, log=lines.append)
    assert set(outcomes) == {"baseline", "scored"} and all(o.trained_now for o in outcomes.values())
    assert all(o.checkpoint.name == "0000006.pt" for o in outcomes.values())
    assert any("side by side" in line for line in lines), lines
    for job in jobs(encoded, tmp_path / "sbs"):
        assert f"── {job.name}: " in job.log.read_text()  # the worker's own output went to the run's log
        assert f"{max(1, available_cores() // 2)} thread(s)" in job.log.read_text()  # the cores split in two
    # the same run in this process: the same losses (one thread against two: rounding only)
    job = jobs(encoded, tmp_path / "alone")[1]
    alone = fit_or_resume(job.run_root, job.overrides, job.preset)
    np.testing.assert_allclose(losses(alone), losses(outcomes["scored"].checkpoint), rtol=1e-4, atol=1e-5)

    again = fit_side_by_side(jobs(encoded, tmp_path / "sbs"), workers=2, log=lines.append)
    assert not any(o.trained_now for o in again.values())  # found, not trained again, no worker spawned
    assert {o.checkpoint for o in again.values()} == {o.checkpoint for o in outcomes.values()}


def test_a_failing_run_raises_its_own_error_after_the_other_finished(encoded, tmp_path):
    good, bad = jobs(encoded, tmp_path)
    bad = FitJob(bad.name, bad.run_root, (*bad.overrides, "stepz=3"), bad.preset)
    lines = []
    with pytest.raises(ConfigError, match="stepz"):
        fit_side_by_side([good, bad], workers=2, log=lines.append)
    assert sorted((good.run_root).glob("*/checkpoints/0000006.pt")), "the good run was lost"
    assert any(line.startswith("scored failed:") for line in lines), lines


def test_killed_workers_are_reported_and_a_rerun_resumes_both(encoded, tmp_path, monkeypatch, kill_after_step):
    for name, value in kill_after_step(3).items():  # each worker is killed after step 3 (ckpt at 2)
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match="training process died.*rerun to resume"):
        fit_side_by_side(jobs(encoded, tmp_path), workers=2, log=lambda line: None)
    monkeypatch.delenv("SCOREAWARE_TEST_KILL_AFTER_STEP")
    outcomes = fit_side_by_side(jobs(encoded, tmp_path), workers=2, log=lambda line: None)
    for name, outcome in outcomes.items():
        assert outcome.trained_now and outcome.checkpoint.name == "0000006.pt", name
        # the first worker to die breaks the pool, which stops the other, maybe before its first
        # checkpoint: that run starts over in a new folder; a run with a checkpoint resumes in place
        with_checkpoints = [run for run in (tmp_path / name).glob("*") if any(run.glob("checkpoints/*.pt"))]
        assert with_checkpoints == [outcome.checkpoint.parent.parent], with_checkpoints
        assert [h["step"] for h in json.loads((outcome.checkpoint.parent.parent / "history.json").read_text())
                if "loss" in h] == list(range(1, 7)), "a step missing or repeated"
    resumed = [o for o in outcomes.values() if o.checkpoint.parent.parent.name.startswith("000")]
    assert resumed, "the worker that killed itself after its step-2 checkpoint resumes in place"
    assert os.environ.get("SCOREAWARE_TEST_KILL_AFTER_STEP") is None
