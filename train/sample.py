"""Generation from a checkpoint (the ttm-humanpref inference recipe), shared by `train sample` and
`eval generate`.

Euler ODE from t = 1 to 0 (25 steps), joint CFG over text and score::

    v = w·v(prefix + prompt, s) + (1 − w)·v(negative prompt, ∅ score)

(w = 4.0, s = 5.0 in z-units of the training score, prefix "high quality instrumental music, ",
a negative prompt listing artifacts); decode with the run's codec; resample to 44.1 kHz;
loudness-normalize to −16.5 LUFS with a peak guard (pyloudnorm); optionally run Demucs
`mdx_extra` to keep the instrumental (drums + bass + other), several passes.

Clips are generated in batches: one Euler integration per batch, with both CFG branches of
every clip in one forward pass. Each clip starts from the noise of its own seed, so a
(prompt, seed) pair is the same starting point for every checkpoint.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyloudnorm as pyln
import torch
from scipy.io import wavfile

from scoreaware.core.errors import StageError
from scoreaware.core.files import atomic_write_text, repair_jsonl_tail, safe_name
from scoreaware.core.locations import require
from scoreaware.core.provenance import config_changes, describe_input, library_versions
from scoreaware.curate.scoring.clap import load_transformers_clap
from scoreaware.schemas.fields import PROMPT_ID
from scoreaware.train.codecs import codec_from_description
from scoreaware.train.data import Normalization
from scoreaware.train.flow import euler_sample
from scoreaware.train.inherit import load_nulls
from scoreaware.train.model import Conditioning, FluxAudio, ModelConfig
from scoreaware.train.model_paths import DIGESTS, load_model, load_training_checkpoint
from scoreaware.train.prompts import Prompt
from scoreaware.train.text import load_text_encoder, pad_tokens

OUTPUT_RATE = 44_100
NEGATIVE = "noise, distortion, low quality, static, hum, hiss, clipping, muffled, amateur recording"
PREFIX = "high quality instrumental music, "


@dataclass
class SampleSettings:
    """Everything that decides a clip, besides the checkpoint, the prompt and the seed."""

    steps: int = 25
    cfg: float = 4.0
    score: float | None = 5.0  # None: no score conditioning (null score in both branches)
    negative_prompt: str = NEGATIVE
    prefix: str = PREFIX
    seconds: float = 10.0
    target_lufs: float = -16.5
    seed: int = 0  # seed_base: clip k of prompt i uses seed + i·K + k
    demucs: str | None = None  # e.g. "mdx_extra"
    demucs_passes: int = 3
    demucs_repo: str | None = None  # local folder of Demucs models (offline); None downloads


def load_generator(checkpoint: str | os.PathLike, device: str = "cpu", unsafe_pickle: bool = False):
    """(EMA backbone, checkpoint dict) from a `train fit` checkpoint (weights-only load)."""

    state = load_training_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle)
    missing = [key for key in ("model_config", "ema", "norm", "encode") if key not in state]
    if missing:
        raise StageError(f"{checkpoint}: not a `train fit` checkpoint: it has no {', '.join(missing)}")
    try:
        model = FluxAudio(ModelConfig(**state["model_config"]))
        model.load_state_dict(state["ema"])
    except (TypeError, RuntimeError) as exc:  # another width or layout than its model_config says
        mismatches = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line or "Missing" in line]
        raise StageError(f"{checkpoint}: its weights do not fit its model_config ("
                         + ("; ".join(mismatches[:2]) or f"{type(exc).__name__}: {str(exc)[:150]}") + ")") from None
    return model.to(device).eval(), state


def loudness_normalize(audio: np.ndarray, rate: int, target: float = -16.5) -> np.ndarray:
    """(C, S) -> normalized to `target` LUFS (mono mix measured); peaks above 0.99 scaled to 0.95."""

    try:
        loudness = pyln.Meter(rate).integrated_loudness(audio.mean(0))
        if np.isfinite(loudness):
            audio = audio * 10 ** ((target - loudness) / 20)
    except ValueError:  # shorter than one 400 ms block: leave the level alone
        pass
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0.99:  # the submission's peak guard: loudness normalization alone can clip
        audio = audio * (0.95 / peak)
    return audio.astype(np.float32)


@functools.lru_cache(maxsize=2)
def load_demucs(name: str, repo: str | None = None):
    """A Demucs model (or bag) by name: from the local folder `repo` if given (offline; `.th`
    files as Demucs writes them), else Demucs' own download."""
    try:
        from demucs.pretrained import get_model  # optional: the demucs extra
    except ImportError as exc:
        raise RuntimeError("Demucs post-processing needs `pip install 'scoreaware[demucs]'`") from exc
    if repo is not None and not Path(repo).is_dir():
        raise RuntimeError(f"Demucs repo {repo} is not a folder")
    return get_model(name, repo=Path(repo) if repo else None).eval()


