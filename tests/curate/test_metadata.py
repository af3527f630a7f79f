import json

import pytest

from scoreaware.curate.metadata import MetadataError, MetadataIndex, detect_format, read_metadata


@pytest.fixture
def meta_dir(tmp_path):
    (tmp_path / "autotagging.tsv").write_text(
        "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
        "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t124.6\tgenre---rock\tinstrument---guitar\n"
        "track_1085700\tartist_000001\talbum_000002\t00/1085700.mp3\t30.0\tmood/theme---calm\n"
    )
    (tmp_path / "captions.json").write_text(json.dumps([
        {"path": "00/1085700.mp3", "caption": "A calm ambient piece."},
        {"path": "14/214.mp3", "caption": "Driving rock with guitar."},
    ]))
    (tmp_path / "plain.jsonl").write_text(
        json.dumps({"id": "214", "license": "CC BY 4.0", "tags": ["instrument---drums"], "bpm": 120}) + "\n"
    )
    (tmp_path / "plain.csv").write_text(
        'id,path,caption,tags,license\n9,09/9.flac,Solo piano,"genre---classical;mood---sad",CC0\n'
    )
    return tmp_path


@pytest.mark.parametrize("name, expected", [
    ("autotagging.tsv", "jamendo"), ("captions.json", "caption_json"), ("plain.jsonl", "jsonl"), ("plain.csv", "table"),
])
def test_detect_format(meta_dir, name, expected):
    assert detect_format(meta_dir / name) == expected


def test_read_each_format(meta_dir):
    jamendo = read_metadata(meta_dir / "autotagging.tsv")
    assert [(r.id, r.path, r.tags) for r in jamendo] == [
        ("214", "14/214.mp3", ["genre---rock", "instrument---guitar"]),
        ("1085700", "00/1085700.mp3", ["mood/theme---calm"]),
    ]
    captions = read_metadata(meta_dir / "captions.json")
    assert captions[0].caption == "A calm ambient piece."
    plain = read_metadata(meta_dir / "plain.jsonl")[0]
    assert (plain.id, plain.license, plain.tags) == ("214", "CC BY 4.0", ["instrument---drums"])
    assert plain.extra == {"bpm": 120}
    row = read_metadata(meta_dir / "plain.csv")[0]
    assert (row.path, row.caption, row.license) == ("09/9.flac", "Solo piano", "CC0")
    assert row.tags == ["genre---classical", "mood---sad"]


def test_index_merges_files_and_matches_by_path_stem_and_id(meta_dir):
    index = MetadataIndex([meta_dir / n for n in ("autotagging.tsv", "captions.json", "plain.jsonl", "plain.csv")])
    rock = index.lookup("14/214.mp3")
    assert rock.caption == "Driving rock with guitar."
    assert rock.tags == ["genre---rock", "instrument---guitar", "instrument---drums"]  # union, in order
    assert rock.license == "CC BY 4.0"
    assert index.lookup("00/1085700.flac").caption == "A calm ambient piece."  # same path, other extension
    assert index.lookup("elsewhere/1085700.wav") is not None  # by id (stem)
    assert index.lookup("nope/123.wav") is None
    assert [r.path for r in index.unmatched()] == ["09/9.flac"]


@pytest.mark.parametrize("name, content, message", [
    ("bad.json", "[{\"path\": ", "invalid JSON"),
    ("bad.jsonl", "{\"id\": 1}\n{oops\n", "bad.jsonl:2"),
    ("noid.jsonl", "{\"caption\": \"x\"}\n", "needs an 'id' or a 'path'"),
    ("short.tsv", "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\ntrack_1\ta\n", "short.tsv:2"),
    ("weird.bin", "\x00\x01", "unknown metadata format"),
])
def test_bad_metadata_names_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(MetadataError, match=message):
        read_metadata(path)
