"""Nobody gets in: data-named files stay in their folder, checkpoints load without running
code, and secrets never reach logs or messages."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.arrays import ArrayStore
from scoreaware.core.checkpoints import CheckpointError, load_checkpoint
from scoreaware.core.files import safe_name
from scoreaware.core.manifests import read_cuts
from scoreaware.curate.publish import export_dataset
from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, load_reward, save_reward
from scoreaware.testing.dummies import file_cut, tone, write_audio
from scoreaware.testing.hostile import save_pickled_checkpoint

sys.path.insert(0, str(Path(__file__).parent / "captioning"))
from fake_openai import FakeOpenAI  # noqa: E402

HOSTILE_IDS = ["../../escaped", "/tmp/abs_escaped", "a/b/../../../up", "..", ".hidden", "ok_id"]


def test_import_never_writes_outside_its_folder(tmp_path):
    audio = write_audio(tmp_path / "src" / "a.wav", tone(1.0))
    cuts = [file_cut(audio, cut_id=ident, caption=f"row {k}") for k, ident in enumerate(HOSTILE_IDS)]
    manifest = tmp_path / "src" / "hostile.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    dataset = tmp_path / "work" / "ds"
    export_dataset(manifest, dataset)  # a Hub dataset with such ids is what an attacker would publish
    out = tmp_path / "work" / "deep" / "imp.jsonl.gz"
    before = set(tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, ["curate", "import", str(dataset), "-o", str(out)])
    assert result.exit_code == 0, result.output
    audio_dir = (tmp_path / "work" / "deep" / "imp.audio").resolve()
    created = {p.resolve() for p in set(tmp_path.rglob("*")) - before}
    strays = [p for p in created if p.is_file() and audio_dir not in p.parents and p.parent != out.parent.resolve()]
    assert strays == []
    assert not Path("/tmp/abs_escaped.flac").exists() and not (tmp_path / "escaped.flac").exists()
    back = {c.id: c for c in read_cuts(out)}
    assert set(back) == set(HOSTILE_IDS)  # ids kept as data, never used as paths
    for ident, cut in back.items():
        source = Path(cut.recording.sources[0].source).resolve()
        assert source.parent == audio_dir
        assert cut.load_audio().shape[-1] == 16000
        assert (cut.custom.get("audio_file") is not None) == (safe_name(ident) != ident)


@pytest.mark.parametrize("ident", HOSTILE_IDS)
def test_array_keys_from_data_stay_in_the_store(tmp_path, ident):
    store = ArrayStore(tmp_path / "store")
    array = store.put("clap", ident, np.arange(3.0))
    stored = (Path(array.storage_path) / array.storage_key).resolve()
    assert (tmp_path / "store").resolve() in stored.parents
    assert np.array_equal(array.load(), np.arange(3.0))
    assert safe_name(ident, "key") == ident or "/" not in safe_name(ident, "key")


@pytest.fixture
def reward_payload():
    head = RewardHead(RewardConfig(mert_dim=16, hidden=(8,)))
    return {"state_dict": head.state_dict()}


def test_pickled_checkpoints_are_refused_unless_the_user_trusts_them(tmp_path, reward_payload):
    marker = tmp_path / "code_ran"
    evil = save_pickled_checkpoint(tmp_path / "evil.pt", reward_payload, marker)
    with pytest.raises(CheckpointError, match="--unsafe-pickle"):
        load_reward(evil)
    assert not marker.exists()  # nothing ran
    head = load_reward(evil, unsafe_pickle=True)  # the user vouched for it
    assert marker.exists() and head.config.mert_dim == 16


def test_our_checkpoints_are_plain_data(tmp_path):
    head = RewardHead(RewardConfig(mert_dim=16, hidden=(8,)))
    save_reward(tmp_path / "r.pt", head, metrics={"holdout": {"accuracy": 0.7}}, extra={"history": [{"epoch": 1}]})
    torch.load(tmp_path / "r.pt", weights_only=True)  # raises if anything needed pickle
    assert load_reward(tmp_path / "r.pt").config.hidden == (8,)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("<html>403</html>")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(junk)


def test_score_reward_cli_refuses_a_pickled_head(clap_scored, tiny_mert, tmp_path, reward_payload):
    marker = tmp_path / "code_ran"
    payload = {"state_dict": RewardHead(RewardConfig(mert_dim=1024, hidden=(8,))).state_dict()}
    evil = save_pickled_checkpoint(tmp_path / "evil.pt", payload, marker)
    args = ["curate", "score", "reward", str(clap_scored), "--checkpoint", str(evil), "--mert-model",
            str(tiny_mert), "-j", "0"]
    refused = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "r.jsonl.gz")])
    assert refused.exit_code == 1 and "--unsafe-pickle" in refused.output and "Traceback" not in refused.output
    assert not marker.exists()
    trusted = CliRunner().invoke(cli, [*args, "--unsafe-pickle", "-o", str(tmp_path / "r2.jsonl.gz")])
    assert trusted.exit_code == 0, trusted.output
    assert marker.exists()


def test_server_errors_never_leak_the_api_key(tmp_path, monkeypatch, caplog):
    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    manifest = tmp_path / "v.jsonl.gz"
    CutSet.from_cuts([file_cut(audio, cut_id="c0", caption="x", caption_verbose="A slow piece.")]).to_file(manifest)
    caplog.set_level(logging.INFO)
    with FakeOpenAI(mode="echo_auth") as server:
        result = CliRunner().invoke(cli, ["-v", "curate", "caption", str(manifest), "--stage", "rewrite", "--engine",
                                          "openai", "--model", "m", "--base-url", server.url, "--retries", "1",
                                          "-o", str(tmp_path / "c.jsonl.gz")])
    assert server.headers and server.headers[0]["Authorization"] == f"Bearer {secret}"  # the server did see it
    assert result.exit_code == 1 and "HTTP 500" in result.output
    assert secret not in result.output and secret not in caplog.text
    assert "0123456789" not in result.output + caplog.text
    assert "request to" in caplog.text  # the retry was logged, redacted


def test_a_password_in_the_base_url_is_sent_as_a_header_and_never_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    manifest = tmp_path / "v.jsonl.gz"
    CutSet.from_cuts([file_cut(audio, cut_id="c0", caption="x", caption_verbose="A slow piece.")]).to_file(manifest)
    caplog.set_level(logging.INFO)
    with FakeOpenAI(mode="echo_auth") as server:  # fails with HTTP 500, echoing the Authorization header
        url = server.url.replace("http://", "http://alice:pw-0123456789@")
        failed = CliRunner().invoke(cli, ["-v", "curate", "caption", str(manifest), "--stage", "rewrite", "--engine",
                                          "openai", "--model", "m", "--base-url", url, "--retries", "1",
                                          "-o", str(tmp_path / "c.jsonl.gz")])
    assert server.headers[0]["Authorization"].startswith("Basic ")  # the credentials went in the header
    assert failed.exit_code == 1 and "HTTP 500" in failed.output
    assert "pw-0123456789" not in failed.output + caplog.text and "alice:" not in failed.output + caplog.text
    with FakeOpenAI() as server:
        url = server.url.replace("http://", "http://alice:pw-0123456789@")
        done = CliRunner().invoke(cli, ["curate", "caption", str(manifest), "--stage", "rewrite", "--engine", "openai",
                                        "--model", "m", "--base-url", url, "-o", str(tmp_path / "d.jsonl.gz")])
    assert done.exit_code == 0, done.output
    sidecar = (tmp_path / "d.provenance.json").read_text()
    assert "pw-0123456789" not in sidecar + done.output and "***@" in sidecar


def test_redact_hides_url_userinfo():
    from scoreaware.core.redact import redact, split_userinfo

    assert redact("GET http://user:hunter2@host:8000/v1 failed") == "GET http://***@host:8000/v1 failed"
    assert split_userinfo("https://a%40b:p%3Aw@h:1/v1") == ("https://h:1/v1", "a@b:p:w")
    assert split_userinfo("http://h/v1") == ("http://h/v1", None)


@pytest.mark.parametrize("password", ["pa@ssSECRET", "p:w%41SECRET", "pässwörd-SECRET-é", "a b+c@d:e%f-SECRET"])
def test_a_server_that_echoes_credentials_every_way_leaks_nothing(tmp_path, monkeypatch, caplog, password):
    """The server prints the password raw, URL-encoded, JSON-escaped and as the Basic token, in its
    reason phrase and its body, on every retry; no stream or file of the run may hold any of them."""
    import base64
    import json
    import urllib.parse

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    manifest = tmp_path / "v.jsonl.gz"
    CutSet.from_cuts([file_cut(audio, cut_id="c0", caption="x", caption_verbose="A slow piece.")]).to_file(manifest)
    caplog.set_level(logging.INFO)  # (at DEBUG the root command re-raises, for -vv's traceback)
    token = base64.b64encode(f"user:{password}".encode()).decode()
    forms = {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password, safe=""), token,
             token.rstrip("="), json.dumps(password)[1:-1], "SECRET"}
    with FakeOpenAI(mode="echo_credentials") as server:
        url = server.url.replace("http://", f"http://user:{urllib.parse.quote(password, safe='')}@")
        failed = CliRunner().invoke(cli, ["-v", "curate", "caption", str(manifest), "--stage", "rewrite", "--engine",
                                          "openai", "--model", "m", "--base-url", url, "--retries", "2",
                                          "-o", str(tmp_path / "c.jsonl.gz")])
    assert server.headers and server.headers[0]["Authorization"] == f"Basic {token}"  # the server saw them
    assert failed.exit_code == 1 and "403" in failed.output, failed.output
    streams = failed.output + caplog.text
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".wav")
    import gzip

    for p in tmp_path.rglob("*.gz"):
        files += gzip.decompress(p.read_bytes())
    for form in forms:
        assert form not in streams, (form, streams[-1500:])
        assert form.encode() not in files, form


def test_redact_scrubs_a_password_with_an_at_sign_whole():
    from scoreaware.core.redact import redact

    assert redact("http://user:pa@ssSECRET@127.0.0.1:18081/v1") == "http://***@127.0.0.1:18081/v1"
    assert redact("user=user pass=secret; got Basic dXNlcjpzZWNyZXQ=", "user:secret") == \
        "user=user pass=***; got Basic ***"
