"""Metadata as people have it: CSV as Excel and Python write it, other encodings, BOMs, odd JSON
shapes, and the public music-caption datasets in their own layouts."""

import csv
import json

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.metadata import MetadataError, MetadataIndex, read_metadata
from scoreaware.testing.dummies import tone, write_audio

ROWS = [
    {"id": "1", "path": "a/1.wav", "caption": 'A "quoted" word, and a comma', "tags": "['rock', 'guitar']"},
    {"id": "2", "path": "a/2.wav", "caption": "Plain caption", "tags": "jazz;piano"},
    {"id": "3", "path": "a/3.wav", "caption": "Line one\nline two", "tags": "[]"},
]


def write_csv(path, rows, lineterminator="\r\n", delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator=lineterminator, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("lineterminator", ["\r\n", "\n"])
def test_csv_as_excel_and_python_write_it(tmp_path, lineterminator):
    """CRLF with some quoted fields crashed csv.Sniffer; doubled quotes and list strings were misread."""
    records = read_metadata(write_csv(tmp_path / "m.csv", ROWS, lineterminator))
    assert [r.caption for r in records] == [r["caption"] for r in ROWS]
    assert [r.tags for r in records] == [["rock", "guitar"], ["jazz", "piano"], []]


def test_tsv_by_its_name_and_other_tables_by_their_header(tmp_path):
    tsv = write_csv(tmp_path / "m.tsv", ROWS, delimiter="\t")
    assert [r.caption for r in read_metadata(tsv)] == [r["caption"] for r in ROWS]
    notes: list[str] = []
    txt = write_csv(tmp_path / "m.txt", ROWS, delimiter="\t")
    assert [r.id for r in read_metadata(txt, notes=notes)] == ["1", "2", "3"]
    assert notes == ["m.txt: read as tab-separated (from its header line)"]  # said, not silent


def test_non_utf8_names_the_file_line_and_byte(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,path,caption\n7,a/7.wav,Caf\u00e9 jazz\n".encode("latin-1"))
    with pytest.raises(MetadataError, match=r"latin.csv:2: byte 29 \(0xe9\) is not valid UTF-8.*--metadata-encoding"):
        read_metadata(path)
    assert read_metadata(path, encoding="latin-1")[0].caption == "Café jazz"


@pytest.mark.parametrize("name, content", [
    ("bom.json", json.dumps([{"path": "a/1.wav", "caption": "hi"}])),
    ("bom.jsonl", json.dumps({"path": "a/1.wav", "caption": "hi"}) + "\n"),
    ("bom.csv", "path,caption\r\na/1.wav,hi\r\n"),
])
def test_a_utf8_bom_is_stripped(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())
    assert [(r.path, r.caption) for r in read_metadata(path)] == [("a/1.wav", "hi")]


def test_utf16_with_a_bom_is_recognised(tmp_path):
    path = tmp_path / "excel.txt"
    path.write_bytes("id\tcaption\r\n5\tUnicode text\r\n".encode("utf-16"))
    assert read_metadata(path)[0].caption == "Unicode text"


def test_caption_json_shapes(tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"a/1.wav": "first", "a/2.wav": {"caption": "second", "license": "CC0"},
                                   "a/3.wav": ["one of two", "two of two"]}))
    records = {r.path: r for r in read_metadata(mapping)}
    assert records["a/1.wav"].caption == "first"
    assert (records["a/2.wav"].caption, records["a/2.wav"].license) == ("second", "CC0")
    assert records["a/3.wav"].captions == ["one of two", "two of two"]
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"a/1.wav": {"caption": {"en": "x"}}}))
    with pytest.raises(MetadataError, match=r"nested.json:1: item 0: caption must be text, got dict"):
        read_metadata(nested)
    scalar = tmp_path / "scalar.json"
    scalar.write_text(json.dumps({"a/1.wav": 42}))
    with pytest.raises(MetadataError, match="scalar.json:1: the value of 'a/1.wav' must be a caption"):
        read_metadata(scalar)


# ----------------------------------------------------------------------- public layouts
def ingest(audio, *metadata, out):
    args = ["curate", "ingest", str(audio), "-o", str(out)]
    for m in metadata:
        args += ["-m", str(m)]
    return CliRunner().invoke(cli, args)