def demucs_instrumental(audio: np.ndarray, rate: int, model_name: str = "mdx_extra", passes: int = 3,
                        repo: str | None = None, seed: int = 0) -> np.ndarray:
    """Drums + bass + other of Demucs, repeated `passes` times (3× mdx_extra in the submission).

    audio: (C, S) at `rate`; returns (2, S') at the model's rate (44.1 kHz for the released
    models), peak-normalized to 0.95 after every pass. Demucs shifts its input by a random
    offset (Python's `random`); that draw is seeded by `seed`, so a clip is post-processed the
    same way every time.
    """

    from demucs.apply import apply_model  # optional: the demucs extra

    model = load_demucs(model_name, repo)
    state = random.getstate()
    random.seed(seed)
    vocals = list(model.sources).index("vocals") if "vocals" in model.sources else None
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    for _ in range(passes):
        if x.shape[0] == 1:
            x = x.expand(2, -1)
        if rate != model.samplerate:
            import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

            x = torchaudio.functional.resample(x, rate, model.samplerate)
            rate = model.samplerate
        with torch.no_grad():
            sources = apply_model(model, x[None], shifts=1, split=True, overlap=0.25, progress=False)[0]  # (K, C, S)
        keep = [k for k in range(sources.shape[0]) if k != vocals]
        x = sources[keep].sum(0)
        x = x * (0.95 / max(float(x.abs().max()), 1e-9))
    random.setstate(state)
    return x.numpy()


