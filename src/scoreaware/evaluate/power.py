"""Power, equivalence and the replication unit: the planner's arithmetic and the tests it plans for.

A recipe claim ("Beta t helps") is about what training does, so its unit of replication is the
training seed: each seed's contrast is one number (its prompts averaged first: within a seed the
prompt is the unit), and the claim is tested by a paired t over seeds (`seed_test`). The planner
answers, before anything trains, what a design of n seeds can see:

* `mde`: the smallest true mean difference a two-sided paired t-test over `n` units detects with
  the given power, at level α / m (Holm's first step over a family of m tests, so a bound that
  holds for every step), from the noncentral t distribution;
* `units_needed`: the fewest units that detect a target effect;
* `tost`: Schuirmann's two one-sided tests, for claims of "no worse" within a declared margin;
* `can_reach`: whether a permutation test with a floor on its p (FAD's sign flips over prompts)
  can reach the level at all; one that cannot is kept out of the family, or it only dilutes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats


def power_paired(effect: float, sd: float, n: int, alpha: float = 0.05, tests: int = 1) -> float:
    """Power of a two-sided one-sample (paired) t-test over `n` units with true mean `effect` and
    unit standard deviation `sd`, at level `alpha / tests`."""
    if n < 2 or sd <= 0:
        return float("nan")
    level = alpha / max(1, tests)
    df = n - 1
    critical = scipy_stats.t.ppf(1 - level / 2, df)
    shift = abs(effect) / sd * math.sqrt(n)
    if shift > critical + 40:  # far past the critical value (scipy's nct returns nan out there)
        return 1.0
    found = scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.cdf(-critical, df, shift)
    return float(found) if math.isfinite(found) else 1.0


def mde(n: int, sd: float, alpha: float = 0.05, power: float = 0.8, tests: int = 1) -> float:
    """The minimum detectable effect (in the units of `sd`'s metric) of `power_paired`."""
    if n < 2 or sd <= 0:
        return float("inf")
    level = alpha / max(1, tests)
    upper = (scipy_stats.norm.ppf(1 - level / 2) + scipy_stats.norm.ppf(power)) * sd / math.sqrt(n)
    while power_paired(upper, sd, n, alpha, tests) < power:  # the t's heavier tails: widen the bracket
        upper *= 1.5
    return float(optimize.brentq(lambda e: power_paired(e, sd, n, alpha, tests) - power, 1e-12 * sd, upper,
                                 xtol=1e-12 * sd))


def units_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8, tests: int = 1,
                 limit: int = 100_000) -> int | None:
    """The fewest units (n ≥ 2) whose paired t-test detects `effect` with `power`; None past `limit`."""
    if effect == 0 or sd <= 0:
        return None
    n = 2
    while n <= limit:
        if power_paired(abs(effect), sd, n, alpha, tests) >= power - 1e-9:
            return n
        n = n + 1 if n < 64 else int(n * 1.05) + 1
    return None


def seed_test(deltas: Sequence[float], level: float = 0.95) -> dict | None:
    """Paired t over training seeds of each seed's prompt-averaged delta; None with fewer than 2 seeds.

    With no spread (every seed the same delta) t is undefined; the exact sign-flip p (2 / 2^n) is
    returned instead, as `stats.paired_prompt_test` does over prompts."""
    d = np.asarray([x for x in deltas if x is not None and math.isfinite(x)], dtype=float)
    if len(d) < 2:
        return None
    mean = float(d.mean())
    if np.allclose(d, d[0]):
        return {"delta": mean, "ci": [mean, mean], "p": 1.0 if np.allclose(d, 0) else 2.0 / 2 ** len(d),
                "n_seeds": len(d), "sd": 0.0, "test": "sign flip over training seeds (every delta equal)",
                "no_spread": True}
    sem = float(d.std(ddof=1) / math.sqrt(len(d)))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(d) - 1)) * sem
    return {"delta": mean, "ci": [mean - half, mean + half], "p": float(scipy_stats.ttest_1samp(d, 0.0).pvalue),
            "n_seeds": len(d), "sd": float(d.std(ddof=1)), "test": "paired t over training seeds"}


def tost(deltas: Sequence[float], margin: float, alpha: float = 0.05) -> dict | None:
    """Equivalence of the mean delta to 0 within ±`margin` (two one-sided t-tests at `alpha`).

    Equivalent when p < alpha, which is when the (1 − 2α) interval lies inside (−margin, margin).
    None with fewer than 2 units."""
    d = np.asarray([x for x in deltas if x is not None and math.isfinite(x)], dtype=float)
    if len(d) < 2 or margin <= 0:
        return None
    mean, n = float(d.mean()), len(d)
    sem = float(d.std(ddof=1) / math.sqrt(n))
    if sem == 0:  # every unit the same delta: no spread to build an interval from, so nothing is shown
        return {"delta": mean, "margin": margin, "p": 1.0, "ci": [mean, mean], "equivalent": False, "n": n,
                "test": "TOST (no spread: not estimable)", "no_spread": True}
    df = n - 1
    p_lower = float(scipy_stats.t.sf((mean + margin) / sem, df))  # H0: delta <= -margin
    p_upper = float(scipy_stats.t.cdf((mean - margin) / sem, df))  # H0: delta >= +margin
    half = float(scipy_stats.t.ppf(1 - alpha, df)) * sem
    p = max(p_lower, p_upper)
    return {"delta": mean, "margin": margin, "p": p, "ci": [mean - half, mean + half], "equivalent": p < alpha,
            "n": n, "test": f"TOST, {100 * (1 - 2 * alpha):.0f} % interval"}


def can_reach(p_floor: float, alpha: float = 0.05, tests: int = 1) -> bool:
    """Whether a test whose smallest possible p is `p_floor` can be significant at Holm's first step."""
    return p_floor <= alpha / max(1, tests)
