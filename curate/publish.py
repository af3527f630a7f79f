"""Curated manifests <-> Hugging Face `datasets`: export, publish to the Hub, import back.

One row per segment: the segment's own audio (only its window, FLAC-encoded bytes, not the
whole source file — unlike Lhotse's `to_huggingface_dataset`), its captions, tags, scores and
provenance. The dataset is built by streaming (`Dataset.from_generator`, a few hundred rows in
memory at a time) into Parquet shards of bounded size, with a dataset card; `load_dataset` on
the folder reads it. Rows whose audio cannot be read are skipped and listed, never abort the run.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import Recording
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.files import safe_name
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import provenance_chain

RESERVED = ("audio", "id", "recording_id", "start", "duration", "sampling_rate", "num_channels")
WRITER_BATCH_ROWS = 64  # rows buffered before Arrow flushes: bounds memory (10 s stereo FLAC ≈ 1 MB)


@dataclass
class ExportResult:
    directory: Path
    rows: int
    shards: int
    skipped: list[dict] = field(default_factory=list)
    bytes: int = 0


# ----------------------------------------------------------------------------- schema
def _kind(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list_str"
    return "json"


def infer_columns(cuts) -> dict[str, str]:
    """Column name -> kind (str, int, float, bool, list_str, json, array) over all cuts' custom."""
    kinds: dict[str, set] = {}
    for cut in cuts:
        for name, value in (cut.custom or {}).items():
            kind = "array" if type(value).__name__ in ("Array", "TemporalArray") else _kind(value)
            if kind:
                kinds.setdefault(name, set()).add(kind)
    resolved = {}
    for name, found in kinds.items():
        if name in RESERVED:
            continue
        if found <= {"int", "float"}:
            resolved[name] = "float" if "float" in found else "int"
        elif len(found) == 1:
            resolved[name] = found.pop()
        else:
            resolved[name] = "json"  # mixed types: kept, as JSON text
    return resolved


def features_for(columns: dict[str, str], embeddings: bool):
    """`datasets.Features` of an export, with audio as a plain {bytes, path} struct.

    datasets 5 encodes `Audio` values through torchcodec (and FFmpeg) even when given FLAC
    bytes; the rows are written as a struct and the column is cast to `Audio()` afterwards,
    which only relabels the Arrow storage.
    """
    from datasets import Features, List, Value  # lazy: pyarrow needs numpy>=2, absent from the laion environment


    value = {"str": Value("string"), "int": Value("int64"), "float": Value("float64"), "bool": Value("bool"),
             "list_str": List(Value("string")), "json": Value("string"), "array": List(Value("float32"))}
    spec = {"id": Value("string"), "audio": {"bytes": Value("binary"), "path": Value("string")},
            "recording_id": Value("string"), "start": Value("float64"),
            "duration": Value("float64"), "sampling_rate": Value("int32"), "num_channels": Value("int32")}
    for name, kind in sorted(columns.items()):
        if kind == "array" and not embeddings:
            continue
        spec[name] = value[kind]
    return Features(spec)


