"""The decomposition table: a known shift is reported with p < 0.05; identical runs give zeros."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.evaluate.compare import Run, compare_runs, paired_keys, to_markdown
from scoreaware.evaluate.embeddings import EmbeddingError, EmbeddingSet, save_reference

FINGERPRINT = {"weights": "w", "policy": "first", "sampling_rate": 48000, "window": 480000}


def make_run(name, clap_scores, rewards, embeddings, reference_path, sha="r", prompts=None, folder=None):
    keys = [(f"p{i}", i) for i in range(len(clap_scores))]
    prompts = prompts or [f"prompt number {i}" for i in range(len(clap_scores))]
    clips = {k: {"id": f"{k[0]}_s{k[1]}", "prompt_id": k[0], "seed": k[1], "clap_score": float(c),
                 "reward": float(r), "prompt": text} for k, c, r, text in zip(keys, clap_scores, rewards, prompts)}
    from scoreaware.evaluate.embeddings import load_reference
    from scoreaware.evaluate.frechet import Stats, bootstrap_frechet, frechet_from_stats

    reference = load_reference(reference_path)[0]["clap"]
    fad = frechet_from_stats(Stats.of(embeddings), reference.stats)
    scores = {"reference": {"path": str(reference_path), "sha256": sha}, "fingerprints": {"clap": FINGERPRINT},
              "metrics": {"fad_clap": {**fad.to_dict(), "ci": list(bootstrap_frechet(embeddings, reference.stats,
                                                                                       resamples=20))},
                          "clap_score": {"mean": float(np.mean(clap_scores)), "ci": None},
                          "reward": {"mean": float(np.mean(rewards)), "ci": None}}}
    return Run(name, folder or reference_path.parent, scores, clips, dict(zip(keys, embeddings)))


@pytest.fixture
def reference(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "ref.npz"
    save_reference(path, {"clap": EmbeddingSet(rng.normal(size=(300, 8)), [], FINGERPRINT)})
    return path


def test_a_known_shift_is_reported_with_a_small_p_value(reference):
    rng = np.random.default_rng(1)
    n = 60
    clap, reward = rng.normal(0.2, 0.05, n), rng.normal(0.0, 1.0, n)
    emb = rng.normal(size=(n, 8))
    base = make_run("base", clap, reward, emb, reference)
    shifted = make_run("better_clap", clap + 0.03 + rng.normal(0, 0.005, n), reward, emb, reference)
    farther = make_run("drifted", clap + 0.03, reward, emb + 1.0, reference)
    table = compare_runs([base, shifted, farther], resamples=200)
    second, third = table.rows[1], table.rows[2]
    assert second["d_clap_score"] == pytest.approx(0.03, abs=0.003) and second["p_clap_score"] < 0.05
    assert second["d_reward"] == 0.0 and second["p_reward"] == 1.0  # untouched metric: no change
    assert second["d_fad_clap"] == pytest.approx(0.0, abs=1e-9)  # same embeddings, same FAD
    assert third["d_fad_clap"] > 0 and third["p_fad_clap"] < 0.05  # moved away from the reference
    markdown = to_markdown(table)
    assert "| better_clap | 60 / 60 |" in markdown and "*" in markdown
    assert "+0.03" in markdown.replace("+0.0299", "+0.03")
    for row in table.rows:  # every interval holds its estimate
        assert row["fad_clap_ci"][0] <= row["fad_clap"] <= row["fad_clap_ci"][1]


def test_identical_runs_have_zero_deltas(reference):
    rng = np.random.default_rng(2)
    run = make_run("a", rng.normal(size=20), rng.normal(size=20), rng.normal(size=(20, 8)), reference)
    row = compare_runs([run, make_run("b", [c["clap_score"] for c in run.clips.values()],
                                      [c["reward"] for c in run.clips.values()], np.stack(list(run.clap.values())),
                                      reference)], resamples=20).rows[1]
    assert row["d_clap_score"] == 0.0 and row["d_reward"] == 0.0 and row["d_fad_clap"] == 0.0
    assert row["p_clap_score"] == 1.0 and row["p_fad_clap"] == 1.0


def test_a_missing_clip_is_named(reference):
    rng = np.random.default_rng(3)
    a = make_run("a", rng.normal(size=5), rng.normal(size=5), rng.normal(size=(5, 8)), reference)
    b = make_run("b", rng.normal(size=4), rng.normal(size=4), rng.normal(size=(4, 8)), reference)
    with pytest.raises(EmbeddingError, match="prompt p4 seed 4 is in a but not in b"):
        paired_keys(a, b)


def test_same_ids_with_other_prompt_texts_are_not_paired(reference):
    rng = np.random.default_rng(4)
    a = make_run("a", rng.normal(size=3), rng.normal(size=3), rng.normal(size=(3, 8)), reference)
    b = make_run("b", rng.normal(size=3), rng.normal(size=3), rng.normal(size=(3, 8)), reference,
                 prompts=["prompt number 0", "a jazz trio", "prompt number 2"])
    with pytest.raises(EmbeddingError, match=r"prompt p1 seed 1 is 'prompt number 1' in a and 'a jazz trio' in b"):
        paired_keys(a, b)


def test_other_sampling_settings_are_said(reference, tmp_path):
    rng = np.random.default_rng(5)
    folders = []
    for name, cfg in (("a", 4.0), ("b", 3.0)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "generation.json").write_text(json.dumps({"steps": 25, "cfg": cfg, "score": 1.0, "seconds": 6.0}))
        folders.append(folder)
    runs = [make_run(name, rng.normal(size=4), rng.normal(size=4), rng.normal(size=(4, 8)), reference, folder=f)
            for name, f in zip("ab", folders)]
    comparison = compare_runs(runs, resamples=20)
    assert comparison.notes == ["a → b also changes the sampling: cfg 4.0 → 3.0"]
    table = to_markdown(comparison)
    assert "note: a → b also changes the sampling: cfg 4.0 → 3.0" in table and "see the notes" in table


def test_runs_scored_against_different_references_are_refused(reference):
    rng = np.random.default_rng(4)
    a = make_run("a", rng.normal(size=5), rng.normal(size=5), rng.normal(size=(5, 8)), reference)
    b = make_run("b", rng.normal(size=5), rng.normal(size=5), rng.normal(size=(5, 8)), reference, sha="other")
    with pytest.raises(EmbeddingError, match="another reference"):
        compare_runs([a, b])


def test_compare_cli_writes_table_csv_and_figure(tmp_path, generated, scored):
    """Two real scored runs (the same clips scored twice): zero deltas, every output written."""
    twin = tmp_path / "twin"
    shutil.copytree(generated, twin)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["eval", "compare", str(generated), str(twin), "--names", "base,again", "-o",
                                      str(out), "--resamples", "20", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    again = payload["stages"][1]
    assert again["d_clap_score"] == 0.0 and again["d_fad_clap"] == 0.0
    assert (out / "compare.md").read_text().startswith("| stage |")
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG" and (out / "compare.csv").is_file()
    clips = twin / "eval" / "clips.csv"
    clips.write_text("\n".join(clips.read_text().splitlines()[:-1]) + "\n")  # one clip missing
    missing = CliRunner().invoke(cli, ["eval", "compare", str(generated), str(twin), "-o", str(out)])
    assert missing.exit_code == 1 and "but not in twin" in missing.output