def test_song_describer_layout(tmp_path):
    """The CSV names xx/ID.mp3, the audio is xx/ID.2min.mp3, and a track has several captions."""
    for ident in ("1000", "1001"):
        write_audio(tmp_path / "audio" / "00" / f"{ident}.2min.wav", tone(2.0))
    meta = tmp_path / "song_describer.csv"
    meta.write_text("caption_id,track_id,caption,is_valid_subset,familiarity,artist_id,album_id,path,duration\n"
                    "1,1000,A dreamy synth piece.,True,0,11,21,00/1000.mp3,120.0\n"
                    "2,1000,Slow electronic music with pads.,True,1,11,21,00/1000.mp3,120.0\n"
                    "3,1001,Upbeat folk with acoustic guitar.,False,0,12,22,00/1001.mp3,120.0\n"
                    "4,9999,A track nobody downloaded.,True,0,13,23,99/9999.mp3,120.0\n")
    out = tmp_path / "i.jsonl.gz"
    result = ingest(tmp_path / "audio", meta, out=out)
    assert result.exit_code == 0, result.output
    cuts = {c.id: c for c in read_cuts(out)}
    assert set(cuts) == {"1000.2min", "1001.2min"}
    assert cuts["1000.2min"].custom["caption"] == "A dreamy synth piece."
    assert cuts["1000.2min"].custom["captions"] == ["A dreamy synth piece.", "Slow electronic music with pads."]
    assert cuts["1001.2min"].custom["caption"] == "Upbeat folk with acoustic guitar."
    assert "1 without audio" in result.output and "99/9999.mp3" in result.output
    assert read_provenance(out)["summary"]["metadata_without_audio"] == 1


def test_musiccaps_layout_with_excerpts_of_longer_sources(tmp_path):
    write_audio(tmp_path / "audio" / "-0Gj8-vB1q4.wav", tone(10.0))  # downloaded as the 10 s excerpt
    write_audio(tmp_path / "audio" / "Y_abcdEFG123.wav", tone(40.0))  # the whole source, AudioSet-style name
    meta = tmp_path / "musiccaps-public.csv"
    meta.write_text('ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,'
                    'is_audioset_eval\n'
                    '-0Gj8-vB1q4,30,40,"/m/0140xf,/m/02cjck","[\'low quality\', \'sustained strings melody\']",'
                    '"The low quality recording features a sustained strings melody.",4,False,True\n'
                    '_abcdEFG123,20,30,/m/04rlf,"[\'rock\', \'electric guitar\']","A rock riff on electric guitar.",'
                    '1,True,False\n')
    out = tmp_path / "i.jsonl.gz"
    result = ingest(tmp_path / "audio", meta, out=out)
    assert result.exit_code == 0, result.output
    cuts = {c.id: c for c in read_cuts(out)}
    short, long = cuts["-0Gj8-vB1q4"], cuts["Y_abcdEFG123"]
    assert short.custom["tags"] == ["low quality", "sustained strings melody"]
    assert short.duration == pytest.approx(10.0) and "excerpt_start" not in short.custom
    assert long.custom["caption"] == "A rock riff on electric guitar."
    assert (long.start, long.duration) == (pytest.approx(20.0), pytest.approx(10.0))  # only the captioned excerpt
    assert long.load_audio().shape[-1] == 10 * 16000


def test_audiocaps_layout(tmp_path):
    write_audio(tmp_path / "audio" / "--0w1YA1Hm4.wav", tone(1.0))
    meta = tmp_path / "val.csv"
    meta.write_text("audiocap_id,youtube_id,start_time,caption\n"
                    "97151,--0w1YA1Hm4,30,A vehicle driving as a man speaks\n"
                    "97152,--0w1YA1Hm4,30,A car engine idles while a man talks\n")
    out = tmp_path / "i.jsonl.gz"
    result = ingest(tmp_path / "audio", meta, out=out)
    assert result.exit_code == 0, result.output
    (cut,) = read_cuts(out)
    assert cut.custom["captions"] == ["A vehicle driving as a man speaks", "A car engine idles while a man talks"]


def test_jamendo_audio_low_names(tmp_path):
    write_audio(tmp_path / "audio" / "14" / "214.low.wav", tone(1.0))
    meta = tmp_path / "autotagging.tsv"
    meta.write_text("TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
                    "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t124.6\tgenre---rock\n")
    out = tmp_path / "i.jsonl.gz"
    assert ingest(tmp_path / "audio", meta, out=out).exit_code == 0
    (cut,) = read_cuts(out)
    assert cut.custom["tags"] == ["genre---rock"]


def test_nothing_matching_fails_with_examples_of_both_sides(tmp_path):
    write_audio(tmp_path / "audio" / "x" / "song.wav", tone(1.0))
    meta = tmp_path / "m.jsonl"
    meta.write_text(json.dumps({"path": "elsewhere/track.mp3", "caption": "c"}) + "\n")
    out = tmp_path / "i.jsonl.gz"
    result = ingest(tmp_path / "audio", meta, out=out)
    assert result.exit_code == 1
    assert "no audio file matches any metadata record" in result.output
    assert "x/song.wav" in result.output and "elsewhere/track.mp3" in result.output
    assert not out.exists()


def test_index_counts_rows_without_audio_and_files_without_rows(tmp_path):
    meta = tmp_path / "m.jsonl"
    meta.write_text("".join(json.dumps({"id": str(i), "caption": f"c{i}"}) + "\n" for i in range(3)))
    index = MetadataIndex([meta])
    assert index.lookup("d/1.wav").caption == "c1" and index.lookup("d/7.wav") is None
    assert index.matched == 1 and [r.id for r in index.unmatched()] == ["0", "2"]
