"""Prompt-level paired tests: repeats of a prompt add no evidence, a planted difference is found,
and with no difference the false-positive rate sits near α (where a test over clips does not)."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from scoreaware.evaluate.frechet import ResampledFrechet, Stats
from scoreaware.evaluate.stats import holm, paired_prompt_set_test, paired_prompt_test, permutation_floor


def simulated_runs(rng, prompts=8, seeds=4, shift=0.0, arm_prompt_sd=0.05, clip_sd=0.02, dim=None):
    """Two runs of `prompts` × `seeds` clips: a prompt effect both runs share, an effect of each
    run on each prompt (what makes clips of one prompt in one run correlated), clip noise, and
    `shift` added to run b. With `dim`, embeddings (shift moves b away along every axis)."""
    labels = [f"p{p}" for p in range(prompts) for _ in range(seeds)]
    shape = (prompts, 1) if dim is None else (prompts, 1, dim)
    noise = (prompts, seeds) if dim is None else (prompts, seeds, dim)
    common = rng.normal(0.0, 0.1, shape)
    a = common + rng.normal(0.0, arm_prompt_sd, shape) + rng.normal(0.0, clip_sd, noise)
    b = common + rng.normal(0.0, arm_prompt_sd, shape) + rng.normal(0.0, clip_sd, noise) + shift
    flat = (-1,) if dim is None else (-1, dim)
    return labels, a.reshape(flat), b.reshape(flat)


def repeat(labels, a, b, k):
    return [x for x in labels for _ in range(k)], np.repeat(a, k, axis=0), np.repeat(b, k, axis=0)


def fad_test(labels, a, b, reference, resamples=199):
    fd = ResampledFrechet(np.vstack([a, b]), reference)
    return paired_prompt_set_test(labels, lambda first, second: fd(second) - fd(first), resamples)


def test_repeating_every_clip_k_times_does_not_lower_p():
    rng = np.random.default_rng(0)
    labels, a, b = simulated_runs(rng, shift=0.03)
    once = paired_prompt_test(labels, a, b)
    five = paired_prompt_test(*repeat(labels, a, b, 5))
    assert five["p"] == pytest.approx(once["p"]) and five["n_prompts"] == once["n_prompts"] == 8
    assert five["n_clips"] == 5 * once["n_clips"]
    # the test over clips this replaces: the same evidence copied 5× looks far stronger
    assert scipy_stats.ttest_rel(*repeat(labels, a, b, 5)[1:]).pvalue < once["p"] / 10

    reference = Stats.of(rng.normal(size=(300, 6)))
    labels, a, b = simulated_runs(rng, prompts=6, seeds=3, shift=0.05, dim=6)
    once, five = fad_test(labels, a, b, reference), fad_test(*repeat(labels, a, b, 5), reference)
    assert five["exact"] and five["p"] >= once["p"] - 1e-12  # 2^6 = 64 flips, enumerated: same prompts, same p
    assert five["p_floor"] == once["p_floor"] == pytest.approx(2 / 64)


def test_a_planted_difference_is_found():
    rng = np.random.default_rng(1)
    labels, a, b = simulated_runs(rng, prompts=12, shift=0.1)
    test = paired_prompt_test(labels, a, b)
    assert test["p"] < 0.01 and test["ci"][0] < 0.1 < test["ci"][1] and test["delta"] > 0.05
    reference = Stats.of(rng.normal(0.0, 0.1, size=(400, 4)))
    labels, a, b = simulated_runs(rng, prompts=12, seeds=3, shift=0.3, dim=4)
    fad = fad_test(labels, a, b, reference, resamples=999)
    assert fad["delta"] > 0 and fad["p"] < 0.01 and fad["ci"][0] > 0


def test_with_no_difference_the_false_positive_rate_is_near_alpha():
    """400 simulated tables with no difference between the runs: the prompt-level test rejects
    about 5 % of them; the test over clips, fooled by clips of one prompt moving together,
    rejects far more (so this test would catch a return to it)."""
    rng = np.random.default_rng(2)
    prompt_level, clip_level = [], []
    for _ in range(400):
        labels, a, b = simulated_runs(rng)
        prompt_level.append(paired_prompt_test(labels, a, b)["p"] < 0.05)
        clip_level.append(scipy_stats.ttest_rel(b, a).pvalue < 0.05)
    assert 0.025 <= np.mean(prompt_level) <= 0.085
    assert np.mean(clip_level) > 0.25


def test_fad_permutation_false_positive_rate_is_near_alpha():
    rng = np.random.default_rng(3)
    reference = Stats.of(rng.normal(size=(200, 3)))
    rejections = []
    for _ in range(150):
        labels, a, b = simulated_runs(rng, prompts=8, seeds=3, arm_prompt_sd=0.3, clip_sd=0.3, dim=3)
        rejections.append(fad_test(labels, a, b, reference, resamples=99)["p"] < 0.05)
    assert np.mean(rejections) <= 0.1


def test_holm_matches_a_worked_example():
    # p sorted 0.01, 0.02, 0.04 (m = 3): 3·0.01 = 0.03, max(0.03, 2·0.02) = 0.04, max(0.04, 0.04) = 0.04
    assert holm([0.04, None, 0.01, 0.02]) == pytest.approx([0.04, None, 0.03, 0.04])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_permutation_floor():
    assert permutation_floor(7, 2000) == pytest.approx(2 / 128)  # every flip enumerated
    assert permutation_floor(20, 999) == pytest.approx(1 / 1000)


def test_per_run_intervals_are_over_prompts_so_copies_do_not_narrow_them():
    from scoreaware.evaluate.frechet import bootstrap_frechet
    from scoreaware.evaluate.metrics import mean_interval

    rng = np.random.default_rng(4)
    values = list(rng.normal(0.3, 0.1, 10))
    prompts = [f"p{i}" for i in range(10)]
    once = mean_interval(values, groups=prompts)
    copied = mean_interval([v for v in values for _ in range(6)], groups=[p for p in prompts for _ in range(6)])
    assert copied["ci"] == pytest.approx(once["ci"]) and copied["prompts"] == 10 and copied["n"] == 60
    clip_level = mean_interval([v for v in values for _ in range(6)])  # what it was: 60 "independent" clips
    assert clip_level["ci"][1] - clip_level["ci"][0] < 0.5 * (once["ci"][1] - once["ci"][0])

    reference = Stats.of(rng.normal(size=(300, 4)))
    x = rng.normal(0.3, 1.0, size=(12, 4))
    copies = np.repeat(x, 5, axis=0)
    by_prompt = bootstrap_frechet(copies, reference, 300, groups=[f"p{i // 5}" for i in range(60)])
    by_clip = bootstrap_frechet(copies, reference, 300)
    assert by_prompt[1] - by_prompt[0] > 1.5 * (by_clip[1] - by_clip[0])


def test_every_prompt_delta_equal_gives_the_exact_sign_flip_p_not_zero():
    from scoreaware.evaluate.stats import paired_prompt_test

    prompts = [f"p{i}" for i in range(7)]
    found = paired_prompt_test(prompts, [0.0] * 7, [0.25] * 7)
    assert found["delta"] == 0.25 and found["p"] == 2 / 2**7 and "sign flip" in found["test"]
    assert paired_prompt_test(prompts, [0.5] * 7, [0.5] * 7)["p"] == 1.0
    two = paired_prompt_test(["a", "b"], [0.0, 0.0], [1.0, 1.0])
    assert two["p"] == 0.5  # two prompts can never show more than a coin's worth


def test_resamples_help_states_the_floor_of_both_regimes():
    from click.testing import CliRunner

    from scoreaware.cli.main import cli

    text = " ".join(CliRunner().invoke(cli, ["eval", "compare", "--help"]).output.split())
    assert "2/2^P" in text and "1/(this + 1)" in text
