"""Each stage on `--executor ray` writes the manifest `--executor local` writes: same ids in
the same order, same fields, scores and arrays to 1e-5, captions equal under seeded sampling."""

import numpy as np
import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.demo.domain.build import default_models
from scoreaware.testing.parity import same_manifest


def run(*args: str) -> str:
    """`scoreaware ARGS` in this process; its output (fails the test on a non-zero exit)."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


RAY = ["--executor", "ray", "--ray-actors", "2", "--shard-size", "3"]  # several shards per actor


def test_segment(ingested, ray_cluster, tmp_path):
    for name, extra in (("local", []), ("ray", RAY)):
        run("curate", "segment", str(ingested), "--window", "4", "-o", str(tmp_path / f"{name}.jsonl.gz"), *extra)
    assert same_manifest(tmp_path / "local.jsonl.gz", tmp_path / "ray.jsonl.gz") > 6


def test_score_clap(segmented4, ray_cluster, tmp_path):
    clap = str(default_models() / "clap")
    for name, extra in (("local", []), ("ray", RAY)):
        out = run("curate", "score", "clap", str(segmented4), "--model", clap, "-o",
                  str(tmp_path / f"{name}.jsonl.gz"), *extra)
    assert "ray: " in out and "shards on 2 actors" in out
    assert same_manifest(tmp_path / "local.jsonl.gz", tmp_path / "ray.jsonl.gz") > 6


@pytest.fixture(scope="module")
def domain_scored(segmented4, tmp_path_factory):
    out = tmp_path_factory.mktemp("domain") / "clap.jsonl.gz"
    run("curate", "score", "clap", str(segmented4), "--model", str(default_models() / "clap"), "-o", str(out))
    return out


def test_score_reward(domain_scored, ray_cluster, tmp_path):
    models = default_models()
    for name, extra in (("local", []), ("ray", RAY)):
        run("curate", "score", "reward", str(domain_scored), "--checkpoint", str(models / "reward.pt"),
            "--mert-model", str(models / "mert"), "-o", str(tmp_path / f"{name}.jsonl.gz"), *extra)
    assert same_manifest(tmp_path / "local.jsonl.gz", tmp_path / "ray.jsonl.gz") > 6


def test_caption_with_seeded_sampling(domain_scored, ray_cluster, tmp_path):
    # the shipped Qwen2-Audio captioner, sampling at temperature 0.8: equal captions mean the
    # Ray actors built the same prompts and drew with the same per-cut seeds
    for name, extra in (("local", []), ("ray", RAY)):
        run("curate", "caption", str(domain_scored), "--stage", "audio", "--engine", "transformers", "--model",
            str(default_models() / "qwen2_audio"), "--temperature", "0.8", "--batch-size", "4",
            "-o", str(tmp_path / f"{name}.jsonl.gz"), *extra)
    assert same_manifest(tmp_path / "local.jsonl.gz", tmp_path / "ray.jsonl.gz") > 6
    assert all(c.custom.get("caption_verbose") for c in read_cuts(tmp_path / "ray.jsonl.gz"))


def test_train_encode(domain_scored, tiny_t5, ray_cluster, tmp_path):
    import json

    for name, extra in (("local", []), ("ray", RAY)):
        run("train", "encode", str(domain_scored), "-o", str(tmp_path / name / "encode.jsonl.gz"), "--text-encoder",
            str(tiny_t5), "--repa", "clap", *extra)
    assert same_manifest(tmp_path / "local" / "encode.jsonl.gz", tmp_path / "ray" / "encode.jsonl.gz") > 6
    stats = [json.loads((tmp_path / n / "encode.encode.json").read_text())["latent_stats"] for n in ("local", "ray")]
    assert stats[0]["frames"] == stats[1]["frames"]  # taken from the actors' output, not the driver's models
    np.testing.assert_allclose(stats[0]["mean"], stats[1]["mean"], atol=1e-4)
