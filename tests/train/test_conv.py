import pytest
import torch
import torch.nn.functional as F

from scoreaware.train.conv import add_shifted, conv1d_channel_last, shifted


def reference(x, weight, bias):
    return F.conv1d(x.transpose(1, 2), weight, bias, padding=weight.shape[-1] // 2).transpose(1, 2)


@pytest.mark.parametrize("cin,cout,kernel,frames", [(8, 32, 3, 11), (32, 8, 3, 11), (16, 16, 7, 11), (64, 24, 7, 11),
                                                    (5, 9, 1, 11), (24, 64, 5, 11), (4, 8, 7, 2), (8, 4, 7, 1)])
def test_conv_as_matmul_equals_conv1d_forward_and_backward(cin, cout, kernel, frames):
    """Both regroupings (widening: gathered inputs; narrowing: shifted outputs) and k = 1 compute
    exactly `F.conv1d` with padding k // 2, and the written-out backward gives its gradients —
    also for sequences shorter than the kernel's reach."""
    torch.manual_seed(0)
    x = torch.randn(2, frames, cin, requires_grad=True)
    weight = torch.randn(cout, cin, kernel, requires_grad=True)
    bias = torch.randn(cout, requires_grad=True)
    expected = reference(x, weight, bias)
    got = conv1d_channel_last(x, weight, bias)
    assert torch.allclose(got, expected, atol=1e-4)
    upstream = torch.randn_like(expected)
    for a, b in zip(torch.autograd.grad(got, (x, weight, bias), upstream),
                    torch.autograd.grad(expected, (x, weight, bias), upstream)):
        assert torch.allclose(a, b, atol=1e-4)


def test_conv_backward_passes_gradcheck_in_double():
    """Finite differences agree with the written-out backward (both directions, no bias)."""
    torch.manual_seed(0)
    for cin, cout in ((3, 5), (5, 3)):
        x = torch.randn(2, 6, cin, dtype=torch.float64, requires_grad=True)
        weight = torch.randn(cout, cin, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, w: conv1d_channel_last(a, w, None), (x, weight))


def test_the_function_itself_handles_a_one_tap_kernel():
    """`conv1d_channel_last` sends k = 1 to `F.linear`; the autograd Function is right there too."""
    from scoreaware.train.conv import ChannelLastConv

    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 1, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ChannelLastConv.apply, (x, weight, bias))


def test_conv_under_bf16_autocast_returns_gradients_in_the_parameters_dtype():
    """Under CPU autocast the forward runs in bf16; the gradients come back in fp32 (the dtype of
    the leaves) and close to the fp32 ones."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, requires_grad=True)
    weight = torch.randn(32, 8, 3, requires_grad=True)
    bias = torch.randn(32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = conv1d_channel_last(x, weight, bias)
    assert low.dtype == torch.bfloat16
    grads = torch.autograd.grad(low.float().square().sum(), (x, weight, bias))
    exact = torch.autograd.grad(reference(x, weight, bias).square().sum(), (x, weight, bias))
    for a, b in zip(grads, exact):
        assert a.dtype == torch.float32
        assert (a - b).norm() / b.norm() < 0.05


def test_shifted_and_add_shifted_follow_their_definitions():
    x = torch.arange(5.0)[None, :, None]  # (1, 5, 1): x[t] = t
    assert shifted(x, 3)[0, :, :, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0]]
    assert shifted(x, 3, sign=-1)[0, :, :, 0].tolist() == [[1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2], [0, 4, 3]]
    taps = torch.zeros(1, 5, 3, 1)
    taps[0, :, 0, 0], taps[0, :, 2, 0] = 1.0, 10.0  # y[t] = taps[t − 1, 0] + taps[t, 1] + taps[t + 1, 2]
    assert add_shifted(taps)[0, :, 0].tolist() == [10, 11, 11, 11, 1]


def test_even_conv_kernels_are_refused_by_the_function():
    with pytest.raises(ValueError, match="must be odd"):
        conv1d_channel_last(torch.zeros(1, 4, 2), torch.zeros(2, 2, 2), None)
