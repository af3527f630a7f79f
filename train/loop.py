"""`train fit`: one explicit training loop (DiT/nanoGPT style), single process or torchrun/DDP.

forward → loss → backward → clip → step → EMA → log → checkpoint. The objective is one call,
``loss, logs = objective(net, batch)``, chosen by the config: flow matching (+ REPA) or CRPO on
preference pairs; the loop never knows which. Checkpoints hold plain data only
``{model, ema, opt, config, step, rng (every rank), sampler, norm, encode, null, parent, ...}``
and resume exactly: the sampler, the objective's generator and every RNG continue where they
stopped.

A run started from a parent (``init_from``) inherits what the parent learned with: its latent and
score normalization, its encode info (codec, text encoder, CLAP model) and its CFG null; a
manifest encoded differently is refused, and the weights load strictly (a new score head only
with ``init_new_head``, reported).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from scoreaware.core.files import save_figure
from scoreaware.core.progress import progress
from scoreaware.core.provenance import describe_input
from scoreaware.train.config import TrainConfig, save_config
from scoreaware.train.data import (
    LatentBatches,
    Normalization,
    PairBatches,
    make_sampler,
)
from scoreaware.train.flow import TimestepSampler
from scoreaware.train.inherit import load_parent_weights, starting_point
from scoreaware.train.model import MODELS, FluxAudio, ModelConfig
from scoreaware.train.model_paths import portable_state, relative_config
from scoreaware.train.objective import TIME_BINS, FlowObjective, NullConditioning, Trainable, time_bin_losses
from scoreaware.train.preference import CRPOObjective, frozen_copy
from scoreaware.train.repa import RepaLoss


# ---------------------------------------------------------------------------------- helpers
def setup_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); initializes the process group under torchrun and gives
    each process its own GPU (NCCL ranks must not share one)."""
    if "RANK" not in os.environ:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), local_rank


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
    """ema ← decay·ema + (1 − decay)·model, for all parameters in one foreach call (one kernel
    launch per step instead of two per tensor: ~4 % of a tiny CPU step)."""
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)


def lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    if config.lr_schedule == "cosine":
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.lr


