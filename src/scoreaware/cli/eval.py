"""`scoreaware eval`: generate for evaluation, embed a reference, score runs, FAD, compare stages.

Every command records what it used (a provenance sidecar or ``scores.json``), shows progress,
ends with a summary, and with ``--json`` prints its result as one JSON object on stdout (the
human summary then goes to stderr).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from scoreaware.cli.train import sampling_options, settings_from
from scoreaware.schemas.fields import CLAP_SCORE

CONTEXT = dict(show_default=True)


@click.group(name="eval")
def evaluate() -> None:
    """Evaluate generated audio: FAD-CLAP, CLAP score, reward, MAD, KAD, per-stage tables."""


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(fn)


def emit(as_json: bool, payload: dict, title: str, lines: list[str]) -> None:
    """The end of every eval command: JSON for scripts, or a summary for people."""
    from scoreaware.evaluate.compare import sanitized

    if as_json:
        click.echo(json.dumps(sanitized(payload), indent=1, default=str))
        return
    click.secho(f"\n{title}", bold=True)
    for line in lines:
        click.echo(f"  {line}")


@contextlib.contextmanager
def quiet_stdout(as_json: bool):
    """With --json, what nested commands print goes to stderr, so stdout is only the JSON."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


# ------------------------------------------------------------------------------- generate
@evaluate.command("generate", context_settings=CONTEXT)
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--prompts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Text lines, JSONL, a CSV with id,prompt (the challenge's), or a JSON list.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the WAVs and samples.jsonl.")
@click.option("--seeds", "seeds_per_prompt", type=click.IntRange(1), default=1, help="Clips per prompt (K).")
@click.option("--keep-latents", is_flag=True, help="Also keep each clip's latent (latents/ID.npy).")
@sampling_options
@click.option("--text-encoder", default=None,
              help="The text encoder's folder or hub id, when the one the checkpoint records has moved.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run with the same options.")
@click.option("--overwrite", is_flag=True, help="Start over (deletes the folder's clips).")
@json_option
def generate_cmd(checkpoint: str, prompts: str, output: Path, seeds_per_prompt: int, keep_latents: bool, steps: int,
                 cfg: float, score: float, no_score: bool, negative_prompt: str, prefix: str, seconds: float,
                 lufs: float, demucs: str | None, demucs_passes: int, demucs_repo: str | None, clap_model: str | None,
                 seed: int, batch_size: int, device: str, unsafe_pickle: bool, text_encoder: str | None, resume: bool,
                 overwrite: bool, as_json: bool) -> None:
    """Generate one clip per (prompt, seed) from CHECKPOINT for evaluation.

    Clip k of prompt i starts from the noise of seed = --seed + i·K + k, so the same prompt and
    seed pair up across checkpoints. Both CFG branches of a batch go through the model in one
    forward. Resumes per clip.
    """
    from scoreaware.core.progress import Timer, progress
    from scoreaware.train.prompts import read_prompts
    from scoreaware.train.sample import run_generation

    items = read_prompts(prompts)
    settings = settings_from(steps, cfg, score, no_score, negative_prompt, prefix, seconds, lufs, demucs,
                             demucs_passes, demucs_repo, seed)
    timer = Timer()
    with progress(len(items) * seeds_per_prompt, "generate", "clip") as bar:
        run = run_generation(checkpoint, items, output, settings, seeds_per_prompt, batch_size, keep_latents,
                             clap_model, device, resume, overwrite, unsafe_pickle, prompts_file=str(prompts),
                             progress=lambda _: bar.update(1), text_encoder=text_encoder)
    rate = run.generated / timer.seconds if timer.seconds else 0.0
    emit(as_json, {"output": str(output), "clips": len(run.rows), "generated": run.generated,
                   "seconds": round(timer.seconds, 2), "clips_per_second": rate},
         "eval generate", [f"{len(run.rows)} clips ({len(items)} prompts × {seeds_per_prompt} seeds), "
                           f"{run.generated} generated now ({rate:.2f} clips/s), {steps} steps, cfg {cfg:g}, "
                           f"score {'none' if no_score else score}", *[f"note: {n}" for n in run.notes[:5]],
                           f"→ {output}/ (WAVs, samples.jsonl)"])


# ------------------------------------------------------------------------------ reference
@evaluate.command("reference", context_settings=CONTEXT)
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="REF.npz")
@click.option("--backend", type=click.Choice(["transformers", "laion"]), default="transformers")
@click.option("--model", default=None, help="CLAP model [default: laion/larger_clap_music | the music .pt].")
@click.option("--amodel", default="HTSAT-base", help="laion_clap audio model.")
@click.option("--policy", type=click.Choice(["first", "center", "mean"]), default="first",
              help="Which 10 s of longer clips are embedded (the challenge evaluates the first 10 s).")
