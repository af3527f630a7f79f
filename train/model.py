"""FluxAudio-style diffusion transformer for text-to-music latents.

References:
  FluxAudio (ATTM baseline, ntu-musicailab/ICME26-ATTM-GC-MeanAudio, meanaudio/model/networks.py):
    audio ConvMLP input projection, T5 token + CLAP global conditioning, joint MMDiT blocks then
    single-stream ("fused") blocks over the latent, AdaLN-zero, 1-D RoPE.
  DiT (facebookresearch/DiT, models.py): AdaLN-zero, zero-initialized final layer.
  SD3 / MMDiT: joint attention over two streams with separate weights.
  Reward conditioning (yonghyunk1m/ttm-humanpref): score -> Fourier features -> MLP (zero-init),
    added to the AdaLN vector (v1, "global_adaln") or to the latent input (v2, "input_add").

The backbone predicts the flow velocity ``v = forward(x_t, t, cond)``; objectives live in
`train.flow`, `train.repa` and `train.preference`, and this file never branches on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scoreaware.train.conv import conv1d_channel_last

SCORE_HEADS = ("none", "global_adaln", "input_add", "token")


# ---------------------------------------------------------------------------------- helpers
def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """AdaLN: x (N, T, D) * (1 + scale) + shift, with shift/scale (N, D)."""
    return x * (1 + scale[:, None]) + shift[:, None]


def rope_frequencies(length: int, dim: int, device, base: float = 10000.0) -> Tensor:
    """Unit complex rotations (length, dim/2) for 1-D rotary position embeddings."""
    inv = 1.0 / base ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv[None]
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: Tensor, rotations: Tensor) -> Tensor:
    """Rotate pairs of channels (2i, 2i+1) of x (N, H, T, Dh) by position; rotations (T, Dh/2) complex.

    One complex multiply: the stack-and-interleave form of the same rotation made four copies of
    q and k per block (~8 % of a tiny CPU step)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (N, H, T, Dh/2)
    return torch.view_as_real(pairs * rotations).flatten(-2).type_as(x)


class ConvMLP(nn.Module):
    """Position-wise MLP whose layers are 1-D convolutions over time (kernel k), channel-last I/O.

    The weights are `nn.Conv1d`s (FluxAudio's layout, so checkpoints keep their keys and shapes);
    the forward pass computes them as matmuls (`conv1d_channel_last`)."""

    def __init__(self, dim: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Conv1d(dim, hidden, kernel, padding=kernel // 2)
        self.fc2 = nn.Conv1d(hidden, dim, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """(N, T, D) -> (N, T, D); positions where `mask` (N, T) is False are zeroed before
        each convolution, so they act exactly like the convolution's own zero padding."""
        if mask is None:
            h = F.silu(conv1d_channel_last(x, self.fc1.weight, self.fc1.bias))
            return conv1d_channel_last(h, self.fc2.weight, self.fc2.bias)
        keep = mask[..., None].to(x.dtype)  # (N, T, 1)
        h = F.silu(conv1d_channel_last(x * keep, self.fc1.weight, self.fc1.bias)) * keep
        return conv1d_channel_last(h, self.fc2.weight, self.fc2.bias)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.silu(self.fc1(x)))


# --------------------------------------------------------------------------------- embedders
class TimestepEmbedder(nn.Module):
    """t in [0, 1] -> sinusoidal features (of 1000·t) -> MLP (DiT)."""

    def __init__(self, dim: int, frequency_dim: int = 256) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:  # (N,) -> (N, D)
        half = self.frequency_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1).to(self.mlp[0].weight.dtype))


