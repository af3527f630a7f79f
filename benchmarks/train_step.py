"""Training-step throughput and memory: our FluxAudio backbone vs diffusers' FluxTransformer2DModel.

TangoFlux trains `diffusers.FluxTransformer2DModel`; here both backbones get the same width
(heads × head dim), the same number of joint (double-stream) and single-stream blocks, the same
latent and text sequence lengths and batch, and run the same step: forward, flow-matching MSE,
backward, AdamW. Peak memory is the growth of anonymous RSS during a step, measured from trimmed
free memory. The backbones of a mode are timed in alternating rounds and each reports its median
steps/s (and range). For each eager mode it then prints what 1.0× would ask of the conv model:
Flux's steps/s times our FLOPs per step, as the rate of the whole step, beside a bare GEMM of the
MLP's shape timed in the same run.

    python benchmarks/train_step.py [--width 256] [--heads 4] [--joint 2] [--single 4]
                                    [--frames 256] [--text 32] [--batch 4] [--steps 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from memory import PeakMemory, release_free_memory  # noqa: E402


def ours(args, mlp_kernel: int = 3, input_kernel: int = 7):
    from scoreaware.train.model import Conditioning, FluxAudio, ModelConfig

    model = FluxAudio(ModelConfig(latent_channels=64, text_dim=args.text_dim, clap_dim=512, dim=args.width,
                                  heads=args.heads, joint_depth=args.joint, single_depth=args.single,
                                  mlp_kernel=mlp_kernel, input_kernel=input_kernel))
    for p in model.parameters():  # no zero-init shortcuts: every block does real work
        torch.nn.init.normal_(p, std=0.02)
    text = torch.randn(args.batch, args.text, args.text_dim)
    cond = Conditioning(text, torch.ones(args.batch, args.text, dtype=torch.bool), torch.randn(args.batch, 512))

    def step(x, t):
        return model(x, t, cond)

    return model, step


def flux(args):
    from diffusers import FluxTransformer2DModel

    head_dim = args.width // args.heads
    axes = (head_dim - 2 * (head_dim // 4 // 2 * 2), head_dim // 4 // 2 * 2, head_dim // 4 // 2 * 2)
    model = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=args.joint, num_single_layers=args.single,
                                   attention_head_dim=head_dim, num_attention_heads=args.heads,
                                   joint_attention_dim=args.text_dim, pooled_projection_dim=512, axes_dims_rope=axes)
    text = torch.randn(args.batch, args.text, args.text_dim)
    pooled = torch.randn(args.batch, 512)
    img_ids = torch.arange(args.frames, dtype=torch.float32)[:, None].repeat(1, 3)  # 1-D positions, as TangoFlux
    txt_ids = torch.zeros(args.text, 3)

    def step(x, t):
        return model(hidden_states=x, encoder_hidden_states=text, pooled_projections=pooled, timestep=t,
                     img_ids=img_ids, txt_ids=txt_ids, return_dict=False)[0]

    return model, step


def cpu_kind() -> str:
    """The vector ISA torch dispatches to and whether the CPU has bf16 matrix units (AMX): under
    bf16 autocast the ratios differ most between such machines."""
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = {flag for line in cpuinfo.read_text().splitlines() if line.startswith("flags")
                 for flag in line.split(":", 1)[1].split()}
    bf16 = "AMX bf16" if "amx_bf16" in flags else "AVX-512 bf16" if "avx512_bf16" in flags else "no bf16 units"
    return f"{torch.backends.cpu.get_cpu_capability()}, {bf16}"


class Runner:
    """One configuration ready to step: built, compiled if asked, warmed up, FLOPs counted."""

    def __init__(self, build, args, compiled: bool = False, bf16: bool = False) -> None:
        from torch.utils.flop_counter import FlopCounterMode

        torch.manual_seed(0)
        model, forward = build(args)
        self.params = sum(p.numel() for p in model.parameters())
        if compiled:
            forward = torch.compile(forward)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x0 = torch.randn(args.batch, args.frames, 64)

        def one():
            noise = torch.randn_like(x0)
            t = torch.rand(args.batch)
            xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                prediction = forward(xt, t)
            loss = (prediction.float() - (noise - x0)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        self.step = one
        start = time.perf_counter()
        one()  # compiles, when compiled
        self.compile = time.perf_counter() - start if compiled else 0.0
        one()  # warm-up: allocator, kernels, optimizer state
        self.gflop = 0.0
        if not compiled:
            with FlopCounterMode(display=False) as counter:
                one()
            self.gflop = counter.get_total_flops() / 1e9
        self.rates: list[float] = []
        self.memory = 0.0

    def timed_round(self, steps: int) -> None:
        """One round: a step for peak memory growth (from trimmed free memory; the largest over the
        rounds), then `steps` timed steps (not after a trim, which would time page faults)."""
        release_free_memory()  # the other backbones' freed activations would hide this one's
        with PeakMemory() as memory:
            self.step()
        self.memory = max(self.memory, memory.growth_mib("RssAnon"))
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.rates.append(steps / (time.perf_counter() - start))

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


def measure(builds: dict, args, compiled: bool = False, bf16: bool = False) -> dict[str, Runner]:
    """Every backbone of one mode, timed in alternating rounds (median steps/s): on a shared
    2-core machine the speed drifts by tens of percent within minutes, and alternation exposes
    all backbones to the same drift."""
    torch._dynamo.reset()  # once per mode: a reset between backbones would recompile them while timed
    runners = {name: Runner(build, args, compiled, bf16) for name, build in builds.items()}
    for _ in range(args.rounds):
        for runner in runners.values():
            runner.timed_round(args.steps)
    return runners


def profile(build, args, rows: int = 8) -> str:
    """Where one eager fp32 step of `build` spends its time (torch.profiler, self CPU time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.manual_seed(0)
    model, forward = build(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x0 = torch.randn(args.batch, args.frames, 64)

    def one():
        t = torch.rand(args.batch)
        loss = (forward(x0 + t[:, None, None], t) - x0).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    one()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            one()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return "\n".join(f"    {e.key[:48]:<48} {100 * e.self_cpu_time_total / total:5.1f} %" for e in events[:rows])


def gemm_rate(args, dtype: torch.dtype, repeats: int = 10) -> float:
    """GFLOP/s of a bare matmul at the step's widest shapes — (batch·frames, width) × (width, 4·width)
    and back, the MLP's — in `dtype`, median of `repeats`: what these cores give the GEMMs a step is
    made of, with no other op in the way."""
    rows, width = args.batch * args.frames, args.width
    a, b = torch.randn(rows, width, dtype=dtype), torch.randn(width, 4 * width, dtype=dtype)
    c = torch.randn(rows, 4 * width, dtype=dtype)
    rates = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        a @ b
        c @ b.T
        rates.append(2 * 2 * rows * width * 4 * width / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--joint", type=int, default=2)
    parser.add_argument("--single", type=int, default=4)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--text", type=int, default=32)
    parser.add_argument("--text-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per backbone (median)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile of our conv-MLP step")
    args = parser.parse_args()
    print(f"width {args.width} ({args.heads} heads), {args.joint} joint + {args.single} single blocks, "
          f"{args.frames} latent + {args.text} text tokens, batch {args.batch}, threads {torch.get_num_threads()}; "
          f"CPU: {cpu_kind()}")
    builds = {
        "diffusers FluxTransformer2DModel": flux,
        "ours, position-wise MLPs": lambda a: ours(a, mlp_kernel=1, input_kernel=1),  # Flux-sized blocks
        "ours, FluxAudio conv MLPs": ours,  # the architecture we reproduce (k=3 blocks, k=7 input)
    }
    modes = [("fp32 eager", False, False), ("bf16 autocast eager", False, True)]
    if not args.no_compile:
        modes.append(("fp32 torch.compile", True, False))
    best: dict[str, tuple[float, str]] = {}  # each backbone's fastest mode: (steps/s, mode)
    eager: dict[str, dict[str, Runner]] = {}  # the eager modes' results, for the parity bound below
    for mode, compiled, bf16 in modes:
        results = measure(builds, args, compiled, bf16)
        if not compiled:
            eager[mode] = results
        for name, r in results.items():
            best[name] = max(best.get(name, (0.0, "")), (r.rate, mode))
        base = results["diffusers FluxTransformer2DModel"]
        print(f"\n{mode}:")
        for name, r in results.items():
            speed = f"{r.gflop * r.rate:5.0f} GFLOP/s" if r.gflop else ""
            compile_note = f"   compile {r.compile:.0f} s" if compiled else ""
            spread = f"[{min(r.rates):.2f}–{max(r.rates):.2f}]"
            print(f"{name:>34}: {r.rate:6.2f} steps/s {spread:>11} ({r.rate / base.rate:4.2f}× Flux)   "
                  f"peak anon RSS +{r.memory:6.1f} MiB   {r.params / 1e6:6.2f} M params"
                  + (f"   {r.gflop:6.1f} GFLOP/step {speed}" if r.gflop else "") + compile_note)
    # a mode can favour one side (diffusers' RMSNorm falls back to an unfused path under CPU autocast),
    # so each backbone in its own fastest mode as well
    flux_rate, flux_mode = best["diffusers FluxTransformer2DModel"]
    print(f"\neach in its fastest mode: Flux {flux_rate:.2f} steps/s ({flux_mode})")
    for name, (rate, mode) in list(best.items())[1:]:
        print(f"{name:>34}: {rate:6.2f} steps/s  ({rate / flux_rate:4.2f}× Flux's best)   ({mode})")
    print("\ntargets at matched blocks: conv MLPs ≥ 1.0× Flux, position-wise ≥ 1.5×, peak memory ≤ Flux's. "
          "FluxAudio's conv MLPs (k = 3, and the k = 7 input ConvMLP) do ~3× the MLP FLOPs per token by design")
    for mode, results in eager.items():
        # what parity would ask of the conv model: Flux's steps/s times our FLOPs per step, as the rate of the
        # *whole* step (attention, norms, optimizer included), against a bare GEMM's rate in that precision
        flux_step, conv = results["diffusers FluxTransformer2DModel"], results["ours, FluxAudio conv MLPs"]
        needed = flux_step.rate * conv.gflop
        ceiling = gemm_rate(args, torch.bfloat16 if "bf16" in mode else torch.float32)
        gemm_ms = 1000 * conv.gflop / ceiling
        print(f"{mode}: parity for the conv MLPs needs the whole step at {needed:.0f} GFLOP/s ({conv.gflop:.1f} "
              f"GFLOP/step × Flux's {flux_step.rate:.2f} steps/s); a bare GEMM of the MLP's shape runs at "
              f"{ceiling:.0f} GFLOP/s here ({needed / ceiling:.2f}× of it): our step's FLOPs alone at that rate take "
              f"{gemm_ms:.0f} ms of Flux's {1000 / flux_step.rate:.0f} ms")
    if not args.no_profile:
        print("\nwhere an eager fp32 step of ours (conv MLPs) goes, self CPU time:")
        print(profile(ours, args))


if __name__ == "__main__":
    main()
