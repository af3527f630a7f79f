"""Inputs that broke the JSON readers: deep nesting, lone surrogates, NaN captions, a BOM (issue 36)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.errors import ManifestError, StageError
from scoreaware.core.files import parse_line

DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize("raw, message", [
    ('{"caption": ' + DEEP + "}", "nested too deeply"),
    ('{"caption": "\\ud800"}', "lone surrogate escape (\\ud800)"),
    ('{"caption": "x\\udfff"}', "lone surrogate escape (\\udfff)"),
])
def test_a_line_that_cannot_become_data_names_file_and_line(raw, message):
    with pytest.raises(ManifestError, match=r"m\.jsonl:7: .*" + message.replace("\\", "\\\\").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_line(raw, Path("m.jsonl"), 7)
    assert parse_line('{"caption": "\\ud83c\\udfb5 a pair is a character"}', Path("m"), 1)["caption"][0] == "🎵"


def _audio(folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    (folder / "audio").mkdir(parents=True)
    sf.write(folder / "audio" / "a.wav", 0.1 * np.sin(np.arange(44_100 * 3) / 10).astype("float32"), 44_100)
    return folder / "audio"


@pytest.mark.parametrize("name, content, message", [
    ("m.jsonl", '{"path": "a.wav", "caption": ' + DEEP + "}\n", "nested too deeply"),
    ("m.jsonl", '{"path": "a.wav", "caption": "\\ud800"}\n', "lone surrogate"),
    ("m.jsonl", '{"path": "a.wav", "caption": NaN}\n', "caption must be text, got nan"),
    ("captions.json", '{"a.wav": ' + DEEP + "}", "nested too deeply"),
    ("captions.json", '[{"path": "a.wav", "caption": "\\udc00"}]', "lone surrogate"),
])
def test_ingest_refuses_them_with_one_line_and_leaves_no_partial_file(tmp_path, name, content, message):
    audio = _audio(tmp_path)
    (tmp_path / name).write_text(content)
    out = tmp_path / "ingest.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "ingest", str(audio), "-m", str(tmp_path / name), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert message in result.output and "internal error" not in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*partial*"))


def test_samples_with_a_bom_are_read_and_deep_rows_refused(tmp_path):
    from scoreaware.evaluate.score_run import read_samples

    (tmp_path / "c.wav").write_bytes(b"RIFF")
    row = {"id": "c", "path": "c.wav", "prompt": "x", "prompt_id": "p", "seed": 0}
    (tmp_path / "samples.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    assert read_samples(tmp_path)[0]["id"] == "c"
    (tmp_path / "samples.jsonl").write_text(json.dumps(row)[:-1] + ', "x": ' + DEEP + "}\n")
    with pytest.raises(StageError, match="samples.jsonl:1: JSON nested too deeply"):
        read_samples(tmp_path)


@pytest.mark.parametrize("name, delimiter", [("m.csv", ","), ("m.tsv", "\t")])
def test_a_csv_field_over_128_kib_is_read_as_jsonl_would_read_it(tmp_path, name, delimiter):
    from scoreaware.core.manifests import read_cuts
    from scoreaware.train.prompts import read_prompts

    audio = _audio(tmp_path)
    caption = "a long caption " * 15_000  # 225 KB
    (tmp_path / name).write_text(f"path{delimiter}caption\na.wav{delimiter}{caption}\n")
    out = tmp_path / "ingest.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "ingest", str(audio), "-m", str(tmp_path / name), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert next(iter(read_cuts(out))).custom["caption"] == caption.strip()
    (tmp_path / "p.csv").write_text(f"id,prompt\np1,{caption}\n")
    assert read_prompts(tmp_path / "p.csv")[0].text == caption.strip()
