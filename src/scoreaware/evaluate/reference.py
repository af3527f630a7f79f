"""`build_reference`: `eval reference` as a library call — a reference set embedded once into
REF.npz (every clip's CLAP audio embedding and MERT features, their mean and covariance, and the
fingerprint later comparisons check)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import atomic_write_text
from scoreaware.core.locations import record
from scoreaware.core.progress import Timer
from scoreaware.core.provenance import describe_input, library_versions
from scoreaware.core.redact import redact
from scoreaware.curate.scoring.clap import load_clap
from scoreaware.curate.scoring.reward import load_mert
from scoreaware.evaluate.embeddings import audio_cuts, clap_embeddings, mert_embedding_sets, save_reference


def build_reference(source: Path, output: Path, *, backend: str = "transformers", model: str | None = None,
                    amodel: str = "HTSAT-base", policy: str = "first", mert_model: str | None = None,
                    trust_remote_code: bool = False, batch_size: int = 16, workers: int = 2, device: str = "cpu",
                    unsafe_pickle: bool = False) -> tuple[dict, list[str]]:
    """Embed `source` (a manifest or a folder of audio) into `output`; (payload, summary lines)."""
    source, output = Path(source), Path(output)
    timer = Timer()
    unreadable, notes = [], []
    cuts = audio_cuts(source, unreadable, notes)
    encoder = load_clap(backend, model, device=device, amodel=amodel, unsafe_pickle=unsafe_pickle)
    # a local model folder is recorded relative to REF.npz with its digest (core.locations), so scoring from
    # any working directory finds it and never asks the Hub for it
    recorded, digest = record(model, output.parent) if model else (model, None)
    clap, rejected = clap_embeddings(cuts, encoder, policy, batch_size, workers, source=recorded)
    if digest:
        clap.fingerprint["source_sha256"] = digest
    rejected = unreadable + rejected
    if len(clap.embeddings) < 2:
        raise StageError(f"{source}: {len(clap.embeddings)} readable clips; a reference needs at least 2")
    sets = {"clap": clap}
    if mert_model:
        mert = load_mert(mert_model, device=device, trust_remote_code=trust_remote_code)
        kept = [c for c in cuts if c.id in set(clap.ids)]
        # one MERT pass for both: mert_last (MAD's feature) and mert_all (FAD-MERT's)
        sets |= {f"mert_{name}": found for name, found in mert_embedding_sets(kept, mert, ("last", "all"),
                                                                               policy=policy).items()}
    described = describe_input(source) if source.is_file() else {"path": str(source)}
    provenance = {"stage": "reference", "command": redact(" ".join(sys.argv)), "source": described,
                  "options": {"backend": backend, "model": model, "amodel": amodel, "policy": policy,
                              "mert_model": mert_model},
                  "sets": {k: {"n": len(v.ids), "fingerprint": v.fingerprint} for k, v in sets.items()},
                  "rejected": [r.to_dict() for r in rejected], "versions": library_versions("torch", "transformers"),
                  "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    save_reference(output, sets, extra=provenance)
    atomic_write_text(output.with_name(f"{output.stem}.provenance.json"), json.dumps(provenance, indent=1,
                                                                                     default=str))
    payload = {"output": str(output), "clips": len(clap.ids), "rejected": len(rejected),
               "sets": {k: {"n": len(v.ids), "dim": int(v.embeddings.shape[1]), "fingerprint": v.fingerprint}
                        for k, v in sets.items()}}
    return payload, [
        f"{len(clap.ids)} clips embedded ({', '.join(sets)}), {len(rejected)} unreadable; crop {policy} "
        f"{encoder.window / encoder.sampling_rate:g} s at {encoder.sampling_rate} Hz; took {timer.seconds:.1f} s",
        f"CLAP: {encoder.model_id} ({encoder.fingerprint})",
        *[f"{r.id}: {r.reason} ({r.detail})" for r in unreadable[:5]], *[f"note: {n}" for n in notes[:5]],
        f"→ {output}"]
