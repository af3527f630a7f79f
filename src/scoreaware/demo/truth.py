"""What the demo did, checked against the synthetic corpus's ground truth (`truth.jsonl`).

The corpus knows which clips have a caption of another clip (``caption_matches_audio``) and
which carry a planted degradation, so the curation stages can be scored: precision and recall
of what filtering removed, how many wrong metadata captions the captioners fixed, and where the
score-aware Beta schedule puts the training time of matched and mismatched segments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoreaware.core.files import read_jsonl
from scoreaware.core.manifests import read_cuts
from scoreaware.core.schedule import beta_alpha, normalize_scores, robust_range
from scoreaware.demo.domain.targets import GENRE_PROMPT, auroc, genre_named
from scoreaware.demo.synth import GENRES
from scoreaware.evaluate.labels import label_accuracy
from scoreaware.schemas.fields import CAPTION, CAPTION_VERBOSE, CLAP_SCORE, REWARD


@dataclass(frozen=True)
class Truth:
    """Ground truth per recording id."""

    rows: dict[str, dict]

    @staticmethod
    def load(path: Path) -> Truth:
        return Truth({str(row["id"]): row for row in read_jsonl(path)})

    def label(self, recording_id: str) -> str:
        row = self.rows.get(recording_id)
        if row is None:
            return "unknown"
        if not row["caption_matches_audio"]:
            return "mismatched caption"
        if row.get("degradation"):
            return f"degraded: {row['degradation']}"
        return "clean"

    def mismatched(self, recording_id: str) -> bool:
        return not self.rows.get(recording_id, {}).get("caption_matches_audio", True)

    def degraded(self, recording_id: str) -> bool:
        return bool(self.rows.get(recording_id, {}).get("degradation"))

    def defective(self, recording_id: str) -> bool:
        """A planted file defect (near-silent, truncated, not audio): neither clean nor degraded."""
        return bool(self.rows.get(recording_id, {}).get("defect"))

    def write_labels(self, out: Path) -> Path:
        """`curate report --labels` input: one label per recording."""
        out.write_text("".join(json.dumps({"id": rid, "label": self.label(rid)}) + "\n" for rid in self.rows))
        return out


def precision_recall(removed: set[str], positives: set[str]) -> dict:
    """Of the removed segments, the share that are positives; of the positives, the share removed."""
    hit = len(removed & positives)
    return {"removed": len(removed), "positives": len(positives), "hit": hit,
            "precision": hit / len(removed) if removed else None,
            "recall": hit / len(positives) if positives else None}


def filtering(truth: Truth, scored: Path, rejected: Path) -> dict:
    """Precision/recall of a filter's removals (`rejected`, from the input `scored`) against the
    planted mismatches, and against mismatches or degradations."""
    recordings = {c.id: c.recording_id for c in read_cuts(scored)}
    removed = {c.id for c in read_cuts(rejected)} if rejected.is_file() else set()
    mismatched = {cid for cid, rid in recordings.items() if truth.mismatched(rid)}
    problems = mismatched | {cid for cid, rid in recordings.items() if truth.degraded(rid)}
    return {"segments": len(recordings), "mismatched": precision_recall(removed, mismatched),
            "mismatched_or_degraded": precision_recall(removed, problems)}


def captions_fixed(truth: Truth, captioned: Path, label: str = "genre",
                   named: Callable[[str, str], bool] = genre_named) -> dict:
    """Of the segments whose metadata caption described another clip, how many now carry a
    caption that names their own `label` (and not the donor's); `named(caption, value)` reads it."""

    fixed = total = right_overall = segments = 0
    for cut in read_cuts(captioned):
        row = truth.rows.get(cut.recording_id)
        caption = (cut.custom or {}).get(CAPTION) or ""
        if row is None or not caption:
            continue
        segments += 1
        right = named(caption, row[label])
        right_overall += right
        if not row["caption_matches_audio"]:
            total += 1
            fixed += right
    return {"mismatched_segments": total, "fixed": fixed, "segments": segments, "label": label,
            f"final_caption_names_the_{label}": right_overall / segments if segments else None}


def separation(truth: Truth, scored: Path, field: str, positive: Callable[[str], bool],
               negative: Callable[[str], bool]) -> dict:
    """AUROC of `field` between the segments whose recording is `positive` and those `negative`
    (P(a positive scores above a negative)), with the counts it rests on; segments of a planted file
    defect are left out."""

    groups: dict[bool, list[float]] = {True: [], False: []}
    for cut in read_cuts(scored):
        value = (cut.custom or {}).get(field)
        if value is None or cut.recording_id not in truth.rows or truth.defective(cut.recording_id):
            continue
        if positive(cut.recording_id):
            groups[True].append(float(value))
        elif negative(cut.recording_id):
            groups[False].append(float(value))
    found = {"positives": len(groups[True]), "negatives": len(groups[False])}
    both = groups[True] and groups[False]
    return found | {"auroc": auroc(np.array(groups[True]), np.array(groups[False])) if both else None}


def mismatch_auroc(truth: Truth, clap_scored: Path) -> dict:
    """The CLAP score of segments with their own caption against those with another clip's."""
    return separation(truth, clap_scored, CLAP_SCORE, lambda r: not truth.mismatched(r), truth.mismatched)


def degradation_auroc(truth: Truth, reward_scored: Path) -> dict:
    """The reward of clean segments against degraded ones, both under their own caption."""
    return separation(truth, reward_scored, REWARD, lambda r: not truth.mismatched(r) and not truth.degraded(r),
                      lambda r: not truth.mismatched(r) and truth.degraded(r))


def beta_times(truth: Truth, scored: Path, training: Path, lam: float = 1.0) -> dict:
    """Mean E[t] of the score-aware Beta schedule for matched and mismatched segments of `scored`,
    with S̃ normalized over the training set's CLAP scores (as `train fit` does)."""

    train_scores = np.array([c.custom[CLAP_SCORE] for c in read_cuts(training)
                             if (c.custom or {}).get(CLAP_SCORE) is not None])
    low, high = robust_range(train_scores)
    groups: dict[str, list[float]] = {"matched": [], "mismatched": []}
    for cut in read_cuts(scored):
        score = (cut.custom or {}).get(CLAP_SCORE)
        if score is None or cut.recording_id not in truth.rows:
            continue
        alpha = float(beta_alpha(normalize_scores(np.array([score]), low, high)[0], lam))
        groups["mismatched" if truth.mismatched(cut.recording_id) else "matched"].append(alpha / (alpha + 1))
    return {name: {"segments": len(v), "mean_t": float(np.mean(v)) if v else None} for name, v in groups.items()}


def caption_examples(captioned: Path, n: int = 3) -> list[dict]:
    """A few segments with their metadata caption, stage 1's description and the final caption."""
    rows = []
    for cut in read_cuts(captioned):
        custom = cut.custom or {}
        if custom.get(CAPTION_VERBOSE) and custom.get("caption_previous"):
            rows.append({"id": cut.id, "metadata": custom["caption_previous"], "verbose": custom[CAPTION_VERBOSE],
                         "final": custom[CAPTION]})
        if len(rows) == n:
            break
    return rows


def sample_genres(run: Path, clap_model: str) -> dict:
    """Zero-shot genre accuracy of generated clips whose prompt id is their genre: the domain
    CLAP's audio embedding (stored by `eval score`) against "{genre} music" for the 7 genres."""
    return label_accuracy(run, clap_model, list(GENRES), GENRE_PROMPT.replace("{genre}", "{label}"))
