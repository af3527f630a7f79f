"""`eval score` as a library call: build the clips manifest, score it with the curation stages,
compute the set metrics against the reference, and write ``eval/scores.json``.

The CLAP score and the reward of each clip come from `curate score clap` and `curate score
reward` themselves (invoked, not re-implemented), with the reference's CLAP model and crop, so a
generated clip and a curated segment are scored by one code path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from lhotse import Recording
from lhotse.array import Array
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.files import atomic_write_text, loads_checked, read_jsonl
from scoreaware.core.locations import locate, require
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import QUARANTINE, Rejection, StageOutput, sibling
from scoreaware.core.provenance import describe_input, library_versions, read_provenance
from scoreaware.core.stage import ignore
from scoreaware.curate.audio import AudioProblem, probe_audio
from scoreaware.curate.scoring.reward import load_mert
from scoreaware.curate.stages.score_clap import ClapScoreConfig, run_score_clap
from scoreaware.curate.stages.score_reward import RewardScoreConfig, run_score_reward
from scoreaware.evaluate.compare import sanitized
from scoreaware.evaluate.embeddings import (
    MIN_SECONDS,
    EmbeddingError,
    finite_manifest_embeddings,
    load_reference,
    mert_embedding_sets,
)
from scoreaware.evaluate.metrics import set_metrics, write_clips_csv
from scoreaware.evaluate.results import SCORES_FORMAT
from scoreaware.schemas.fields import CLAP_SCORE, PROMPT_ID, REWARD
from scoreaware.schemas.validation import validate_manifest

# the fields of a samples.jsonl row that scoring reads, and what each must be
_ROW_FIELDS = {"id": (str,), "path": (str,), "prompt": (str,), PROMPT_ID: (str, int), "seed": (int,)}


def _inside(samples: Path, relative: object, where: str, field: str) -> Path:
    """`samples / relative`, refused unless it is a file name under `samples` (rows come from a file)."""
    if "\x00" in str(relative):  # no file name holds NUL (resolving one is a ValueError, not a missing file)
        raise StageError(f"{where}: {field} {str(relative)[:60]!r} holds a NUL character: not a file name")
    path = (samples / str(relative)).resolve()
    if Path(str(relative)).is_absolute() or not path.is_relative_to(samples.resolve()) or path == samples.resolve():
        raise StageError(f"{where}: {field} {str(relative)[:60]!r} is not a file inside {samples}")
    return path


def read_samples(samples: Path) -> list[dict]:
    """The rows of ``samples.jsonl`` (from `eval generate`), each checked and with its WAV present.

    A row that is not an object, lacks a field or names a file outside the folder is an error
    naming the line and field; a clip id seen twice is refused (the clips would not pair)."""
    table = samples / "samples.jsonl"
    if not table.is_file():
        raise StageError(f"{samples}: no samples.jsonl; generate with `scoreaware eval generate` first")
    try:
        text = table.read_bytes().decode("utf-8-sig")  # a BOM an editor added is not a torn row
    except UnicodeDecodeError:
        raise StageError(f"{table}: not UTF-8 text") from None
    rows, seen = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{table}:{number}"
        row = loads_checked(line, where, StageError,
                            invalid="not JSON (an interrupted generation? rerun it with --resume)")
        if not isinstance(row, dict):
            raise StageError(f"{where}: not a JSON object")
        for field, types in _ROW_FIELDS.items():
            value = row.get(field)
            if not isinstance(value, types) or isinstance(value, bool) or value == "":
                raise StageError(f"{where}: {field} must be {' or '.join(t.__name__ for t in types)}, "
                                 f"not {str(value)[:40]!r}")
        if row["id"] in seen:
            raise StageError(f"{where}: clip {row['id'][:60]!r} again (first at line {seen[row['id']]})")
        seen[row["id"]] = number
        if not _inside(samples, row["path"], where, "path").is_file():
            raise StageError(f"{where}: {row['path']} is missing")
        if row.get("latent") is not None:
            _inside(samples, row["latent"], where, "latent")
        rows.append(row)
    if not rows:
        raise StageError(f"{table}: no clips")
    return rows


def write_clips_manifest(samples: Path, rows: list[dict], path: Path, latents: bool = False,
                         notes: list[str] | None = None) -> Path:
    """A cuts manifest of the generated clips; the caption is the prompt as written. With
    `latents`, each cut also carries the latent `eval generate --keep-latents` kept (a Lhotse
    array), so training on it needs no decode and re-encode.

    Every WAV is probed first (decodable, non-empty, finite samples, as long as its header says,
    at least `MIN_SECONDS`); one that fails is quarantined with its reason beside the manifest
    (``*.quarantine.jsonl.gz``) instead of ending the run. Clips of more than two channels are
    named in `notes` (the models down-mix them)."""

    out = StageOutput(path, stage="ingest", overwrite=True, validator=validate_manifest)
    with out:
        for row in rows:
            wav = samples / row["path"]
            try:
                info = probe_audio(wav)
                if info.num_samples < MIN_SECONDS * info.sampling_rate:
                    raise AudioProblem("too_short", f"{info.num_samples} samples: shorter than {MIN_SECONDS} s")
            except AudioProblem as problem:
                out.reject(Rejection(row["id"], "eval", problem.reason, problem.detail, row["path"]))
                continue
            if info.num_channels > 2 and notes is not None:
                notes.append(f"{row['path']}: {info.num_channels} channels, down-mixed to mono")
            recording = Recording.from_file(wav, recording_id=row["id"])
            custom = {"caption": row["prompt"], PROMPT_ID: str(row[PROMPT_ID]), "seed": int(row["seed"]),
                      "generated_score": row.get("score")}
            if latents:
                if not row.get("latent"):
                    raise StageError(f"{samples}: clip {row['id']} has no kept latent; generate with --keep-latents")
                file = samples / row["latent"]
                shape = list(np.load(file, mmap_mode="r").shape)
                custom["latent"] = Array(storage_type="numpy_files", storage_path=str(file.parent.resolve()),
                                         storage_key=file.name, shape=shape)
            out.write(fastcopy(recording.to_cut(), custom={k: v for k, v in custom.items() if v is not None}))
    out.finalize(options={"samples": str(samples)}, inputs=[describe_input(samples / "samples.jsonl")])
    return path


def quarantined_clips(manifest: Path) -> list[dict]:
    """The clips `write_clips_manifest` quarantined beside `manifest` (id, reason, detail, source)."""
    quarantine = sibling(manifest, QUARANTINE)
    return list(read_jsonl(quarantine)) if quarantine.is_file() else []


def score_run(samples: Path, reference: Path, reward_checkpoint: str | None = None,
              mert_model: str | None = None, trust_remote_code: bool = False, mad: bool = True,
              bootstrap: int = 200, batch_size: int = 16, workers: int = 2, device: str = "cpu",
              unsafe_pickle: bool = False, clap_model: str | None = None, overwrite: bool = False,
              log: Callable[[str], None] = ignore) -> dict:
    """`eval score` as a library call: score the clips of `samples` and their set against
    `reference`; writes SAMPLES/eval/ and returns the scores.json payload (an up-to-date one is
    returned as it is, and said to `log`)."""

    started = dt.datetime.now(dt.UTC)
    inputs = {"samples_sha256": describe_input(samples / "samples.jsonl")["sha256"] if (samples / "samples.jsonl")
              .is_file() else None, "reference_sha256": describe_input(reference)["sha256"],
              "reward_sha256": describe_input(reward_checkpoint)["sha256"] if reward_checkpoint else None,
              "mert_model": mert_model, "clap_model": clap_model, "bootstrap": bootstrap, "mad": mad}
    previous = samples / "eval" / "scores.json"
    if previous.is_file() and not overwrite:
        try:
            done = json.loads(previous.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            done = None  # a damaged record of an earlier scoring: score again
        if isinstance(done, dict) and done.get("inputs") == inputs:
            log(f"✓ {previous} is up to date; nothing to do. Pass --overwrite to score again.")
            return done
    sets, meta = load_reference(reference)
    if "clap" not in sets:
        raise EmbeddingError(f"{reference}: has no CLAP embeddings")
    fingerprint = sets["clap"].fingerprint
    rows = read_samples(samples)
    folder = samples / "eval"
    folder.mkdir(exist_ok=True)
    notes: list[str] = []
    clips_manifest = write_clips_manifest(samples, rows, folder / "clips.jsonl.gz", notes=notes)
    quarantined = quarantined_clips(clips_manifest)
    if len(quarantined) == len(rows):
        raise StageError(f"no clip of {samples} could be scored: every WAV was quarantined (first: "
                         f"{quarantined[0]['source']}: {quarantined[0]['reason']}, {quarantined[0]['detail']})")
    if quarantined:
        named = ", ".join(f"{q['source']} ({q['reason']})" for q in quarantined[:3])
        notes.insert(0, f"{len(quarantined)} of {len(rows)} clips quarantined and scored without: {named}"
                        f"{' …' if len(quarantined) > 3 else ''} (see {sibling(clips_manifest, QUARANTINE).name})")
        dropped = {q["id"] for q in quarantined}
        rows = [row for row in rows if row["id"] not in dropped]
    clap_manifest = folder / "clap.jsonl.gz"
    model = clap_model or reference_clap(reference, fingerprint)
    run_score_clap(clips_manifest, clap_manifest, ClapScoreConfig(
        backend=fingerprint.get("backend", "transformers"), model=model, amodel=_amodel(fingerprint),
        caption_field="caption", policy=fingerprint["policy"], batch_size=batch_size, workers=workers,
        device=device, unsafe_pickle=unsafe_pickle), resume=False, overwrite=True)
    clap, bad = finite_manifest_embeddings(clap_manifest, "clap")
    if bad:  # a clip whose embedding is NaN/inf: quarantined with its reason, the rest scored
        by_id = {row["id"]: row for row in rows}
        quarantined += [{"id": cid, "reason": "non_finite_embedding", "detail": "the CLAP embedding holds NaN or inf",
                         "source": by_id[cid]["path"] if cid in by_id else cid} for cid in bad]
        notes.append(f"{len(bad)} clip(s) with a non-finite CLAP embedding quarantined and scored without: "
                     + ", ".join(bad[:3]) + (" …" if len(bad) > 3 else ""))
        rows = [row for row in rows if row["id"] not in set(bad)]
    scored = clap_manifest
    if reward_checkpoint:
        if not mert_model:
            raise StageError("--reward needs --mert-model (the reward's MERT features)")
        scored = folder / "reward.jsonl.gz"
        run_score_reward(clap_manifest, scored, RewardScoreConfig(
            checkpoint=reward_checkpoint, mert_model=mert_model, trust_remote_code=trust_remote_code,
            batch_size=batch_size, workers=workers, device=device, unsafe_pickle=unsafe_pickle),
            resume=False, overwrite=True)
    clips = _clip_table(scored, rows)
    mert_all = mert_last = None
    if mert_model and ("mert_all" in sets or "mert_last" in sets):
        mert = load_mert(mert_model, device=device, trust_remote_code=trust_remote_code)
        cuts = list(read_cuts(clips_manifest))
        policy = sets.get("mert_all", sets.get("mert_last")).fingerprint.get("policy", "first")
        features = mert_embedding_sets(cuts, mert, [name for name in ("all", "last") if f"mert_{name}" in sets],
                                       policy=policy)  # one MERT pass for both
        mert_all, mert_last = features.get("all"), features.get("last")
    result = set_metrics(clap, sets, clips, bootstrap, mert_all, mert_last, mad)
    result.warnings[:0] = notes
    write_clips_csv(folder / "clips.csv", clips)
    reference_info = describe_input(reference)
    payload = {
        "format": SCORES_FORMAT, "samples": str(samples), "n": len(clips), "inputs": inputs,
        "reference": {"path": str(Path(reference).resolve()), "sha256": reference_info["sha256"],
                      "source": meta.get("source")},
        "fingerprints": {name: item.fingerprint for name, item in sets.items()},
        "metrics": result.metrics, "warnings": result.warnings, "quarantined": quarantined,
        "manifests": {"clips": clips_manifest.name, "clap": clap_manifest.name, "scored": scored.name},
        "models": {"reward_checkpoint": describe_input(reward_checkpoint) if reward_checkpoint else None,
                   "mert_model": mert_model},
        "settings": {"bootstrap": bootstrap, "mad": mad,
                     "prompt_protocol": (read_provenance(scored) or {}).get("options", {}).get("prompt_protocol")
                     if reward_checkpoint else None},
        "versions": library_versions("torch", "transformers", "scipy", "mauve-text"),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

    atomic_write_text(folder / "scores.json", json.dumps(sanitized(payload), indent=1, default=str))
    return sanitized(payload)


def reference_clap(reference: Path, fingerprint: dict) -> str:
    """The CLAP a reference was embedded with: its recorded local folder resolved against the
    reference's own folder (a StageError if it moved), or its Hub id."""
    recorded = fingerprint.get("source") or fingerprint["model"]
    located = locate(recorded, Path(reference).parent, local="source_sha256" in fingerprint)
    return require(located, artifact=reference, field="clap model", recorded=recorded,
                   digest=fingerprint.get("source_sha256"), override="--clap-model")


def _amodel(fingerprint: dict) -> str:
    model = str(fingerprint.get("model", ""))
    return model[model.rfind("(") + 1 : -1] if fingerprint.get("backend") == "laion" and "(" in model \
        else "HTSAT-base"


def _clip_table(scored: Path, rows: list[dict]) -> list[dict]:
    by_id = {row["id"]: row for row in rows}
    table = []
    for cut in read_cuts(scored):
        row = by_id.get(cut.id)
        if row is None:  # quarantined after scoring (a non-finite embedding)
            continue
        table.append({"id": cut.id, PROMPT_ID: str(row[PROMPT_ID]), "seed": int(row["seed"]),
                      "prompt": row["prompt"], CLAP_SCORE: cut.custom.get(CLAP_SCORE),
                      "reward": cut.custom.get(REWARD)})
    missing = sorted(by_id.keys() - {row["id"] for row in table})
    if missing:
        raise StageError(f"{len(missing)} clips could not be scored (first: {missing[:3]}); see the quarantine of "
                         f"{scored}")
    return table
