"""`train fit`: one explicit training loop (DiT/nanoGPT style), single process or torchrun/DDP.

forward → loss → backward → clip → step → EMA → log → checkpoint. Checkpoints hold
``{model, ema, opt, config, step, rng, sampler, norm, ...}`` and resume exactly: the sampler,
the objective's generator and every RNG continue where they stopped.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from train.config import TrainConfig, config_from_dict, save_config
from train.data import LatentBatches, Normalization, compute_normalization, encode_info, make_sampler
from train.flow import TimestepSampler
from train.model import MODELS, FluxAudio, ModelConfig
from train.objective import TIME_BINS, FlowObjective, NullConditioning, Trainable, time_bin_losses
from train.repa import RepaLoss


# ---------------------------------------------------------------------------------- helpers
def setup_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); initializes the process group under torchrun."""
    if "RANK" not in os.environ:
        return 0, 1, 0
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))


def pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device != "auto":
        return torch.device(config.device)
    return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def autocast(device: torch.device, precision: str):
    """bf16 autocast where the device supports it (precision auto/bf16), else a no-op."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    if config.lr_schedule == "cosine":
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.lr


def rng_state(objective: FlowObjective) -> dict:
    """Every RNG the run draws from, as plain data (tensors, ints, lists) so the checkpoint
    loads with ``weights_only=True``."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                      gauss],
            "python": random.getstate(), "objective": objective.generator.get_state()}


def set_rng_state(state: dict, objective: FlowObjective) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    objective.generator.set_state(state["objective"])


def new_run_dir(root: Path, model: str) -> Path:
    """``{root}/{idx:03d}-{model}`` (DiT)."""
    root.mkdir(parents=True, exist_ok=True)
    index = len([p for p in root.iterdir() if p.is_dir()])
    return root / f"{index:03d}-{model}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("*.pt"))
    return found[-1] if found else None


def build(config: TrainConfig, info: dict) -> tuple[FluxAudio, RepaLoss | None, ModelConfig]:
    """Backbone (and REPA projectors) sized from the preset and the encoded data."""
    overrides = dict(latent_channels=info["latent_channels"], text_dim=info["text_dim"], clap_dim=info["clap_dim"],
                     score_head=config.score_head)
    if config.repa_depth:
        overrides["repa_depth"] = config.repa_depth
    model_config = ModelConfig(**{**MODELS[config.model], **overrides})
    backbone = FluxAudio(model_config)
    repa = None
    if config.repa:
        missing = [r for r in config.repa if r not in info.get("repa", {})]
        if missing:
            raise ValueError(f"REPA targets {missing} were not precomputed: run `train encode --repa "
                             f"{','.join(config.repa)}`")
        repa = RepaLoss(model_config.dim, {r: tuple(info["repa"][r]) for r in config.repa}, width=config.repa_width)
    return backbone, repa, model_config


def load_nulls(info: dict) -> NullConditioning:
    from lhotse.array import Array

    text = Array.from_dict(info["null"]["text_tokens"]).load()
    clap = Array.from_dict(info["null"]["clap_text"]).load()
    return NullConditioning(torch.from_numpy(text).float(), torch.from_numpy(clap).float())


@torch.no_grad()
def validate(net: torch.nn.Module, manifest: str, norm: Normalization, config: TrainConfig, nulls, device,
             repa_spec) -> dict:
    """Flow loss per timestep bin on a fixed grid of t and fixed noise (comparable across runs)."""
    dataset = LatentBatches(norm, config.max_frames, repa_spec)
    sampler = make_sampler(manifest, config.batch_size, seed=0, shuffle=False, drop_last=False)
    generator = torch.Generator().manual_seed(1234)
    objective = FlowObjective(TimestepSampler("uniform"), nulls, 0.0, 0.0, config.repa_coeff, generator)
    centers = (torch.arange(TIME_BINS) + 0.5) / TIME_BINS
    sums, counts = torch.zeros(TIME_BINS), torch.zeros(TIME_BINS)
    for cuts in sampler:
        batch = dataset[cuts]
        n = batch["latent"].shape[0]
        for b, t in enumerate(centers):
            draws = {"noise": torch.randn(batch["latent"].shape, generator=generator), "t": torch.full((n,), float(t)),
                     "drop_text": torch.zeros(n, dtype=torch.bool), "drop_score": torch.zeros(n, dtype=torch.bool)}
            _, logs = objective(net, batch, device, draws)
            sums[b] += logs["per_sample"].sum().cpu()
            counts[b] += n
    per_bin = (sums / counts.clamp(min=1)).tolist()
    return {"val_flow": float(np.mean(per_bin)), "val_flow_per_bin": per_bin}


def plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    train = [(h["step"], h["flow"]) for h in history if "flow" in h]
    if train:
        ax.plot(*zip(*train), label="train flow loss")
    repa = [(h["step"], h["repa"]) for h in history if "repa" in h]
    if repa:
        ax.plot(*zip(*repa), label="REPA (neg. cosine)")
    val = [(h["step"], h["val_flow"]) for h in history if "val_flow" in h]
    if val:
        ax.plot(*zip(*val), "o-", label="validation flow loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------ main
def main(config: TrainConfig, resume_dir: Path | None = None, unsafe_pickle: bool = False) -> Path:
    """Train; returns the run folder. With `resume_dir`, continue its latest checkpoint exactly."""
    from curate.checkpoints import load_checkpoint

    rank, world, local_rank = setup_distributed()
    device = pick_device(config, local_rank)
    checkpoint = None
    if resume_dir is not None:
        path = latest_checkpoint(resume_dir)
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {resume_dir}/checkpoints")
        checkpoint = load_checkpoint(path, unsafe_pickle=unsafe_pickle, what="training checkpoint")
        config = config_from_dict({**checkpoint["config"], "steps": config.steps})
    torch.manual_seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    random.seed(config.seed + rank)
    info = encode_info(config.manifest)
    norm = (Normalization.from_dict(checkpoint["norm"]) if checkpoint else
            compute_normalization(config.manifest, config.score_field, config.score_group_by, config.clap_field))
    backbone, repa, model_config = build(config, info)
    if config.init_from and not checkpoint:
        init = load_checkpoint(config.init_from, unsafe_pickle=unsafe_pickle, what="parent checkpoint")
        backbone.load_state_dict(init["ema"], strict=False)  # v1 -> v2 cross-loading tolerates the head switch
    net = Trainable(backbone, repa).to(device)
    ema = copy.deepcopy(backbone).requires_grad_(False).eval()
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    nulls = load_nulls(info)
    sampler_fn = TimestepSampler(config.timesteps, lam=config.beta_lambda)
    objective = FlowObjective(sampler_fn, nulls, config.text_dropout, config.score_dropout, config.repa_coeff,
                              torch.Generator().manual_seed(config.seed * 1000 + rank))
    repa_spec = {r: tuple(info["repa"][r]) for r in config.repa}
    dataset = LatentBatches(norm, config.max_frames, repa_spec)
    sampler = make_sampler(config.manifest, config.batch_size // world, config.seed, world, rank)
    step, epoch, history = 0, 0, []
    run_dir = resume_dir
    if checkpoint:
        net.load_state_dict(checkpoint["model"])
        ema.load_state_dict(checkpoint["ema"])
        optimizer.load_state_dict(checkpoint["opt"])
        step, epoch, history = checkpoint["step"], checkpoint["epoch"], checkpoint["history"]
        sampler.load_state_dict(checkpoint["sampler"])
        set_rng_state(checkpoint["rng"], objective)
    if rank == 0 and run_dir is None:
        run_dir = new_run_dir(Path(config.run_dir), config.model)
        (run_dir / "checkpoints").mkdir(parents=True)
        save_config(config, run_dir / "config.json")
    if world > 1:
        holder = [str(run_dir)]
        dist.broadcast_object_list(holder)
        run_dir = Path(holder[0])
        net = DistributedDataParallel(net)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(run_dir / "tb") if rank == 0 else None
    bins = defaultdict(lambda: [0.0, 0])
    plain = getattr(net, "module", net)  # validation on rank 0 only: bypass DDP (its forward syncs buffers)
    if config.val_manifest and step == 0 and rank == 0:  # the untrained point of the validation curve
        history.append({"step": 0, **validate(plain, config.val_manifest, norm, config, nulls, device, repa_spec)})
    net.train()
    while step < config.steps:
        sampler.set_epoch(epoch)
        batches = 0
        for cuts in sampler:
            batches += 1
            batch = dataset[cuts]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            with autocast(device, config.precision):
                loss, logs = objective(net, batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            update_ema(ema, backbone, config.ema_decay)
            step += 1
            for b, (total, count) in time_bin_losses(logs["t"].cpu(), logs["per_sample"].cpu()).items():
                bins[b][0] += total
                bins[b][1] += count
            if rank == 0 and (step % config.log_every == 0 or step == config.steps):
                record = {"step": step, "epoch": epoch, "lr": lr_at(step - 1, config), "grad_norm": float(grad_norm),
                          **{k: float(logs[k]) for k in ("loss", "flow", "repa") if k in logs}}
                for name, value in record.items():
                    if name not in ("step", "epoch"):
                        writer.add_scalar(f"train/{name}", value, step)
                for b, (total, count) in bins.items():
                    writer.add_scalar(f"flow_by_t/bin{b}", total / max(count, 1), step)
                bins.clear()
                history.append(record)
            if config.val_manifest and config.val_every and step % config.val_every == 0 and rank == 0:
                history.append({"step": step, **validate(plain, config.val_manifest, norm, config, nulls, device,
                                                         repa_spec)})
            if step % config.ckpt_every == 0 or step == config.steps:
                save_checkpoint(run_dir, step, epoch, net, ema, optimizer, config, model_config, norm, info,
                                sampler, objective, history, rank)
            if step >= config.steps:
                break
        else:
            if batches == 0:
                raise ValueError(f"{config.manifest} yields no full batch of {config.batch_size // world} cuts per "
                                 "rank: lower batch_size or add data")
            epoch += 1
    validated = bool(config.val_every) and step % config.val_every == 0  # the same answer on every rank
    if config.val_manifest and not validated:
        if rank == 0:
            history.append({"step": step, **validate(plain, config.val_manifest, norm, config, nulls, device,
                                                     repa_spec)})
        save_checkpoint(run_dir, step, epoch, net, ema, optimizer, config, model_config, norm, info, sampler,
                        objective, history, rank)  # every rank: it ends in a barrier
    if rank == 0:
        writer.close()
        plot_history(history, run_dir / "loss.png")
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir


def save_checkpoint(run_dir: Path, step: int, epoch: int, net, ema, optimizer, config: TrainConfig,
                    model_config: ModelConfig, norm: Normalization, info: dict, sampler, objective, history, rank):
    """`{run}/checkpoints/{step:07d}.pt`, written by rank 0 (atomically), then a barrier."""
    if rank == 0:
        model = getattr(net, "module", net)
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": optimizer.state_dict(),
                 "config": asdict(config), "model_config": asdict(model_config), "step": step, "epoch": epoch,
                 "rng": rng_state(objective), "sampler": sampler.state_dict(), "norm": norm.to_dict(),
                 "encode": info, "history": history}
        path = run_dir / "checkpoints" / f"{step:07d}.pt"
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
    if dist.is_initialized():
        dist.barrier()
