"""1-D convolution over time on channel-last tensors, computed as GEMMs, with its own backward.

FluxAudio's MLPs and input projection are `nn.Conv1d`s over time. On the CPU oneDNN's 1-D
convolution (and its backward) ran at a fraction of the matmul rate (66 % of a training step;
benchmarks/train_step.py), so the k taps are regrouped into one matmul. Done with autograd's own
slicing, the backward of every shifted slice allocated a zero-filled tensor the size of the padded
input and copied into it (k of them per layer: 9 % of the demo's step in `aten::fill_` and
`aten::copy_`), and the widening layer kept its k-times-wider gathered input alive for the weight
gradient. `ChannelLastConv` writes the backward out: the input gradient is the same convolution
with the kernel flipped and transposed, the weight gradient one GEMM against the shifted *narrow*
side, and only the input and the weight are saved.

Shapes: x (N, T, Cin), weight (Cout, Cin, k) as `nn.Conv1d` stores it, k odd, padding k // 2 ->
(N, T, Cout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def shifted(x: Tensor, k: int, sign: int = 1) -> Tensor:
    """(N, T, C) -> (N, T, k, C) whose slot j holds x[t + sign·(j − k // 2)] (zero outside 0 ≤ · < T).

    Written into uninitialized memory with only the margins zeroed (a zero-filled buffer cost as
    much as the copies)."""
    n, t, c = x.shape
    pad = k // 2
    out = x.new_empty(n, t, k, c)
    for j in range(k):
        shift = min(max(sign * (j - pad), -t), t)  # a shift past the sequence leaves only zeros
        if shift >= 0:
            out[:, : t - shift, j] = x[:, shift:]
            out[:, t - shift :, j] = 0
        else:
            out[:, -shift:, j] = x[:, : t + shift]
            out[:, :-shift, j] = 0
    return out


def add_shifted(taps: Tensor) -> Tensor:
    """(N, T, k, C) -> (N, T, C): y[t] = Σ_j taps[t + j − k // 2, j] (terms outside 0 ≤ · < T are 0)."""
    t, k = taps.shape[1], taps.shape[2]
    pad = k // 2
    out = taps[:, :, pad].clone()
    for j in range(k):
        shift = j - pad
        if 0 < shift < t:
            out[:, : t - shift] += taps[:, shift:, j]
        elif -t < shift < 0:
            out[:, -shift:] += taps[:, : t + shift, j]
    return out


def conv_forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The convolution as one GEMM, never unfolding the wide side: a widening layer (Cin ≤ Cout)
    gathers its k shifted inputs (N, T, k·Cin); a narrowing one computes k outputs per frame
    (N, T, k·Cout) and adds them shifted — both k times the narrow width."""
    cout, cin, k = weight.shape
    if k == 1:
        return F.linear(x, weight[:, :, 0], bias)
    n, t, _ = x.shape
    if cin <= cout:
        columns = shifted(x, k).view(n, t, k * cin)
        return F.linear(columns, weight.permute(0, 2, 1).reshape(cout, k * cin), bias)
    taps = F.linear(x, weight.permute(2, 0, 1).reshape(k * cout, cin)).view(n, t, k, cout)  # tap j of frame s
    out = add_shifted(taps)
    return out if bias is None else out + bias


class ChannelLastConv(torch.autograd.Function):
    """`conv_forward` with a written-out backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        out = conv_forward(x, weight, bias)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        # under autocast the forward ran in a lower precision and the gradient arrives in it: compute
        # in the gradient's dtype, return each gradient in its input's dtype (as autocast's ops do)
        dtype = grad.dtype
        cout, cin, k = weight.shape
        n, t, _ = x.shape
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # y[t] = Σ_j W_j x[t + j − p]  ⇒  dx[s] = Σ_j W_{k−1−j}ᵀ g[s + j − p]: the same convolution
            grad_x = conv_forward(grad, weight.to(dtype).flip(-1).transpose(0, 1), None).to(x.dtype)
        if ctx.needs_input_grad[1]:
            xc = x.to(dtype)
            if cin <= cout:  # gather the narrow input: dW (Cout, k·Cin) = gᵀ · [x shifted by j]
                columns = shifted(xc, k).view(n * t, k * cin)
                grad_w = (grad.reshape(-1, cout).T @ columns).view(cout, k, cin).permute(0, 2, 1)
            else:  # gather the narrow gradient: dW_j = Σ_s g[s − j + p] ⊗ x[s]
                columns = shifted(grad, k, sign=-1).view(n * t, k * cout)
                grad_w = (columns.T @ xc.reshape(-1, cin)).view(k, cout, cin).permute(1, 2, 0)
            grad_w = grad_w.to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 1)).to(weight.dtype)
        return grad_x, grad_w, grad_b


def conv1d_channel_last(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``conv1d(x, weight, padding=k // 2)`` on channel-last tensors (N, T, Cin) -> (N, T, Cout)."""
    k = weight.shape[-1]
    if k % 2 == 0:  # an even kernel would shift the output by half a frame (ModelConfig refuses it first)
        raise ValueError(f"conv kernel {k} must be odd (the output keeps the input's length)")
    if k == 1:
        return F.linear(x, weight[:, :, 0], bias)
    return ChannelLastConv.apply(x, weight, bias)
