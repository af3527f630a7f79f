import dataclasses
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.stages.filter import FilterConfig, apply_filter, resolve_thresholds
from scoreaware.curate.stages.select import SelectConfig, combine, score_table
from scoreaware.testing.dummies import file_cut, tone, write_audio


def ids(path):
    return [c.id for c in read_cuts(path)]


def test_percentile_threshold_and_reasons(scored, tmp_path):
    out = tmp_path / "kept.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "filter", str(scored), "-o", str(out), "--clap-percentile", "20",
                                      "--min-lufs", "-5.5"])
    assert result.exit_code == 0, result.output
    # p20 of 0.00..0.95 (linear) = 0.19: c00-c03 fall below; c07 has no caption; c15-c19 are too loud? no:
    # min-lufs -5.5 rejects loudness < -5.5, i.e. c00..c14 except those already rejected by caption
    kept = ids(out)
    assert kept == ["c15", "c16", "c17", "c18", "c19"]
    rejected = {c.id: c.custom for c in read_cuts(tmp_path / "kept.rejected.jsonl.gz")}
    assert rejected["c07"]["filter_rule"] == "no_caption"
    assert rejected["c00"]["filter_rule"] == "loudness" and rejected["c00"]["filter_value"] == -20.0
    assert len(rejected) == 15
    sidecar = read_provenance(out)
    assert sidecar["summary"]["rejected_by_reason"] == {"no_caption": 1, "loudness": 14}
    assert sidecar["options"]["resolved_min_clap"] == pytest.approx(0.19)


def test_clap_rule_alone(scored, tmp_path):
    cuts = read_cuts(scored)
    config = FilterConfig(clap_percentile=10.0)
    thresholds = resolve_thresholds(cuts, config)
    assert thresholds.min_clap == pytest.approx(np.percentile([0.05 * i for i in range(20)], 10))
    outcome = {c.id: (kept, c.custom.get("filter_rule"), c.custom.get("filter_value"))
               for kept, c in apply_filter(cuts, config, thresholds)}
    assert outcome["c00"] == (False, "clap_score", 0.0) and outcome["c01"] == (False, "clap_score", 0.05)
    assert outcome["c02"][0] is True
    assert outcome["c07"] == (False, "no_caption", None)
    absolute = FilterConfig(clap_percentile=None, min_clap=0.5, require_caption=False)
    kept = [c.id for ok, c in apply_filter(cuts, absolute, resolve_thresholds(cuts, absolute)) if ok]
    assert kept == [f"c{i:02d}" for i in range(10, 20)]


def test_filter_rejected_path_option_and_bad_options(scored, tmp_path):
    rejected = tmp_path / "elsewhere" / "low.jsonl.gz"
    rejected.parent.mkdir()
    result = CliRunner().invoke(cli, ["curate", "filter", str(scored), "-o", str(tmp_path / "k.jsonl.gz"),
                                      "--rejected", str(rejected)])
    assert result.exit_code == 0 and len(ids(rejected)) == 3  # bottom 10 % (2) + the blank caption
    both = CliRunner().invoke(cli, ["curate", "filter", str(scored), "--clap-percentile", "5", "--min-clap", "0.1"])
    assert both.exit_code == 2 and "not both" in both.output


def test_selection_picks_the_hand_checked_ids(scored):
    table = score_table(read_cuts(scored), SelectConfig(top=0.1))
    ranked = combine(table, SelectConfig(top=0.1))
    # clap rises with i while reward falls with i by the same z: every combined score is 0 → ties by id
    assert np.allclose(ranked["combined_score"], 0.0)
    assert ranked[ranked["selected"]]["id"].tolist() == ["c00", "c01"]
    reward_only = SelectConfig(top=0.15, weights={"reward": 1.0, "clap": 0.0})
    ranked = combine(score_table(read_cuts(scored), reward_only), reward_only)
    assert ranked[ranked["selected"]]["id"].tolist() == ["c00", "c01", "c02"]  # ceil(0.15·20) = 3
    assert ranked["selection_rank"].tolist()[:3] == [1, 2, 3]


def test_groupwise_normalization_changes_the_choice(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(1.0))
    # fma rewards sit 10 above jamendo; within each group the order is the same
    rows = [("j0", "jamendo", 0.0), ("j1", "jamendo", 1.0), ("j2", "jamendo", 2.0),
            ("f0", "fma", 10.0), ("f1", "fma", 10.5), ("f2", "fma", 12.0)]
    cuts = [file_cut(path, cut_id=i, caption="x", reward=r, dataset=g) for i, g, r in rows]
    manifest = tmp_path / "m.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    weights = {"reward": 1.0, "clap": 0.0}
    pooled = combine(score_table(read_cuts(manifest), SelectConfig(top=0.33, weights=weights)),
                     SelectConfig(top=0.33, weights=weights))
    assert pooled[pooled["selected"]]["id"].tolist() == ["f2", "f1"]
    grouped_config = SelectConfig(top=0.33, weights=weights, group_by="dataset")
    grouped = combine(score_table(read_cuts(manifest), grouped_config), grouped_config)
    # z within groups: j2 = +1.22, f2 = +1.37 → the two best-of-group both rank first
    assert grouped[grouped["selected"]]["id"].tolist() == ["f2", "j2"]
    assert grouped.set_index("id").loc["j2", "z_reward"] == pytest.approx(np.sqrt(1.5))


