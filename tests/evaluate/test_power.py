"""The planner's arithmetic against closed forms and against simulation of planted effects."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from scoreaware.evaluate.power import can_reach, mde, power_paired, seed_test, tost, units_needed


def test_mde_approaches_the_normal_closed_form_for_many_units():
    sd, n = 0.2, 4000
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(n)
    assert mde(n, sd) == pytest.approx(normal, rel=0.005)


def test_mde_is_where_the_power_is_eighty_percent_and_holm_widens_it():
    found = mde(10, 1.0)
    assert power_paired(found, 1.0, 10) == pytest.approx(0.8, abs=1e-6)
    assert mde(10, 1.0, tests=4) > found and mde(40, 1.0) < found
    assert mde(1, 1.0) == math.inf


def test_units_needed_inverts_mde():
    for n in (5, 12, 30):
        assert units_needed(mde(n, 0.3), 0.3) == n
    assert units_needed(0.0, 1.0) is None


@pytest.mark.parametrize("n, effect", [(10, None), (6, None)])
def test_a_planted_effect_of_the_mde_is_detected_at_the_predicted_rate(n, effect):
    """1000 simulated designs of n units: the t-test rejects at the planner's power (0.8) for an
    effect of the MDE, and at α (0.05) for a planted null."""
    rng = np.random.default_rng(0)
    sd, runs = 0.15, 1000
    effect = mde(n, sd)
    hits = np.mean([seed_test(rng.normal(effect, sd, n))["p"] < 0.05 for _ in range(runs)])
    null = np.mean([seed_test(rng.normal(0.0, sd, n))["p"] < 0.05 for _ in range(runs)])
    tolerance = 3 * math.sqrt(0.8 * 0.2 / runs)
    assert abs(hits - 0.8) < tolerance, hits
    assert null <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs), null


def test_seed_test_is_a_paired_t_over_seeds():
    deltas = [0.10, 0.05, 0.12, 0.08, 0.02]
    found = seed_test(deltas)
    assert found["p"] == pytest.approx(stats.ttest_1samp(deltas, 0).pvalue)
    assert found["n_seeds"] == 5 and found["ci"][0] < found["delta"] < found["ci"][1]
    assert seed_test([0.1]) is None
    assert seed_test([0.1, 0.1, 0.1])["p"] == 2 / 2**3


def test_tost_declares_equal_runs_equivalent_and_unequal_ones_not():
    rng = np.random.default_rng(1)
    equal = rng.normal(0.0, 0.05, 30)
    unequal = rng.normal(0.3, 0.05, 30)
    assert tost(equal, margin=0.1)["equivalent"]
    assert not tost(unequal, margin=0.1)["equivalent"]
    wide = tost(rng.normal(0.0, 1.0, 5), margin=0.1)  # too few, too noisy: not shown equivalent
    assert not wide["equivalent"] and wide["ci"][0] < -0.1
    # the decision is the 90 % interval inside the margin
    found = tost(equal, margin=0.1)
    assert (-0.1 < found["ci"][0] and found["ci"][1] < 0.1) == found["equivalent"]


def test_tost_false_equivalence_rate_is_at_most_alpha_at_the_margin():
    rng = np.random.default_rng(2)
    runs = 2000
    wrong = np.mean([tost(rng.normal(0.1, 0.1, 12), margin=0.1)["equivalent"] for _ in range(runs)])
    assert wrong <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs), wrong


def test_a_permutation_floor_above_the_level_cannot_reach_it():
    assert not can_reach(2 / 2**7, alpha=0.05, tests=12)  # FAD over 7 prompts in a family of 12
    assert can_reach(2 / 2**7, alpha=0.05, tests=1)
    assert can_reach(1 / 2001, alpha=0.05, tests=12)


def test_no_spread_over_units_shows_nothing():
    """Two seeds with the same delta give a zero-width interval, which is no evidence of anything."""
    flat = tost([0.02, 0.02], margin=0.1)
    assert not flat["equivalent"] and flat["no_spread"] and flat["p"] == 1.0
    assert seed_test([0.02, 0.02])["no_spread"] and seed_test([0.02, 0.03]).get("no_spread") is None
