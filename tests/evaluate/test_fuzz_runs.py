"""Fuzzing what `eval score` and `eval compare` are handed: a generated run whose WAVs and
``samples.jsonl`` are damaged (truncated, garbage, NaN/inf samples, 0 bytes, 6 channels, one
sample, torn or odd rows, paths out of the folder), and scored runs whose ``scores.json``,
``clips.csv``, embeddings manifest or ``generation.json`` are damaged. Every call ends within
its time limit (a watchdog kills the run instead of letting it hang) with a result or one line
naming the file, never a traceback or an `internal error`."""

from __future__ import annotations

import faulthandler
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoreaware.cli.main import cli

FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
LIMIT_S = 120  # per call


def invoke(*args) -> object:
    faulthandler.dump_traceback_later(LIMIT_S, exit=True)  # a hang ends the run loudly instead of never
    try:
        return CliRunner().invoke(cli, [str(a) for a in args])
    finally:
        faulthandler.cancel_dump_traceback_later()


def assert_clean(result, *names: str) -> None:
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    if result.exit_code == 1:
        error = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert error, result.output
        assert any(name in error[0] for name in names), result.output  # names what is at fault


# ── eval score: a damaged generated run ───────────────────────────────────────────────────────

def damage_wav(path: Path, kind: str, data) -> None:
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except sf.LibsndfileError:
        audio, rate = np.zeros((0, 1), np.float32), 44100  # damaged already
    if len(audio) == 0 and kind not in ("truncate", "garbage", "empty"):
        return
    if kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))])
    elif kind == "garbage":
        path.write_bytes(data.draw(st.binary(max_size=256)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("nan", "inf"):
        audio[data.draw(st.integers(0, len(audio) - 1)), 0] = np.nan if kind == "nan" else np.inf
        sf.write(path, audio, rate, subtype="FLOAT")
    elif kind == "six_channels":
        sf.write(path, np.repeat(audio[:, :1], 6, axis=1), rate)
    elif kind == "one_sample":
        sf.write(path, audio[:1], rate)
    elif kind == "silence":
        sf.write(path, np.zeros_like(audio), rate)
    elif kind == "huge":
        sf.write(path, audio * 1e30, rate, subtype="FLOAT")


def damage_rows(table: Path, kind: str, data) -> None:
    lines = table.read_text().splitlines()
    row = data.draw(st.integers(0, len(lines) - 1))
    try:  # an earlier damage may have left this row unreadable: damage it no further
        obj = json.loads(lines[row])
    except (json.JSONDecodeError, RecursionError):  # a row the "deep" damage left
        obj = None
    if kind in ("missing_field", "odd_value", "escape") and not (isinstance(obj, dict) and obj):
        return
    if kind == "torn" and len(lines[-1]) > 1:
        lines[-1] = lines[-1][: data.draw(st.integers(1, len(lines[-1]) - 1))]
    elif kind == "not_an_object":
        lines[row] = json.dumps(data.draw(st.sampled_from([[], 3, "x", None])))
    elif kind == "missing_field":
        obj.pop(data.draw(st.sampled_from(sorted(obj))))
        lines[row] = json.dumps(obj)
    elif kind == "odd_value":
        obj[data.draw(st.sampled_from(sorted(obj)))] = data.draw(st.sampled_from([None, [], {}, -1, "", "\x00", 1e308,
                                                                                  "\ud800", float("nan")]))
        lines[row] = json.dumps(obj)
    elif kind == "escape":
        obj["path"] = data.draw(st.sampled_from(["../../../../etc/passwd", "/etc/passwd", "..", "."]))
        lines[row] = json.dumps(obj)
    elif kind == "duplicate":
        lines.append(lines[row])
    elif kind == "deep":  # issue 36: a RecursionError
        lines[row] = '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    elif kind == "bom":  # issue 36: reported as "an interrupted generation"
        lines[0] = "\ufeff" + lines[0]
    table.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def run_source(generated) -> Path:
    return generated


@FUZZ
@given(data=st.data())
def test_eval_score_never_hangs_or_leaks_a_traceback(run_source, eval_reference, tmp_path_factory, data):
    run = tmp_path_factory.mktemp("fuzz_score") / "run"
    shutil.copytree(run_source, run, ignore=shutil.ignore_patterns("eval"))
    wavs = sorted(run.rglob("*.wav"))
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):
            damage_wav(data.draw(st.sampled_from(wavs)), data.draw(st.sampled_from(
                ["truncate", "garbage", "empty", "nan", "inf", "six_channels", "one_sample", "silence", "huge"])), data)
        else:
            damage_rows(run / "samples.jsonl", data.draw(st.sampled_from(
                ["torn", "not_an_object", "missing_field", "odd_value", "escape", "duplicate", "deep", "bom"])),
                data)
    result = invoke("eval", "score", run, "--reference", eval_reference, "--no-mad", "-j", "0",
                    "--bootstrap", "10")
    assert_clean(result, "samples.jsonl", ".wav", str(run))
    if result.exit_code == 0:
        assert "FAD" in result.output or "fad" in result.output.lower()
    shutil.rmtree(run.parent)


@pytest.mark.parametrize("field", ["path", "latent"])
def test_a_nul_in_a_file_name_is_named_not_an_internal_error(run_source, eval_reference, tmp_path, field):
    """Found by the fuzz test above (resolving a name with NUL is a ValueError, not a missing file)."""
    run = tmp_path / "run"
    shutil.copytree(run_source, run, ignore=shutil.ignore_patterns("eval"))
    lines = (run / "samples.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row[field] = "a\x00b"
    lines[0] = json.dumps(row)
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    result = invoke("eval", "score", run, "--reference", eval_reference, "--no-mad", "-j", "0", "--bootstrap", "10")
    assert result.exit_code == 1 and "holds a NUL character" in result.output, result.output
    assert_clean(result, "samples.jsonl:1")


# ── eval compare: damaged scored runs ─────────────────────────────────────────────────────────

json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=6)


def key_paths(obj, prefix=()) -> list[tuple]:
    paths = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            paths.append((*prefix, key))
            paths += key_paths(value, (*prefix, key))
    return paths


def damage_scores(path: Path, kind: str, data) -> None:
    if kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
        return
    if kind == "replace":
        path.write_text(json.dumps(data.draw(json_values)))
        return
    obj = json.loads(path.read_text())
    *parents, last = data.draw(st.sampled_from(key_paths(obj)))
    holder = obj
    for key in parents:
        holder = holder[key]
    if kind == "drop_key":
        holder.pop(last)
    else:  # a value of another type
        holder[last] = data.draw(json_values)
    path.write_text(json.dumps(obj))


def damage_csv(path: Path, kind: str, data) -> None:
    lines = path.read_text().splitlines()
    if kind == "truncate":
        text = "\n".join(lines)
        path.write_text(text[: data.draw(st.integers(0, len(text) - 1))])
        return
    header = lines[0].split(",")
    if kind == "drop_column":
        drop = data.draw(st.integers(0, len(header) - 1))
        lines = [",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines]
    elif kind == "cell":
        row = data.draw(st.integers(1, len(lines) - 1))
        cells = lines[row].split(",")
        cells[data.draw(st.integers(0, len(cells) - 1))] = data.draw(
            st.sampled_from(["", "nan", "inf", "-inf", "x", "1e999", "-1", '"']))
        lines[row] = ",".join(cells)
    elif kind == "empty":
        lines = []
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


@pytest.fixture(scope="module")
def scored_source(generated, scored) -> Path:  # `scored` scores `generated` in place (eval/)
    return generated


@FUZZ
@given(data=st.data())
def test_eval_compare_never_hangs_or_leaks_a_traceback(scored_source, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz_compare")
    a, b = root / "a", root / "b"
    shutil.copytree(scored_source, a)
    shutil.copytree(scored_source, b)
    target = data.draw(st.sampled_from([a, b]))
    part = data.draw(st.sampled_from(["scores", "clips", "embeddings", "generation"]))
    if part == "scores":
        damage_scores(target / "eval" / "scores.json", data.draw(st.sampled_from(
            ["truncate", "replace", "drop_key", "retype"])), data)
    elif part == "clips":
        damage_csv(target / "eval" / "clips.csv", data.draw(st.sampled_from(
            ["truncate", "drop_column", "cell", "empty"])), data)
    elif part == "embeddings":
        manifest = sorted((target / "eval").glob("*.jsonl.gz"))[0]
        raw = gzip.decompress(manifest.read_bytes())
        cut = data.draw(st.integers(0, len(raw)))
        manifest.write_bytes(data.draw(st.sampled_from([gzip.compress(raw[:cut]), manifest.read_bytes()[:cut // 8],
                                                        b"", b"garbage"])))
    else:
        (target / "generation.json").write_text(data.draw(st.sampled_from(["", "{", "[]", '{"cfg": []}', "null"])))
    result = invoke("eval", "compare", a, b, "--resamples", "10")
    assert_clean(result, str(target), target.name)
    shutil.rmtree(root)