def rng_state(objective) -> dict:
    """Every RNG this process draws from, as plain data (tensors, ints, lists) so the checkpoint
    loads with ``weights_only=True``."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                      gauss],
            "python": random.getstate(), "objective": objective.generator.get_state()}


def set_rng_state(state: dict, objective) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    objective.generator.set_state(state["objective"])


def gather(value, world: int) -> list:
    """`value` of every rank, in rank order (the value itself when not distributed)."""
    if world == 1:
        return [value]
    out = [None] * world
    dist.all_gather_object(out, value)
    return out


def weights_digest(module: torch.nn.Module) -> str:
    """sha1 of every parameter and buffer, in order (equal digests: bit-identical weights)."""

    digest = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def new_run_dir(root: Path, model: str) -> Path:
    """``{root}/{idx:03d}-{model}`` (DiT)."""
    root.mkdir(parents=True, exist_ok=True)
    index = len([p for p in root.iterdir() if p.is_dir()])
    return root / f"{index:03d}-{model}"


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


@torch.no_grad()
def validate(net: torch.nn.Module, manifest: str, norm: Normalization, config: TrainConfig, nulls, device,
             repa_spec, reference: torch.nn.Module | None = None) -> dict:
    """Flow loss per timestep bin on a fixed grid of t and fixed noise (comparable across runs),
    or, for CRPO, the implicit accuracy on held-out pairs (fixed noise and t)."""
    crpo = config.objective == "crpo"
    dataset = (PairBatches(norm, config.max_frames) if crpo else
               LatentBatches(norm, config.max_frames, repa_spec, scores=config.score_head != "none"))
    sampler = make_sampler(manifest, config.batch_size, seed=0, shuffle=False, drop_last=False)
    generator = torch.Generator().manual_seed(1234)
    if crpo:
        objective = CRPOObjective(reference, TimestepSampler("uniform"), nulls, config.crpo_beta,
                                  config.crpo_lambda_fm, generator)
        correct, total = 0.0, 0
        for cuts in sampler:
            batch = dataset[cuts]
            _, logs = objective(net, batch, device)
            correct += float(logs["implicit_acc"]) * batch["latent"].shape[0]
            total += batch["latent"].shape[0]
        return {"val_implicit_acc": correct / max(total, 1)}
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


def validate_both(net, ema, manifest, norm, config, nulls, device, repa_spec, reference) -> dict:
    """Validation of the raw weights and of the EMA weights (which sampling uses)."""
    raw = validate(net, manifest, norm, config, nulls, device, repa_spec, reference)
    ema_net = Trainable(ema, getattr(net, "repa", None))
    smooth = validate(ema_net, manifest, norm, config, nulls, device, repa_spec, reference)
    return {**raw, **{f"{k.replace('val_', 'val_ema_')}": v for k, v in smooth.items()}}


def log_validation(writer, result: dict, step: int) -> None:
    """Validation scalars to TensorBoard beside the training ones: ``val/<name>`` (flow loss, EMA
    flow loss, held-out implicit accuracy) and ``val/<name>_by_t/bin<i>`` per timestep bin."""
    if writer is None:
        return
    for name, value in result.items():
        if isinstance(value, (int, float)):
            writer.add_scalar(f"val/{name}", value, step)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, (int, float)) and not math.isnan(item):
                    writer.add_scalar(f"val/{name}/bin{index}", item, step)


def plot_history(history: list[dict], path: Path) -> None:
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for key, label, style in (("flow", "train flow loss", "-"), ("crpo", "CRPO preference loss", "-"),
                              ("repa", "REPA (neg. cosine)", "-"), ("val_flow", "validation flow loss", "o-"),
                              ("val_ema_flow", "validation flow loss (EMA)", "s--")):
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points), style, label=label)
    accuracy = [(h["step"], h["implicit_acc"]) for h in history if "implicit_acc" in h]
    if accuracy:
        right = ax.twinx()
        right.plot(*zip(*accuracy), color="tab:green", alpha=0.6, label="implicit accuracy")
        held = [(h["step"], h["val_implicit_acc"]) for h in history if "val_implicit_acc" in h]
        if held:
            right.plot(*zip(*held), "o", color="tab:green", label="held-out accuracy")
        right.set_ylim(0, 1)
        right.set_ylabel("implicit accuracy")
        right.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path, dpi=100)


def crpo_reference(config: TrainConfig, model_config: ModelConfig, parent: dict | None, device) -> FluxAudio | None:
    """CRPO's frozen reference: the parent's EMA (also when resuming); None for other objectives."""
    if config.objective != "crpo":
        return None
    if parent is None:
        raise ValueError("CRPO needs a starting checkpoint: set init_from (the reference is its EMA)")
    reference = FluxAudio(model_config)
    load_parent_weights(reference, None, parent, config.init_new_head)
    return frozen_copy(reference).to(device)


def make_objective(config: TrainConfig, reference, nulls: NullConditioning, norm: Normalization, info: dict,
                   rank: int):
    """(objective, dataset) for the config's objective: flow matching (+ REPA) or CRPO on pairs."""
    sampler_fn = TimestepSampler(config.timesteps, lam=config.beta_lambda)
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank)
    if config.objective == "crpo":
        return (CRPOObjective(reference, sampler_fn, nulls, config.crpo_beta, config.crpo_lambda_fm, generator,
                              config.score_dropout),
                PairBatches(norm, config.max_frames))
    return (FlowObjective(sampler_fn, nulls, config.text_dropout, config.score_dropout, config.repa_coeff, generator),
            LatentBatches(norm, config.max_frames, {r: tuple(info["repa"][r]) for r in config.repa},
                          scores=config.score_head != "none"))


