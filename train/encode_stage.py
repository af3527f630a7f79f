"""`run_encode`: the `train encode` stage end to end (latents, text tokens, CLAP text and REPA
targets precomputed into the manifest, with the encode info beside it)."""

from __future__ import annotations

import functools
from pathlib import Path

from scoreaware.core.arrays import ArrayStore, arrays_dir
from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions
from scoreaware.core.provenance import describe_input, manifest_base, provenance_chain
from scoreaware.core.stage import StagePlan, StageResult, done_line, drive, ray_line, rejected_line, run_stage
from scoreaware.curate.scoring.clap import weights_fingerprint
from scoreaware.schemas.validation import check_input, validate_manifest
from scoreaware.train.encode import (
    REPA_TARGETS,
    encode_job,
    load_encoders,
    null_features,
    whole_output_stats,
    write_encode_info,
)


def run_encode(manifest: Path, output: Path, *, codec: str = "mel", codec_model: str | None = None,
               text_encoder: str = "google/flan-t5-large", max_text_tokens: int = 77, clap_model: str | None = None,
               repa: str = "", muq_model: str = "OpenMuQ/MuQ-large-msd-iter", caption_field: str = "caption",
               device: str = "cpu", executor: ExecutorOptions | None = None, resume: bool = False,
               overwrite: bool = False) -> StageResult:
    """Precompute latents, text tokens, CLAP text and REPA targets (`repa`: comma list of clap,
    muq) of `manifest` for training, into `output` and its ``.encode.json``."""
    executor = executor or ExecutorOptions()
    output = Path(output)
    targets = tuple(t for t in repa.split(",") if t)
    unknown = set(targets) - set(REPA_TARGETS)
    if unknown:
        raise StageError(f"--repa: unknown REPA targets {sorted(unknown)}; choose from {REPA_TARGETS}")
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], codec=codec, codec_model=codec_model,
                  codec_weights=weights_fingerprint(codec_model) if codec_model else None, text_encoder=text_encoder,
                  text_weights=weights_fingerprint(text_encoder), max_text_tokens=max_text_tokens,
                  clap_model=clap_model, clap_weights=weights_fingerprint(clap_model) if clap_model else None,
                  repa=list(targets), muq_model=muq_model if "muq" in targets else None, caption_field=caption_field)
    state: dict = {"clap_model": clap_model}

    def check() -> None:
        check_input(manifest)
        scoring = next((p["options"] for p in provenance_chain(manifest) if p.get("stage") == "clap"), {})
        clap = state["clap_model"]
        state["clap_weights"] = weights_fingerprint(clap) if clap else scoring.get("weights")
        if clap and scoring.get("weights") and state["clap_weights"] != scoring["weights"]:
            raise StageError(
                f"--clap-model {clap} is not the CLAP that scored {manifest} ({scoring.get('model')}): the stored "
                "text embeddings and the new ones would live in different spaces; pass the scoring model")
        if not clap and scoring.get("backend") == "transformers" and Path(str(scoring.get("model"))).exists():
            state["clap_model"] = scoring["model"]  # the scoring CLAP embeds the null and any caption without one
        state["scoring_model"] = scoring.get("model")

    def drive_encode(out, bar):
        setup = functools.partial(load_encoders, codec, codec_model, text_encoder, max_text_tokens,
                                  state["clap_model"], muq_model, targets, device)
        encoders = state["encoders"] = setup()  # here too: the null features and the encode info come from these
        store = ArrayStore(arrays_dir(output))
        state["nulls"] = nulls = null_features(encoders)
        state["null_arrays"] = {k: store.put("null", k, v).to_dict() for k, v in nulls.items()}
        job = encode_job(setup if executor.on_ray else lambda: encoders, caption_field, arrays_dir(output))
        return drive(job, manifest, out, executor, bar)

    def finalize(out, report):
        encoders, nulls = state["encoders"], state["nulls"]
        if out.resumed_items or executor.on_ray:  # the statistics must cover every cut (earlier runs', the actors')
            encoders.stats = whole_output_stats(out.partial_dir / "cuts.jsonl", output.parent)
        stats = state["stats"] = encoders.stats.result() if encoders.stats.frames else None
        base = manifest_base(output)
        clap_dim = int(nulls["clap_text"].shape[0])  # the REPA CLAP target has the model's width (128 for the demo's)
        info = {"codec": encoders.codec.describe(), "latent_rate": encoders.codec.latent_rate,
                "clap_model": state["clap_model"] or state["scoring_model"], "clap_weights": state["clap_weights"],
                "null_clap": "CLAP of the empty string" if encoders.clap is not None else "zeros (no CLAP model)",
                "muq_model": muq_model if "muq" in targets else None, "caption_field": caption_field,
                "latent_channels": encoders.codec.channels, "text_encoder": encoders.text.model_id,
                "text_dim": encoders.text.dim, "max_text_tokens": max_text_tokens,
                "clap_dim": clap_dim, "latent_stats": stats, "null": state["null_arrays"],
                "repa": {t: ("global", clap_dim) if t == "clap" else ("frames", encoders.frames.dim)
                         for t in targets}}
        write_encode_info(base.with_name(f"{base.name}.encode.json"), info)
        return dict(options=dict(manifest=str(manifest), device=device, output=str(output)),
                    inputs=[source], extra_versions=("torch", "transformers", "diffusers"))

    def summary(out, report, seconds):
        encoders, stats, base = state["encoders"], state["stats"], manifest_base(output)
        return [done_line(out, "encoded") + f", {stats['frames'] if stats else 0} latent frames "
                f"({encoders.codec.channels} channels at {encoders.codec.latent_rate:.1f} Hz)",
                rejected_line(out.summary.rejected), f"took {seconds:.1f} s",
                *[line for line in [ray_line(report)] if line],
                f"→ {base.with_name(base.name + '.encode.json')} (latent stats, null features)"]

    return run_stage(StagePlan(
        "encode", output, config, drive_encode, summary, finalize, check=check, total=lambda: count_lines(manifest),
        title="train encode", input_manifest=Path(manifest), validator=validate_manifest),
        resume=resume, overwrite=overwrite)