@click.option("--mert-model", default=None, help="Also MERT features (FAD-MERT, MAD).")
@click.option("--trust-remote-code", is_flag=True, help="Allow the MERT repo's own model code to run.")
@click.option("--batch-size", type=click.IntRange(1), default=16)
@click.option("-j", "--workers", type=click.IntRange(0), default=2)
@click.option("--device", default="cpu")
@click.option("--unsafe-pickle", is_flag=True, help="Allow a laion_clap checkpoint that needs pickle.")
@json_option
def reference_cmd(source: Path, output: Path, backend: str, model: str | None, amodel: str, policy: str,
                  mert_model: str | None, trust_remote_code: bool, batch_size: int, workers: int, device: str,
                  unsafe_pickle: bool, as_json: bool) -> None:
    """Embed a reference set once (SOURCE: a manifest or a folder of audio) into REF.npz.

    Stores every clip's CLAP audio embedding (and MERT features), their mean and covariance,
    and the fingerprint (model, weights, crop policy, sample rate) later comparisons check.
    """
    from scoreaware.evaluate.reference import build_reference

    payload, lines = build_reference(source, output, backend=backend, model=model, amodel=amodel, policy=policy,
                                     mert_model=mert_model, trust_remote_code=trust_remote_code,
                                     batch_size=batch_size, workers=workers, device=device,
                                     unsafe_pickle=unsafe_pickle)
    emit(as_json, payload, "eval reference", lines)