class Generator:
    """A loaded checkpoint plus its text encoders and codec; generates batches of clips."""

    def __init__(self, checkpoint: str | os.PathLike, clap_model: str | None = None, device: str = "cpu",
                 text_encoder: str | None = None, unsafe_pickle: bool = False) -> None:
        self.model, self.state = load_generator(checkpoint, device, unsafe_pickle)
        self.device = device
        info = self.state["encode"]
        digests = info.get(DIGESTS) or {}
        if isinstance(info["codec"], dict) and info["codec"].get("model"):
            require(info["codec"]["model"], artifact=checkpoint, field="encode.codec.model",
                    digest=digests.get("codec.model"))
        self.codec = codec_from_description(info["codec"], device)
        self.text = load_model("encode.text_encoder", text_encoder or info["text_encoder"], checkpoint,
                               lambda name: load_text_encoder(name, device, info.get("max_text_tokens", 77)),
                               digest=None if text_encoder else digests.get("text_encoder"), override="--text-encoder")
        self.norm = Normalization.from_dict(self.state["norm"])
        clap_model = clap_model or info.get("clap_model")
        if not clap_model:
            raise ValueError("sampling needs the CLAP text model the data was scored with: pass --clap-model")

        self.clap = load_model("encode.clap_model", clap_model, checkpoint,
                               lambda name: load_transformers_clap(name, device),
                               digest=digests.get("clap_model") if clap_model == info.get("clap_model") else None,
                               override="--clap-model")
        trained_with = info.get("clap_weights")
        if trained_with and self.clap.fingerprint != trained_with:
            raise ValueError(f"the CLAP model {clap_model} ({self.clap.fingerprint}) is not the one the training data "
                             f"was embedded with ({info.get('clap_model')}, {trained_with}); pass that one with "
                             "--clap-model")
        if "null" in self.state:  # the CFG null the run trained with: the empty string's features
            self.null_text, self.null_clap = self.state["null"]["text_tokens"], self.state["null"]["clap_text"]
        else:
            nulls = load_nulls(info)
            self.null_text, self.null_clap = nulls.text, nulls.clap

    def conditioning(self, texts: list[str], score: float | None) -> Conditioning:
        """Text tokens, CLAP text embeddings and score of a batch of texts; the empty string gets
        exactly the null features training dropped conditions to (one definition of the null)."""
        tokens = [self.null_text.numpy() if text == "" else encoded
                  for text, encoded in zip(texts, self.text.encode(texts))]
        tokens, mask = pad_tokens(tokens)
        clap = torch.from_numpy(self.clap.embed_text(texts))
        for i, text in enumerate(texts):
            if text == "":
                clap[i] = self.null_clap.to(clap)
        n = len(texts)
        if score is None:
            s, keep = torch.zeros(n), torch.zeros(n, dtype=torch.bool)
        else:
            s, keep = torch.full((n,), float(score)), torch.ones(n, dtype=torch.bool)
        return Conditioning(tokens.to(self.device), mask.to(self.device), clap.to(self.device), s.to(self.device),
                            keep.to(self.device))

    def noise(self, seeds: list[int], frames: int) -> torch.Tensor:
        """(N, frames, C) starting noise, each clip from its own seeded generator, so a clip's
        noise depends only on its seed (not on the batch it is in, nor on the checkpoint)."""
        channels = self.model.config.latent_channels
        return torch.cat([torch.randn(1, frames, channels, generator=torch.Generator().manual_seed(int(seed)))
                          for seed in seeds]).to(self.device)

    @torch.no_grad()
    def latents(self, prompts: list[str], seeds: list[int], settings: SampleSettings) -> np.ndarray:
        """Un-normalized latents (N, frames, C): one Euler run for the batch, and at every step
        the conditional and the unconditional branch of all N clips in one forward (2N rows)."""
        frames = self.codec.frames(settings.seconds)
        cond = self.conditioning([settings.prefix + p for p in prompts], settings.score)
        null = self.conditioning([settings.negative_prompt] * len(prompts), None)
        x0 = euler_sample(lambda x, t: self.model.forward_with_cfg(x, t, cond, null, settings.cfg),
                          self.noise(seeds, frames), settings.steps)
        mean = torch.tensor(self.norm.latent_mean, device=self.device)
        std = torch.tensor(self.norm.latent_std, device=self.device)
        return (x0 * std + mean).cpu().numpy()

    def audio(self, latents: np.ndarray, seeds: list[int], settings: SampleSettings) -> list[np.ndarray]:
        """(C, S) float32 clips at 44.1 kHz, loudness-normalized (and Demucs-cleaned if asked)."""
        return self.finish(self.codec.decode_batch(latents), seeds, settings)

    def finish(self, decoded: np.ndarray, seeds: list[int], settings: SampleSettings) -> list[np.ndarray]:
        """(N, C, S) audio at the codec's rate -> clips as `audio` returns them: resampled to 44.1 kHz,
        cropped or padded to the asked length, Demucs-cleaned if asked, loudness-normalized."""
        import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

        out = []
        for audio, seed in zip(decoded, seeds):
            rate = self.codec.sample_rate
            if rate != OUTPUT_RATE:
                audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, OUTPUT_RATE).numpy()
            length = int(settings.seconds * OUTPUT_RATE)  # crop or pad to the asked duration, as the recipe does
            audio = np.pad(audio[:, :length], ((0, 0), (0, max(0, length - audio.shape[1]))))
            if settings.demucs:
                audio = demucs_instrumental(audio, OUTPUT_RATE, settings.demucs, settings.demucs_passes,
                                           settings.demucs_repo, seed=seed)
            out.append(loudness_normalize(audio, OUTPUT_RATE, settings.target_lufs))
        return out


# ------------------------------------------------------------------------ resumable generation
@dataclass(frozen=True)
class ClipJob:
    """One clip to make: prompt `index`·K + k, its id and seed."""

    id: str
    prompt: Prompt
    prompt_index: int
    k: int
    seed: int


