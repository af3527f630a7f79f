"""Fuzzing what users hand us: metadata files (encodings, BOMs, line endings, quoting, shapes)
and corrupted manifests (truncation, bad lines, wrong types). No traceback ever reaches the
user, and every refusal names the file and the line."""

import csv
import gzip
import io
import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.testing.dummies import file_cut, tone, write_audio

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)
LAYOUTS = [["id", "path", "caption", "tags"], ["caption_id", "track_id", "caption", "path"],
           ["ytid", "start_s", "end_s", "aspect_list", "caption"], ["audiocap_id", "youtube_id", "start_time",
                                                                    "caption"], ["path", "caption", "license"]]
cell = st.one_of(text, st.sampled_from(["1", "a/1.wav", "1.wav", "['rock', 'jazz']", "10", "30", '"', '""']))


@st.composite
def table_file(draw):
    header = list(draw(st.sampled_from(LAYOUTS)))
    if draw(st.booleans()):
        header.append(draw(text.filter(lambda t: t not in header)))
    rows = draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)), max_size=4))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=draw(st.sampled_from([",", "\t"])),
                        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])),
                        lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    return draw(st.sampled_from([".csv", ".tsv", ".txt"])), buffer.getvalue()


@st.composite
def json_file(draw):
    record = st.fixed_dictionaries({}, optional={"id": json_values | st.just("1"), "path": json_values |
                                                 st.just("a/1.wav"), "caption": json_values, "tags": json_values})
    shape = draw(st.sampled_from(["list", "mapping", "value", "lines"]))
    if shape == "list":
        return ".json", json.dumps(draw(st.lists(record | json_values, max_size=4)))
    if shape == "mapping":
        return ".json", json.dumps(draw(st.dictionaries(text | st.just("a/1.wav"), json_values | text, max_size=3)))
    if shape == "value":
        return draw(st.sampled_from([".json", ".jsonl"])), json.dumps(draw(json_values))
    lines = draw(st.lists(st.one_of(record.map(json.dumps), json_values.map(json.dumps), text), max_size=4))
    return ".jsonl", "\n".join(lines)


@st.composite
def metadata_bytes(draw):
    suffix, content = draw(st.one_of(table_file(), json_file()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    data = content.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # an interrupted download
    return suffix, data


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_audio")
    write_audio(root / "a" / "1.wav", tone(0.5))
    return root


@FUZZ
@given(metadata_bytes())
@example((".jsonl", b'{"path": "a/1.wav", "caption": "\\ud800"}\n')).via("issue 36: UnicodeEncodeError, .partial left")
@example((".json", b"[" * 100_000 + b"]" * 100_000)).via("issue 36: RecursionError")
@example((".jsonl", b'{"path": "a/1.wav", "caption": NaN}\n')).via("issue 36: a NaN caption")
def test_any_metadata_file_gives_a_result_or_a_located_error(audio_dir, tmp_path_factory, case):
    suffix, data = case
    work = tmp_path_factory.mktemp("meta")
    meta = work / f"meta{suffix}"
    meta.write_bytes(data)
    result = CliRunner().invoke(cli, ["curate", "ingest", str(audio_dir), "-m", str(meta), "-o",
                                      str(work / "i.jsonl.gz")])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    if result.exit_code == 1:
        located = re.search(rf"{re.escape(meta.name)}:\d+:", result.output)
        assert located or "no audio file matches any metadata record" in result.output, result.output


# ----------------------------------------------------------------------------- manifests
@pytest.fixture(scope="module")
def good_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_manifest")
    audio = write_audio(root / "a.wav", tone(1.0))
    cuts = [file_cut(audio, cut_id=f"c{i}", caption=f"clip {i}", clap_score=0.1 * i, reward=float(i),
                     loudness_lufs=-20.0, tags=["genre---rock"]) for i in range(4)]
    path = root / "good.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    with gzip.open(path, "rt") as f:
        return root, f.read().splitlines()


KEYS = ["id", "start", "duration", "channel", "custom", "recording", "type", "supervisions"]
CUSTOM_KEYS = ["clap_score", "reward", "loudness_lufs", "caption", "tags"]
RECORDING_KEYS = ["id", "sampling_rate", "num_samples", "duration", "sources"]


@st.composite
def corruption(draw, lines):
    lines = list(lines)
    kind = draw(st.sampled_from(["field", "custom", "recording", "drop", "garbage", "value", "truncate"]))
    index = draw(st.integers(0, len(lines) - 1))
    row = json.loads(lines[index])
    if kind == "field":
        row[draw(st.sampled_from(KEYS))] = draw(json_values)
    elif kind == "custom":
        row["custom"][draw(st.sampled_from(CUSTOM_KEYS))] = draw(json_values)
    elif kind == "recording":
        row["recording"][draw(st.sampled_from(RECORDING_KEYS))] = draw(json_values)
    elif kind == "drop":
        row.pop(draw(st.sampled_from(KEYS)), None)
    if kind in ("field", "custom", "recording", "drop"):
        lines[index] = json.dumps(row)
    elif kind == "garbage":
        lines.insert(index, draw(text))
    elif kind == "value":
        lines[index] = json.dumps(draw(json_values))
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return kind, data


@FUZZ
@given(st.data())
def test_any_corrupted_manifest_gives_a_result_or_a_located_error(good_manifest, tmp_path_factory, data):
    root, lines = good_manifest
    kind, blob = data.draw(corruption(lines))
    work = tmp_path_factory.mktemp("bad")
    bad = work / "bad.jsonl.gz"
    bad.write_bytes(blob)
    for command in (["curate", "validate", str(bad)],
                    ["curate", "filter", str(bad), "--clap-percentile", "0", "-o", str(work / "f.jsonl.gz")],
                    ["curate", "segment", str(bad), "--window", "0.5", "-o", str(work / "s.jsonl.gz")]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code in (0, 1), (kind, command, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output, (kind, result.output)
        if result.exit_code == 1:
            assert "bad.jsonl.gz" in result.output and re.search(r"line \d+|:\d+:", result.output), \
                (kind, command, result.output)
