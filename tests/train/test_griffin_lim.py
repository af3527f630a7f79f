"""Fast Griffin-Lim against torchaudio's, the reference it claims to equal."""

import pytest
import torch
import torchaudio

from scoreaware.train.griffin_lim import griffin_lim, overlap_add


def power_spectrogram(n_fft: int, hop: int, batch: int = 2, samples: int = 11025) -> torch.Tensor:
    torch.manual_seed(0)
    t = torch.arange(samples) / 22050
    audio = torch.sin(2 * torch.pi * 440 * t) * torch.linspace(0, 1, samples) + 0.1 * torch.randn(batch, samples)
    return torch.stft(audio, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().pow(2)


@pytest.mark.parametrize("n_fft, hop", [(1024, 256), (512, 160)])  # a hop that divides n_fft, and one that does not
@pytest.mark.parametrize("momentum", [0.0, 0.99])
@pytest.mark.parametrize("n_iter", [0, 1, 3, 8])
def test_equals_torchaudio_griffinlim(n_fft, hop, momentum, n_iter):
    spec = power_spectrogram(n_fft, hop)
    expected = torchaudio.functional.griffinlim(spec, torch.hann_window(n_fft), n_fft, hop, n_fft, 2.0, n_iter,
                                                momentum, None, False)
    ours = griffin_lim(spec, n_fft, hop, n_iter, momentum)
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4 * float(expected.abs().max()))


def test_overlap_add_inverts_framing_with_both_paths():
    signal = torch.randn(3, 4096)
    for n_fft, hop in [(1024, 256), (400, 160)]:
        frames = signal[:, : hop * ((4096 - n_fft) // hop) + n_fft].unfold(-1, n_fft, hop)  # (N, T, n_fft)
        ones = torch.ones_like(frames)
        rebuilt = overlap_add(frames, hop) / overlap_add(ones, hop)  # each sample: the mean of its copies
        torch.testing.assert_close(rebuilt, signal[:, : rebuilt.shape[1]])


def test_more_iterations_converge_toward_the_magnitude():
    """Spectral convergence falls with iterations, as Griffin-Lim's does (a broken update does not)."""
    spec = power_spectrogram(1024, 256)
    window = torch.hann_window(1024)

    def convergence(audio):
        magnitude = torch.stft(audio, 1024, 256, window=window, return_complex=True).abs()
        return float((magnitude - spec.sqrt()).norm() / spec.sqrt().norm())

    errors = [convergence(griffin_lim(spec, 1024, 256, n)) for n in (1, 8, 32)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.6 * errors[0], errors


def test_refuses_a_momentum_outside_its_range():
    with pytest.raises(ValueError, match="momentum"):
        griffin_lim(power_spectrogram(1024, 256), 1024, 256, 2, momentum=1.0)
