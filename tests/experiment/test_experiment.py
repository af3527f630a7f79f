"""`experiment run`: arms × training seeds through the library, a prompt-level table, resume after
a kill with nothing trained twice, a failing arm that loses no other, and files checked by key."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.errors import StageError
from scoreaware.experiment.spec import load_experiment


@pytest.fixture(scope="module")
def reference(ingested, tiny_clap, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "ref.npz"
    result = CliRunner().invoke(cli, ["eval", "reference", str(ingested), "-o", str(path), "--model", str(tiny_clap),
                                      "-j", "0"])
    assert result.exit_code == 0, result.output
    return path


def write_spec(folder: Path, encoded: Path, reference: Path, arms: str, clap: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts.csv").write_text("id,prompt\nambient,A calm ambient piece\nrock,An energetic rock song\n")
    spec = folder / "exp.toml"
    spec.write_text(f"""
name = "toy"
manifest = "{encoded}"
training_seeds = [0, 1]
[base]
preset = "tiny"
set = {{ steps = 4, batch_size = 4, max_frames = 32, ckpt_every = 2, timesteps = "logit_normal" }}
[evaluate]
prompts = "prompts.csv"
reference = "{reference}"
held_out = "{encoded}"
labels = ["ambient", "rock"]
label_clap = "{clap}"
seeds = 2
steps = 2
cfg = 1.0
seconds = 1.0
{arms}""")
    return spec


ARMS = """
[[arm]]
name = "baseline"
[[arm]]
name = "beta"
set = { timesteps = "beta" }
[[arm]]
name = "filter"
filter = { clap_percentile = 25 }
[[contrast]]
name = "score-aware"
arms = ["beta", "baseline"]
metric = "clap_score"
margin = 0.05
[[contrast]]
name = "filter-no-worse"
arms = ["filter", "baseline"]
metric = "clap_score"
margin = 0.5
claim = "equivalence"
primary = false
"""


def run_module(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoreaware", *[str(a) for a in args]], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=900)


def test_every_arm_and_seed_is_tabled_and_a_killed_run_resumes_without_training_twice(encoded, reference, tmp_path,
                                                                                          tiny_clap, kill_after_step):
    spec = write_spec(tmp_path, encoded, reference, ARMS, tiny_clap)
    out = tmp_path / "out"
    killed = run_module("experiment", "run", spec, "-o", out, env=kill_after_step(3))
    assert killed.returncode == -9  # killed inside the first arm × seed's training, after its step-2 checkpoint
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for arm in ("baseline", "beta", "filter"):
        for seed in (0, 1):
            runs = [p for p in (out / "runs" / arm / f"seed{seed}").iterdir() if p.is_dir()]
            assert len(runs) == 1  # one run folder: resumed, never started again
            history = json.loads((runs[0] / "history.json").read_text())
            assert [h["step"] for h in history if "loss" in h][-1] == 4
    first = next((out / "runs" / "baseline" / "seed0").iterdir())
    assert json.loads((first / "config.json").read_text())["seed"] == 0
    table = (out / "table.md").read_text()
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| ") and "stage" not in line]
    assert [(name.strip(), size.strip()) for name, size in rows] == [
        ("baseline", "2 / 8"), ("beta", "2 / 8"), ("filter", "2 / 8")]  # 2 prompts; 2 seeds × 2 training seeds
    assert "minus `baseline`" in table and "beta: ΔCLAP vs baseline by training seed 0 " in table
    assert "baseline: label heard " in table and "of 8 clips" in table and "filter: label heard" in table
    hits = json.loads((out / "samples" / "beta" / "seed1" / "eval" / "labels.json").read_text())
    assert len(hits) == 4 and all(isinstance(v, bool) for v in hits.values())
    assert (out / "table.png").read_bytes()[:4] == b"\x89PNG"
    assert "held-out flow loss" in table and (out / "held_out.png").read_bytes()[:4] == b"\x89PNG"
    for arm in ("baseline", "beta", "filter"):
        assert f"\n{arm}: " in table and "(n=2); by bin " in table
    status = json.loads((out / "status.json").read_text())
    assert sorted(status) == sorted(f"{a}/seed{s}" for a in ("baseline", "beta", "filter") for s in (0, 1))
    assert all(entry["state"] == "done" for entry in status.values())
    # checkpoints recorded inside OUT, relative to it: the folder moves and holds no path of this machine
    assert all(not Path(e["checkpoint"]).is_absolute() and (out / e["checkpoint"]).is_file() for e in status.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arms"][1]["p_clap_score_holm"] is not None and summary["arms"][1]["paired_prompts"] == 2
    deltas = (out / "seed_deltas.csv").read_text().splitlines()
    assert deltas[0] == "treatment,control,training_seed,metric,delta"
    for arm in ("beta", "filter"):
        for metric in ("clap_score", "label", "fad_clap"):  # (no reward head in this file: no reward delta)
            assert sum(line.startswith(f"{arm},baseline,") and f",{metric}," in line for line in deltas) == 2, metric
    means = (out / "arm_means.csv").read_text().splitlines()
    assert means[0] == "arm,training_seed,metric,value"
    assert {tuple(line.split(",")[:2]) for line in means[1:] if ",label," in line} == {
        (arm, str(seed)) for arm in ("baseline", "beta", "filter") for seed in (0, 1)}
    assert "each arm's mean over its training seeds" in result.output and "beta (2 seeds): label " in result.output
    contrasts = (out / "contrasts.md").read_text()
    assert "score-aware (primary, clap_score: beta − baseline)" in contrasts and "over 2 seeds" in contrasts
    assert "filter-no-worse (secondary" in contrasts
    assert [c["contrast"] for c in summary["contrasts"]] == ["score-aware", "filter-no-worse"]
    filtered = out / "manifests" / "filter.jsonl.gz"
    assert filtered.is_file() and (out / "manifests" / "filter.encode.json").is_file()  # trainable from anywhere

    # one seed of one arm missing (it failed): the table pairs the seeds both arms finished and says so
    from scoreaware.experiment.table import experiment_table

    partial = {arm: {seed: out / "samples" / arm / f"seed{seed}" for seed in (0, 1)} for arm in ("baseline", "beta")}
    del partial["beta"][1]
    comparison, lines = experiment_table(partial, resamples=50)
    assert comparison.rows[1]["paired_prompts"] == 2 and comparison.rows[1]["n"] == 4
    assert "beta vs baseline: paired over training seeds [0] only" in "\n".join(lines)

    cost = {cell: entry["seconds"] for cell, entry in status.items()}
    again = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(out)])
    assert again.exit_code == 0 and again.output.count("already trained") == 6
    # a cell found done keeps what it cost to make (the planner's --pilot reads it), not the re-check's time
    kept = {c: e["seconds"] for c, e in json.loads((out / "status.json").read_text()).items()}
    assert kept.keys() == cost.keys() and all(kept[c] >= cost[c] for c in cost)
    spec.write_text(spec.read_text().replace("seeds = 2", "seeds = 3"))
    changed = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(out)])
    assert changed.exit_code == 1 and "other options" in changed.output and "--overwrite" in changed.output


def test_a_failing_arm_loses_no_other_and_is_named(encoded, reference, tmp_path, tiny_clap):
    # a training set with no encode info: refused before anything trains (the pre-flight)
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not a manifest")
    spec = write_spec(tmp_path, encoded, reference, ARMS.split("[[arm]]\nname = \"filter\"")[0]
                      + '[[arm]]\nname = "broken"\nmanifest = "broken.jsonl.gz"\n', tiny_clap)
    early = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "out")])
    assert early.exit_code == 1 and "no .encode.json for" in early.output and "broken.jsonl.gz" in early.output
    assert not (tmp_path / "out" / "runs").exists()
    # with encode info (its models there) but lines that are no manifest: passes the pre-flight, fails at run time
    from scoreaware.train.data import encode_info

    (tmp_path / "broken.encode.json").write_text(json.dumps(encode_info(encoded)))
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "2 of 6 arm × seed runs failed (broken/seed0, broken/seed1)" in result.output
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["broken/seed0"]["state"] == "failed" and "gzip" in status["broken/seed0"]["error"]
    assert status["beta/seed1"]["state"] == "done"
    assert "| beta |" in (tmp_path / "out" / "table.md").read_text()


def test_parts_run_as_separate_processes_merge_into_one_table(encoded, reference, tmp_path, tiny_clap):
    # seed 0 and seed 1 of a two-arm design run into two folders (as on two machines), then merge
    spec = write_spec(tmp_path, encoded, reference, ARMS.split("[[arm]]\nname = \"filter\"")[0]
                      + ARMS[ARMS.index("[[contrast]]"):ARMS.index("[[contrast]]\nname = \"filter")], tiny_clap)
    out, part = tmp_path / "out", tmp_path / "part"
    for folder, seed in ((out, "0"), (part, "1")):
        result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(folder), "--seeds", seed])
        assert result.exit_code == 0, result.output
    merged = CliRunner().invoke(cli, ["experiment", "merge", str(spec), str(part), "-o", str(out), "--resamples", "50"])
    assert merged.exit_code == 0, merged.output
    assert "2 cells moved from 1 part(s)" in merged.output and "already trained" not in merged.output  # tables only
    status = json.loads((out / "status.json").read_text())
    assert sorted(status) == ["baseline/seed0", "baseline/seed1", "beta/seed0", "beta/seed1"]
    assert all((out / e["checkpoint"]).is_file() and (out / e["samples"]).is_dir() for e in status.values())
    assert json.loads((part / "status.json").read_text()) == {} and not (part / "runs" / "beta" / "seed1").exists()
    assert "over 2 seeds" in (out / "contrasts.md").read_text()
    rows = [line.split("|")[1:3] for line in (out / "table.md").read_text().splitlines()
            if line.startswith("| ") and "stage" not in line]
    assert [(name.strip(), size.strip()) for name, size in rows] == [("baseline", "2 / 8"), ("beta", "2 / 8")]
    # the whole run's command afterwards finds every cell done, the moved ones included
    again = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(out), "--resamples", "50"])
    assert again.exit_code == 0 and again.output.count("already trained") == 4


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("[evaluate]", "[evaluate]\nwhatever = 1"), "unknown keys in [evaluate]: ['whatever']"),
    (lambda s: s.replace('name = "beta"', 'name = "baseline"'), "arm[1].name 'baseline' is empty, repeated"),
    (lambda s: s.replace('prompts = "prompts.csv"', 'prompts = "missing.txt"'), "evaluate.prompts = 'missing.txt'"),
    (lambda s: s.replace("label_clap", "#"), "evaluate.labels needs evaluate.label_clap"),
    (lambda s: s.replace("training_seeds = [0, 1]", "training_seeds = [0, 0]"), "training_seeds = [0, 0]"),
    (lambda s: s + "\n[[arm]\n", "not valid TOML"),
    (lambda s: s.replace("filter = { clap_percentile = 25 }", "filter = { loudest = 1 }"), "arm[2].filter must be"),
    (lambda s: s + '[[arm]]\nname = "o"\nmanifest = "gone.jsonl.gz"\n', "arm[3].manifest = 'gone.jsonl.gz'"),
    (lambda s: s.replace('arms = ["beta", "baseline"]', 'arms = ["beta", "nope"]'), "contrast[0].arms: 'nope'"),
    (lambda s: s.replace("margin = 0.05", "margin = -1"), "contrast[0].margin = -1 must be a number > 0"),
    (lambda s: s.replace('claim = "equivalence"', 'claim = "maybe"'), "contrast[1].claim = 'maybe'"),
    (lambda s: s.replace('name = "score-aware"', 'name = "score-aware"\nwhy = 1'), "contrast[0]: unknown keys"),
    (lambda s: s.replace('name = "toy"', 'name = "toy"\nunit = "clip"'), "unit = 'clip' is not one of"),
])
def test_a_wrong_experiment_file_is_refused_naming_the_key(encoded, reference, tmp_path, tiny_clap, edit, message):
    spec = write_spec(tmp_path, encoded, reference, ARMS, tiny_clap)
    spec.write_text(edit(spec.read_text()))
    with pytest.raises(StageError, match=r"exp\.toml: .*" + message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        load_experiment(spec)
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "internal error" not in result.output


def test_an_arm_is_the_base_plus_its_delta(encoded, reference, tmp_path, tiny_clap):
    oracle = tmp_path / "oracle.jsonl.gz"
    oracle.write_bytes(encoded.read_bytes())
    experiment = load_experiment(write_spec(tmp_path, encoded, reference, ARMS + '[[arm]]\nname = "oracle"\n'
                                            'manifest = "oracle.jsonl.gz"\n', tiny_clap))
    assert experiment.arms[3].manifest == oracle and experiment.arms[0].manifest is None
    beta = dict(item.split("=", 1) for item in experiment.overrides(experiment.arms[1], 1, Path("m"), Path("r")))
    assert beta["timesteps"] == "beta" and beta["steps"] == "4" and beta["seed"] == "1" and beta["manifest"] == "m"
    assert experiment.arms[2].filter == {"clap_percentile": 25} and experiment.arms[2].set == {}


CHAIN = """
[[arm]]
name = "baseline"
[[arm]]
name = "scored"
set = {{ score_head = "global_adaln", score_field = "clap_score" }}  # the toy manifest has no reward
combines = ["score_head", "score_field"]
[[arm]]
name = "ei"
after = "scored"
posttrain = "expert-iteration"
prompts = "post.txt"
options = {{ k = 2, top = 0.5, oversample = 1, ft_steps = 2, lr = 1e-4, polish_steps = 0, sample_steps = 2, \
seconds = 1.0, batch_size = 2, reward = "{reward}", mert_model = "{mert}" }}
[[arm]]
name = "crossload"
after = "ei"
posttrain = "cross-load"
options = {{ adapt_steps = 3, max_gap = inf }}
[[arm]]
name = "crpo"
after = "crossload"
posttrain = "crpo"
prompts = "post.txt"
options = {{ n = 2, sample_steps = 2, seconds = 1.0, train_steps = 2, warmup = 0, batch_size = 2, holdout = 0.0 }}
"""


@pytest.fixture
def reward_head(tmp_path):
    import torch

    from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, save_reward

    torch.manual_seed(0)
    path = tmp_path / "reward.pt"
    save_reward(path, RewardHead(RewardConfig(mert_dim=1024, hidden=(8,))))
    return path


def test_a_post_training_chain_runs_each_step_from_its_parent_and_is_compared_with_it(
        encoded, reference, tmp_path, tiny_clap, tiny_mert, reward_head):
    spec = write_spec(tmp_path, encoded, reference, CHAIN.format(reward=reward_head, mert=tiny_mert), tiny_clap)
    spec.write_text(spec.read_text().replace("training_seeds = [0, 1]", "training_seeds = [0]"))
    (tmp_path / "post.txt").write_text("A calm ambient piece\nAn energetic rock song\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    status = json.loads((out / "status.json").read_text())
    assert [status[f"{a}/seed0"]["state"] for a in ("baseline", "scored", "ei", "crossload", "crpo")] == ["done"] * 5
    # each step started from its parent's checkpoint of the same training seed
    ei_run = json.loads((out / "runs" / "ei" / "seed0" / "run.json").read_text())
    scored_ckpt = sorted((out / "runs" / "scored" / "seed0").glob("*/checkpoints/*.pt"))[-1]
    from scoreaware.core.provenance import describe_input
    assert describe_input(scored_ckpt)["sha256"] in json.dumps(ei_run)
    import torch
    crossloaded = torch.load(out / "runs" / "crossload" / "seed0" / "crossload.pt", weights_only=True)
    assert crossloaded["model_config"]["score_head"] == "input_add"
    table = (out / "table.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()
            if line.startswith("| ") and "stage" not in line}
    assert rows == {"baseline": "—", "scored": "baseline", "ei": "scored", "crossload": "ei", "crpo": "crossload"}
    assert "the stage it changes (the `vs` column)" in table and "crpo: ΔCLAP vs crossload by training seed 0" in table
    made = (out / "runs" / "crossload" / "seed0" / "crossload.pt").stat().st_mtime_ns
    again = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(out)])
    assert again.exit_code == 0, again.output
    assert again.output.count("already trained") == 4  # 2 training arms and the fine-tunes of EI and CRPO
    assert (out / "runs" / "crossload" / "seed0" / "crossload.pt").stat().st_mtime_ns == made  # not redone


@pytest.mark.parametrize("arm, message", [
    ('name = "x"\nafter = "later"\nposttrain = "crpo"\nprompts = "prompts.csv"', "after = 'later' names no earlier"),
    ('name = "x"\nafter = "baseline"\nposttrain = "distill"', "posttrain = 'distill' is not one of"),
    ('name = "x"\nafter = "baseline"', "needs both `after` and `posttrain`"),
    ('name = "x"\nafter = "baseline"\nposttrain = "cross-load"\nset = { steps = 2 }', "changes one thing, its step"),
    ('name = "x"\nafter = "baseline"\nposttrain = "cross-load"\noptions = { kk = 1 }',
     "options for cross-load: ['kk']"),
    ('name = "x"\nafter = "baseline"\nposttrain = "crpo"', "missing arm[3].prompts"),
    ('name = "x"\noptions = { n = 1 }', "are for post-training arms"),
])
def test_a_wrong_post_training_arm_is_refused_naming_the_key(encoded, reference, tmp_path, tiny_clap, arm, message):
    spec = write_spec(tmp_path, encoded, reference, ARMS + "[[arm]]\n" + arm + "\n", tiny_clap)
    with pytest.raises(StageError, match=re.escape(message)):
        load_experiment(spec)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('set = { timesteps = "beta" }', 'set = "beta"'), "arm[1].set = 'beta' must be a table"),
    (lambda s: s.replace('set = { timesteps = "beta" }', 'set = { timesteps = "beta", lr = 0.001 }'),
     "arm[1] changes 2 things (set.timesteps, set.lr)"),
    (lambda s: s.replace('filter = { clap_percentile = 25 }',
                         'filter = { clap_percentile = 25 }\nset = { lr = 0.1 }'), "arm[2] changes 2 things"),
    (lambda s: s.replace("clap_percentile = 25", 'clap_percentile = "ten"'),
     "clap_percentile = 'ten' must be a number"),
    (lambda s: s.replace("seeds = 2\n", 'seeds = "six"\n'), "evaluate.seeds = 'six' must be an integer"),
    (lambda s: s.replace("cfg = 1.0", 'cfg = "x"'), "evaluate.cfg = 'x' must be a number"),
    (lambda s: s.replace("seconds = 1.0", "seconds = 0"), "evaluate.seconds = 0 must be a number > 0"),
    (lambda s: s.replace("seeds = 2\n", "seeds = 0\n"), "evaluate.seeds = 0 must be an integer ≥ 1"),
    (lambda s: s.replace("training_seeds = [0, 1]", "training_seeds = [true]"), "training_seeds = [True]"),
    (lambda s: s.replace("training_seeds = [0, 1]", "training_seeds = [-1]"), "training_seeds = [-1]"),
    (lambda s: s.replace('name = "beta"', 'name = "be\\u0000ta"'), "is empty, repeated or not a safe folder name"),
    (lambda s: s.replace("steps = 4,", "steps = -1,"), "base.set: steps = -1: must be ≥ 1"),
    (lambda s: s.replace('set = { timesteps = "beta" }', 'set = { timesteps = "beta", batch_size = 0 }')
     .replace('name = "beta"', 'name = "beta"\ncombines = ["timesteps", "batch"]'),
     r"arm\[1\].set \(beta\): batch_size = 0: must be ≥ 1"),
])
def test_typed_experiment_values_are_refused_before_anything_trains(encoded, reference, tmp_path, tiny_clap, edit,
                                                                    message):
    spec = write_spec(tmp_path, encoded, reference, ARMS, tiny_clap)
    spec.write_text(edit(spec.read_text()))
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output and "internal error" not in result.output
    assert re.search(message if message.startswith("arm\\[") else re.escape(message), result.output), result.output
    assert not (tmp_path / "out" / "runs").exists()  # nothing trained


def test_an_arm_that_declares_what_it_combines_is_accepted(encoded, reference, tmp_path, tiny_clap):
    spec = write_spec(tmp_path, encoded, reference, ARMS.replace(
        'filter = { clap_percentile = 25 }', 'filter = { clap_percentile = 25 }\nset = { timesteps = "beta" }\n'
        'combines = ["filter", "beta"]'), tiny_clap)
    assert load_experiment(spec).arms[2].combines == ("filter", "beta")


def test_a_run_of_over_a_day_asks_for_yes(encoded, reference, tmp_path, tiny_clap):
    spec = write_spec(tmp_path, encoded, reference, ARMS, tiny_clap)
    spec.write_text(spec.read_text().replace("steps = 4,", "steps = 1e10,"))
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "hours here" in result.output and "--yes" in result.output
    assert not (tmp_path / "out" / "runs").exists()


def test_a_run_from_another_folder_resolves_everything_and_a_moved_model_stops_it_before_training(
        ingested, encoded, tiny_clap, tmp_path, monkeypatch):
    """Issue 36: `experiment run` from another folder trained every arm, then failed every arm × seed
    at scoring (the reference's `models/clap` was read from the working directory). Everything is
    resolved from the files that record it, and checked before the first arm trains."""
    import shutil

    from scoreaware.experiment.run import preflight
    from scoreaware.experiment.spec import load_experiment

    project = tmp_path / "project"
    shutil.copytree(tiny_clap, project / "models" / "clap")
    monkeypatch.chdir(project)
    invoke_ok = CliRunner().invoke(cli, ["eval", "reference", str(ingested), "-o", "ref.npz", "--model", "models/clap",
                                         "-j", "0"])
    assert invoke_ok.exit_code == 0, invoke_ok.output
    spec = write_spec(project, encoded, project / "ref.npz", ARMS.split("[[arm]]\nname = \"filter\"")[0],
                      tiny_clap)
    monkeypatch.chdir("/")
    preflight(load_experiment(spec))  # resolves from /
    shutil.move(project / "models", tmp_path / "moved")
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "ref.npz" in result.output and "--clap-model" in result.output, result.output
    assert not (tmp_path / "out" / "runs").exists()  # nothing trained
