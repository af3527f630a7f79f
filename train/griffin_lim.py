"""Fast Griffin-Lim: the same iterations as `torchaudio.functional.griffinlim`, at a fraction of the cost.

Decoding a 10 s clip of the mel codecs is 32 Griffin-Lim iterations of an ISTFT and an STFT over
861 frames, and on a 2-core CPU that was most of `eval generate`'s time once the model ran on the
compact codec. torchaudio's loop spends more than half of each iteration outside the FFTs: a complex
`abs`, a complex-by-real division that first copies the real tensor to complex, `torch.istft`'s
per-call window envelope, and a separate multiply for the momentum. Here each iteration is the two
FFTs plus in-place real arithmetic on views of the complex tensors, with the envelope computed
once. Same algorithm and parameterization (hann window, centred frames with reflect padding,
zero initial phase, fast Griffin-Lim momentum α/(1 + α)); the result equals torchaudio's to float
rounding (tested), which Griffin-Lim's iterations then amplify (~1e-3 relative after 32).
"""

from __future__ import annotations

import torch


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """(N, T, n_fft) frames -> (N, n_fft + hop·(T − 1)) signal, frame t added at t·hop."""
    n, t, n_fft = frames.shape
    if n_fft % hop:  # the general case, through unfold's inverse
        return torch.nn.functional.fold(frames.transpose(1, 2), (1, n_fft + hop * (t - 1)), (1, n_fft),
                                        stride=(1, hop)).reshape(n, -1)
    k = n_fft // hop  # each frame is k hops long: k shifted adds of (N, T, hop) blocks
    out = frames.new_zeros(n, t + k - 1, hop)
    parts = frames.reshape(n, t, k, hop)
    for j in range(k):
        out[:, j:j + t] += parts[:, :, j]
    return out.reshape(n, -1)


def _magnitude(spec: torch.Tensor) -> torch.Tensor:
    """|spec| of a complex tensor through its real view (half the time of complex `abs` here)."""
    parts = torch.view_as_real(spec)
    real, imag = parts[..., 0], parts[..., 1]
    return torch.addcmul(real * real, imag, imag).sqrt_()


@torch.no_grad()
def griffin_lim(power_spec: torch.Tensor, n_fft: int, hop_length: int, n_iter: int,
                momentum: float = 0.99) -> torch.Tensor:
    """(N, n_fft // 2 + 1, T) power spectrogram -> (N, hop_length·(T − 1)) waveform.

    Equals ``torchaudio.functional.griffinlim(power_spec, hann_window(n_fft), n_fft, hop_length,
    n_fft, 2.0, n_iter, momentum, None, rand_init=False)``.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    window = torch.hann_window(n_fft, dtype=power_spec.dtype, device=power_spec.device)
    magnitude = power_spec.sqrt().transpose(1, 2).contiguous()  # (N, T, F): frames first, for rfft
    frames = magnitude.shape[1]
    half = n_fft // 2
    # torch.istft divides by the overlap-added squared window; it depends only on T, so once
    inverse_envelope = overlap_add(window.square().expand(1, frames, n_fft), hop_length)[0, half:-half].reciprocal()

    def istft(spec: torch.Tensor) -> torch.Tensor:  # (N, T, F) -> (N, hop·(T − 1))
        chunks = torch.fft.irfft(spec, n=n_fft, dim=-1).mul_(window)
        return overlap_add(chunks, hop_length)[:, half:-half].mul_(inverse_envelope)

    def stft(signal: torch.Tensor) -> torch.Tensor:  # (N, S) -> (N, T, F), centred, reflect-padded
        padded = torch.nn.functional.pad(signal[:, None], (half, half), mode="reflect")[:, 0]
        return torch.fft.rfft(padded.unfold(-1, n_fft, hop_length) * window, dim=-1)

    alpha = momentum / (1 + momentum)  # torchaudio's parameterization of fast Griffin-Lim
    spec = magnitude.to(torch.complex64 if magnitude.dtype == torch.float32 else torch.complex128)  # zero phase
    previous = None
    for _ in range(n_iter):
        rebuilt = stft(istft(spec))
        spec = rebuilt.clone() if previous is None else torch.sub(rebuilt, previous, alpha=alpha)
        scale = _magnitude(spec).add_(1e-16)
        torch.div(magnitude, scale, out=scale)  # new phase, old magnitude: spec · |X| / |spec|
        torch.view_as_real(spec).mul_(scale.unsqueeze(-1))
        previous = rebuilt
    return istft(spec)
