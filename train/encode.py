"""`train encode`: precompute everything training reads, so the loop never touches audio.

Per cut, stored as Lhotse arrays (``cut.load_custom(name)``):

* ``latent`` (frames, channels): the codec's latent of the cut's audio (a cut that already
  carries one, such as a generated clip, keeps it: no decode and re-encode);
* ``text_tokens`` (tokens, text_dim): the T5-style encoding of the caption (once per distinct caption);
* ``clap_text_emb`` (512,): kept from the scoring stage, else computed with ``clap``;
* REPA targets when asked: ``repa_frames`` (frames', dim) from MuQ (or any frame encoder) and
  the stored ``clap_audio_emb`` as the global target.

The per-channel latent mean/std over the whole set (streamed sums) and the empty-string null
features go into the sidecar and ``<out>.encode.json``; training normalizes with them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.arrays import ArrayStore, arrays_dir
from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions, StageJob
from scoreaware.core.manifests import map_paths, read_cuts, relativize, resolve
from scoreaware.core.output import Rejection
from scoreaware.core.provenance import describe_input, manifest_base, provenance_chain
from scoreaware.core.stage import StagePlan, StageResult, done_line, drive, ray_line, rejected_line, run_stage
from scoreaware.curate.scoring.clap import load_transformers_clap, weights_fingerprint
from scoreaware.curate.scoring.reward import load_mert
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, CLAP_TEXT_EMB
from scoreaware.schemas.validation import check_input, validate_manifest
from scoreaware.train.codecs import load_codec
from scoreaware.train.model_paths import relative_models, resolved_models
from scoreaware.train.text import load_text_encoder

STAGE = "encode"
REPA_TARGETS = ("clap", "muq")


@dataclass
class FrameEncoder:
    """Frame-level audio features (REPA targets): MuQ, or a transformers encoder stand-in."""

    model_id: str
    sampling_rate: int
    encode: object  # (mono audio at sampling_rate) -> (frames, dim)
    dim: int


def load_frame_encoder(model: str, device: str = "cpu") -> FrameEncoder:
    """MuQ through the `muq` package, or a local transformers audio encoder (config.json)."""
    path = Path(model)
    if (path / "config.json").is_file() and "model_type" in json.loads((path / "config.json").read_text()):
        mert = load_mert(model, device=device)

        @torch.inference_mode()
        def encode_hf(audio: np.ndarray) -> np.ndarray:
            inputs = mert.extractor(audio, sampling_rate=mert.sampling_rate, return_tensors="pt")
            return mert.model(inputs["input_values"].to(device)).last_hidden_state[0].float().cpu().numpy()

        return FrameEncoder(model, mert.sampling_rate, encode_hf, mert.dim)
    try:
        from muq import MuQ  # optional dependency: pip install muq
    except ImportError:
        raise ValueError(f"the muq REPA target needs `pip install 'scoreaware[muq]'` for {model}, or a local "
                         "transformers audio encoder folder as --muq-model") from None

    muq = MuQ.from_pretrained(model).to(device).eval()

    @torch.inference_mode()
    def encode_muq(audio: np.ndarray) -> np.ndarray:
        out = muq(torch.from_numpy(audio)[None].to(device), output_hidden_states=False)
        return out.last_hidden_state[0].float().cpu().numpy()  # (frames at 25 Hz, 1024)

    return FrameEncoder(model, 24_000, encode_muq, 1024)


@dataclass
class LatentStats:
    """Streaming per-channel mean and std of latent frames."""

    total: np.ndarray | None = None
    total_sq: np.ndarray | None = None
    frames: int = 0

    def add(self, latent: np.ndarray) -> None:
        x = latent.astype(np.float64)
        if self.total is None:
            self.total, self.total_sq = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        self.total += x.sum(0)
        self.total_sq += (x * x).sum(0)
        self.frames += x.shape[0]

    def result(self) -> dict:
        mean = self.total / max(self.frames, 1)
        std = np.sqrt(np.maximum(self.total_sq / max(self.frames, 1) - mean**2, 1e-12))
        return {"mean": mean.tolist(), "std": std.tolist(), "frames": self.frames}


@dataclass
class Encoders:
    codec: object
    text: object  # train.text.TextEncoder
    clap: object | None = None  # curate.scoring.clap.ClapEncoder, for missing/null CLAP text
    frames: FrameEncoder | None = None
    repa: tuple[str, ...] = ()
    stats: LatentStats = field(default_factory=LatentStats)
    _text_cache: dict = field(default_factory=dict)
    _clap_cache: dict = field(default_factory=dict)

    def text_tokens(self, store: ArrayStore, caption: str):
        if caption not in self._text_cache:
            key = hashlib.sha1(f"{self.text.model_id}\n{caption}".encode()).hexdigest()[:20]
            self._text_cache[caption] = store.put("text_tokens", key, self.text.encode([caption])[0])
        return self._text_cache[caption]

    def clap_text(self, store: ArrayStore, caption: str):
        if caption not in self._clap_cache:
            emb = self.clap.embed_text([caption])[0]
            self._clap_cache[caption] = store.put("clap_text", self.clap.text_key(caption), emb)
        return self._clap_cache[caption]


def load_encoders(codec: str, codec_model: str | None, text_encoder: str, max_text_tokens: int,
                  clap_model: str | None, muq_model: str, targets: tuple[str, ...], device: str = "cpu") -> Encoders:
    """Every model `encode_cuts` needs: a `StageJob` setup (once per process or Ray actor)."""

    return Encoders(
        codec=load_codec(codec, codec_model, device=device),
        text=load_text_encoder(text_encoder, device=device, max_tokens=max_text_tokens),
        clap=load_transformers_clap(clap_model, device) if clap_model else None,
        frames=load_frame_encoder(muq_model, device) if "muq" in targets else None,
        repa=targets,
    )


def encode_job(setup, caption_field: str, arrays: Path) -> StageJob:
    """`encode_cuts` as a `StageJob` for either executor (latents and features go to `arrays`).
    On Ray the latent statistics are taken from the written output (`whole_output_stats`)."""
    return StageJob("train encode", setup, functools.partial(_encode, caption_field=caption_field,
                                                             arrays=str(arrays)))


def _encode(encoders: Encoders, cuts: Iterable[Cut], skip_ids: frozenset[str], *, caption_field: str,
            arrays: str) -> Iterator[Cut | Rejection]:
    return encode_cuts(cuts, encoders, ArrayStore(arrays), caption_field, skip_ids)


def null_features(encoders: Encoders) -> dict[str, np.ndarray]:
    """The empty string's T5 tokens and CLAP text embedding (zeros without a CLAP model)."""
    clap_dim = encoders.clap.dim if encoders.clap is not None else 512
    clap = encoders.clap.embed_text([""])[0] if encoders.clap is not None else np.zeros(clap_dim, np.float32)
    return {"text_tokens": encoders.text.encode([""])[0], "clap_text": clap.astype(np.float32)}


