"""Distribution distances besides FAD: KAD (kernel) and MAD (−ln MAUVE).

KAD (Kernel Audio Distance, arXiv 2502.15602): the unbiased MMD² between two embedding sets
with a Gaussian kernel ``k(a, b) = exp(−|a − b|² / (2h² + 1e-8))``, times 100 — what `kadtk`
reports (its torch~2.1 pin keeps it out of our environments; the formula is ten lines). The
bandwidth h is kadtk's median heuristic as its code applies it: ``KernelAudioDistance.score
(baseline, eval)`` calls ``calc_kernel_audio_distance(x=baseline, y=eval)``, which takes
``median_pairwise_distance(y)``, the median distance between clips of the *evaluated* set (not
of the reference). Unbiased: it can be slightly negative for two samples of one distribution,
and does not grow as n shrinks, unlike FAD.

MAD (TuneJury's fidelity metric): ``−ln MAUVE`` between MERT features of the generated and the
reference set, through `mauve-text` (GPL-3, the optional ``mad`` extra), with TuneJury's
settings: ``num_buckets="auto"``, ``seed=42``, no featurizer (features given).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

import numpy as np
from scipy.spatial.distance import cdist, pdist

from scoreaware.evaluate.stats import resampled_rows

KAD_SCALE = 100.0


def median_pairwise_distance(x: np.ndarray) -> float:
    return float(np.median(pdist(np.asarray(x, dtype=np.float64))))


def kernel_distance(generated: np.ndarray, reference: np.ndarray, bandwidth: float | None = None) -> float:
    """KAD: 100 × unbiased MMD² with k(a, b) = exp(−|a − b|² / (2h² + 1e-8)), h = the median pairwise
    distance of `generated` (the evaluated set, as kadtk takes it) unless `bandwidth` is given."""
    x = np.asarray(generated, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("KAD needs at least 2 embeddings in each set")
    h = bandwidth if bandwidth is not None else median_pairwise_distance(x)
    gamma = 1.0 / (2.0 * h * h + 1e-8)
    kxx = np.exp(-gamma * cdist(x, x, "sqeuclidean"))
    kyy = np.exp(-gamma * cdist(y, y, "sqeuclidean"))
    kxy = np.exp(-gamma * cdist(x, y, "sqeuclidean"))
    m, n = len(x), len(y)
    mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
           - 2.0 * kxy.mean())
    return float(KAD_SCALE * mmd)


def mauve_available() -> bool:
    try:
        import mauve  # noqa: F401
    except ImportError:
        return False
    return True


def mauve_distance(generated: np.ndarray, reference: np.ndarray, seed: int = 42) -> float:
    """MAD = −ln MAUVE(p = generated, q = reference) on given features (TuneJury's call)."""
    try:
        import mauve  # optional: the mad extra
    except ImportError as exc:
        raise RuntimeError("MAD needs `pip install 'scoreaware[mad]'` (mauve-text, GPL-3)") from exc
    with native_stderr_silenced():
        out = mauve.compute_mauve(p_features=np.asarray(generated, dtype=np.float32),
                                  q_features=np.asarray(reference, dtype=np.float32), featurize_model_name=None,
                                  num_buckets="auto", seed=seed, verbose=False)
    return float(-math.log(max(out.mauve, 1e-12)))


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 sent to /dev/null for the block. faiss (MAUVE's k-means) prints "WARNING
    clustering 138 points to 4 centroids" from C++ on every call with a small set, which an
    evaluation set usually is, five times per demo; Python exceptions still raise with their text."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def bootstrap_interval(statistic, x: np.ndarray, resamples: int = 200, seed: int = 0,
                       level: float = 0.95, groups: list[str] | None = None) -> tuple[float, float]:
    """Bias-corrected percentile interval of `statistic` over rows of `x` drawn with replacement
    (whole groups of rows with `groups`; replicates repeat rows, which moves set distances; the
    shift is taken out)."""
    x = np.asarray(x)
    rng = np.random.default_rng(seed)
    estimate = statistic(x)
    values = np.array([statistic(x[rows]) for rows in resampled_rows(len(x), resamples, rng, groups)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values - (values.mean() - estimate), [tail, 100 - tail])
    return float(low), float(high)
