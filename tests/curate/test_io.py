import json
from pathlib import Path

import pytest

from scoreaware.core.errors import StageError
from scoreaware.core.files import repair_jsonl_tail
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import Rejection, StageOutput, sibling
from scoreaware.core.provenance import manifest_base, read_provenance
from scoreaware.schemas.validation import validate_manifest
from scoreaware.testing.dummies import file_cut, tone, write_audio


@pytest.fixture
def cuts(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(1.0))
    return [file_cut(path, cut_id=f"c{i}", caption=f"clip {i}") for i in range(5)]


def write_all(out: StageOutput, items):
    with out:
        for item in items:
            out.write(item)
    return out.finalize(options={"k": 1})


def test_names_of_sibling_files(tmp_path):
    assert manifest_base(tmp_path / "x.jsonl.gz") == tmp_path / "x"
    assert sibling(tmp_path / "x.jsonl.gz", "quarantine") == tmp_path / "x.quarantine.jsonl.gz"
    assert sibling(tmp_path / "x.jsonl", "quarantine") == tmp_path / "x.quarantine.jsonl"
    with pytest.raises(StageError, match="must end in .jsonl"):
        manifest_base(tmp_path / "x.csv")


def test_final_file_appears_only_on_completion(tmp_path, cuts):
    out = StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", validator=validate_manifest)
    with out:
        out.write(cuts[0])
        assert not (tmp_path / "o.jsonl.gz").exists()
    provenance = out.finalize(options={"window": 10})
    assert [c.id for c in read_cuts(tmp_path / "o.jsonl.gz")] == ["c0"]
    assert provenance["outputs"]["cuts"]["items"] == 1
    assert read_provenance(tmp_path / "o.jsonl.gz")["options"] == {"window": 10}
    assert not (tmp_path / ".o.partial").exists()


def test_complete_output_is_not_redone_without_overwrite(tmp_path, cuts):
    write_all(StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", validator=validate_manifest), cuts[:2])
    again = StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", validator=validate_manifest)
    assert again.check() == "skip"
    with pytest.raises(StageError, match="already complete"):
        again.__enter__()
    write_all(StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", overwrite=True, validator=validate_manifest),
              cuts[2:])
    assert [c.id for c in read_cuts(tmp_path / "o.jsonl.gz")] == ["c2", "c3", "c4"]


def test_partial_output_needs_resume_or_overwrite(tmp_path, cuts):
    out = StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", validator=validate_manifest)
    with out:
        out.write(cuts[0])
        out.reject(Rejection("c1", "ingest", "corrupt", "bad bytes"))
    with pytest.raises(StageError, match="--resume"):
        StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", validator=validate_manifest).check()
    resumed = StageOutput(tmp_path / "o.jsonl.gz", stage="ingest", resume=True, validator=validate_manifest)
    with resumed:
        assert resumed.is_done("c0") and resumed.is_done("c1") and not resumed.is_done("c2")
        for cut in cuts:
            resumed.write(cut)  # c0 is skipped, c1 stays quarantined
    resumed.finalize(options={})
    assert [c.id for c in read_cuts(tmp_path / "o.jsonl.gz")] == ["c0", "c2", "c3", "c4"]
    assert resumed.resumed_items == 2


def test_torn_last_line_is_cut_off(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "dur')
    assert repair_jsonl_tail(path) == len('{"id": "c", "dur')
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    path.write_text('{"id": "x"')  # nothing complete at all
    repair_jsonl_tail(path)
    assert path.read_text() == ""


def test_schema_failure_keeps_the_partial_output(tmp_path, cuts):
    bad = cuts[0].with_custom("clap_score", 7.5)  # out of [-1, 1]
    out = StageOutput(tmp_path / "o.jsonl.gz", stage="clap", validator=validate_manifest)
    with pytest.raises(StageError) as caught:
        write_all(out, [bad])
    assert "line 1  id=c0  clap_score" in str(caught.value)
    assert "has_clap_audio_emb" in str(caught.value)  # the clap stage guarantees the embedding
    assert not (tmp_path / "o.jsonl.gz").exists()
    lines = (tmp_path / ".o.partial" / "cuts.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["custom"]["clap_score"] == 7.5


def test_working_directory_relative_sources_are_read_back_from_the_same_file(tmp_path, monkeypatch):
    # A cut built in memory from a relative path means "from the working directory" (as Lhotse
    # opens it); written into a manifest in another folder, it must still name the same file.
    monkeypatch.chdir(tmp_path)
    write_audio(tmp_path / "clips" / "a.wav", tone(1.0))
    cut = file_cut(Path("clips/a.wav"), cut_id="rel", caption="x")
    out = StageOutput(tmp_path / "deeper" / "scored" / "o.jsonl.gz", stage="ingest", validator=validate_manifest)
    write_all(out, [cut])
    [back] = read_cuts(tmp_path / "deeper" / "scored" / "o.jsonl.gz")
    assert back.recording.sources[0].source == str(tmp_path / "clips" / "a.wav")
    assert back.load_audio().shape[-1] == cut.num_samples


def test_an_output_without_a_validator_is_refused_at_finalize(tmp_path, cuts):
    out = StageOutput(tmp_path / "o.jsonl.gz", stage="ingest")  # a caller that forgot the schema check
    with pytest.raises(AssertionError, match="needs validator="):
        write_all(out, cuts[:1])
    assert not (tmp_path / "o.jsonl.gz").exists()
