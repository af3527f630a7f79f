import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.captioning.engines import ChatRequest, OpenAIEngine, SamplingConfig
from scoreaware.curate.stages.caption import CaptionConfig, build_request
from scoreaware.testing.dummies import file_cut, tone, write_audio

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402

from scoreaware.core.manifests import read_cuts


@pytest.fixture(scope="module")
def verbose_manifest(tmp_path_factory):
    """Four cuts with tags and a verbose caption (stage 1 output shape)."""
    root = tmp_path_factory.mktemp("cap")
    path = write_audio(root / "a.wav", tone(2.0))
    cuts = [file_cut(path, cut_id=f"c{i}", caption=f"old caption {i}", tags=["genre---jazz", "instrument---piano"],
                     caption_verbose=f"A long description of jazz piano number {i}.") for i in range(4)]
    out = root / "verbose.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(out)
    return out


def rewrite(manifest, out, url, *extra):
    return CliRunner().invoke(cli, ["curate", "caption", str(manifest), "--stage", "rewrite", "--engine", "openai",
                                    "--model", "tiny", "--base-url", url, "-o", str(out), "--retries", "1",
                                    "--timeout", "2", *extra])


def test_rewrite_through_an_openai_compatible_server(verbose_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    with FakeOpenAI() as server:
        result = rewrite(verbose_manifest, tmp_path / "c.jsonl.gz", server.url, "--concurrency", "3")
    assert result.exit_code == 0, result.output
    cuts = sorted(read_cuts(tmp_path / "c.jsonl.gz"), key=lambda c: c.id)  # written as answers arrive
    assert [c.custom["caption"] for c in cuts] == ["A calm piece of genre: jazz, instrument: piano with gentle piano "
                                                   "and soft strings."] * 4
    assert cuts[0].custom["caption_previous"] == "old caption 0"
    assert server.headers[0]["Authorization"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in result.output
    assert "Description: A long description of jazz piano number" in server.requests[0]["messages"][1]["content"]
    sidecar = read_provenance(tmp_path / "c.jsonl.gz")
    assert sidecar["options"]["seed"] == 0 and sidecar["options"]["engine"] == "openai"
    assert len({r["seed"] for r in server.requests}) == 4  # a seed per cut, recorded in the requests


def test_failing_checks_keep_the_previous_caption_and_flag(verbose_manifest, tmp_path):
    with FakeOpenAI(mode="instructions") as server:
        result = rewrite(verbose_manifest, tmp_path / "c.jsonl.gz", server.url, "--attempts", "2")
    assert result.exit_code == 0, result.output
    cuts = sorted(read_cuts(tmp_path / "c.jsonl.gz"), key=lambda c: c.id)
    assert all(c.custom["caption"] == f"old caption {i}" for i, c in enumerate(cuts))
    assert all(c.custom["caption_flag"] == "instruction_like" for c in cuts)
    assert len(server.requests) == 8  # two attempts per cut, then give up
    assert "4 flagged" in result.output


@pytest.mark.parametrize("server_kwargs, error", [
    (None, "Connection refused"),  # endpoint down
    ({"delay": 3.0}, "timed out"),  # slower than --timeout 2
    ({"mode": "malformed"}, "malformed response"),
])
def test_engine_failures_lose_nothing_and_resume_completes(verbose_manifest, tmp_path, server_kwargs, error):
    out = tmp_path / "c.jsonl.gz"
    if server_kwargs is None:
        result = rewrite(verbose_manifest, out, "http://127.0.0.1:9/v1")
    else:
        with FakeOpenAI(**server_kwargs) as server:
            result = rewrite(verbose_manifest, out, server.url)
    assert result.exit_code == 1
    assert "4 cuts could not be captioned" in result.output and "--resume" in result.output
    assert error in result.output and "c0:" in result.output
    assert not out.exists() and (tmp_path / ".c.partial").is_dir()
    with FakeOpenAI() as server:
        resumed = rewrite(verbose_manifest, out, server.url, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert sorted(c.id for c in read_cuts(out)) == ["c0", "c1", "c2", "c3"]


def test_a_flaky_server_is_retried_with_backoff(verbose_manifest, tmp_path):
    with FakeOpenAI(fail_first=2) as server:
        engine = OpenAIEngine(server.url, "tiny", retries=3, backoff=0.01, concurrency=1)
        answers = engine.generate([ChatRequest("k", "s", "u")], SamplingConfig())
    assert isinstance(answers[0], str) and len(server.requests) == 3


def test_partially_failed_batches_keep_what_succeeded(verbose_manifest, tmp_path):
    with FakeOpenAI(fail_first=1) as server:  # the first request fails and, without retries, stays failed
        result = rewrite(verbose_manifest, tmp_path / "c.jsonl.gz", server.url, "--retries", "0",
                         "--concurrency", "1")
    assert result.exit_code == 1 and "1 cuts could not be captioned (kept 3" in result.output
    with FakeOpenAI() as server:
        assert rewrite(verbose_manifest, tmp_path / "c.jsonl.gz", server.url, "--resume").exit_code == 0
        assert len(server.requests) == 1  # only the missing cut was sent again


def test_long_audio_is_cropped_deliberately(tmp_path):
    cut = file_cut(write_audio(tmp_path / "long.wav", tone(40.0)), caption="x")
    request, extra = build_request(cut, CaptionConfig(stage="audio", max_audio_seconds=30.0))
    samples, rate = request.audio
    assert samples.shape[0] == 30 * rate and extra == {"caption_audio_cropped": 10.0}
    assert request.user.endswith("suggest: none.")  # no tags: the hint says so


def test_stage_one_and_two_with_the_transformers_engine(verbose_manifest, tmp_path):
    from scoreaware.demo.tiny_models import make_tiny_qwen2, make_tiny_qwen2_audio

    audio_model, text_model = make_tiny_qwen2_audio(tmp_path / "qa"), make_tiny_qwen2(tmp_path / "q")
    stage1 = tmp_path / "v.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "caption", str(verbose_manifest), "--stage", "audio", "--engine",
                                      "transformers", "--model", str(audio_model), "--max-tokens", "12",
                                      "--attempts", "1", "-o", str(stage1)])
    assert result.exit_code == 0, result.output
    cuts = list(read_cuts(stage1))
    # a random model writes noise: each cut either has a new verbose caption or keeps the old one, flagged
    for cut in cuts:
        assert "caption_flag" in cut.custom or cut.custom["caption_verbose"] != "A long description"
    stage2 = tmp_path / "c.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "caption", str(stage1), "--stage", "rewrite", "--engine",
                                      "transformers", "--model", str(text_model), "--max-tokens", "12",
                                      "--attempts", "2", "-o", str(stage2)])
    assert result.exit_code == 0, result.output
    assert len(list(read_cuts(stage2))) == 4
    assert CliRunner().invoke(cli, ["curate", "validate", str(stage2), "--stage", "caption"]).exit_code == 0


def test_templates_can_be_overridden(verbose_manifest, tmp_path):
    template = tmp_path / "user.txt"
    template.write_text("Summarize for a music dataset. Tags: {tags}")
    with FakeOpenAI() as server:
        result = rewrite(verbose_manifest, tmp_path / "c.jsonl.gz", server.url, "--user-template", str(template))
    assert result.exit_code == 0
    assert server.requests[0]["messages"][1]["content"].startswith("Summarize for a music dataset. Tags: genre: jazz")
    assert np.all([r["max_tokens"] == 200 for r in server.requests])
