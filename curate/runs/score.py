"""`run_score_clap` and `run_score_reward`: the two scoring stages end to end."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from scoreaware.core.arrays import arrays_dir
from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions
from scoreaware.core.provenance import describe_input, provenance_chain
from scoreaware.core.stage import StagePlan, StageResult, done_line, drive, ray_line, rejected_line, run_stage
from scoreaware.curate.scoring.clap import DEFAULT_MODELS, load_clap, weights_fingerprint
from scoreaware.curate.scoring.reward import check_feature_models, load_reward
from scoreaware.curate.stages.score_clap import ClapScoreConfig, clap_job
from scoreaware.curate.stages.score_reward import RewardScoreConfig, load_reward_models, reward_job
from scoreaware.schemas.validation import check_input, validate_manifest


def _summary(out, seconds: float, values: list[float], field: str) -> list[str]:
    lines = [done_line(out, "scored"), rejected_line(out.summary.rejected)]
    if values:
        v = np.asarray(values)
        lines.append(f"{field} (this run): min {v.min():.4f}  median {np.median(v):.4f}  mean {v.mean():.4f}  "
                     f"max {v.max():.4f}")
    done = out.summary.this_run.get("kept", 0)
    rate = done / seconds if seconds else 0.0
    lines.append(f"took {seconds:.1f} s ({rate:.1f} cuts/s)")
    return lines


def run_score_clap(manifest: Path, output: Path, *, backend: str = "transformers", model: str | None = None,
                   amodel: str = "HTSAT-base", caption_field: str = "caption", policy: str = "center",
                   batch_size: int = 16, workers: int = 2, device: str = "cpu", unsafe_pickle: bool = False,
                   executor: ExecutorOptions | None = None, resume: bool = False,
                   overwrite: bool = False) -> StageResult:
    """Add clap_score (and stored audio/text embeddings) to every cut of `manifest`.

    Cuts without a caption are embedded too (the reward, FAD and REPA use the embedding) but
    get no score.
    """
    executor = executor or ExecutorOptions()
    source = describe_input(manifest)
    model_id = model or DEFAULT_MODELS[backend]
    config = dict(input_sha256=source["sha256"], backend=backend, model=model_id,
                  weights=weights_fingerprint(model_id), amodel=amodel if backend == "laion" else None,
                  caption_field=caption_field, policy=policy)
    setup = functools.partial(load_clap, backend, model, device=device, amodel=amodel, unsafe_pickle=unsafe_pickle)
    stage_config = ClapScoreConfig(caption_field=caption_field, policy=policy, batch_size=batch_size,
                                   num_workers=0 if executor.on_ray else workers)  # on Ray the actors decode
    scores: list[float] = []

    def keep_score(cut) -> None:
        if cut.custom.get("clap_score") is not None:
            scores.append(cut.custom["clap_score"])

    def drive_scores(out, bar):
        return drive(clap_job(setup, stage_config, arrays_dir(output)), manifest, out, executor, bar, keep_score)

    def finalize(out, report):
        encoder = report.get("state")
        return dict(
            options=dict(manifest=str(manifest), sampling_rate=getattr(encoder, "sampling_rate", None),
                         window_samples=getattr(encoder, "window", None), batch_size=batch_size, device=device,
                         output=str(output), arrays=str(arrays_dir(output)), executor=executor.kind),
            inputs=[source], extra_versions=("torch", "torchaudio", "transformers", "laion-clap", "ray"),
            tallies={"without_caption": lambda cut: (cut.get("custom") or {}).get("clap_score") is None})

    def summary(out, report, seconds):
        lines = _summary(out, seconds, scores, "clap_score") + [line for line in [ray_line(report)] if line]
        if out.summary.tallies["without_caption"]:
            lines.insert(1, f"{out.summary.tallies['without_caption']} cuts have no {caption_field}: embedded, not "
                            "scored (filter's caption rule decides)")
        return lines

    return run_stage(StagePlan(
        "clap", Path(output), config, drive_scores, summary, finalize, check=lambda: check_input(manifest),
        total=lambda: count_lines(manifest), title="score clap", input_manifest=Path(manifest),
        validator=validate_manifest), resume=resume, overwrite=overwrite)


def run_score_reward(manifest: Path, output: Path, *, checkpoint: str, mert_model: str = "m-a-p/MERT-v1-330M",
                     trust_remote_code: bool = False, prompt_protocol: str | None = None, batch_size: int = 16,
                     workers: int = 2, device: str = "cpu", unsafe_pickle: bool = False,
                     executor: ExecutorOptions | None = None, resume: bool = False,
                     overwrite: bool = False) -> StageResult:
    """Add a TuneJury-compatible reward to every cut of `manifest` (a `score clap` output).

    Reuses the stored CLAP embeddings; computes and stores MERT features (mert_emb).
    """
    executor = executor or ExecutorOptions()
    source, head_file = describe_input(manifest), describe_input(checkpoint)
    head = load_reward(checkpoint, unsafe_pickle=unsafe_pickle)
    prompt_protocol = prompt_protocol or head.prompt_protocol or "empty"
    config = dict(input_sha256=source["sha256"], checkpoint_sha256=head_file["sha256"], mert_model=mert_model,
                  mert_weights=weights_fingerprint(mert_model), prompt_protocol=prompt_protocol)

    def check() -> None:
        check_input(manifest)
        scored = next((p["options"] for p in provenance_chain(manifest) if p.get("stage") == "clap"), {})
        try:
            check_feature_models(head, scored.get("weights"), weights_fingerprint(mert_model))
        except ValueError as exc:
            raise StageError(f"{checkpoint}: {exc}") from None

    setup = functools.partial(load_reward_models, checkpoint, mert_model, device=device,
                              trust_remote_code=trust_remote_code, unsafe_pickle=unsafe_pickle)
    stage_config = RewardScoreConfig(prompt_protocol=prompt_protocol, batch_size=batch_size,
                                     num_workers=0 if executor.on_ray else workers)  # on Ray the actors decode
    rewards: list[float] = []

    def drive_rewards(out, bar):
        return drive(reward_job(setup, stage_config, arrays_dir(output)), manifest, out, executor, bar,
                     lambda cut: rewards.append(cut.custom["reward"]))

    def finalize(out, report):
        return dict(
            options=dict(manifest=str(manifest), checkpoint=str(checkpoint), prompt_protocol=prompt_protocol,
                         batch_size=batch_size, device=device, output=str(output), arrays=str(arrays_dir(output)),
                         executor=executor.kind),
            inputs=[source, head_file], extra_versions=("torch", "torchaudio", "transformers", "ray"))

    def summary(out, report, seconds):
        return _summary(out, seconds, rewards, "reward") + [line for line in [ray_line(report)] if line]

    return run_stage(StagePlan(
        "reward", Path(output), config, drive_rewards, summary, finalize, check=check,
        total=lambda: count_lines(manifest), title="score reward", input_manifest=Path(manifest),
        validator=validate_manifest), resume=resume, overwrite=overwrite)