# ---------------------------------------------------------------------------- export
def encode_flac(audio: np.ndarray, sampling_rate: int) -> bytes:
    """(channels, time) float audio -> 16-bit FLAC bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0).T, sampling_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _rows(manifest: str, columns: dict, embeddings: bool, skipped_path: str) -> Iterator[dict]:
    """Dataset rows; unreadable cuts are appended to `skipped_path` and left out."""

    for cut in read_cuts(manifest):
        try:
            audio = np.atleast_2d(cut.load_audio())  # only the window: (C, T)
            row = {"id": cut.id, "audio": {"bytes": encode_flac(audio, cut.sampling_rate), "path": f"{cut.id}.flac"},
                   "recording_id": cut.recording_id, "start": float(cut.start), "duration": float(cut.duration),
                   "sampling_rate": int(cut.sampling_rate), "num_channels": int(audio.shape[0])}
            custom = cut.custom or {}
            for name, kind in columns.items():
                value = custom.get(name)
                if kind == "array":
                    if not embeddings:
                        continue
                    value = cut.load_custom(name).astype(np.float32).ravel().tolist() if value is not None else None
                elif kind == "json" and value is not None:
                    value = json.dumps(value, default=str)
                elif kind == "float" and value is not None:
                    value = float(value)
                row[name] = value
        except Exception as exc:  # a corrupt row is reported, the export goes on
            with open(skipped_path, "a") as f:
                f.write(json.dumps({"id": cut.id, "error": f"{type(exc).__name__}: {exc}"[:300]}) + "\n")
            continue
        yield row


def export_dataset(manifest: str | os.PathLike, directory: str | os.PathLike, max_shard_bytes: int = 500 * 2**20,
                   embeddings: bool = False) -> ExportResult:
    """Write ``directory/data/train-XXXXX-of-YYYYY.parquet`` and ``directory/README.md`` (card).

    :param manifest: curated cuts manifest.
    :param max_shard_bytes: upper bound on the Arrow size of one Parquet shard.
    :param embeddings: also export stored Lhotse arrays (CLAP embeddings, ...) as float lists.
    """
    from datasets import Audio, Dataset  # lazy: pyarrow needs numpy>=2, absent from the laion environment


    manifest = str(manifest)
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)  # the staging folder must sit on the same filesystem
    columns = infer_columns(read_cuts(manifest))
    features = features_for(columns, embeddings)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=directory.parent if directory.parent.exists() else None))
    try:
        skipped_path = staging / "skipped.jsonl"
        skipped_path.touch()
        try:
            dataset = Dataset.from_generator(
                _rows, features=features, cache_dir=str(staging / "cache"), writer_batch_size=WRITER_BATCH_ROWS,
                gen_kwargs={"manifest": manifest, "columns": columns, "embeddings": embeddings,
                            "skipped_path": str(skipped_path)},
            )
        except ValueError as exc:  # datasets refuses a generator without rows: an empty (or all-skipped) manifest
            if "corresponds to no data" not in str(exc):
                raise
            dataset = Dataset.from_dict({name: [] for name in features}, features=features)
        dataset = dataset.cast_column("audio", Audio())
        skipped = [json.loads(line) for line in skipped_path.read_text().splitlines() if line]
        size = max(dataset.data.nbytes, 1)
        shards = min(max(1, math.ceil(size / max_shard_bytes)), max(len(dataset), 1))  # no empty shards
        out = staging / "out"
        (out / "data").mkdir(parents=True)
        for index in range(shards):
            part = dataset.shard(num_shards=shards, index=index, contiguous=True)
            part.to_parquet(str(out / "data" / f"train-{index:05d}-of-{shards:05d}.parquet"),
                            batch_size=WRITER_BATCH_ROWS)
        if skipped:
            (out / "skipped.jsonl").write_text("".join(json.dumps(s) + "\n" for s in skipped))
        card = dataset_card(manifest, dataset, columns, skipped)
        (out / "README.md").write_text(card)
        rows = len(dataset)
        del dataset
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(out, directory)  # the folder appears complete or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    total = sum(p.stat().st_size for p in (directory / "data").glob("*.parquet"))
    return ExportResult(directory, rows, shards, skipped, total)


# ------------------------------------------------------------------------------ card
def dataset_card(manifest: str, dataset, columns: dict[str, str], skipped: list[dict]) -> str:
    """README.md with YAML metadata: fields, scoring models, thresholds, licences."""
    from huggingface_hub import DatasetCard, DatasetCardData  # lazy, as datasets


    licenses = Counter(dataset["license"]) if "license" in dataset.column_names else Counter()
    licenses.pop(None, None)
    hours = float(sum(dataset["duration"])) / 3600 if len(dataset) else 0.0
    data = DatasetCardData(
        license=sorted({_spdx(k) for k in licenses}) or None,
        task_categories=["text-to-audio"], tags=["music", "audio", "text-to-music", "lhotse", "scoreaware"],
        pretty_name=Path(manifest).name.split(".")[0],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
    )
    lines = [f"# {data.pretty_name}", "",
             f"Curated with scoreaware: {len(dataset)} segments, {hours:.2f} hours. Each row holds the segment's own "
             "audio (FLAC, only its window) and its captions, tags, scores and provenance.", "", "## Fields", "",
             "| field | type |", "|---|---|"]
    lines += [f"| `{name}` | {feature} |" for name, feature in dataset.features.items()]
    lines += ["", "## How it was made", ""]
    for sidecar in reversed(provenance_chain(manifest)):
        opts = {k: v for k, v in sidecar.get("options", {}).items()
                if k not in ("output", "manifest", "arrays", "audio_dir", "metadata") and v is not None}
        lines.append(f"- **{sidecar.get('stage')}** ({sidecar.get('finished_at', '?')}): "
                     + ", ".join(f"{k}={v}" for k, v in opts.items()))
    lines += ["", "## Reading the audio", "",
              "`audio` is a `datasets.Audio` column of 16-bit FLAC bytes (each row holds only its own window).",
              "Decoding it with `datasets` needs `torchcodec` and a system FFmpeg. Without them, read the bytes:",
              "", "```python", "import io, soundfile as sf", "from datasets import Audio, load_dataset", "",
              'ds = load_dataset("<this dataset>", split="train").cast_column("audio", Audio(decode=False))',
              'samples, rate = sf.read(io.BytesIO(ds[0]["audio"]["bytes"]))  # (time, channels)', "```", "",
              "`scoreaware curate import <this dataset>` turns it back into Lhotse cuts with FLAC files."]
    lines += ["", "## Licences", ""]
    lines += [f"- {k}: {v} segments" for k, v in licenses.most_common()] or ["- not given in the input metadata"]
    if skipped:
        lines += ["", f"{len(skipped)} segments were skipped because their audio could not be read "
                  "(see `skipped.jsonl`)."]
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"))


def _spdx(text: str) -> str:
    """'CC BY-SA 4.0' -> 'cc-by-sa-4.0' (the Hub's licence ids); a licence with no Hub id (public domain,
    non-commercial terms of a collection) is 'other', and the card's text names it."""
    if not text:
        return "other"
    spdx = "-".join(text.lower().replace("-", " ").split()).replace("cc0", "cc0-1.0")
    return spdx if spdx.startswith(("cc", "mit", "apache", "gpl", "bsd")) else "other"