def test_select_cli_writes_ranks_and_an_oversampled_mixture(scored, tmp_path):
    out = tmp_path / "sel.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "select", str(scored), "-o", str(out), "--top", "0.1",
                                      "--weights", "reward=1,clap=0", "--oversample", "5"])
    assert result.exit_code == 0, result.output
    selected = list(read_cuts(out))
    assert [(c.id, c.custom["selection_rank"]) for c in selected] == [("c00", 1), ("c01", 2)]
    mixture = ids(tmp_path / "sel.mixture.jsonl.gz")
    assert len(mixture) == 20 + 2 * 5
    assert mixture[20:] == [f"c0{i}_x{k}" for i in range(2) for k in range(1, 6)]
    assert CliRunner().invoke(cli, ["curate", "validate", str(out)]).exit_code == 0
    assert CliRunner().invoke(cli, ["curate", "validate", str(tmp_path / "sel.mixture.jsonl.gz")]).exit_code == 0


def test_select_refuses_missing_scores_and_unknown_weights(scored, tmp_path):
    src = tmp_path / "noreward.jsonl.gz"
    with gzip.open(scored, "rt") as f, gzip.open(src, "wt") as g:
        for line in f:
            row = json.loads(line)
            row["custom"].pop("reward")
            g.write(json.dumps(row) + "\n")
    result = CliRunner().invoke(cli, ["curate", "select", str(src), "-o", str(tmp_path / "s.jsonl.gz")])
    assert result.exit_code == 1 and "20 cuts have no reward" in result.output
    bad = CliRunner().invoke(cli, ["curate", "select", str(scored), "--weights", "aesthetics=1"])
    assert bad.exit_code == 2 and "unknown score" in bad.output


