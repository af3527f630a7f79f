"""Evaluation under hostile input: non-finite values never reach LAPACK (whose sqrtm can hang on
NaN, ignoring Ctrl-C), and every bad file ends in one line naming it."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.testing.dummies import tone, write_audio


def fad(*paths):
    return CliRunner().invoke(cli, ["eval", "fad", *[str(p) for p in paths]])


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npy"
    np.save(path, np.random.default_rng(0).normal(size=(12, 8)))
    return path


def test_a_nan_row_is_an_error_naming_file_and_row_in_a_fresh_process(tmp_path, good):
    bad = tmp_path / "nan.npy"
    matrix = np.random.default_rng(1).normal(size=(12, 8))
    matrix[3, 5] = np.nan
    np.save(bad, matrix)
    # its own process with a deadline: a hang inside LAPACK could not be interrupted in this one
    done = subprocess.run([sys.executable, "-m", "scoreaware", "eval", "fad", str(bad), str(good)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "nan.npy: row 3" in done.stderr and "NaN or inf" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name, write", [
    ("inf.npy", lambda p: np.save(p, np.full((4, 8), np.inf))),
    ("huge.npy", lambda p: np.save(p, np.full((4, 8), 1e300) * np.arange(1, 5)[:, None])),
    ("narrow.npy", lambda p: np.save(p, np.zeros((5, 3)))),
    ("one.npy", lambda p: np.save(p, np.zeros((1, 8)))),
    ("none.npy", lambda p: np.save(p, np.zeros((0, 8)))),
    ("object.npy", lambda p: np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)),
    ("garbage.npy", lambda p: p.write_bytes(b"not numpy at all")),
    ("empty.npy", lambda p: p.write_bytes(b"")),
    ("truncated.npz", lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 10)),
    ("words.npy", lambda p: np.save(p, np.array([["a", "b"], ["c", "d"]]))),
])
def test_bad_embedding_files_are_one_line_naming_the_file(tmp_path, good, name, write):
    path = tmp_path / name
    write(path)
    result = fad(path, good)
    assert result.exit_code == 1, result.output
    assert name in result.output and "internal error" not in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_reference_quarantines_non_finite_audio_and_stores_only_finite_rows(tmp_path, tiny_clap):
    folder = tmp_path / "audio"
    for i in range(3):
        write_audio(folder / f"ok{i}.wav", tone(1.0, freq=220.0 * (i + 1)))
    broken = tone(1.0)
    broken[100, 0] = np.nan
    write_audio(folder / "nan.wav", broken, subtype="FLOAT")
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(cli, ["eval", "reference", str(folder), "-o", str(out), "--model", str(tiny_clap),
                                      "-j", "0", "--json"])
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        assert np.isfinite(data["clap__embeddings"]).all() and data["clap__embeddings"].shape[0] == 3
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
    assert "non_finite_samples" in out.with_name("ref.provenance.json").read_text()  # the quarantined clip and why


def generate(checkpoint, prompts, out, *extra):
    return CliRunner().invoke(cli, ["eval", "generate", str(checkpoint), "--prompts", str(prompts), "-o", str(out),
                                    "--seeds", "1", "--steps", "2", "--seconds", "1", *extra])


def test_a_torn_last_row_is_repaired_on_resume(tiny_checkpoint, eval_prompts, tmp_path):
    out = tmp_path / "run"
    assert generate(tiny_checkpoint, eval_prompts, out).exit_code == 0
    table = out / "samples.jsonl"
    rows = table.read_text().splitlines()
    (out / rows[-1].split('"path": "')[1].split('"')[0]).unlink()  # the last clip's WAV: as if killed mid-write
    table.write_text("\n".join(rows[:-1]) + "\n" + rows[-1][:25])  # ... and its row torn
    (out / "samples.provenance.json").unlink()
    resumed = generate(tiny_checkpoint, eval_prompts, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    lines = table.read_text().splitlines()
    assert len(lines) == 3 and all(line.startswith("{") and line.endswith("}") for line in lines)
    assert [json.loads(line)["id"] for line in lines] == [json.loads(row)["id"] for row in rows]


def test_a_failed_generation_does_not_block_the_retry(tiny_checkpoint, eval_prompts, tmp_path):
    out = tmp_path / "run"
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not a checkpoint")
    failed = generate(wrong, eval_prompts, out)
    assert failed.exit_code == 1 and "internal error" not in failed.output
    retried = generate(tiny_checkpoint, eval_prompts, out)
    assert retried.exit_code == 0, retried.output
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3


def test_reference_names_unreadable_short_and_many_channel_files(tmp_path, tiny_clap):
    folder = tmp_path / "audio"
    for i in range(2):
        write_audio(folder / f"ok{i}.wav", tone(1.0, freq=330.0 * (i + 1)))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    write_audio(folder / "one.wav", np.zeros((1, 1), np.float32))
    write_audio(folder / "six.wav", tone(1.0, channels=6))
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(cli, ["eval", "reference", str(folder), "-o", str(out), "--model", str(tiny_clap),
                                      "-j", "0"])
    assert result.exit_code == 0, result.output
    assert "3 clips embedded" in result.output and "3 unreadable" in result.output
    for line in ("empty.wav: empty_file", "bad.wav: not_audio", "one.wav: too_short",
                 "note: six.wav: 6 channels, down-mixed to mono"):
        assert line in result.output, line
    assert "internal error" not in result.output and "AudioLoadingError" not in result.output


def test_a_prompt_past_the_token_limit_is_said(tiny_checkpoint, tmp_path):
    prompts = tmp_path / "long.txt"
    prompts.write_text("A calm piece\n" + "a very long rambling prompt about guitars " * 40 + "\n")
    result = generate(tiny_checkpoint, prompts, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "note: prompt 0002:" in result.output and "the text encoder keeps the first" in result.output
    assert "prompt 0001" not in result.output


def copy_run(source, tmp_path, name="run"):
    import shutil

    run = tmp_path / name
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("eval"))
    return run


def test_score_quarantines_bad_clips_with_their_reason_and_goes_on(generated, eval_reference, tmp_path):
    import soundfile as sf

    run = copy_run(generated, tmp_path)
    wavs = sorted(run.glob("*.wav"))
    (wavs[0]).write_bytes(b"")
    audio, rate = sf.read(wavs[1], dtype="float32", always_2d=True)
    audio[5, 0] = np.nan
    sf.write(wavs[1], audio, rate, subtype="FLOAT")
    sf.write(wavs[2], np.repeat(audio[:, :1] * 0 + 0.1, 6, axis=1), rate)  # 6 channels: scored, named
    result = CliRunner().invoke(cli, ["eval", "score", str(run), "--reference", str(eval_reference), "--no-mad",
                                      "-j", "0", "--bootstrap", "10", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{"):])
    assert payload["n"] == len(wavs) - 2
    assert {(q["source"], q["reason"]) for q in payload["quarantined"]} == {
        (wavs[0].name, "empty_file"), (wavs[1].name, "non_finite_samples")}
    assert any(f"2 of {len(wavs)} clips quarantined" in w for w in payload["warnings"])
    assert any(f"{wavs[2].name}: 6 channels" in w for w in payload["warnings"])
    every = copy_run(generated, tmp_path, "all_bad")
    for wav in every.glob("*.wav"):
        wav.write_bytes(b"RIFF")
    result = CliRunner().invoke(cli, ["eval", "score", str(every), "--reference", str(eval_reference), "--no-mad",
                                      "-j", "0", "--bootstrap", "10"])
    assert result.exit_code == 1 and "every WAV was quarantined" in result.output, result.output


@pytest.mark.parametrize("row, field", [
    ({"path": "../../outside.wav"}, "path"), ({"path": "/etc/hostname"}, "path"), ({"seed": "zero"}, "seed"),
    ({"id": None}, "id"), ({"latent": "../../x.npy"}, "latent")])
def test_score_refuses_a_samples_row_naming_line_and_field(generated, eval_reference, tmp_path, row, field):
    run = copy_run(generated, tmp_path)
    table = run / "samples.jsonl"
    lines = table.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), **row})
    table.write_text("\n".join(lines) + "\n")
    (tmp_path / "outside.wav").write_bytes((run / json.loads(lines[0])["path"]).read_bytes())  # exists: no escape
    result = CliRunner().invoke(cli, ["eval", "score", str(run), "--reference", str(eval_reference), "--no-mad",
                                      "-j", "0", "--bootstrap", "10"])
    assert result.exit_code == 1, result.output
    assert f"samples.jsonl:2: {field}" in result.output and "internal error" not in result.output, result.output


@pytest.mark.parametrize("damage, message", [
    (lambda s: s["metrics"]["fad_clap"].pop("n"), "metrics.fad_clap.n: Field required"),
    (lambda s: s["metrics"]["clap_score"].update(ci=[0.1, "x"]), "metrics.clap_score.ci.1"),
    (lambda s: s["manifests"].update(clap="../../../etc/passwd"), "manifests.clap"),
    (lambda s: s.update(format="other"), "not a scoreaware scores file")])
def test_compare_names_the_field_of_a_damaged_scores_file(generated, scored, tmp_path, damage, message):
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(generated, a)
    shutil.copytree(generated, b)
    scores = json.loads((b / "eval" / "scores.json").read_text())
    damage(scores)
    (b / "eval" / "scores.json").write_text(json.dumps(scores))
    result = CliRunner().invoke(cli, ["eval", "compare", str(a), str(b), "--resamples", "10"])
    assert result.exit_code == 1, result.output
    assert str(b / "eval" / "scores.json") in result.output and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_compare_names_an_embeddings_manifest_that_lacks_clips_of_clips_csv(generated, scored, tmp_path):
    """The fresh-clone fuzz run found this ending in `internal error: KeyError ('p1', 0)`."""
    import shutil

    from lhotse import CutSet

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(generated, a)
    shutil.copytree(generated, b)
    manifest = b / "eval" / json.loads((b / "eval" / "scores.json").read_text())["manifests"]["clap"]
    cuts = CutSet.from_file(manifest)
    CutSet.from_cuts(list(cuts)[1:]).to_file(manifest)  # one clip's embedding gone
    result = CliRunner().invoke(cli, ["eval", "compare", str(a), str(b), "--resamples", "10"])
    assert result.exit_code == 1, result.output
    assert str(manifest) in result.output and "no CLAP embedding for 1 clip" in result.output, result.output
    assert "internal error" not in result.output, result.output
