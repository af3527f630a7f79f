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
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, PROMPT_ID


def label_hits(run: Path, clap_model: str, labels: list[str], template: str = "{label} music") -> dict[str, bool]:
    """clip id → whether the CLAP hears its prompt id's class (clips whose prompt id is no class
    are left out)."""
    return {cut_id: hit for cut_id, (_, hit) in _heard(run, clap_model, labels, template).items()}


def label_accuracy(run: Path, clap_model: str, labels: list[str], template: str = "{label} music") -> dict:
    """{clips, hits, accuracy, chance, per_label} over a scored run; `per_label` maps each class
    with clips to [hits, clips] (a rate hides which classes fail: 35/42 can be one class lost or
    three half-lost)."""
    heard = _heard(run, clap_model, labels, template)
    per_label = {label: [0, 0] for label in labels}
    for label, hit in heard.values():
        per_label[label][0] += int(hit)
        per_label[label][1] += 1
    hits, clips = sum(h for h, _ in per_label.values()), len(heard)
    return {"clips": clips, "hits": hits, "accuracy": hits / clips if clips else None, "chance": 1 / len(labels),
            "per_label": {k: v for k, v in per_label.items() if v[1]}}


def _heard(run: Path, clap_model: str, labels: list[str], template: str) -> dict[str, tuple[str, bool]]:
    """clip id → (its prompt's class, whether the CLAP's nearest class is that one)."""
    texts = load_transformers_clap(clap_model).embed_text([template.format(label=label) for label in labels])
    heard = {}
    for cut in read_cuts(Path(run) / "eval" / "clap.jsonl.gz"):
        label = (cut.custom or {}).get(PROMPT_ID)
        if label in labels and cut.has_custom(CLAP_AUDIO_EMB):
            heard[cut.id] = label, labels[int(np.argmax(texts @ cut.load_custom(CLAP_AUDIO_EMB)))] == label
    return heard