class ScoreEmbedder(nn.Module):
    """Normalized score -> random Fourier features -> MLP with a zero-initialized output.

    A masked-out (null) score embeds to exactly zero, the CFG null of the score axis.
    """

    def __init__(self, dim: int, fourier: int = 64, sigma: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.randn(fourier // 2) * sigma, persistent=True)
        self.mlp = nn.Sequential(nn.Linear(fourier + 1, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, score: Tensor, keep: Tensor) -> Tensor:  # (N,), (N,) bool -> (N, D)
        angles = 2 * math.pi * score.float()[:, None] * self.frequencies[None]
        features = torch.cat([score.float()[:, None], angles.cos(), angles.sin()], dim=-1)
        dtype = self.mlp[0].weight.dtype
        return self.mlp(features.to(dtype)) * keep.to(dtype)[:, None]


# ------------------------------------------------------------------------------------ blocks
class JointBlock(nn.Module):
    """MMDiT block: latent and text streams with their own weights, one joint attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, pre_only: bool = False, kernel: int = 3) -> None:
        super().__init__()
        self.heads, self.pre_only = heads, pre_only
        hidden = int(dim * mlp_ratio)
        self.norm_x = nn.LayerNorm(dim, elementwise_affine=False)
        self.norm_c = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv_x, self.qkv_c = nn.Linear(dim, 3 * dim), nn.Linear(dim, 3 * dim)
        self.out_x = nn.Linear(dim, dim)
        self.mlp_x = ConvMLP(dim, hidden, kernel=kernel)
        self.norm2_x = nn.LayerNorm(dim, elementwise_affine=False)
        self.ada_x = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        # the last joint block only feeds the latent stream: its text side stops after attention
        self.ada_c = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim if pre_only else 6 * dim))
        if not pre_only:
            self.out_c = nn.Linear(dim, dim)
            # conv MLP on the text stream too: lands the presets on the published sizes (S ≈ 120M)
            self.mlp_c = ConvMLP(dim, hidden, kernel=kernel)
            self.norm2_c = nn.LayerNorm(dim, elementwise_affine=False)

    def forward(self, x: Tensor, c: Tensor, g: Tensor, rope: Tensor, text_mask: Tensor,
                latent_mask: Tensor | None):
        """x (N, T, D) latent, c (N, L, D) text, g (N, D) global, masks (N, L) / (N, T) of real
        tokens (latent_mask None: every frame is real); returns updated (x, c)."""
        n, t, d = x.shape
        sx, cx, gx, sx2, cx2, gx2 = self.ada_x(g).chunk(6, dim=-1)  # each (N, D)
        mods_c = self.ada_c(g).chunk(2 if self.pre_only else 6, dim=-1)
        q_x, k_x, v_x = self._heads(self.qkv_x(modulate(self.norm_x(x), sx, cx)))  # (N, H, T, Dh)
        q_c, k_c, v_c = self._heads(self.qkv_c(modulate(self.norm_c(c), mods_c[0], mods_c[1])))  # (N, H, L, Dh)
        q_x, k_x = apply_rope(q_x, rope), apply_rope(k_x, rope)
        q, k, v = torch.cat([q_c, q_x], 2), torch.cat([k_c, k_x], 2), torch.cat([v_c, v_x], 2)  # (N, H, L+T, Dh)
        real = torch.ones(n, t, dtype=torch.bool, device=x.device) if latent_mask is None else latent_mask
        keep = torch.cat([text_mask, real], 1)  # (N, L+T) real tokens: padding is never attended
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # (N, H, L+T, Dh)
        attn = attn.transpose(1, 2).reshape(n, -1, d)  # (N, L+T, D)
        a_c, a_x = attn[:, : c.shape[1]], attn[:, c.shape[1] :]
        x = x + gx[:, None] * self.out_x(a_x)
        x = x + gx2[:, None] * self.mlp_x(modulate(self.norm2_x(x), sx2, cx2), latent_mask)
        if not self.pre_only:
            _, _, gc, sc2, cc2, gc2 = mods_c
            c = c + gc[:, None] * self.out_c(a_c)
            # the conv MLP ignores padded tokens, so padding never leaks into real ones
            c = c + gc2[:, None] * self.mlp_c(modulate(self.norm2_c(c), sc2, cc2), text_mask)
        return x, c

    def _heads(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, t, _ = qkv.shape
        return qkv.reshape(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)


class SingleBlock(nn.Module):
    """Single-stream block over the latent tokens (FluxAudio "fused" block), conv MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, kernel: int = 3) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio), kernel=kernel)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: Tensor, g: Tensor, rope: Tensor, latent_mask: Tensor | None) -> Tensor:
        """x (N, T, D), g (N, D), latent_mask (N, T) of real frames or None (all real)."""
        n, t, d = x.shape
        s1, c1, g1, s2, c2, g2 = self.ada(g).chunk(6, dim=-1)  # each (N, D)
        q, k, v = self.qkv(modulate(self.norm1(x), s1, c1)).reshape(n, t, 3, self.heads, -1).permute(
            2, 0, 3, 1, 4).unbind(0)  # (N, H, T, Dh)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        mask = None if latent_mask is None else latent_mask[:, None, None, :]
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + g1[:, None] * self.out(attn.transpose(1, 2).reshape(n, t, d))  # (N, T, D)
        return x + g2[:, None] * self.mlp(modulate(self.norm2(x), s2, c2), latent_mask)


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_channels)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:  # (N, T, D) -> (N, T, C)
        shift, scale = self.ada(g).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


