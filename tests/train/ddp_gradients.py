"""Gradients of the objective on one fixed batch of 4: under torchrun each of 2 ranks takes 2 rows
(DDP averages), alone one process takes all 4. Usage: ddp_gradients.py ENCODED OUT.pt"""

import os
import sys

import torch
import torch.distributed as dist
from lhotse import CutSet
from torch.nn.parallel import DistributedDataParallel

from scoreaware.core.manifests import read_cuts
from scoreaware.train.config import resolve
from scoreaware.train.data import LatentBatches, compute_normalization, encode_info
from scoreaware.train.flow import TimestepSampler
from scoreaware.train.inherit import load_nulls
from scoreaware.train.loop import build
from scoreaware.train.objective import FlowObjective, Trainable

manifest, out = sys.argv[1], sys.argv[2]
distributed = "RANK" in os.environ
if distributed:
    dist.init_process_group("gloo")
rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
config = resolve("tiny", None, {"manifest": manifest, "repa": "clap,muq", "score_head": "global_adaln",
                                "max_frames": 32})
info = encode_info(manifest)
norm = compute_normalization(manifest, "reward", "", "clap_score")
torch.manual_seed(0)
backbone, repa, _ = build(config, info)
for p in backbone.parameters():  # leave zero-init so every gradient is non-trivial
    torch.nn.init.normal_(p, std=0.02)
net = Trainable(backbone, repa)
batch = LatentBatches(norm, 32, {"clap": ("global", 512), "muq": ("frames", 1024)})[
    CutSet.from_cuts(list(read_cuts(manifest))[:4])]
objective = FlowObjective(TimestepSampler("beta"), load_nulls(info), 0.0, 0.0, 0.5, torch.Generator().manual_seed(0))
draws = objective.draw(batch)
rows = slice(2 * rank, 2 * rank + 2) if distributed else slice(0, 4)
local = {k: (v[rows] if torch.is_tensor(v) or isinstance(v, list) else v) for k, v in batch.items()}
local_draws = {k: v[rows] for k, v in draws.items()}
model = DistributedDataParallel(net) if distributed else net
loss, _ = objective(model, local, "cpu", local_draws)
loss.backward()
if rank == 0:
    torch.save({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}, out)
if distributed:
    dist.barrier()
    dist.destroy_process_group()