def plan_clips(prompts: list[Prompt], seeds_per_prompt: int, seed_base: int) -> list[ClipJob]:
    """Clip k of prompt i gets seed ``seed_base + i·K + k``: the same prompt and seed start from
    the same noise in every checkpoint, so clips pair across training stages."""

    jobs = []
    for index, prompt in enumerate(prompts):
        for k in range(seeds_per_prompt):
            seed = seed_base + index * seeds_per_prompt + k
            jobs.append(ClipJob(f"{safe_name(prompt.id)}_s{seed}", prompt, index, k, seed))
    return jobs


def generate_clips(generator: Generator, jobs: list[ClipJob], out_dir: Path, settings: SampleSettings,
                   batch_size: int = 8, keep_latents: bool = False, row_extra: dict | None = None,
                   progress=None) -> list[dict]:
    """Write ``{id}.wav`` (and ``latents/{id}.npy``) per job plus one ``samples.jsonl`` row each.

    Resumable per clip: jobs whose row is already in ``samples.jsonl`` (and whose WAV exists)
    are skipped; a WAV is written atomically before its row is appended. Returns every row.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "samples.jsonl"
    done = {row["id"]: row for row in _read_rows(table) if (out_dir / row["path"]).is_file()}
    todo = [job for job in jobs if job.id not in done]
    if keep_latents:
        (out_dir / "latents").mkdir(exist_ok=True)
    with open(table, "a", encoding="utf-8") as rows_file:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            seeds = [job.seed for job in batch]
            latents = generator.latents([job.prompt.text for job in batch], seeds, settings)
            for job, latent, audio in zip(batch, latents, generator.audio(latents, seeds, settings)):
                path = out_dir / f"{job.id}.wav"
                write_wav(path, audio)
                row = {"id": job.id, PROMPT_ID: job.prompt.id, "prompt": job.prompt.text,
                       "conditioning_text": settings.prefix + job.prompt.text, "prompt_index": job.prompt_index,
                       "k": job.k, "seed": job.seed, "path": path.name, "seconds": audio.shape[1] / OUTPUT_RATE,
                       **(row_extra or {}), **{k: v for k, v in asdict(settings).items() if k != "seed"},
                       "seed_base": settings.seed}
                if job.prompt.extra:  # the prompt's attributes (prompt file columns), for the judge
                    row["attributes"] = {k: v for k, v in job.prompt.extra.items() if isinstance(v, (str, int, float))}
                if keep_latents:
                    np.save(out_dir / "latents" / f"{job.id}.npy", latent.astype(np.float32))
                    row["latent"] = f"latents/{job.id}.npy"
                rows_file.write(json.dumps(row) + "\n")
                rows_file.flush()
                done[job.id] = row
                if progress:
                    progress(row)
    return [done[job.id] for job in jobs]


def write_wav(path: Path, audio: np.ndarray) -> None:
    """(C, S) float32 at 44.1 kHz as an IEEE-float WAV, atomically. scipy writes no PEAK chunk
    (libsndfile stamps one with the time), so the same audio gives the same bytes."""

    tmp = path.with_name(f".{path.name}.tmp.wav")
    wavfile.write(tmp, OUTPUT_RATE, np.ascontiguousarray(audio.T, dtype=np.float32))
    os.replace(tmp, path)


def _read_rows(path: Path) -> list[dict]:
    """The rows of samples.jsonl; a torn last line (a kill mid-write) is ignored."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


# ------------------------------------------------------------------------------- a whole run
@dataclass
class GenerationRun:
    """What `run_generation` made: the rows, how many were new, and where the files are."""

    rows: list[dict]
    generated: int
    out_dir: Path
    provenance: dict
    notes: list[str] = field(default_factory=list)  # what the user should know (prompts cut short)


