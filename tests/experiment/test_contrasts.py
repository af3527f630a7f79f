"""Pre-registered contrasts over training seeds and the planner, on planted per-seed deltas."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.evaluate.power import mde, units_needed
from scoreaware.experiment.contrasts import contrast_table, write_seed_deltas
from scoreaware.experiment.spec import Contrast


def planted(effects: dict[tuple[str, str, str], float], seeds: int, sd: float, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"treatment": t, "control": c, "training_seed": k, "metric": m, "delta": float(rng.normal(e, sd))}
            for (t, c, m), e in effects.items() for k in range(seeds)]


def test_a_large_planted_effect_is_a_difference_and_a_null_within_the_margin_is_decided_too():
    rows = planted({("beta", "uniform", "mode"): 0.2, ("filter", "all", "mode"): 0.0,
                    ("crossload", "ei", "reward"): 0.0}, seeds=12, sd=0.03)
    contrasts = [Contrast("score-aware", "beta", "uniform", "mode", 0.05),
                 Contrast("filter", "filter", "all", "mode", 0.05),
                 Contrast("bridge", "crossload", "ei", "reward", 0.1, primary=False, claim="equivalence")]
    table = {r["contrast"]: r for r in contrast_table(contrasts, rows)}
    assert table["score-aware"]["verdict"].startswith("difference") and table["score-aware"]["p_holm"] < 0.05
    assert table["filter"]["verdict"].startswith("no difference larger than the margin")
    assert table["bridge"]["equivalent"] and table["bridge"]["verdict"].startswith("equivalent")
    assert table["score-aware"]["n_seeds"] == 12 and len(table["score-aware"]["seed_deltas"]) == 12
    # Holm over the two primary difference contrasts only: the MDE at the observed SD uses 2 tests
    sd = table["filter"]["sd"]
    assert table["filter"]["mde"] == pytest.approx(mde(12, sd, tests=2))


def test_too_few_seeds_leave_a_contrast_undecided_or_untested():
    rows = planted({("beta", "uniform", "mode"): 0.02}, seeds=3, sd=0.1)
    table = contrast_table([Contrast("c", "beta", "uniform", "mode", 0.05)], rows)
    assert table[0]["verdict"].startswith("undecided")
    none = contrast_table([Contrast("c", "beta", "uniform", "reward", 0.05)], rows)
    assert none[0]["verdict"].startswith("not tested")


SPEC = """
name = "plan"
manifest = "m.jsonl.gz"
training_seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
{unit}
[base]
preset = "tiny"
set = {{ steps = 700 }}
[evaluate]
prompts = "prompts.csv"
reference = "ref.npz"
seeds = 2
[[arm]]
name = "uniform"
[[arm]]
name = "beta"
set = {{ timesteps = "beta" }}
[[arm]]
name = "filter"
filter = {{ clap_percentile = 10 }}
[[contrast]]
name = "score-aware"
arms = ["beta", "uniform"]
metric = "mode"
margin = 0.05
sd = 0.06
[[contrast]]
name = "filter"
arms = ["filter", "uniform"]
metric = "fad_clap"
margin = 0.02
"""


def write_plan_spec(folder, unit: str = ""):
    (folder / "m.jsonl.gz").write_bytes(b"")
    (folder / "ref.npz").write_bytes(b"")
    (folder / "prompts.csv").write_text("id,prompt\n" + "".join(f"p{i},prompt {i}\n" for i in range(7)))
    spec = folder / "plan.toml"
    spec.write_text(SPEC.format(unit=unit))
    return spec


def test_plan_prints_the_closed_form_mde_and_flags_what_cannot_reach(tmp_path):
    spec = write_plan_spec(tmp_path)
    result = CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    first = plan["contrasts"][0]
    assert plan["n"] == 10 and first["tests"] == 2
    assert first["mde"] == pytest.approx(mde(10, 0.06, tests=2))
    assert first["needed"] == units_needed(0.05, 0.06, tests=2)
    assert "no variance known" in plan["contrasts"][1]["flag"]
    # a pilot run's seed deltas give the SD
    pilot = tmp_path / "pilot"
    pilot.mkdir()
    write_seed_deltas(planted({("filter", "uniform", "fad_clap"): 0.01}, seeds=4, sd=0.02), pilot / "seed_deltas.csv")
    piloted = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--pilot", str(pilot),
                                                   "--json"]).output)
    assert piloted["contrasts"][1]["sd_source"] == "pilot (4 seeds)" and piloted["contrasts"][1]["mde"] > 0
    text = CliRunner().invoke(cli, ["experiment", "plan", str(spec)]).output
    assert "MDE at n = 10" in text and "cost here: about" in text


def test_plan_flags_fad_over_few_prompts_as_out_of_the_family(tmp_path):
    spec = write_plan_spec(tmp_path, unit='unit = "prompt"')
    spec.write_text(spec.read_text().replace("margin = 0.02", "margin = 0.02\nsd = 0.05"))
    plan = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"]).output)
    assert plan["n"] == 7 and plan["contrasts"][1]["flag"] is None  # 2/2^7 = 0.0156 < 0.05 / 2 tests
    (tmp_path / "prompts.csv").write_text("id,prompt\n" + "".join(f"p{i},prompt {i}\n" for i in range(5)))
    plan = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"]).output)
    assert plan["n"] == 5 and "cannot go below p = 0.0625" in plan["contrasts"][1]["flag"]


def test_run_refuses_seeds_the_file_does_not_declare(tmp_path):
    spec = write_plan_spec(tmp_path)
    result = CliRunner().invoke(cli, ["experiment", "run", str(spec), "-o", str(tmp_path / "o"), "--seeds", "3,42"])
    assert result.exit_code == 1 and "--seeds 42 is not a training seed" in result.output


def test_an_arm_with_fewer_seeds_pairs_only_those_and_costs_only_those(tmp_path):
    spec = write_plan_spec(tmp_path)
    full = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"]).output)
    spec.write_text(spec.read_text().replace('set = { timesteps = "beta" }',
                                             'set = { timesteps = "beta" }\nseeds = [0, 1, 2]'))
    plan = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"]).output)
    first = plan["contrasts"][0]
    assert plan["n"] == 10 and first["n"] == 3  # the score-aware contrast pairs the beta arm's 3 seeds
    assert first["mde"] == pytest.approx(mde(3, 0.06, tests=2))
    assert plan["estimate"]["cells"] == full["estimate"]["cells"] - 7
    assert plan["estimate"]["hours"] < full["estimate"]["hours"]


@pytest.mark.parametrize("seeds, message", [
    ("[0, 11]", "arm[1].seeds: 11 is not one of training_seeds"),
    ("[1, 1]", "arm[1].seeds = [1, 1] must be distinct integers"),
    ("3", "arm[1].seeds = 3 must be distinct integers")])
def test_arm_seeds_outside_the_file_are_refused_naming_the_key(tmp_path, seeds, message):
    spec = write_plan_spec(tmp_path)
    spec.write_text(spec.read_text().replace('set = { timesteps = "beta" }',
                                             f'set = {{ timesteps = "beta" }}\nseeds = {seeds}'))
    result = CliRunner().invoke(cli, ["experiment", "plan", str(spec)])
    assert result.exit_code == 1 and message in result.output, result.output


def test_plan_costs_each_arm_from_the_pilots_own_cell_times(tmp_path):
    spec = write_plan_spec(tmp_path)
    pilot = tmp_path / "pilot"
    pilot.mkdir()
    write_seed_deltas(planted({("beta", "uniform", "mode"): 0.0}, seeds=2, sd=0.02), pilot / "seed_deltas.csv")
    (pilot / "status.json").write_text(json.dumps({
        "uniform/seed0": {"state": "done", "seconds": 100.0}, "uniform/seed1": {"state": "done", "seconds": 140.0},
        "beta/seed0": {"state": "done", "seconds": 60.0}, "filter/seed0": {"state": "failed", "error": "x"}}))
    plan = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--pilot", str(pilot),
                                               "--json"]).output)
    unmeasured = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"]).output)
    # 10 seeds × (120 s + 60 s) measured, and the filter arm (no finished cell) at the machine's rates
    filter_hours = unmeasured["estimate"]["hours"] / 3
    assert plan["estimate"]["measured_arms"] == ["beta", "uniform"]
    assert plan["estimate"]["hours"] == pytest.approx(10 * 180 / 3600 + filter_hours, abs=0.01)
    text = CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--pilot", str(pilot)]).output
    assert "the pilot's mean time per cell for 2 of 3 arms" in text


def test_an_arms_mean_averages_clips_within_a_prompt_before_prompts():
    from scoreaware.experiment.contrasts import prompt_mean

    cell = {("a", 0): {"hit": 1.0}, ("a", 1): {"hit": 0.0}, ("b", 0): {"hit": 1.0}, ("c", 0): {"hit": None}}
    assert prompt_mean(cell, "hit") == pytest.approx(0.75)  # (0.5 + 1) / 2, not 2 of 3 clips
    assert prompt_mean(cell, "other") is None


def test_a_post_training_arm_runs_only_seeds_its_parent_runs(tmp_path):
    spec = write_plan_spec(tmp_path)
    spec.write_text(spec.read_text().replace('set = { timesteps = "beta" }',
                                             'set = { timesteps = "beta" }\nseeds = [0, 1, 2]')
                    + '[[arm]]\nname = "bridged"\nafter = "beta"\nposttrain = "cross-load"\n')
    result = CliRunner().invoke(cli, ["experiment", "plan", str(spec)])
    assert result.exit_code == 1 and "arm[3] (bridged) would run training seed 3, which its parent 'beta' does not" \
        in result.output and "seeds = [0, 1, 2]" in result.output, result.output
    spec.write_text(spec.read_text() + "seeds = [0, 2]\n")
    plan = json.loads(CliRunner().invoke(cli, ["experiment", "plan", str(spec), "--json"]).output)
    assert plan["estimate"]["cells"] == 10 + 3 + 10 + 2


def test_identical_seed_deltas_decide_nothing():
    """Seen in seed B's world pilot: both seeds +1/48 on a CRPO contrast, a zero-width interval."""
    rows = [{"treatment": "crpo", "control": "control", "training_seed": s, "metric": "instrument",
             "delta": 1 / 48} for s in (0, 1)]
    table = contrast_table([Contrast("c", "crpo", "control", "instrument", 0.05),
                            Contrast("e", "crpo", "control", "instrument", 0.05, claim="equivalence")], rows)
    assert all(r["verdict"].startswith("undecided: every training seed gave the same delta") for r in table)
    # enough identical seeds to be significant by sign flips (2 / 2^7 < 0.05) are still a difference
    many = [dict(rows[0], training_seed=s) for s in range(7)]
    assert contrast_table([Contrast("c", "crpo", "control", "instrument", 0.05)], many)[0]["verdict"].startswith(
        "difference")
