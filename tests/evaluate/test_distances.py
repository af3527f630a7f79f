"""KAD against the closed form of MMD² between Gaussians; MAD through mauve-text."""

import numpy as np
import pytest

from scoreaware.evaluate.distances import KAD_SCALE, kernel_distance, mauve_available, mauve_distance


def test_the_core_environment_has_mauve():
    assert mauve_available()  # tox installs the `mad` extra, so MAD is always tested


def gaussian_mmd2(mu1, s1, mu2, s2, h, d):
    """E k(x,x') + E k(y,y') − 2 E k(x,y) for x ~ N(μ1, s1²I), y ~ N(μ2, s2²I), Gaussian kernel width h."""
    def mean_kernel(var, delta2):
        return (h * h / (h * h + var)) ** (d / 2) * np.exp(-delta2 / (2 * (h * h + var)))

    delta2 = float(np.sum((mu1 - mu2) ** 2))
    return mean_kernel(2 * s1**2, 0.0) + mean_kernel(2 * s2**2, 0.0) - 2 * mean_kernel(s1**2 + s2**2, delta2)


def test_kad_matches_the_closed_form_mmd():
    rng = np.random.default_rng(0)
    d, n, h = 3, 3000, 2.0
    mu2 = np.full(d, 0.7)
    x, y = rng.normal(0.0, 1.0, (n, d)), rng.normal(0.7, 1.3, (n, d))
    expected = KAD_SCALE * gaussian_mmd2(np.zeros(d), 1.0, mu2, 1.3, h, d)
    assert kernel_distance(x, y, bandwidth=h) == pytest.approx(expected, rel=0.1)


def test_kad_takes_its_bandwidth_from_the_evaluated_set_as_kadtk_does():
    """kadtk's score(baseline, eval) → calc_kernel_audio_distance(x=baseline, y=eval) →
    h = median_pairwise_distance(y): the evaluated set's spread, not the reference's."""
    from scipy.spatial.distance import cdist, pdist

    rng = np.random.default_rng(3)
    generated, reference = rng.normal(0.0, 3.0, (40, 4)), rng.normal(0.0, 1.0, (50, 4))

    def by_hand(x, y, h):  # kadtk's calc_kernel_audio_distance, written out
        kernel = lambda d2: np.exp(-d2 / (2 * h * h + 1e-8))  # noqa: E731
        kxx, kyy = kernel(cdist(x, x, "sqeuclidean")), kernel(cdist(y, y, "sqeuclidean"))
        m, n = len(x), len(y)
        return KAD_SCALE * ((kxx.sum() - m) / (m * (m - 1)) + (kyy.sum() - n) / (n * (n - 1))
                            - 2 * kernel(cdist(x, y, "sqeuclidean")).mean())

    h_generated, h_reference = np.median(pdist(generated)), np.median(pdist(reference))
    assert h_generated > 2 * h_reference  # so the two choices give different numbers
    value = kernel_distance(generated, reference)
    assert value == pytest.approx(by_hand(reference, generated, h_generated), rel=1e-9)
    assert value != pytest.approx(by_hand(reference, generated, h_reference), rel=0.05)


def test_kad_is_near_zero_for_one_distribution_and_unbiased_in_n():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(400, 8))
    values = [kernel_distance(rng.normal(size=(n, 8)), reference) for n in (20, 80, 320)]
    assert all(abs(v) < 1.0 for v in values)  # scaled by 100: near 0, not growing as n shrinks
    assert kernel_distance(rng.normal(1.0, 1.0, (80, 8)), reference) > 5 * max(abs(v) for v in values)


def test_mad_is_small_for_one_distribution_and_large_for_another():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(200, 16))
    same = mauve_distance(rng.normal(size=(200, 16)), reference)
    other = mauve_distance(rng.normal(3.0, 1.0, (200, 16)), reference)
    assert 0 <= same < 0.2 and other > 1.0


def test_the_clap_score_interval_is_the_means_and_stays_in_its_range():
    from scipy import stats

    from scoreaware.evaluate.metrics import mean_interval

    values = np.linspace(-0.5, 0.9, 40)  # known case: the t interval of the mean, closed form
    half = stats.t.ppf(0.975, 39) * values.std(ddof=1) / np.sqrt(40)
    got = mean_interval(values, bounds=(-1.0, 1.0))
    assert np.allclose(got["ci"], [values.mean() - half, values.mean() + half]) and got["n"] == 40
    two = mean_interval([0.95, -0.2], bounds=(-1.0, 1.0))  # t(1) = 12.7: unbounded it would be [-6.9, 7.7]
    assert two["ci"] == [-1.0, 1.0] and -1.0 <= two["mean"] <= 1.0


def test_mad_on_a_small_set_prints_no_faiss_warning(capfd):
    """faiss printed "WARNING clustering 69 points to 7 centroids" from C++ on every small-set MAD
    (five times per demo); the silencer takes it off file descriptor 2 and gives the descriptor back."""
    import os

    from scoreaware.evaluate.distances import native_stderr_silenced

    rng = np.random.default_rng(3)
    mauve_distance(rng.normal(size=(40, 8)), rng.normal(size=(30, 8)))
    with native_stderr_silenced():
        os.write(2, b"a native warning\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "clustering" not in err and "a native warning" not in err and "after" in err
