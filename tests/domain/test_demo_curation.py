"""Curation of the demo corpus with the shipped models, checked against the planted truth."""

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.demo.synth import make_corpus
from scoreaware.demo.truth import Truth, filtering


@pytest.fixture(scope="module")
def demo_scored(tmp_path_factory):
    """The demo corpus (seed 0, 40 clips, 10 s each: one window per clip) scored by the shipped CLAP."""
    root = tmp_path_factory.mktemp("demo_corpus")
    make_corpus(root / "corpus", clips=40, duration=10.0, seed=0)
    meta = root / "corpus" / "metadata"
    steps = [["curate", "ingest", str(root / "corpus" / "audio"), "-m", str(meta / "autotagging.tsv"),
              "-m", str(meta / "captions.json"), "-m", str(meta / "tracks.csv"), "-o", str(root / "ingest.jsonl.gz")],
             ["curate", "segment", str(root / "ingest.jsonl.gz"), "-o", str(root / "segment.jsonl.gz")],
             ["curate", "score", "clap", str(root / "segment.jsonl.gz"), "--model", str(DEFAULT_MODELS / "clap"),
              "-o", str(root / "clap.jsonl.gz")]]
    for args in steps:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return root


def test_filter_at_its_default_removes_the_mismatched_captions(demo_scored):
    root = demo_scored
    result = CliRunner().invoke(cli, ["curate", "filter", str(root / "clap.jsonl.gz"), "-o",
                                      str(root / "filter.jsonl.gz")])
    assert result.exit_code == 0, result.output
    truth = Truth.load(root / "corpus" / "truth.jsonl")
    found = filtering(truth, root / "clap.jsonl.gz", root / "filter.rejected.jsonl.gz")
    assert found["mismatched"]["positives"] >= 4
    assert found["mismatched"]["precision"] >= 0.8, found


def test_reward_ranks_the_planted_degradations_low(demo_scored):
    import numpy as np

    root = demo_scored
    result = CliRunner().invoke(cli, ["curate", "score", "reward", str(root / "clap.jsonl.gz"), "--checkpoint",
                                      str(DEFAULT_MODELS / "reward.pt"), "--mert-model", str(DEFAULT_MODELS / "mert"),
                                      "-o", str(root / "reward.jsonl.gz")])
    assert result.exit_code == 0, result.output
    from scoreaware.core.manifests import read_cuts

    truth = Truth.load(root / "corpus" / "truth.jsonl")
    rewards = {truth.label(c.recording_id): [] for c in read_cuts(root / "reward.jsonl.gz")}
    for cut in read_cuts(root / "reward.jsonl.gz"):
        rewards[truth.label(cut.recording_id)].append(cut.custom["reward"])
    clean = np.mean(rewards["clean"])
    degraded = np.concatenate([v for k, v in rewards.items() if k.startswith("degraded")])
    mismatched = np.array(rewards["mismatched caption"])
    assert degraded.mean() < clean and mismatched.mean() < clean, {k: np.mean(v) for k, v in rewards.items()}


def test_genre_line_shows_the_count_so_a_near_miss_does_not_round_to_the_target():
    from scoreaware.demo.pipeline import heard

    assert heard("score_sft", {"hits": 25, "accuracy": 25 / 42, "clips": 42}) == "score_sft 25/42 = 0.595"
    assert heard("baseline", {"hits": 42, "accuracy": 1.0, "clips": 42}) == "baseline 42/42 = 1.000"


def test_per_genre_line_names_each_genre_with_its_count():
    from scoreaware.demo.pipeline import heard_per_genre

    line = heard_per_genre("score_sft", {"per_label": {"rock": [6, 6], "hiphop": [0, 6]}})
    assert line == "score_sft   rock 6/6  hiphop 0/6"


def test_the_first_pass_clap_separates_the_planted_mismatches(demo_scored):
    """The demo's figure: AUROC of the CLAP score, own caption against another clip's, by segment.
    Swapping the groups gives 1 − AUROC exactly (the figure is a rank statistic, not a threshold)."""
    from scoreaware.core.manifests import read_cuts
    from scoreaware.demo.truth import mismatch_auroc, separation
    from scoreaware.schemas.fields import CLAP_SCORE

    truth = Truth.load(demo_scored / "corpus" / "truth.jsonl")
    found = mismatch_auroc(truth, demo_scored / "clap.jsonl.gz")
    assert found["negatives"] >= 4 and found["auroc"] >= 0.9, found
    swapped = separation(truth, demo_scored / "clap.jsonl.gz", CLAP_SCORE, truth.mismatched,
                         lambda r: not truth.mismatched(r))
    assert swapped["auroc"] == pytest.approx(1 - found["auroc"])
    # a planted file defect is neither clean nor mismatched: plant one on a clean recording and its
    # segments leave the positives, nothing else moves
    segments = [c.recording_id for c in read_cuts(demo_scored / "clap.jsonl.gz")]
    rid = next(r for r in segments if not truth.mismatched(r) and not truth.defective(r))
    planted = Truth({**truth.rows, rid: {**truth.rows[rid], "defect": "near_silent"}})
    again = mismatch_auroc(planted, demo_scored / "clap.jsonl.gz")
    assert again["positives"] == found["positives"] - segments.count(rid)
    assert again["negatives"] == found["negatives"]
