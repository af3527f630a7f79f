"""Zero-shot labels heard in generated clips: does the CLAP hear the class a prompt asked for?

When prompt ids name classes ("rock", "jazz" …), each scored clip's CLAP audio embedding (stored
by `eval score` in ``eval/clap.jsonl.gz``) is matched against the text embeddings of
``template.format(label=…)`` for every class; a clip is a hit when the nearest class is its
prompt's. The chance rate is 1 / classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scoreaware.core.manifests import read_cuts
from scoreaware.curate.scoring.clap import load_transformers_clap


def label_hits(run: Path, clap_model: str, labels: list[str], template: str = "{label} music") -> dict[str, bool]:
    """clip id → whether the CLAP hears its prompt id's class (clips whose prompt id is no class
    are left out)."""
    texts = load_transformers_clap(clap_model).embed_text([template.format(label=label) for label in labels])
    hits = {}
    for cut in read_cuts(Path(run) / "eval" / "clap.jsonl.gz"):
        label = (cut.custom or {}).get("prompt_id")
        if label in labels and cut.has_custom("clap_audio_emb"):
            hits[cut.id] = labels[int(np.argmax(texts @ cut.load_custom("clap_audio_emb")))] == label
    return hits


def label_accuracy(run: Path, clap_model: str, labels: list[str], template: str = "{label} music") -> dict:
    """{clips, hits, accuracy, chance} of `label_hits` over a scored run."""
    hits = label_hits(run, clap_model, labels, template)
    return {"clips": len(hits), "hits": sum(hits.values()),
            "accuracy": float(np.mean(list(hits.values()))) if hits else None, "chance": 1 / len(labels)}