def encode_cuts(cuts: Iterable[Cut], encoders: Encoders, store: ArrayStore, caption_field: str = "caption",
                skip_ids: Iterable[str] = ()) -> Iterator[Cut | Rejection]:
    """Cuts with their latents and conditioning attached (or rejections), in input order."""
    skip = set(skip_ids)
    for cut in cuts:
        if cut.id in skip:
            continue
        custom = dict(cut.custom or {})
        caption = custom.get(caption_field)
        if not isinstance(caption, str) or not caption.strip():
            yield Rejection(cut.id, STAGE, "no_caption", f"custom[{caption_field!r}] is missing", item=cut.to_dict())
            continue
        if CLAP_TEXT_EMB not in custom and encoders.clap is None:
            yield Rejection(cut.id, STAGE, "missing_clap_text",
                            "no clap_text_emb: score the manifest with `score clap` or pass --clap-model",
                            item=cut.to_dict())
            continue
        if "clap" in encoders.repa and CLAP_AUDIO_EMB not in custom:
            yield Rejection(cut.id, STAGE, "missing_clap_audio", "REPA target clap needs clap_audio_emb",
                            item=cut.to_dict())
            continue
        kept = cut.has_custom("latent")  # generated clips carry their latent: no decode and re-encode
        audio = None
        if not kept or "muq" in encoders.repa:
            try:
                audio = np.atleast_2d(cut.load_audio()).astype(np.float32)  # (C, S)
            except Exception as exc:
                yield Rejection(cut.id, STAGE, "unreadable", f"{type(exc).__name__}: {exc}"[:300],
                                item=cut.to_dict())
                continue
        if kept:
            latent = cut.load_custom("latent")
            if latent.ndim != 2 or latent.shape[1] != encoders.codec.channels:
                yield Rejection(cut.id, STAGE, "latent_mismatch", f"stored latent {latent.shape} does not fit the "
                                f"{encoders.codec.channels}-channel codec", item=cut.to_dict())
                continue
        else:
            latent = encoders.codec.encode(audio, cut.sampling_rate)  # (frames, channels)
            custom["latent"] = store.put("latent", cut.id, latent)
        encoders.stats.add(latent)
        custom["latent_frames"] = int(latent.shape[0])
        custom["text_tokens"] = encoders.text_tokens(store, caption)
        if CLAP_TEXT_EMB not in custom:
            custom[CLAP_TEXT_EMB] = encoders.clap_text(store, caption)
        if "muq" in encoders.repa:
            import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

            mono = torch.from_numpy(audio.mean(0))
            if cut.sampling_rate != encoders.frames.sampling_rate:
                mono = torchaudio.functional.resample(mono, cut.sampling_rate, encoders.frames.sampling_rate)
            custom["repa_frames"] = store.put("repa_frames", cut.id, encoders.frames.encode(mono.numpy()))
        yield fastcopy(cut, custom=custom)


def whole_output_stats(partial_cuts: str | os.PathLike, root: str | os.PathLike) -> LatentStats:
    """Latent statistics over every cut a (resumed) encode wrote, read back from its arrays."""

    stats = LatentStats()
    for cut in read_cuts(partial_cuts, root=root):
        stats.add(cut.load_custom("latent"))
    return stats


def write_encode_info(path: str | os.PathLike, info: dict) -> None:
    """``<out>.encode.json``: codec, text encoder, latent stats, null features location (array
    paths relative to the file, so the folder can move)."""

    path = Path(path)
    root = path.parent.resolve()
    info = relative_models(json.loads(json.dumps(info)), root)  # model folders too, relative to the file
    for array in (info.get("null") or {}).values():
        map_paths({"custom": {"x": array}}, lambda p: relativize(p, root))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)


def read_encode_info(path: str | os.PathLike) -> dict:
    """An ``.encode.json`` with its array paths resolved against its folder."""

    path = Path(path)
    root = path.parent.resolve()
    info = resolved_models(json.loads(path.read_text()), root)
    for array in (info.get("null") or {}).values():
        map_paths({"custom": {"x": array}}, lambda p: resolve(p, root))
    return info


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