def restore(checkpoint: dict, net, ema, optimizer, sampler, objective, rank: int, world: int) -> tuple[int, int, list]:
    """Load a checkpoint's weights, optimizer, sampler and RNG state; (step, epoch, history)."""
    net.load_state_dict(checkpoint["model"])
    ema.load_state_dict(checkpoint["ema"])
    optimizer.load_state_dict(checkpoint["opt"])
    samplers = checkpoint["sampler"] if isinstance(checkpoint["sampler"], list) else [checkpoint["sampler"]]
    sampler.load_state_dict(copy.deepcopy(samplers[rank if rank < len(samplers) else 0]))
    states = checkpoint["rng"] if isinstance(checkpoint["rng"], list) else [checkpoint["rng"]]
    if len(states) != world:
        raise ValueError(f"the checkpoint was written by {len(states)} processes; resume it with as many")
    set_rng_state(states[rank], objective)
    return checkpoint["step"], checkpoint["epoch"], checkpoint["history"]


# ------------------------------------------------------------------------------------ main
def main(config: TrainConfig | None, resume_dir: Path | None = None, unsafe_pickle: bool = False,
         explicit: dict | None = None) -> Path:
    """Train; returns the run folder. With `resume_dir`, continue its latest checkpoint exactly
    (the saved config, with only the `explicit` keys a resumed run may change applied)."""

    rank, world, local_rank = setup_distributed()
    start = starting_point(config, resume_dir, unsafe_pickle, explicit,
                           log=(lambda line: print(line, flush=True)) if rank == 0 else (lambda line: None))
    config, checkpoint, parent, info, norm = start.config, start.checkpoint, start.parent, start.info, start.norm
    device = pick_device(config, local_rank)
    torch.manual_seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    random.seed(config.seed + rank)
    backbone, repa, model_config = build(config, info)
    fresh = []
    if parent is not None and not checkpoint:
        fresh = load_parent_weights(backbone, repa, parent, config.init_new_head)
        if fresh and rank == 0:
            print(f"from the parent {config.init_from}: initialized fresh: {', '.join(fresh)}", flush=True)
    nulls = start.nulls
    net = Trainable(backbone, repa).to(device)
    if config.compile:  # in place: the state dict keeps its keys, so checkpoints do not depend on it
        net.compile(dynamic=True)
    ema = copy.deepcopy(backbone).requires_grad_(False).eval()
    reference = crpo_reference(config, model_config, parent, device)
    reference_digest = weights_digest(reference) if reference is not None else None
    # fused: one kernel over all parameters (the default per-tensor loop was ~7 % of a tiny CPU step);
    # torch < 2.4 has no fused CPU AdamW, and falls back to the per-tensor loop
    try:
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except RuntimeError:
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    objective, dataset = make_objective(config, reference, nulls, norm, info, rank)
    repa_spec = {r: tuple(info["repa"][r]) for r in config.repa}
    sampler = make_sampler(config.manifest, config.batch_size // world, config.seed, world, rank)
    step, epoch, history = 0, 0, []
    run_dir = resume_dir
    restored = checkpoint is not None
    if checkpoint:
        step, epoch, history = restore(checkpoint, net, ema, optimizer, sampler, objective, rank, world)
    if rank == 0 and run_dir is None:
        run_dir = new_run_dir(Path(config.run_dir), config.model)
        (run_dir / "checkpoints").mkdir(parents=True)
        save_config(relative_config(asdict(config), run_dir), run_dir / "config.json")
    if world > 1:
        holder = [str(run_dir)]
        dist.broadcast_object_list(holder)
        run_dir = Path(holder[0])
        net = DistributedDataParallel(net)

    writer = SummaryWriter(run_dir / "tb") if rank == 0 else None
    bins = defaultdict(lambda: [0.0, 0])
    plain = getattr(net, "module", net)  # validation on rank 0 only: bypass DDP (its forward syncs buffers)
    lineage = {"parent": describe_input(config.init_from) if config.init_from else None, "fresh": fresh,
               "reference_digest_at_start": reference_digest}
    state_extra = {"model_config": asdict(model_config), "norm": norm.to_dict(), "encode": info,
                   "null": {"text_tokens": nulls.text, "clap_text": nulls.clap}, "lineage": lineage,
                   "manifest_sha256": start.manifest_sha256}  # --resume refuses other data

    def checkpoint_now() -> None:
        if reference is not None:  # proof that the DPO reference never moved
            lineage["reference_digest"] = weights_digest(reference)
        save_checkpoint(run_dir, step, epoch, net, ema, optimizer, config, sampler, objective, history, rank, world,
                        state_extra)

    def validation() -> None:  # rank 0: into the history and TensorBoard
        result = validate_both(plain, ema, config.val_manifest, norm, config, nulls, device, repa_spec, reference)
        history.append({"step": step, **result})
        log_validation(writer, result, step)

    if config.val_manifest and step == 0 and rank == 0:  # the untrained point of the validation curve
        validation()

    # rank 0 only: a bar on a terminal, a line every 30 s in a log; a resumed run starts at its step
    bar = progress(config.steps, "train fit", "step", initial=step) if rank == 0 else tqdm(disable=True)
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
            bar.update(1)
            for b, (total, count) in time_bin_losses(logs["t"].cpu(), logs["per_sample"].cpu()).items():
                bins[b][0] += total
                bins[b][1] += count
            if rank == 0 and (step % config.log_every == 0 or step == config.steps):
                record = {"step": step, "epoch": epoch, "lr": lr_at(step - 1, config), "grad_norm": float(grad_norm),
                          **{k: float(v) for k, v in logs.items() if k not in ("per_sample", "t")}}
                for name, value in record.items():
                    if name not in ("step", "epoch"):
                        writer.add_scalar(f"train/{name}", value, step)
                for b, (total, count) in bins.items():
                    writer.add_scalar(f"flow_by_t/bin{b}", total / max(count, 1), step)
                bins.clear()
                history.append(record)
                bar.set_postfix(loss=f"{record.get('loss', float('nan')):.3f}", refresh=False)
            if config.val_manifest and config.val_every and step % config.val_every == 0 and rank == 0:
                validation()
            if step % config.ckpt_every == 0 or step == config.steps:
                checkpoint_now()
            if step >= config.steps:
                break
        else:
            if batches == 0 and not restored:
                raise ValueError(f"{config.manifest} yields no full batch of {config.batch_size // world} cuts per "
                                 "rank: lower batch_size or add data")
            epoch += 1  # (a run resumed at the very end of an epoch finds that epoch empty: go on)
        restored = False
    bar.close()
    validated = bool(config.val_every) and step % config.val_every == 0  # the same answer on every rank
    if config.val_manifest and not validated:
        if rank == 0:
            validation()
        checkpoint_now()  # every rank: it ends in a barrier
    if rank == 0:
        writer.close()
        plot_history(history, run_dir / "loss.png")
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir


def save_checkpoint(run_dir: Path, step: int, epoch: int, net, ema, optimizer, config: TrainConfig, sampler,
                    objective, history, rank: int, world: int, extra: dict) -> None:
    """`{run}/checkpoints/{step:07d}.pt`: every rank's RNG and sampler state gathered, written by
    rank 0 (atomically), then a barrier."""
    rngs, samplers = gather(rng_state(objective), world), gather(sampler.state_dict(), world)
    if rank == 0:
        model = getattr(net, "module", net)
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": optimizer.state_dict(),
                 "config": asdict(config), "step": step, "epoch": epoch, "rng": rngs, "sampler": samplers,
                 "history": history, **extra}
        path = run_dir / "checkpoints" / f"{step:07d}.pt"
        state = portable_state(state, path.parent)  # models and files relative to the checkpoint (it can move)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
    if dist.is_initialized():
        dist.barrier()