# ------------------------------------------------------------------------------ hub
class PublishError(StageError):
    """Publishing cannot go ahead; the message says why (never with the token)."""


def publish(directory: str | os.PathLike, repo_id: str, private: bool = False, overwrite: bool = False,
            max_shard_size: str = "500MB", token: str | None = None, api=None) -> str:
    """Upload an exported folder with `push_to_hub` (data) and `DatasetCard.push_to_hub` (card).

    Uses `token`, else the token `huggingface_hub` finds (``HF_TOKEN`` or the saved login).
    Refuses to write into a repository that already has files unless `overwrite`.
    """
    from datasets import load_dataset  # lazy: pyarrow needs numpy>=2, absent from the laion environment
    from huggingface_hub import DatasetCard, HfApi, get_token


    token = token or get_token()
    if not token:
        raise PublishError("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    api = api or HfApi(token=token)
    try:
        if api.repo_exists(repo_id, repo_type="dataset"):
            files = [f for f in api.list_repo_files(repo_id, repo_type="dataset") if f != ".gitattributes"]
            if files and not overwrite:
                raise PublishError(f"dataset repo {repo_id} already holds {len(files)} files; pass --overwrite "
                                   "to replace its data")
        else:
            api.create_repo(repo_id, repo_type="dataset", private=private)
        dataset = load_dataset("parquet", data_files=str(Path(directory) / "data" / "*.parquet"), split="train")
        dataset.push_to_hub(repo_id, private=private, token=token, max_shard_size=max_shard_size,
                            commit_message="Upload curated segments (scoreaware)")
        DatasetCard((Path(directory) / "README.md").read_text()).push_to_hub(repo_id, repo_type="dataset",
                                                                              token=token)
    except PublishError:
        raise
    except Exception as exc:  # network/auth errors: say what failed, not the token
        message = str(exc).replace(token, "***")
        raise PublishError(f"upload to {repo_id} failed: {type(exc).__name__}: {message[:300]}") from None
    return f"https://huggingface.co/datasets/{repo_id}"


# ---------------------------------------------------------------------------- import
def open_rows(source: str, split: str):
    """The dataset's rows, streamed: a local folder is read as it is now (no cache)."""
    from datasets import Audio, load_dataset  # lazy: pyarrow needs numpy>=2, absent from the laion environment


    if Path(source).is_dir():
        files = sorted(str(p) for p in (Path(source) / "data").glob(f"{split}-*.parquet")) or \
            sorted(str(p) for p in Path(source).rglob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{source}: no Parquet shards (data/{split}-*.parquet)")
        dataset = load_dataset("parquet", data_files={split: files}, split=split, streaming=True)
    else:
        dataset = load_dataset(source, split=split, streaming=True)
    return dataset.cast_column("audio", Audio(decode=False))


def iter_imported(source: str, split: str, audio_dir: Path, skip_ids=()) -> Iterator:
    """Cuts rebuilt from an exported dataset (local folder or Hub id); audio written as FLAC files.

    Each row's audio goes to ``audio_dir/<safe name>.flac``; when the row id is not a plain file
    name the safe name is recorded in ``custom["audio_file"]``.
    """

    audio_dir.mkdir(parents=True, exist_ok=True)
    skip = set(skip_ids)
    for row in open_rows(source, split):
        ident = str(row["id"])
        if ident in skip:
            continue
        stem = safe_name(ident)
        path = audio_dir / f"{stem}.flac"
        assert path.resolve().parent == audio_dir.resolve(), f"unsafe audio path for id {ident!r}"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(row["audio"]["bytes"])
        os.replace(tmp, path)
        recording = Recording.from_file(path, recording_id=ident)
        custom = {k: v for k, v in row.items() if k not in RESERVED and v is not None}
        custom["source_recording_id"] = row["recording_id"]
        custom["source_start"] = row["start"]
        if stem != ident:
            custom["audio_file"] = path.name
        yield fastcopy(recording.to_cut(), custom=custom)
