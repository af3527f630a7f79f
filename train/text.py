"""Text conditioning: a T5-style token sequence plus the global CLAP text embedding.

The token encoder is any transformers text encoder (default ``google/flan-t5-large``, as the
ATTM baseline; T5 checkpoints load as `T5EncoderModel`, others through `AutoModel`); its
``last_hidden_state`` over at most `max_tokens` tokens is the sequence (variable length; the
batch collator pads and masks). The empty string's features are the CFG null, used both for
condition dropout in training and for the unconditional branch at inference (the baseline's
``empty_string_feat``; TangoFlux zeroes features in training but uses "" at inference, a
mismatch avoided here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel

DEFAULT_TEXT_ENCODER = "google/flan-t5-large"


@dataclass
class TextEncoder:
    model_id: str
    tokenizer: object
    model: torch.nn.Module
    dim: int
    max_tokens: int = 77
    device: str = "cpu"

    def truncated(self, texts: list[str]) -> list[tuple[int, int]]:
        """(index, tokens) of every text longer than `max_tokens`: the encoder sees only its start."""
        counts = [len(ids) for ids in self.tokenizer(texts, truncation=False)["input_ids"]]
        return [(i, n) for i, n in enumerate(counts) if n > self.max_tokens]

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """One (tokens, dim) float32 array per text (padding removed)."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt").to(self.device)
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        lengths = batch["attention_mask"].sum(-1).tolist()
        return [hidden[i, : max(1, n)].float().cpu().numpy() for i, n in enumerate(lengths)]


def load_text_encoder(model: str = DEFAULT_TEXT_ENCODER, device: str = "cpu", max_tokens: int = 77) -> TextEncoder:
    config = AutoConfig.from_pretrained(model)
    cls = T5EncoderModel if config.model_type in ("t5", "mt5", "umt5") else AutoModel
    net = cls.from_pretrained(model).to(device).eval()
    dim = getattr(config, "d_model", None) or config.hidden_size
    return TextEncoder(str(model), AutoTokenizer.from_pretrained(model), net, int(dim), max_tokens, device)


def pad_tokens(sequences: list[np.ndarray], min_length: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (L_i, D) arrays to (N, L_max, D) with a (N, L_max) bool mask of real tokens."""
    length = max(min_length, max(s.shape[0] for s in sequences))
    dim = sequences[0].shape[1]
    out = torch.zeros(len(sequences), length, dim)
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for i, s in enumerate(sequences):
        out[i, : s.shape[0]] = torch.from_numpy(np.asarray(s, dtype=np.float32))
        mask[i, : s.shape[0]] = True
    return out, mask