# ------------------------------------------------------------------------------------- model
@dataclass
class ModelConfig:
    """Backbone hyperparameters (see `MODELS` for the named presets)."""

    latent_channels: int = 64
    text_dim: int = 1024  # T5 width (flan-t5-large)
    clap_dim: int = 512
    dim: int = 448
    heads: int = 7
    joint_depth: int = 4
    single_depth: int = 8
    mlp_ratio: float = 4.0
    max_latent_frames: int = 1024  # only bounds the RoPE table
    mlp_kernel: int = 3  # FluxAudio's conv MLPs; 1 gives plain position-wise MLPs (Flux/DiT blocks)
    input_kernel: int = 7  # audio input projection conv width (FluxAudio: 7)
    score_head: str = "none"  # none | global_adaln | input_add | token
    repa_depth: int = 4  # hidden state (1-based block index over joint+single) REPA aligns

    def __post_init__(self) -> None:
        if self.score_head not in SCORE_HEADS:
            raise ValueError(f"score head {self.score_head!r} not implemented; choose from {SCORE_HEADS}")
        if self.mlp_kernel % 2 == 0 or self.input_kernel % 2 == 0:
            raise ValueError(f"conv kernels must be odd (the output keeps the input's length): mlp_kernel "
                             f"{self.mlp_kernel}, input_kernel {self.input_kernel}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of even width")


