"""Paired tests with the prompt, not the clip, as the unit.

Clips generated from one prompt share its text, its difficulty and whatever the model does
with it, so K clips of a prompt are not K independent observations: a test over clips counts
the same prompt K times and its p shrinks as K grows while the evidence does not. Here each
run's clips are averaged per prompt first (over sampling seeds, and over training seeds when a
run pools several), and the paired deltas are tested across prompts:

* per-clip metrics (CLAP score, reward): a paired t-test over the P per-prompt mean deltas,
  with a t-interval of the mean delta;
* FAD, a set metric: a paired sign-flip permutation test over prompts (all clips of a prompt
  trade arms together; exact enumeration of the 2^P flips when that is no more than the
  resamples asked for), and a percentile interval from a bootstrap over prompts. The smallest
  p a permutation test can give is its *floor* (1/(B + 1), or 2/2^P exact), which is reported
  so that "p = 0.016" on 7 prompts reads as "as small as 7 prompts allow";
* several deltas in one table: Holm's step-down correction over all of them.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats


def prompt_means(prompts: Sequence[str], values: Sequence[float | None]) -> dict[str, float]:
    """Mean value per prompt over its clips (clips without a value are left out)."""
    sums: dict[str, list[float]] = defaultdict(list)
    for prompt, value in zip(prompts, values):
        if value is not None and math.isfinite(value):
            sums[prompt].append(float(value))
    return {prompt: float(np.mean(v)) for prompt, v in sums.items()}


def paired_prompt_test(prompts: Sequence[str], a: Sequence[float | None], b: Sequence[float | None],
                       level: float = 0.95) -> dict | None:
    """b − a over prompts: mean of per-prompt mean deltas, its t-interval and two-sided p.

    `prompts[i]` names the prompt of clip i in both runs (clips already paired). None when
    fewer than 2 prompts have values in both runs.
    """
    mean_a, mean_b = prompt_means(prompts, a), prompt_means(prompts, b)
    shared = sorted(mean_a.keys() & mean_b.keys())
    if len(shared) < 2:
        return None
    deltas = np.array([mean_b[p] - mean_a[p] for p in shared])
    n_clips = sum(1 for p, x, y in zip(prompts, a, b) if x is not None and y is not None)
    delta = float(deltas.mean())
    if np.allclose(deltas, deltas[0]):  # no spread: t is undefined (0/0 or ±inf)
        # the exact sign-flip test instead: under the null each prompt's delta is as likely negated,
        # and all n share one sign with probability 2 / 2^n (never 0: n prompts cannot prove more)
        exact = bool(np.allclose(deltas, 0.0))
        return {"delta": delta, "ci": [delta, delta], "p": 1.0 if exact else min(1.0, 2.0 / 2 ** len(deltas)),
                "n_prompts": len(shared), "n_clips": n_clips,
                "test": "paired t over prompts" if exact else "sign flip over prompts (every delta equal)"}
    sem = float(deltas.std(ddof=1) / math.sqrt(len(deltas)))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(deltas) - 1)) * sem
    p = float(scipy_stats.ttest_1samp(deltas, 0.0).pvalue)
    return {"delta": delta, "ci": [delta - half, delta + half], "p": p, "n_prompts": len(shared),
            "n_clips": n_clips, "test": "paired t over prompts"}


def group_rows(labels: Sequence[str]) -> list[np.ndarray]:
    """Row indices of each label (prompt), labels in sorted order."""
    order: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        order[label].append(index)
    return [np.array(rows) for _, rows in sorted(order.items())]


def resampled_rows(n: int, resamples: int, rng: np.random.Generator, groups: Sequence[str] | None = None):
    """Row indices of `resamples` bootstrap draws over n rows: rows with replacement, or with
    `groups` (each row's prompt) whole groups with replacement, all their rows at once."""
    if groups is None:
        for _ in range(resamples):
            yield rng.integers(0, n, n)
        return
    blocks = group_rows(groups)
    for _ in range(resamples):
        yield np.concatenate([blocks[i] for i in rng.integers(0, len(blocks), len(blocks))])


def permutation_floor(n_prompts: int, resamples: int) -> float:
    """The smallest p the sign-flip test can return with these prompts and resamples."""
    if 2 ** n_prompts <= resamples:
        return 2.0 / 2 ** n_prompts  # exact: the observed flip and its mirror
    return 1.0 / (resamples + 1)


def paired_prompt_set_test(prompts: Sequence[str], statistic: Callable[[np.ndarray, np.ndarray], float],
                           resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """A set metric's paired delta (b − a), tested with the prompt as the unit.

    Rows index the stack of both runs' paired clips, run a's N clips first, then run b's (clip i
    of b is row N + i). `statistic(first, second)` is the metric on rows `second` minus the
    metric on rows `first` (a row may repeat). Permutation: for each prompt a coin decides
    whether its clips trade runs; p is the share of flips whose |delta| reaches the observed one
    (the observed flip counts, so p > 0). Interval: the delta over prompts drawn with
    replacement (every clip of a drawn prompt), percentile.
    """
    groups = group_rows(prompts)
    n, size = len(groups), len(prompts)
    observed = float(statistic(np.arange(size), np.arange(size) + size))

    def flipped(signs) -> float:
        first = np.concatenate([g if s > 0 else g + size for g, s in zip(groups, signs)])
        second = np.concatenate([g + size if s > 0 else g for g, s in zip(groups, signs)])
        return float(statistic(first, second))

    rng = np.random.default_rng(seed)
    exact = 2 ** n <= resamples
    flips = (list(itertools.product((1, -1), repeat=n)) if exact
             else [np.ones(n)] + [rng.choice((1, -1), n) for _ in range(resamples)])
    null = np.array([flipped(s) for s in flips])
    p = float((np.abs(null) >= abs(observed) * (1 - 1e-9)).mean())
    boots = [float(statistic(drawn, drawn + size))
             for drawn in resampled_rows(size, min(resamples, 2000), rng, prompts)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boots, [tail, 100 - tail])
    return {"delta": observed, "ci": [float(low), float(high)], "p": p, "n_prompts": n, "n_clips": size,
            "p_floor": permutation_floor(n, resamples), "exact": exact,
            "test": "sign-flip permutation over prompts"}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None): family-wise error ≤ α over the family."""
    indexed = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    m = len(indexed)
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