def test_report_renders_every_section(scored, tmp_path):
    kept = tmp_path / "kept.jsonl.gz"
    assert CliRunner().invoke(cli, ["curate", "filter", str(scored), "-o", str(kept)]).exit_code == 0
    sel = tmp_path / "sel.jsonl.gz"
    assert CliRunner().invoke(cli, ["curate", "select", str(kept), "-o", str(sel)]).exit_code == 0
    result = CliRunner().invoke(cli, ["curate", "report", str(sel), str(kept), "-o", str(tmp_path / "rep"),
                                      "--lam", "2"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "rep" / "index.html").read_text()
    for needle in ("<td>filter</td>", "<td>select</td>", "no_caption 1", "clap_score 2", "segments by "
                   "combined_score", "data:image/png;base64,", *(f"<td>{i}</td>" for i in ids(sel)),
                   "How to read it", "t ~ Beta(1 + λ(1 − S̃), 1)", "λ = 2 here", "<h2>Inputs</h2>", "Made 20"):
        assert needle in page, needle
    best, worst = page.split("<h2>Worst")[0].split("<h2>Best")[1], page.split("<h2>Worst")[1].split("<h2>Inputs")[0]
    listed = [set(re.findall(r"(?:</audio>|\(unreadable\))</td><td>([^<]+)</td>", part)) for part in (best, worst)]
    assert listed[0] and not listed[0] & listed[1]  # no segment is both best and worst
    players = re.findall(r"<audio controls preload='none' src='(audio/[^']+)'>", page)
    assert players and all(sf.info(tmp_path / "rep" / src).duration <= 10.01 for src in players)  # the window only
    for png in ("clap_score_hist", "reward_hist", "beta_schedule", "caption_lengths"):
        assert (tmp_path / "rep" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"


def test_report_with_labels_splits_histograms_and_counts_removals(scored, tmp_path):
    kept = tmp_path / "kept.jsonl.gz"
    # the bottom 20 % by CLAP (c00..c03) and the caption-less c07 are removed
    assert CliRunner().invoke(cli, ["curate", "filter", str(scored), "-o", str(kept), "--clap-percentile", "20",
                                    "--rejected", str(tmp_path / "kept.rejected.jsonl.gz")]).exit_code == 0
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": f"c{i:02d}", "label": "bad" if i < 5 else "good"}) + "\n"
                              for i in range(20)))
    result = CliRunner().invoke(cli, ["curate", "report", str(scored), str(kept), "-o", str(tmp_path / "rep"),
                                      "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "What filtering removed, by label" in page
    # 5 bad went in, 4 removed (c00-c03; c04 kept); 15 good, 1 removed (c07, no caption)
    assert "<tr><td>bad</td><td>5</td><td>4</td><td>80 %</td></tr>" in page
    assert "<tr><td>good</td><td>15</td><td>1</td><td>7 %</td></tr>" in page
    for png in ("clap_score_by_label", "reward_by_label"):
        assert (tmp_path / "rep" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    labels.write_text('{"id": "c00"}\n')
    bad = CliRunner().invoke(cli, ["curate", "report", str(kept), "--labels", str(labels), "-o", str(tmp_path / "r")])
    assert bad.exit_code == 1 and "labels.jsonl:1:" in bad.output


def test_before_after_histograms_compare_the_same_score():
    import pandas as pd

    from scoreaware.curate.stages.report import StageRow, before_after_rows

    def row(stage, **columns):
        return StageRow(Path(stage), stage, pd.DataFrame(columns), {}, 0.0)

    rows = [row("segment", duration=[10.0]), row("clap", clap_score=[0.1]), row("reward", clap_score=[0.1]),
            row("caption", clap_score=[0.1]), row("clap_rescore", clap_score=[0.3]),
            row("filter", clap_score=[0.3]), row("select", clap_score=[0.3])]
    assert [r.stage for r in before_after_rows(rows, "clap_score")] == ["clap_rescore", "filter", "select"]
    assert [r.stage for r in before_after_rows(rows[:3], "clap_score")] == ["reward"]
    assert before_after_rows(rows, "reward") == []


def test_beta_density_integrates_to_one_and_mean_matches():
    from scoreaware.core.schedule import beta_alpha, beta_density, normalize_scores, robust_range

    t = np.linspace(0, 1, 20001)
    for s in (0.0, 0.3, 1.0):
        density = beta_density(t, s, lam=1.0)
        assert np.trapezoid(density, t) == pytest.approx(1.0, abs=1e-3)
        alpha = beta_alpha(s, 1.0)
        assert np.trapezoid(t * density, t) == pytest.approx(alpha / (alpha + 1), abs=1e-3)
    low, high = robust_range(np.arange(101.0))
    assert (low, high) == (5.0, 95.0)
    assert normalize_scores(np.array([0.0, 50.0, 100.0]), low, high).tolist() == [0.0, 0.5, 1.0]


def test_per_group_quota_keeps_ceil_top_k_in_every_group(tmp_path):
    """Expert iteration's --per-prompt: each prompt keeps ceil(top·K) of its K candidates, even a
    prompt whose candidates all score below another prompt's (a global top-N would give it none)."""
    path = write_audio(tmp_path / "a.wav", tone(1.0))
    # p0's candidates all beat p1's in raw reward; within each prompt the order is c0 < c1 < … < c4
    cuts = [file_cut(path, cut_id=f"{p}_c{k}", caption="x", reward=base + k + 0.1 * k * k, prompt_id=p)
            for p, base in (("p0", 100.0), ("p1", 0.0), ("p2", 50.0)) for k in range(5)]
    manifest = tmp_path / "m.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    config = SelectConfig(top=0.3, weights={"reward": 1.0, "clap": 0.0}, group_by="prompt_id", per_group=True)
    ranked = combine(score_table(read_cuts(manifest), config), config)
    chosen = ranked[ranked["selected"]]
    # ceil(0.3 · 5) = 2 per prompt: the two best candidates of every prompt
    assert sorted(chosen["id"]) == ["p0_c3", "p0_c4", "p1_c3", "p1_c4", "p2_c3", "p2_c4"]
    pooled = SelectConfig(top=0.3, weights={"reward": 1.0, "clap": 0.0}, group_by="prompt_id")
    assert combine(score_table(read_cuts(manifest), pooled), pooled)["selected"].sum() == 5  # ceil(0.3 · 15)
    with pytest.raises(ValueError, match="per_group needs group_by"):
        SelectConfig(top=0.3, per_group=True)


def test_random_selection_is_the_control_same_quota_no_score(tmp_path):
    """--random-seed (expert iteration's "no selection" control): the same number of cuts per
    group as the scored selection, drawn without looking at the scores, the same for the same seed
    whatever the input order, and another draw for another seed."""
    path = write_audio(tmp_path / "a.wav", tone(1.0))
    cuts = [file_cut(path, cut_id=f"{p}_c{k}", caption="x", reward=float(k), prompt_id=p)
            for p in ("p0", "p1", "p2", "p3") for k in range(10)]
    manifest = tmp_path / "m.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    scored = SelectConfig(top=0.2, weights={"reward": 1.0, "clap": 0.0}, group_by="prompt_id", per_group=True)

    def chosen(config, order=1):
        table = score_table(read_cuts(manifest), config).iloc[::order]
        ranked = combine(table, config)
        return set(ranked[ranked["selected"]]["id"])

    best = chosen(scored)
    assert best == {f"{p}_c{k}" for p in ("p0", "p1", "p2", "p3") for k in (8, 9)}
    control = dataclasses.replace(scored, random_seed=0)
    drawn = chosen(control)
    assert len(drawn) == len(best) and all(sum(i.startswith(p) for i in drawn) == 2 for p in ("p0", "p1", "p2", "p3"))
    assert drawn != best and drawn == chosen(control, order=-1)
    assert chosen(dataclasses.replace(scored, random_seed=1)) != drawn
    # over many seeds the control keeps top and bottom candidates alike (the scored one: only the top)
    kept = [int(i.rsplit("_c", 1)[1]) for seed in range(30) for i in chosen(dataclasses.replace(scored,
                                                                                                 random_seed=seed))]
    assert 3.0 < np.mean(kept) < 6.0