@dataclass
class Conditioning:
    """Inputs besides (x_t, t). Shapes: text (N, L, text_dim), text_mask (N, L) bool,
    clap (N, clap_dim), score (N,) normalized, score_mask (N,) bool (False = null score),
    latent_mask (N, T) bool of real latent frames (None: all real)."""

    text: Tensor
    text_mask: Tensor
    clap: Tensor
    score: Tensor | None = None
    score_mask: Tensor | None = None
    latent_mask: Tensor | None = None

    def index(self, rows) -> Conditioning:
        def pick(v):
            return None if v is None else v[rows]

        return Conditioning(self.text[rows], self.text_mask[rows], self.clap[rows], pick(self.score),
                            pick(self.score_mask), pick(self.latent_mask))

    @staticmethod
    def cat(parts: list[Conditioning]) -> Conditioning:
        """Stack along the batch, padding text sequences (and masks) to the longest."""
        length = max(p.text.shape[1] for p in parts)
        text = torch.cat([F.pad(p.text, (0, 0, 0, length - p.text.shape[1])) for p in parts])
        mask = torch.cat([F.pad(p.text_mask, (0, length - p.text_mask.shape[1])) for p in parts])

        def join(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else torch.cat(values)

        return Conditioning(text, mask, join("clap"), join("score"), join("score_mask"), join("latent_mask"))


class FluxAudio(nn.Module):
    """Joint MMDiT blocks over (latent, text), then single-stream blocks over the latent."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.audio_in = nn.Sequential(  # ChannelLastConv1d(k=7) -> SELU -> ConvMLP(k=7), as FluxAudio
            _ChannelLastConv(c.latent_channels, c.dim, c.input_kernel), nn.SELU(),
            ConvMLP(c.dim, 4 * c.dim, kernel=c.input_kernel))
        self.text_in = nn.Sequential(nn.Linear(c.text_dim, c.dim), MLP(c.dim, 4 * c.dim))
        self.clap_in = nn.Sequential(nn.Linear(c.clap_dim, c.dim), MLP(c.dim, 4 * c.dim))
        self.t_embed = TimestepEmbedder(c.dim)
        self.score_embed = ScoreEmbedder(c.dim) if c.score_head != "none" else None
        self.joint = nn.ModuleList(JointBlock(c.dim, c.heads, c.mlp_ratio, i == c.joint_depth - 1, c.mlp_kernel)
                                   for i in range(c.joint_depth))
        self.single = nn.ModuleList(SingleBlock(c.dim, c.heads, c.mlp_ratio, c.mlp_kernel)
                                    for _ in range(c.single_depth))
        self.final = FinalLayer(c.dim, c.latent_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for module in self.modules():  # xavier for every linear, as DiT
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for block in [*self.joint, *self.single]:  # AdaLN-zero: every block starts as the identity
            for ada in (getattr(block, "ada_x", None), getattr(block, "ada_c", None), getattr(block, "ada", None)):
                if ada is not None:
                    nn.init.zeros_(ada[-1].weight)
                    nn.init.zeros_(ada[-1].bias)
        nn.init.zeros_(self.final.ada[-1].weight)  # zero final layer: the initial prediction is 0
        nn.init.zeros_(self.final.ada[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)
        if self.score_embed is not None:  # zero-init score output: conditioning starts as a no-op
            nn.init.zeros_(self.score_embed.mlp[-1].weight)
            nn.init.zeros_(self.score_embed.mlp[-1].bias)

    def forward(self, x_t: Tensor, t: Tensor, cond: Conditioning) -> Tensor:
        """Velocity prediction.

        :param x_t: (N, T, C) noisy latent at time t (t = 1 is pure noise).
        :param t: (N,) times in [0, 1].
        :param cond: text tokens, text mask, CLAP text embedding, optional score.
        :return: (N, T, C) predicted velocity ``noise − data``.
        """
        return self.forward_with_hidden(x_t, t, cond)[0]

    def forward_with_hidden(self, x_t: Tensor, t: Tensor, cond: Conditioning, depth: int | None = None):
        """(velocity, hidden state (N, T, D) after block `depth`, default `config.repa_depth`)."""
        depth = self.config.repa_depth if depth is None else depth
        latent_mask = cond.latent_mask
        if latent_mask is not None and bool(latent_mask.all()):
            # no padded frame: skip the masking (one (N, T, 4·D) multiply per conv MLP, forward and
            # backward, and a masked attention kernel; ~5 % of a tiny CPU step). On a GPU the check
            # is one host sync per forward.
            latent_mask = None
        conv, selu, conv_mlp = self.audio_in  # padded frames are zeroed before every convolution
        x = x_t if latent_mask is None else x_t * latent_mask[..., None]
        x = conv_mlp(selu(conv(x)), latent_mask)  # (N, T, D)
        c = self.text_in(cond.text)  # (N, L, D)
        g = self.t_embed(t) + self.clap_in(cond.clap)  # (N, D) global AdaLN vector
        text_mask = cond.text_mask
        if self.score_embed is not None:
            keep = cond.score_mask if cond.score_mask is not None else torch.zeros_like(t, dtype=torch.bool)
            score = cond.score if cond.score is not None else torch.zeros_like(t)
            s = self.score_embed(score, keep)  # (N, D), zero when null
            head = self.config.score_head
            if head == "global_adaln":
                g = g + s
            elif head == "input_add":
                x = x + s[:, None]
            else:  # "token": one more conditioning token, first, so text padding cannot move it
                c = torch.cat([s[:, None], c], dim=1)  # (N, 1+L, D)
                text_mask = torch.cat([torch.ones_like(keep)[:, None], text_mask], dim=1)
        rope = rope_frequencies(x.shape[1], self.config.dim // self.config.heads, x.device)
        hidden = None
        for i, block in enumerate(self.joint, start=1):
            x, c = block(x, c, g, rope, text_mask, latent_mask)
            hidden = x if i == depth else hidden
        for i, block in enumerate(self.single, start=len(self.joint) + 1):
            x = block(x, g, rope, latent_mask)
            hidden = x if i == depth else hidden
        return self.final(x, g), hidden  # (N, T, C), (N, T, D)

    def forward_with_cfg(self, x_t: Tensor, t: Tensor, cond: Conditioning, null: Conditioning,
                         scale: float) -> Tensor:
        """Joint CFG over text and score: ``v = w·v(cond) + (1 − w)·v(null)`` in one batch."""
        if scale == 1.0:
            return self.forward(x_t, t, cond)
        both = self.forward(torch.cat([x_t, x_t]), torch.cat([t, t]), Conditioning.cat([cond, null]))
        v_cond, v_null = both.chunk(2)
        return scale * v_cond + (1 - scale) * v_null


class _ChannelLastConv(nn.Conv1d):
    """Conv1d on (N, T, C) tensors (computed as a matmul, `conv1d_channel_last`)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__(cin, cout, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return conv1d_channel_last(x, self.weight, self.bias)


# ----------------------------------------------------------------------------------- presets
MODELS: dict[str, dict] = {
    "tiny": dict(dim=64, heads=4, joint_depth=2, single_depth=2, repa_depth=2),  # CPU tests and the demo
    "small": dict(dim=128, heads=4, joint_depth=2, single_depth=4, repa_depth=2),  # CPU: twice tiny's width
    "S": dict(dim=448, heads=7, joint_depth=4, single_depth=8, repa_depth=4),  # ≈120M (FluxAudio-S)
    "L": dict(dim=896, heads=14, joint_depth=4, single_depth=8, repa_depth=4),  # ≈450–480M
}


def build_model(preset: str, **overrides) -> FluxAudio:
    """A FluxAudio of a named preset; `overrides` set other ModelConfig fields."""
    if preset not in MODELS:
        raise ValueError(f"model preset {preset!r} not implemented; choose from {list(MODELS)}")
    return FluxAudio(ModelConfig(**{**MODELS[preset], **overrides}))
