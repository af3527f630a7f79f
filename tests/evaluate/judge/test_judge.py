"""The shipped judge: loads through its loader, meets its ceilings on fresh renders, and no step uses it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.evaluate.judge import Judge
from scoreaware.evaluate.judge.instrument import InstrumentClassifier, fit_classifier

JUDGE = DEFAULT_MODELS / "judge"
ROOT = Path(__file__).resolve().parents[3]


def test_classifier_round_trips_through_plain_arrays(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 4
    x = np.concatenate([c + rng.normal(size=(40, 5)) for c in centres])
    labels = [name for name in ("a", "b", "c") for _ in range(40)]
    model = fit_classifier(x, labels)
    assert np.mean(np.array(model.predict(x)) == np.array(labels)) > 0.95
    loaded = InstrumentClassifier.load(model.save(tmp_path / "m.npz"))
    assert loaded.classes == ("a", "b", "c")
    np.testing.assert_allclose(loaded.probabilities(x), model.probabilities(x), rtol=1e-6)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:  # nothing in the file needs pickle
        assert set(f.files) == {"classes", "mean", "scale", "coef", "intercept"}


def test_a_folder_without_the_judge_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-judge"):
        Judge(tmp_path)


@pytest.fixture(scope="module")
def fresh_renders():
    """36 clips × 10 s of held-out works, a render seed neither the judge's training nor its card used."""
    from scoreaware.demo.world.clips import rendered_clips

    return rendered_clips(36, seed=303, seconds=10.0, split="test", workers=2)


def test_judge_meets_its_card_on_renders_it_never_saw(fresh_renders):
    """The card's ceilings were measured on 240 clips of seed 302; on 36 others each estimator lands
    within sampling noise of it (2.5 standard errors of a 36-clip rate)."""
    from scoreaware.demo.world.judge import measure_judge

    judge = Judge(JUDGE)
    found = measure_judge(judge, fresh_renders)
    for attribute in ("instrument", "tempo_band", "mode"):
        ceiling = judge.ceilings[attribute]
        slack = 2.5 * np.sqrt(ceiling * (1 - ceiling) / len(fresh_renders)) + 1e-9
        assert found[attribute] >= ceiling - slack, (attribute, found, judge.ceilings)
    assert judge.ceilings["instrument"] >= 0.85 and judge.ceilings["mode"] >= 0.7


def test_judge_heard_margin_is_positive_for_the_instrument_it_hears(fresh_renders):
    judge = Judge(JUDGE)
    spec, audio = fresh_renders[0]
    heard = judge.hear(audio, 44_100)
    assert heard.margin(heard.instrument) > 0 > heard.margin(next(c for c in judge.classifier.classes
                                                                  if c != heard.instrument))
    assert abs(sum(heard.instrument_probabilities.values()) - 1) < 1e-5


def test_judge_is_trained_on_seeds_no_other_model_or_corpus_uses():
    from scoreaware.demo.domain.corpus import DEMO_SEED, TRAIN_SEEDS
    from scoreaware.demo.domain.targets import EVAL_SEED
    from scoreaware.demo.world.clips import JUDGE_EVAL_SEED, JUDGE_SEED

    card = json.loads((JUDGE / "JUDGE.json").read_text())
    assert card["recipe"]["seed"] == JUDGE_SEED and card["recipe"]["eval_seed"] == JUDGE_EVAL_SEED
    others = {DEMO_SEED, EVAL_SEED, *TRAIN_SEEDS.values()}
    assert not {JUDGE_SEED, JUDGE_EVAL_SEED} & others


def test_the_layer_contract_forbids_every_step_from_importing_the_judge():
    """`lint-imports` enforces it (tox -e core); here: the contract exists and covers every step."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    judge = next(c for c in contracts if c.get("forbidden_modules") == ["scoreaware.evaluate.judge"])
    assert {"scoreaware.curate", "scoreaware.train", "scoreaware.posttrain",
            "scoreaware.demo.domain"} <= set(judge["source_modules"])


def test_the_contract_trips_on_a_step_that_imports_the_judge(tmp_path):
    """A copy of the package with one curation module importing the judge breaks the contract."""
    import shutil
    import subprocess
    import sys

    import scoreaware

    package = Path(scoreaware.__file__).parent
    shutil.copytree(package, tmp_path / "src" / "scoreaware", ignore=shutil.ignore_patterns(
        "default_models", "__pycache__", "*.gz"))
    stage = tmp_path / "src" / "scoreaware" / "curate" / "stages" / "filter.py"
    stage.write_text("import scoreaware.evaluate.judge  # noqa\n" + stage.read_text())
    config = tmp_path / "contracts.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(config), "--no-cache"], cwd=tmp_path / "src",
                            capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path / "src"), "PATH": ""})
    assert result.returncode != 0 and "scoreaware.curate.stages.filter" in result.stdout, result.stdout[-2000:]