# ---------------------------------------------------------------------------------- score
@evaluate.command("score", context_settings=CONTEXT)
@click.argument("samples", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--reference", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="REF.npz from `eval reference`.")
@click.option("--reward", "reward_checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Reward head checkpoint (empty-prompt protocol, TuneJury's).")
@click.option("--mert-model", default=None, help="MERT for the reward, FAD-MERT and MAD.")
@click.option("--clap-model", default=None,
              help="Where the reference's CLAP weights are here [default: where they were when it was made].")
@click.option("--trust-remote-code", is_flag=True)
@click.option("--mad/--no-mad", default=True, help="−ln MAUVE on MERT features (needs the mad extra).")
@click.option("--bootstrap", type=click.IntRange(10), default=200, help="Resamples for the intervals.")
@click.option("--batch-size", type=click.IntRange(1), default=16)
@click.option("-j", "--workers", type=click.IntRange(0), default=2)
@click.option("--device", default="cpu")
@click.option("--unsafe-pickle", is_flag=True)
@click.option("--overwrite", is_flag=True, help="Score again even if the scores are up to date.")
@click.option("--judge", type=click.Path(exists=True, file_okay=False), default=None,
              help="A judge folder (instrument.npz + JUDGE.json; shipped: scoreaware/demo/default_models/judge): "
                   "adherence of clips whose prompts name instrument, tempo_band and mode, beside the judge's "
                   "ceiling on real renders.")
@json_option
@click.pass_context
def score_cmd(ctx: click.Context, samples: Path, reference: Path, reward_checkpoint: str | None,
              mert_model: str | None, clap_model: str | None, trust_remote_code: bool, mad: bool, bootstrap: int,
              batch_size: int, workers: int, device: str, unsafe_pickle: bool, overwrite: bool, judge: str | None,
              as_json: bool) -> None:
    """Score the clips in SAMPLES (from `eval generate`) and their set against REFERENCE.

    Per clip: CLAP score against the prompt as written, reward (empty prompt). Per set: FAD-CLAP
    with a bootstrap interval and n, KAD, FAD-MERT and MAD when MERT is given. Writes
    SAMPLES/eval/ (scored manifests, clips.csv, scores.json).
    """
    from scoreaware.evaluate.score_run import score_run

    with quiet_stdout(as_json):
        result = score_run(samples, reference, reward_checkpoint, mert_model, trust_remote_code, mad,
                           bootstrap, batch_size, workers, device, unsafe_pickle, clap_model=clap_model,
                           overwrite=overwrite, log=lambda line: click.secho(line, fg="green", err=True))
        if judge:
            from scoreaware.evaluate.adherence import judge_run

            result["metrics"]["adherence"] = judge_run(samples, judge)
            if not result["metrics"]["adherence"]:
                result["warnings"].append("--judge: no clip's prompt names instrument, tempo_band and mode (columns "
                                          "of the prompts file); nothing judged")
    metrics = result["metrics"]

    def line(name: str, label: str) -> str | None:
        item = metrics.get(name)
        if not item:
            return None
        value = item.get("fad", item.get("value", item.get("mean")))
        ci = item.get("ci")
        return f"{label}: {value:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "") + f"  (n={item.get('n')})"

    lines = [x for x in (line("fad_clap", "FAD-CLAP"), line("kad_clap", "KAD-CLAP"), line(CLAP_SCORE, "CLAP score"),
                         line("reward", "reward"), line("fad_mert", "FAD-MERT"), line("mad", "MAD")) if x]
    if metrics.get("adherence"):
        from scoreaware.evaluate.adherence import format_adherence

        lines += format_adherence(metrics["adherence"])
    lines += [f"note: {w}" for w in result["warnings"]]
    lines.append(f"→ {samples / 'eval'} (scores.json, clips.csv{', judge.csv' if metrics.get('adherence') else ''})")
    emit(as_json, result, "eval score", lines)


# ------------------------------------------------------------------------------------ fad
@evaluate.command("fad", context_settings=CONTEXT)
@click.argument("generated", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("reference", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--embedding", type=click.Choice(["clap", "mert_all", "mert_last", "mert"]), default="clap",
              help="Which embeddings of an .npz or manifest.")
@click.option("--bootstrap", type=click.IntRange(0), default=0, help="Resamples for an interval (0: none).")
@json_option
def fad_cmd(generated: Path, reference: Path, embedding: str, bootstrap: int, as_json: bool) -> None:
    """The Fréchet distance between two embedding sets.

    Each is an .npy matrix (rows = clips), an .npz from `eval reference`, or a scored manifest
    with stored embeddings. Fewer clips than dimensions gives a finite value and a warning.
    """
    from scoreaware.evaluate.embeddings import check_compatible, check_same_width, load_embedding_set
    from scoreaware.evaluate.frechet import bootstrap_frechet, frechet_from_stats

    a, b = load_embedding_set(generated, embedding), load_embedding_set(reference, embedding)
    check_compatible(a.fingerprint, b.fingerprint)
    check_same_width(a, b)
    result = frechet_from_stats(a.stats, b.stats)
    payload = result.to_dict()
    if bootstrap:
        payload["ci"] = list(bootstrap_frechet(a.embeddings, b.stats, resamples=bootstrap))
    lines = [f"FAD {result.value:.6f}  (n={result.n_a} vs {result.n_b}, d={result.dim}, {result.method})"]
    if bootstrap:
        lines.append(f"95% interval over clips [{payload['ci'][0]:.6f}, {payload['ci'][1]:.6f}]")
    lines += [f"warning: {w}" for w in result.warnings]
    emit(as_json, payload, "eval fad", lines)


# -------------------------------------------------------------------------------- compare
@evaluate.command("compare", context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--names", default=None, help="Comma-separated stage names [default: the folder names].")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for compare.md, compare.csv, compare.png [default: next to the first run].")
@click.option("--resamples", "--bootstrap", "resamples", type=click.IntRange(10), default=2000,
              help="Sign flips and bootstrap draws over prompts. FAD's smallest p with P prompts: 2/2^P when all 2^P "
                   "flips are enumerated (2^P ≤ this), else 1/(this + 1).")
@json_option
def compare_cmd(runs: tuple[Path, ...], names: str | None, output: Path | None, resamples: int,
                as_json: bool) -> None:
    """The per-stage decomposition table of RUN_A RUN_B ... (scored samples folders, in order).

    For each stage FAD-CLAP (with its interval), mean CLAP score and reward; between consecutive
    stages the deltas on the same prompts and seeds, tested with the prompt as the unit (clips of
    one prompt are averaged, not counted as independent), Holm-adjusted over the table.
    """
    from scoreaware.evaluate.compare import run_compare

    labels = names.split(",") if names else None
    if labels is not None and len(labels) != len(runs):
        raise click.BadParameter(f"{len(labels)} names for {len(runs)} runs", param_hint="--names")
    payload, lines = run_compare(runs, labels, output, resamples)
    emit(as_json, payload, "eval compare", lines)
