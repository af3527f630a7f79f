"""Curation report: what every stage kept and rejected, score distributions, and examples.

Input: the manifests of one run (any order; sorted by their stage). Output: a self-contained
``index.html`` (figures embedded) plus the figures as PNG files, written atomically.

With labels (a JSONL file of ``{"id": cut or recording id, "label": ...}``, e.g. the planted
problems of a synthetic corpus or a hand-checked subset), the score histograms are split by
label and a table shows what each filtering stage removed of every label.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf

from scoreaware.core.files import count_lines, read_jsonl, safe_name, save_figure
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import QUARANTINE, sibling
from scoreaware.core.provenance import read_provenance
from scoreaware.core.redact import redact
from scoreaware.core.schedule import beta_alpha, beta_density, normalize_scores, robust_range
from scoreaware.schemas.fields import CLAP_SCORE, COMBINED_SCORE, LOUDNESS_LUFS, REWARD
from scoreaware.schemas.tables import iter_table_chunks

STAGE_ORDER = ["ingest", "segment", "clap", "reward", "caption_audio", "caption_rewrite", "filter", "select",
               "mixture"]
TABLE_COLUMNS = ["id", "duration", "caption", CLAP_SCORE, REWARD, COMBINED_SCORE, LOUDNESS_LUFS]


@dataclass
class StageRow:
    path: Path
    stage: str
    table: pd.DataFrame
    rejected: dict
    hours: float
    finished: str = ""


def load_stage(path: Path) -> StageRow:
    """The scalar table, stage and reject reasons of one manifest."""

    sidecar = read_provenance(path) or {}
    stage = sidecar.get("stage", "?")
    columns = [*TABLE_COLUMNS, "recording_id"]
    frames = [chunk.reindex(columns=[c for c in columns if c in chunk.columns])
              for chunk in iter_table_chunks(read_cuts(path))]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "duration"])
    rejected = dict(sidecar.get("summary", {}).get("rejected_by_reason", {}))
    if not rejected and sibling(path, QUARANTINE).is_file():
        for row in read_jsonl(sibling(path, QUARANTINE)):
            rejected[row["reason"]] = rejected.get(row["reason"], 0) + 1
    hours = float(pd.to_numeric(table.get("duration", pd.Series(dtype=float))).sum()) / 3600
    return StageRow(path, stage, table, rejected, hours, sidecar.get("finished_at", ""))


def _figure_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.png"


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path)


def before_after_rows(rows: list[StageRow], column: str) -> list[StageRow]:
    """The stages a before/after histogram of `column` shows, in run order.

    "Before" is the last stage that scored the column ahead of curation: after a rescore on the
    final captions that is the rescore, so every histogram shows the same score.
    """
    having = [r for r in rows if column in r.table and r.table[column].notna().any()]
    if not having:
        return []
    curated = next((i for i, r in enumerate(having) if r.stage in ("filter", "select")), len(having))
    return [having[max(curated - 1, 0)]] + [r for r in having[curated:] if r.stage in ("filter", "select")]


def plot_before_after(rows: list[StageRow], column: str, label: str, out: Path) -> Path | None:
    """Histograms of `column` as scored, after filtering and as selected (those present), overlaid."""

    shown = before_after_rows(rows, column)
    if not shown:
        return None
    values = [pd.to_numeric(r.table[column], errors="coerce").dropna().to_numpy() for r in shown]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=30)
    names = {"filter": "after filtering", "select": "selected"}
    colors = ["#7a8fa6", "#d2691e", "#2e8b57"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, (r, v, color) in enumerate(zip(shown, values, colors)):
        name = f"as scored ({r.path.name.split('.')[0]})" if i == 0 else names[r.stage]
        ax.hist(v, bins=edges, alpha=0.6, color=color, label=f"{name}: {len(v)}")
    ax.set_xlabel(label)
    ax.set_ylabel("segments")
    ax.set_title(f"{label}: before and after curation" if len(shown) > 1
                 else f"{label} as scored (no filter or select output among the manifests)")
    ax.legend()
    return _save(fig, out)


def plot_beta_schedule(scores: np.ndarray | None, lam: float, out: Path) -> Path:
    """Score-aware Beta timestep densities for S̃ ∈ {0, .25, .5, .75, 1} (and the data's quantiles)."""

    t = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for s in (1.0, 0.75, 0.5, 0.25, 0.0):
        alpha = float(beta_alpha(s, lam))
        ax.plot(t, beta_density(t, s, lam), label=f"S̃={s:.2f}  E[t]={alpha / (alpha + 1):.2f}")
    title = f"score-aware timestep density, λ={lam:g} (t=1 is noise)"
    if scores is not None and len(scores):
        low, high = robust_range(scores)
        quartiles = normalize_scores(np.percentile(scores, [10, 50, 90]), low, high)
        title += f"\nthis data: CLAP p10/p50/p90 → S̃ = {quartiles[0]:.2f} / {quartiles[1]:.2f} / {quartiles[2]:.2f}"
    ax.set_xlabel("t")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_caption_lengths(rows: list[StageRow], out: Path) -> Path | None:
    having = [r for r in rows if "caption" in r.table and r.table["caption"].notna().any()]
    if not having:
        return None
    words = having[-1].table["caption"].dropna().astype(str).str.split().str.len()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.hist(words, bins=np.arange(words.min() - 0.5, words.max() + 1.5), color="#3b6ea8", edgecolor="white")
    ax.axvline(100, color="red", linestyle="--", label="100-word limit of the challenge prompts")
    ax.set_xlabel(f"caption length in words ({having[-1].stage})")
    ax.set_ylabel("segments")
    ax.legend(fontsize=8)
    return _save(fig, out)


def examples(rows: list[StageRow], k: int) -> tuple[str, pd.DataFrame, pd.DataFrame, Path | None]:
    """Best and worst k segments by combined score, else CLAP score, from the richest manifest
    (and that manifest). With fewer than 2k segments they split them: none is listed twice."""
    for key in (COMBINED_SCORE, CLAP_SCORE, REWARD):
        having = [r for r in rows if key in r.table and r.table[key].notna().any()]
        if having:
            source = max(having, key=lambda r: len(r.table))
            table = source.table.dropna(subset=[key]).sort_values(key, ascending=False)
            best = table.head(min(k, math.ceil(len(table) / 2)))
            worst = table.iloc[len(best):].tail(k).iloc[::-1]
            return key, best, worst, source.path
    return "", pd.DataFrame(), pd.DataFrame(), None


def write_clips(manifest: Path | None, ids: list[str], folder: Path) -> dict[str, str]:
    """The window of each cut `ids` names (only its window, not the source file) as FLAC under
    `folder`; {id: path relative to the report}. Unreadable cuts are left out."""
    if manifest is None or not ids:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    wanted, found = set(ids), {}
    for cut in read_cuts(manifest):
        if cut.id not in wanted:
            continue
        try:
            audio = np.atleast_2d(cut.load_audio()).T  # (time, channels)
        except Exception:  # noqa: BLE001 - a report lists what it can play; the stages quarantined the rest
            continue
        name = f"{safe_name(cut.id)}.flac"
        sf.write(folder / name, np.clip(audio, -1, 1), cut.sampling_rate, format="FLAC")
        found[cut.id] = f"{folder.name}/{name}"
    return found


def _html_table(frame: pd.DataFrame, audio: dict[str, str] | None = None) -> str:
    if frame.empty:
        return "<p>(none)</p>"
    cols = [c for c in TABLE_COLUMNS if c in frame.columns]
    head = ("<th>listen</th>" if audio else "") + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for _, row in frame[cols].iterrows():
        cells = []
        for c in cols:
            v = row[c]
            text = f"{v:.4f}" if isinstance(v, float) and not math.isnan(v) else ("" if v is None or
                                                                                 (isinstance(v, float)) else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        if audio:
            src = audio.get(str(row["id"]))
            player = f"<audio controls preload='none' src='{html.escape(src)}'></audio>" if src else "(unreadable)"
            cells.insert(0, f"<td>{player}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def read_labels(path: Path) -> dict[str, str]:
    """{cut or recording id: label} from JSONL rows ``{"id": ..., "label": ...}``."""

    labels = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                labels[str(row["id"])] = str(row["label"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: expected {{\"id\": ..., \"label\": ...}} ({exc})") from None
    return labels


def labelled(table: pd.DataFrame, labels: dict[str, str]) -> pd.Series:
    """The label of every row: by cut id, else by recording id, else "unlabelled"."""
    by_cut = table["id"].astype(str).map(labels)
    if "recording_id" in table:
        by_cut = by_cut.fillna(table["recording_id"].astype(str).map(labels))
    return by_cut.fillna("unlabelled")


def plot_by_label(rows: list[StageRow], column: str, label: str, labels: dict[str, str], out: Path) -> Path | None:
    """Histograms of `column` as scored (before curation), one per label, overlaid."""

    shown = before_after_rows(rows, column)
    if not shown:
        return None
    table = shown[0].table
    values = pd.to_numeric(table[column], errors="coerce")
    names = labelled(table, labels)
    keep = values.notna()
    edges = np.histogram_bin_edges(values[keep].to_numpy(), bins=30)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name in sorted(names[keep].unique(), key=lambda n: (-int((names[keep] == n).sum()), n)):
        part = values[keep & (names == name)].to_numpy()
        ax.hist(part, bins=edges, alpha=0.55, label=f"{name}: {len(part)} (mean {part.mean():.3f})")
    ax.set_xlabel(label)
    ax.set_ylabel("segments")
    ax.set_title(f"{label} by label, as scored ({shown[0].path.name.split('.')[0]})")
    ax.legend(fontsize=7)
    return _save(fig, out)


def removal_by_label(rows: list[StageRow], labels: dict[str, str]) -> str:
    """HTML: for each filtering stage, how many segments of each label went in and were removed."""

    parts = []
    for r in rows:
        rejected_path = sibling(r.path, "rejected")
        if r.stage != "filter" or not rejected_path.is_file():
            continue
        frames = list(iter_table_chunks(read_cuts(rejected_path)))
        removed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id"])
        kept_labels = labelled(r.table, labels).value_counts() if len(r.table) else pd.Series(dtype=int)
        removed_labels = labelled(removed, labels).value_counts() if len(removed) else pd.Series(dtype=int)
        lines = []
        for name in sorted(set(kept_labels.index) | set(removed_labels.index)):
            gone, kept = int(removed_labels.get(name, 0)), int(kept_labels.get(name, 0))
            lines.append(f"<tr><td>{html.escape(name)}</td><td>{gone + kept}</td><td>{gone}</td>"
                         f"<td>{100 * gone / max(gone + kept, 1):.0f} %</td></tr>")
        parts.append(f"<h3>{html.escape(r.path.name)}</h3><table><tr><th>label</th><th>in</th><th>removed</th>"
                     f"<th>share removed</th></tr>{''.join(lines)}</table>")
    return "".join(parts) or "<p>(no filtering stage among the manifests)</p>"


def build_report(manifests: list[Path], out_dir: Path, lam: float = 1.0, k: int = 8,
                 labels: dict[str, str] | None = None) -> Path:
    """Write ``out_dir/index.html`` and its PNG figures; returns the HTML path."""

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [load_stage(Path(p)) for p in manifests]
    # chronological (sidecar finish times); stage order breaks ties and places manifests without one
    rows.sort(key=lambda r: (r.finished or "~", STAGE_ORDER.index(r.stage) if r.stage in STAGE_ORDER else 99))
    figures = []
    for column, label in ((CLAP_SCORE, "CLAP score"), (REWARD, REWARD)):
        fig = plot_before_after(rows, column, label, _figure_path(out_dir, f"{column}_hist"))
        if fig:
            figures.append((f"{label} before/after", fig))
    if labels:
        for column, label in ((CLAP_SCORE, "CLAP score"), (REWARD, REWARD)):
            fig = plot_by_label(rows, column, label, labels, _figure_path(out_dir, f"{column}_by_label"))
            if fig:
                figures.append((f"{label} by label", fig))
    clap_rows = [r for r in rows if CLAP_SCORE in r.table and r.table[CLAP_SCORE].notna().any()]
    scores = pd.to_numeric(clap_rows[0].table[CLAP_SCORE]).dropna().to_numpy() if clap_rows else None
    figures.append(("Beta timestep schedule", plot_beta_schedule(scores, lam, _figure_path(out_dir, "beta_schedule"))))
    fig = plot_caption_lengths(rows, _figure_path(out_dir, "caption_lengths"))
    if fig:
        figures.append(("caption lengths", fig))
    key, best, worst, source = examples(rows, k)
    audio = write_clips(source, [str(i) for i in [*best.get("id", []), *worst.get("id", [])]], out_dir / "audio")
    stage_lines = []
    for r in rows:
        extra = {}
        if sibling(r.path, "rejected").is_file():
            extra["rejected"] = count_lines(sibling(r.path, "rejected"))
        reasons = ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(r.rejected.items())) or "—"
        stage_lines.append(f"<tr><td>{html.escape(r.stage)}</td><td>{html.escape(r.path.name)}</td>"
                           f"<td>{len(r.table)}</td><td>{r.hours:.3f}</td><td>{reasons}</td></tr>")
    images = "".join(
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'/><figcaption>{html.escape(title)} "
        f"({path.name})</figcaption></figure>" for title, path in figures)
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>scoreaware curation report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;
margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:90%}}
figure{{display:inline-block;margin:0.5em}}img{{max-width:520px}}</style></head><body>
<h1>Curation report</h1>
<p>Made {html.escape(_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))} by
<code>{html.escape(redact(" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])))}</code>.</p>
<h2>How to read it</h2>
<ul><li><b>CLAP score</b>: the cosine between a segment's audio embedding and its caption's text embedding
(−1 to 1; higher means the caption describes the audio). Filtering drops the lowest; the score-aware schedule
uses it too.</li>
<li><b>Reward</b>: the preference model's score of the audio (higher is preferred); selection blends it with the
CLAP score.</li>
<li><b>Beta timestep schedule</b>: S̃ is a segment's CLAP score normalized to [0, 1] over the training set
(robust percentiles); training draws t ~ Beta(1 + λ(1 − S̃), 1), where t = 1 is pure noise. S̃ = 1 gives uniform t;
a low S̃ pushes t toward 1 (E[t] = α / (α + 1), α = 1 + λ(1 − S̃)): badly captioned segments teach the coarse,
noisy end of generation rather than the details. λ = {lam:g} here.</li></ul>
<h2>Stages</h2><table><tr><th>stage</th><th>manifest</th><th>cuts</th><th>hours</th>
<th>rejected / quarantined (reason count)</th></tr>{''.join(stage_lines)}</table>
<h2>Distributions</h2>{images}
{"<h2>What filtering removed, by label</h2>" + removal_by_label(rows, labels) if labels else ""}
<h2>Best {len(best)} segments by {html.escape(key or '—')}</h2>{_html_table(best, audio)}
<h2>Worst {len(worst)} segments by {html.escape(key or '—')}</h2>{_html_table(worst, audio)}
<h2>Inputs</h2><table><tr><th>manifest</th><th>stage</th><th>bytes</th><th>finished</th></tr>{''.join(
    f"<tr><td>{html.escape(str(r.path))}</td><td>{html.escape(r.stage)}</td><td>{r.path.stat().st_size}</td>"
    f"<td>{html.escape(r.finished or '—')}</td></tr>" for r in rows)}</table>
</body></html>
"""
    index = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, index)
    return index
