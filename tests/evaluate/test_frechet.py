"""The Fréchet distance against closed forms, the singular case, and the bootstrap."""

import numpy as np
import pytest

from scoreaware.evaluate.frechet import (
    Stats,
    bootstrap_frechet,
    frechet_distance,
    frechet_from_stats,
)


def closed_form(mu1, var1, mu2, var2):
    """FD of two Gaussians with diagonal covariances: |Δμ|² + Σ (√σ1 − √σ2)²."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_closed_form_for_known_gaussians(seed):
    rng = np.random.default_rng(seed)
    d = 16
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    var1, var2 = rng.uniform(0.2, 2.0, d), rng.uniform(0.2, 2.0, d)
    result = frechet_from_stats(Stats(mu1, np.diag(var1), 1000), Stats(mu2, np.diag(var2), 1000))
    assert result.value == pytest.approx(closed_form(mu1, var1, mu2, var2), rel=1e-9, abs=1e-9)
    assert result.method == "sqrtm" and result.warnings == []


def test_full_covariances_in_a_rotated_basis_keep_the_closed_form():
    rng = np.random.default_rng(3)
    d = 8
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    var1, var2 = rng.uniform(0.5, 3, d), rng.uniform(0.5, 3, d)
    # the same rotation for both: Σ1 and Σ2 commute, and the closed form still holds
    a = Stats(np.zeros(d), rotation @ np.diag(var1) @ rotation.T, 500)
    b = Stats(np.ones(d), rotation @ np.diag(var2) @ rotation.T, 500)
    assert frechet_from_stats(a, b).value == pytest.approx(closed_form(np.zeros(d), var1, np.ones(d), var2),
                                                          rel=1e-8)


def test_samples_converge_to_the_closed_form_and_a_set_against_itself_is_zero():
    rng = np.random.default_rng(4)
    d, n = 4, 40_000
    x = rng.normal(0.0, 1.0, (n, d))
    y = rng.normal(0.5, 2.0, (n, d))
    assert frechet_distance(x, y).value == pytest.approx(closed_form(np.zeros(d), np.ones(d), 0.5 * np.ones(d),
                                                                     4 * np.ones(d)), rel=0.02)
    assert abs(frechet_distance(x, x).value) < 1e-8


def test_fewer_clips_than_dimensions_is_finite_with_a_warning():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 512)), rng.normal(size=(30, 512))  # Σ of rank ≤ 19 and ≤ 29
    result = frechet_distance(x, y)
    assert np.isfinite(result.value) and result.value > 0
    assert any("singular" in w for w in result.warnings)
    same = frechet_distance(x, x)
    scale = 2 * np.trace(np.cov(x, rowvar=False))
    assert np.isfinite(same.value) and 0 <= same.value < 1e-6 * scale  # cancels up to sqrtm's rounding


def test_a_non_finite_sqrtm_falls_back_to_the_eigen_form(monkeypatch):
    import scoreaware.evaluate.frechet as frechet

    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(200, 8)), rng.normal(1.0, 1.5, size=(200, 8))
    expected = frechet_distance(x, y).value
    monkeypatch.setattr(frechet.linalg, "sqrtm", lambda m: np.full_like(m, np.nan))
    result = frechet_distance(x, y)
    assert result.method == "eigen" and result.value == pytest.approx(expected, rel=1e-6)
    assert any("eigenvalue form" in w for w in result.warnings)


def test_bootstrap_interval_contains_the_estimate_and_a_paired_shift_is_detected_over_prompts():
    from scoreaware.evaluate.frechet import ResampledFrechet
    from scoreaware.evaluate.stats import paired_prompt_set_test

    rng = np.random.default_rng(7)
    reference = Stats.of(rng.normal(size=(400, 6)))
    a = rng.normal(size=(120, 6))
    low, high = bootstrap_frechet(a, reference, resamples=100)
    value = frechet_from_stats(Stats.of(a), reference).value
    assert low <= value <= high and low < high  # bias-corrected: the interval holds the estimate
    shifted = a + 0.8  # a known shift away from the reference
    prompts = [f"p{i // 4}" for i in range(len(a))]  # 30 prompts × 4 clips

    def test(x, y, resamples):
        fd = ResampledFrechet(np.vstack([x, y]), reference)
        return paired_prompt_set_test(prompts, lambda first, second: fd(second) - fd(first), resamples)

    moved = test(a, shifted, 200)
    assert moved["delta"] == pytest.approx(frechet_from_stats(Stats.of(shifted), reference).value - value, rel=1e-6)
    assert moved["delta"] > 0 and moved["ci"][0] > 0 and moved["p"] < 0.05 and moved["n_prompts"] == 30
    assert moved["p"] == pytest.approx(1 / 201)  # as small as 200 flips allow: the floor it reports
    assert moved["p_floor"] == pytest.approx(1 / 201)
    same = test(a, a, 50)
    assert same["delta"] == 0.0 and same["p"] == 1.0


@pytest.mark.parametrize("n, d", [(12, 40), (60, 8)])  # fewer clips than dimensions, and more
def test_the_low_rank_form_equals_the_square_root_form(n, d):
    from scipy import linalg

    from scoreaware.evaluate.frechet import ResampledFrechet, Stats

    rng = np.random.default_rng(7)
    x, ref = rng.normal(size=(n, d)), rng.normal(size=(3 * d, d)) * 0.7 + 0.2
    reference = Stats.of(ref)
    fd = ResampledFrechet(x, reference)
    rows = rng.integers(0, n, n)
    for subset in (None, rows):
        stats = Stats.of(x if subset is None else x[subset])
        diff = stats.mean - reference.mean
        covmean = linalg.sqrtm(stats.cov @ reference.cov)
        expected = diff @ diff + np.trace(stats.cov) + np.trace(reference.cov) - 2 * np.trace(covmean).real
        assert fd(subset) == pytest.approx(float(expected), abs=1e-6)


def test_one_dimensional_embeddings_have_the_closed_form():
    from scoreaware.evaluate.frechet import frechet_distance

    a, b = np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])  # means 1 and 3, variances 2 and 8
    expected = (1 - 3) ** 2 + 2 + 8 - 2 * np.sqrt(2 * 8)  # (μa − μb)² + σa² + σb² − 2σaσb
    assert frechet_distance(a, b).value == pytest.approx(expected)
