"""CRPO step: ours against the naive step, speed and peak memory side by side.

Ours (`train/preference.py`): the winner's and the loser's latents were encoded once, before
training; the frozen reference runs under `torch.no_grad()` (no activations kept for backward,
no optimizer state). The naive step, as TangoFlux's `train_dpo.py` runs it: both clips are
encoded from audio at every step, and the reference forward runs with gradients enabled, so
its activations are kept until backward. Same model, same pairs, same noise and t, same
optimizer (AdamW over the trained model only).

A third row, a plain flow-matching step on the same 2·pairs latents without any reference, is
the floor: ours should cost about the same memory (the reference adds weights, not activations).

    python benchmarks/crpo_step.py [--width 256] [--heads 4] [--joint 2] [--single 4] [--seconds 5]
                                   [--pairs 4] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from memory import PeakMemory  # noqa: E402


def setup(args):
    from scoreaware.train.codecs import MelCodec
    from scoreaware.train.flow import TimestepSampler
    from scoreaware.train.model import FluxAudio, ModelConfig
    from scoreaware.train.objective import NullConditioning, Trainable
    from scoreaware.train.preference import CRPOObjective, frozen_copy

    torch.manual_seed(0)
    model = FluxAudio(ModelConfig(latent_channels=64, text_dim=32, clap_dim=512, dim=args.width, heads=args.heads,
                                  joint_depth=args.joint, single_depth=args.single))
    for p in model.parameters():  # no zero-init shortcuts: every block does real work
        torch.nn.init.normal_(p, std=0.02)
    codec = MelCodec()
    rng = np.random.default_rng(0)
    rate = codec.sample_rate
    audio = [(0.1 * rng.standard_normal((1, int(args.seconds * rate)))).astype(np.float32)
             for _ in range(2 * args.pairs)]
    nulls = NullConditioning(torch.zeros(4, 32), torch.zeros(512))
    n = args.pairs
    text = {"text": torch.randn(n, 12, 32), "text_mask": torch.ones(n, 12, dtype=torch.bool),
            "clap": torch.randn(n, 512), "score": torch.zeros(n), "score_mask": torch.zeros(n, dtype=torch.bool),
            "s_tilde": torch.ones(n)}
    objective = CRPOObjective(frozen_copy(model), TimestepSampler("logit_normal"), nulls,
                              generator=torch.Generator().manual_seed(0))
    return model, codec, audio, text, objective, Trainable, rate


def latents(codec, clips, rate) -> torch.Tensor:
    return torch.from_numpy(np.stack([codec.encode(a, rate) for a in clips]))  # (N, T, C)


def batch_of(winners: torch.Tensor, losers: torch.Tensor, text: dict) -> dict:
    mask = torch.ones(winners.shape[:2], dtype=torch.bool)
    return {"latent": winners, "latent_l": losers, "latent_mask": mask, "latent_l_mask": mask, **text}


def run(args, variant: str) -> tuple[float, float, float]:
    """(steps/s, peak anonymous RSS growth in MiB from before the first step, weights in MiB)."""
    naive = variant == "naive"
    model, codec, audio, text, objective, trainable, rate = setup(args)
    net = trainable(model)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5)
    if naive:  # the reference takes part in autograd: its activations live until backward
        for p in objective.reference.parameters():
            p.requires_grad_(True)
        original = objective.reference

        class WithGrad(torch.nn.Module):
            def forward(self, *a):
                with torch.enable_grad():
                    return original(*a)

        objective.reference = WithGrad()
    else:
        winners, losers = latents(codec, audio[0::2], rate), latents(codec, audio[1::2], rate)  # once, up front

    def step():
        if naive:  # encode both clips from audio at every step, as TangoFlux does with its VAE
            batch = batch_of(latents(codec, audio[0::2], rate), latents(codec, audio[1::2], rate), text)
        else:
            batch = batch_of(winners, losers, text)
        if naive:
            # the naive loss keeps the reference graph: autograd holds its activations until backward
            loss, _ = naive_loss(objective, net, batch)
        elif variant == "flow":
            loss, _ = naive_loss(objective, net, batch, reference=False)
        else:
            loss, _ = objective(net, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with PeakMemory() as memory:  # from before the first step: optimizer state and activations
        step()  # warm-up (not timed)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        seconds = time.perf_counter() - start
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    return args.steps / seconds, memory.growth_mib("RssAnon"), weights


def naive_loss(objective, net, batch, reference: bool = True):
    """The CRPO loss with the reference inside autograd (no `torch.no_grad`); without the
    reference, the flow-matching loss of both clips (the memory floor)."""
    import torch.nn.functional as F

    from scoreaware.train.flow import interpolate, target_velocity
    from scoreaware.train.model import Conditioning
    from scoreaware.train.objective import batch_conditioning
    from scoreaware.train.preference import _masked_mse

    draws = objective.draw(batch)
    x_w, x_l, noise, t = batch["latent"], batch["latent_l"], draws["noise"], draws["t"]
    cond = batch_conditioning(batch, "cpu")
    both = Conditioning.cat([cond, cond])
    mask = torch.cat([batch["latent_mask"], batch["latent_l_mask"]])
    both.latent_mask = mask
    x_t = torch.cat([interpolate(x_w, noise, t), interpolate(x_l, noise, t)])
    target = torch.cat([target_velocity(x_w, noise), target_velocity(x_l, noise)])
    v, _ = net(x_t, torch.cat([t, t]), both)
    model_w, model_l = _masked_mse(v, target, mask).chunk(2)
    if not reference:
        return (model_w + model_l).mean(), {}
    ref_w, ref_l = _masked_mse(objective.reference(x_t, torch.cat([t, t]), both), target, mask).chunk(2)
    inside = -0.5 * objective.beta * ((model_w - model_l) - (ref_w - ref_l))
    return -F.logsigmoid(inside).mean() + objective.lambda_fm * model_w.mean(), {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--joint", type=int, default=2)
    parser.add_argument("--single", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variant", choices=["naive", "ours", "flow"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # one measurement in a fresh process, so the other's freed memory does not hide growth
        rate, memory, weights = run(args, args.variant)
        print(json.dumps({"rate": rate, "memory": memory, "reference_mib": weights}))
        return
    results = {}
    for variant in ("naive", "ours", "flow"):
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", variant], capture_output=True,
                              text=True, check=True)
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    naive_rate, naive_mem = results["naive"]["rate"], results["naive"]["memory"]
    ours_rate, ours_mem = results["ours"]["rate"], results["ours"]["memory"]
    frames = int(args.seconds * 22050 / 256) + 1
    print(f"\nCRPO step: width {args.width}, {args.joint}+{args.single} blocks, {args.pairs} pairs × {frames} latent "
          f"frames ({args.seconds:g} s mel), CPU")
    print(f"{'':>50} {'steps/s':>8} {'peak anon RSS growth':>22}")
    print(f"{'naive (encode every step, reference with grad)':>50} {naive_rate:8.2f} {naive_mem:19.0f} MiB")
    print(f"{'ours (latents once, frozen reference, no_grad)':>50} {ours_rate:8.2f} {ours_mem:19.0f} MiB")
    print(f"{'ratio':>50} {ours_rate / naive_rate:7.2f}× {naive_mem / max(ours_mem, 1):18.2f}× less memory")
    flow_rate, flow_mem = results["flow"]["rate"], results["flow"]["memory"]
    print(f"{'floor: flow step on the same latents, no reference':>50} {flow_rate:8.2f} {flow_mem:19.0f} MiB")
    print(f"over the floor: ours {ours_mem - flow_mem:+.0f} MiB (the no_grad forward's transient buffers), naive "
          f"{naive_mem - flow_mem:+.0f} MiB; the reference's weights ({results['ours']['reference_mib']:.0f} MiB) "
          "are loaded once, before the first step")


if __name__ == "__main__":
    main()
