import numpy as np
import pytest
import torch
from scipy import stats

from scoreaware.train.flow import TimestepSampler, euler_sample, interpolate, masked_mse, target_velocity


def test_time_convention_t0_is_data_t1_is_noise():
    x0, noise = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    assert torch.allclose(interpolate(x0, noise, torch.zeros(2)), x0)
    assert torch.allclose(interpolate(x0, noise, torch.ones(2)), noise)
    t = torch.tensor([0.3, 0.7])
    xt = interpolate(x0, noise, t)
    assert torch.allclose(xt[0], 0.7 * x0[0] + 0.3 * noise[0])
    # the target is dx_t/dt
    h = 1e-3
    derivative = (interpolate(x0, noise, t + h) - interpolate(x0, noise, t - h)) / (2 * h)
    assert torch.allclose(derivative, target_velocity(x0, noise), atol=1e-3)


def test_euler_with_the_true_velocity_recovers_the_data():
    x0, noise = torch.randn(3, 8, 4), torch.randn(3, 8, 4)
    out = euler_sample(lambda x, t: target_velocity(x0, noise), noise, steps=25)
    assert torch.allclose(out, x0, atol=1e-5)


def test_masked_mse_ignores_padding_and_averages_valid_frames():
    target = torch.zeros(2, 4, 3)
    v = torch.ones(2, 4, 3)  # squared error 1 per element on every frame
    v[1, 2:] = 100.0  # wrong only on the padding of the second sample
    v[0, 0] = 3.0  # one frame of error 9 in the first sample: (9 + 1 + 1 + 1) / 4 = 3
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    assert masked_mse(v, target, mask).tolist() == [3.0, 1.0]
    assert masked_mse(v, target).tolist()[0] == 3.0  # no mask: every frame counts


def test_the_flow_objective_trains_on_masked_mse():
    # the objective's per-sample loss is masked_mse of its prediction (the function tested above)
    import inspect

    from scoreaware.train import objective, preference

    assert "masked_mse(" in inspect.getsource(objective.FlowObjective.__call__)
    assert "masked_mse(" in inspect.getsource(preference.CRPOObjective.__call__)


def test_beta_with_full_score_is_uniform():
    g = torch.Generator().manual_seed(0)
    t = TimestepSampler("beta", lam=1.0)(20_000, g, s_tilde=torch.ones(20_000)).numpy()
    assert stats.kstest(t, "uniform").pvalue > 0.01


def test_lambda_zero_is_uniform_for_every_score():
    g = torch.Generator().manual_seed(1)
    s = torch.rand(20_000)
    t = TimestepSampler("beta", lam=0.0)(20_000, g, s_tilde=s).numpy()
    assert stats.kstest(t, "uniform").pvalue > 0.01


def test_mean_time_rises_as_the_score_falls():
    g = torch.Generator().manual_seed(2)
    means = []
    for s in (1.0, 0.75, 0.5, 0.25, 0.0):
        t = TimestepSampler("beta", lam=1.0)(40_000, g, s_tilde=torch.full((40_000,), s))
        means.append(float(t.mean()))
        alpha = 1 + (1 - s)
        assert means[-1] == pytest.approx(alpha / (alpha + 1), abs=0.01)
        # and the whole distribution is Beta(α, 1)
        assert stats.kstest(t.numpy(), stats.beta(alpha, 1).cdf).pvalue > 0.001
    assert all(a < b for a, b in zip(means, means[1:]))


def test_logit_normal_and_uniform_samplers():
    g = torch.Generator().manual_seed(3)
    t = TimestepSampler("logit_normal")(20_000, g).numpy()
    logits = np.log(t / (1 - t))
    assert abs(logits.mean()) < 0.05 and abs(logits.std() - 1) < 0.05
    u = TimestepSampler("uniform")(20_000, g).numpy()
    assert stats.kstest(u, "uniform").pvalue > 0.01
    with pytest.raises(ValueError, match="needs the batch's normalized scores"):
        TimestepSampler("beta")(4, g)
    with pytest.raises(ValueError, match="not implemented"):
        TimestepSampler("cosine")