def run_generation(checkpoint: str | os.PathLike, prompts: list[Prompt], out_dir: Path, settings: SampleSettings,
                   seeds_per_prompt: int = 1, batch_size: int = 8, keep_latents: bool = False,
                   clap_model: str | None = None, device: str = "cpu", resume: bool = False,
                   overwrite: bool = False, unsafe_pickle: bool = False, prompts_file: str | None = None,
                   progress=None, text_encoder: str | None = None) -> GenerationRun:
    """Generate every (prompt, seed) clip into `out_dir`, resumably, with a provenance sidecar.

    The options that decide the clips (checkpoint hash, prompts, seeds, sampling settings) are
    recorded when the run starts; an interrupted run continues only with ``resume`` and the
    same options; a finished one is left alone unless ``overwrite`` (which starts over).
    """
    started = dt.datetime.now(dt.UTC)
    jobs = plan_clips(prompts, seeds_per_prompt, settings.seed)
    checkpoint_info = describe_input(checkpoint)
    config = {"checkpoint_sha256": checkpoint_info["sha256"], "prompts": [[p.id, p.text] for p in prompts],
              "seeds_per_prompt": seeds_per_prompt, "keep_latents": keep_latents, "clap_model": clap_model,
              **asdict(settings)}
    config = json.loads(json.dumps(config))
    run_file, table = out_dir / "generation.json", out_dir / "samples.jsonl"
    sidecar = out_dir / "samples.provenance.json"
    if overwrite and out_dir.exists():
        for path in (run_file, table, sidecar, *out_dir.glob("*.wav")):
            path.unlink(missing_ok=True)
        shutil.rmtree(out_dir / "latents", ignore_errors=True)
    if table.is_file():
        repair_jsonl_tail(table)  # a kill mid-row leaves a fragment the next row would be glued to
    if run_file.is_file() and not any((out_dir / row["path"]).is_file() for row in _read_rows(table)):
        run_file.unlink()  # an earlier attempt failed before its first clip: nothing to protect
    if run_file.is_file():
        before = json.loads(run_file.read_text())
        changes = config_changes(before, config)
        if changes:
            raise StageError(f"{out_dir} holds clips made with other options ({'; '.join(changes[:6])}); "
                             "pass --overwrite to start over")
        done = {row["id"] for row in _read_rows(table)}
        if not sidecar.is_file() and not resume and done:
            raise StageError(f"an interrupted run left {len(done)} of {len(jobs)} clips in {out_dir}; pass "
                             "--resume to continue it or --overwrite to start over")
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_file, json.dumps(config, indent=1))
    notes: list[str] = []
    done_before = {row["id"] for row in _read_rows(table) if (out_dir / row["path"]).is_file()}
    todo = [job for job in jobs if job.id not in done_before]
    if todo:
        sidecar.unlink(missing_ok=True)  # not complete until this run ends
        generator = Generator(checkpoint, clap_model, device, text_encoder=text_encoder, unsafe_pickle=unsafe_pickle)
        texts = [settings.prefix + prompt.text for prompt in prompts]
        for index, tokens in generator.text.truncated(texts):
            notes.append(f"prompt {prompts[index].id}: {tokens} tokens; the text encoder keeps the first "
                         f"{generator.text.max_tokens} (the rest of the prompt has no effect)")
        rows = generate_clips(generator, jobs, out_dir, settings, batch_size, keep_latents,
                              row_extra={"checkpoint": str(checkpoint), "checkpoint_sha256": checkpoint_info["sha256"]},
                              progress=progress)
        models = {"codec": generator.state["encode"]["codec"], "text_encoder": generator.text.model_id,
                  "clap_model": generator.clap.model_id, "clap_weights": generator.clap.fingerprint}
    else:
        rows = [row for row in _read_rows(table) if row["id"] in {job.id for job in jobs}]
        models = json.loads(sidecar.read_text()).get("models", {}) if sidecar.is_file() else {}
    provenance = {"stage": "generate", "config": config, "checkpoint": checkpoint_info, "prompts_file": prompts_file,
                  "models": models, "clips": len(rows), "generated_this_run": len(todo),
                  "versions": library_versions("torch", "torchaudio", "transformers"),
                  "started_at": started.isoformat(timespec="seconds"),
                  "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if todo or not sidecar.is_file():
        atomic_write_text(sidecar, json.dumps(provenance, indent=1, default=str))
    return GenerationRun(rows, len(todo), out_dir, provenance, notes)
