"""The two shipped experiment files load, and every arm changes one thing from the arm it is
compared with (the files are written by `demo prepare-seed-a/-b`; here from their templates)."""

import json

from scoreaware.demo import seed_a, seed_b
from scoreaware.demo.world import seed_a as world_seed_a
from scoreaware.experiment.spec import load_experiment


def write_inputs(folder, names):
    for name in names:
        (folder / name).write_text("x")


def test_seed_a_arms_each_change_one_thing(tmp_path):
    write_inputs(tmp_path, ["encode.jsonl.gz", "oracle.jsonl.gz", "prompts.csv", "reference.npz", "clap",
                            "held_out_encode.jsonl.gz"])
    spec = tmp_path / "seed_a.toml"
    spec.write_text(seed_a.SPEC.format(mismatched=0.3, seeds=[0, 1, 2], steps=600, ckpt=200, eval_seeds=6,
                                       labels=json.dumps(["rock"]), clap=tmp_path / "clap"))
    experiment = load_experiment(spec)
    assert experiment.training_seeds == (0, 1, 2)
    changes = {arm.name: (arm.set, arm.filter, arm.manifest) for arm in experiment.arms}
    assert changes["all_logit_normal"] == ({}, None, None)
    assert changes["all_beta"][0]["timesteps"] == "beta"
    assert changes["filter_uniform"][1] == {"clap_percentile": 10}
    assert changes["oracle_logit_normal"][2] == tmp_path / "oracle.jsonl.gz"
    assert all(experiment.against(arm) == "all_logit_normal" for arm in experiment.arms[1:])
    assert changes["all_uniform"][0] == {"timesteps": "uniform"}  # the control of the score-aware claim
    assert experiment.arms[4].combines == ("filter", "timesteps")
    contrasts = {c.name: (c.treatment, c.control, c.primary) for c in experiment.contrasts}
    assert contrasts["score-aware"] == ("all_beta", "all_uniform", True)
    assert contrasts["filter"] == ("filter_uniform", "all_uniform", True)


def test_seed_b_is_a_chain_of_single_steps(tmp_path):
    write_inputs(tmp_path, ["encode.jsonl.gz", "prompts.csv", "post_prompts.txt", "reference.npz", "clap",
                            "reward.pt", "held_out_encode.jsonl.gz"])
    spec = tmp_path / "seed_b.toml"
    spec.write_text(seed_b.SPEC.format(seeds=[0, 1, 2], steps=600, ckpt=200, eval_seeds=6, cfg=2.0, score=1.0,
                                       reward=tmp_path / "reward.pt", mert="mert", labels=json.dumps(["rock"]),
                                       clap=tmp_path / "clap", post_steps=100))
    experiment = load_experiment(spec)
    chain = [(arm.name, experiment.against(arm) if index else None, arm.posttrain)
             for index, arm in enumerate(experiment.arms)]
    assert chain == [("baseline", None, None), ("score_conditioned", "baseline", None),
                     ("expert_iteration", "score_conditioned", "expert-iteration"),
                     ("cross_load", "expert_iteration", "cross-load"), ("crpo", "cross_load", "crpo")]
    assert experiment.arms[1].set == {"score_head": "global_adaln"}  # the only change from the baseline
    assert experiment.base["score_head"] == "none" and experiment.evaluation.score == 1.0
    assert experiment.arms[3].options["max_gap"] == float("inf")


def test_world_seed_a_arms_each_change_one_thing_from_uniform_and_the_primary_arms_run_every_seed(tmp_path):
    write_inputs(tmp_path, ["encode.jsonl.gz", "oracle.jsonl.gz", "prompts.csv", "reference.npz", "judge",
                            "generator.pt"])
    spec = tmp_path / "seed_a_world.toml"
    seeds = list(range(10))
    spec.write_text(world_seed_a.SPEC.format(mismatched=0.3, seeds=seeds, few=seeds[:3], steps=400, lr=1e-4,
                                             max_frames=129, base=tmp_path / "generator.pt", judge=tmp_path / "judge",
                                             eval_seeds=1))
    experiment = load_experiment(spec)
    assert experiment.arms[0].name == "all_uniform" and experiment.base["timesteps"] == "uniform"
    assert experiment.base["init_from"] == str(tmp_path / "generator.pt")
    assert experiment.evaluation.judge == tmp_path / "judge"
    changes = {arm.name: (arm.set, arm.filter, arm.manifest) for arm in experiment.arms}
    assert changes["all_beta"] == ({"timesteps": "beta"}, None, None)
    assert changes["filter_uniform"] == ({}, {"clap_percentile": 10}, None)
    assert changes["oracle_uniform"] == ({}, None, tmp_path / "oracle.jsonl.gz")
    primary = {c.name: (c.treatment, c.control, c.metric) for c in experiment.contrasts if c.primary}
    assert primary == {"score-aware": ("all_beta", "all_uniform", "instrument"),
                       "filter": ("filter_uniform", "all_uniform", "instrument")}
    arms_in_contrasts = {a for c in experiment.contrasts for a in (c.treatment, c.control)}
    for arm in experiment.arms:  # ≥ 10 seeds wherever a contrast needs them; the rest run 3
        assert experiment.seeds_of(arm) == (tuple(seeds) if arm.name in arms_in_contrasts else (0, 1, 2))


def test_world_seed_b_puts_each_post_training_step_beside_its_control(tmp_path):
    from scoreaware.demo.world import seed_b as world_seed_b

    write_inputs(tmp_path, ["encode.jsonl.gz", "prompts.csv", "post_prompts.txt", "reference.npz", "judge",
                            "generator.pt", "reward.pt"])
    spec = tmp_path / "seed_b_world.toml"
    spec.write_text(world_seed_b.SPEC.format(
        seeds=list(range(10)), steps=600, lr=3e-4, max_frames=129, base=tmp_path / "generator.pt",
        judge=tmp_path / "judge", reward=tmp_path / "reward.pt", mert="mert", eval_seeds=1, score=1.0,
        ei=world_seed_b.EI_OPTIONS.format(post_steps=100), crpo=world_seed_b.CRPO_OPTIONS.format(post_steps=100)))
    experiment = load_experiment(spec)
    arms = {arm.name: arm for arm in experiment.arms}
    assert arms["score_conditioned"].set == {"score_head": "global_adaln"}
    for step, control, knob in (("expert_iteration", "ei_control", "random_selection"),
                                ("crpo", "crpo_control", "random_pairs")):
        treated, untreated = arms[step].options, dict(arms[control].options)
        assert untreated.pop(knob) is True and treated == untreated  # one change: the selection / the ranking
        assert arms[step].after == arms[control].after == "score_conditioned"
    assert arms["expert_iteration"].options["blend"] == "reward=1,clap=0"  # ranked by the reward, as documented
    contrasts = {c.name: c for c in experiment.contrasts}
    primary = {(c.treatment, c.control, c.claim) for c in experiment.contrasts if c.primary}
    assert primary == {("score_conditioned", "baseline", "difference"),
                       ("expert_iteration", "ei_control", "difference"), ("crpo", "crpo_control", "difference"),
                       ("cross_load", "score_conditioned", "equivalence")}
    assert all(c.metric == "instrument" for c in experiment.contrasts if c.primary)  # the judge, which no step used
    assert contrasts["cross-load is no worse"].margin == 0.05
    assert all(experiment.seeds_of(arm) == tuple(range(10)) for arm in experiment.arms)


def test_world_development_prompts_are_not_evaluation_prompts():
    from scoreaware.demo.world import seed_b as world_seed_b
    from scoreaware.demo.world.prompts import read_shipped

    development = world_seed_b.development_prompts().splitlines()
    assert len(development) == len(set(development)) == 12
    assert not set(development) & {row["prompt"] for row in read_shipped()}
