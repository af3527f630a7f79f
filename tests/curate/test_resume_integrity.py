"""Interrupted runs: no mixed configurations, recoverable finalization, whole-output counts,
captions kept as they finish, and imports that read a folder as it is now."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import sibling
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.publish import export_dataset
from scoreaware.testing.dummies import file_cut, tone, write_audio

sys.path.insert(0, str(Path(__file__).parent / "captioning"))
from fake_openai import FakeOpenAI  # noqa: E402


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoreaware", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def lines(path):
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_resume_with_other_options_is_refused_and_names_them(ingested, tmp_path):
    out = tmp_path / "s.jsonl.gz"
    killed = run_cli("curate", "segment", str(ingested), "--window", "4", "-o", str(out),
                     env={"SCOREAWARE_CRASH_AFTER_WRITES": "3"})
    assert killed.returncode == -9
    code, text = invoke("curate", "segment", str(ingested), "--window", "5", "-o", str(out), "--resume")
    assert code == 1 and "window: 4.0 → 5.0" in text and "hop: 4.0 → 5.0" in text
    assert "--overwrite" in text and "Traceback" not in text
    code, text = invoke("curate", "segment", str(ingested), "--window", "4", "-o", str(out), "--resume")
    assert code == 0, text
    assert {c.duration for c in read_cuts(out)} == {4.0}  # one configuration in the whole manifest
    code, text = invoke("curate", "segment", str(ingested), "--window", "5", "-o", str(out))  # complete, other options
    assert code == 1 and "window: 4.0 → 5.0" in text
    code, text = invoke("curate", "segment", str(ingested), "--window", "5", "-o", str(out), "--overwrite")
    assert code == 0 and {c.duration for c in read_cuts(out)} == {5.0}


def test_a_changed_input_is_not_mixed_into_a_resumed_output(ingested, tmp_path):
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(Path(ingested).read_bytes())
    out = tmp_path / "s.jsonl.gz"
    assert run_cli("curate", "segment", str(source), "-o", str(out), "--window", "4",
                   env={"SCOREAWARE_CRASH_AFTER_WRITES": "2"}).returncode == -9
    read_cuts(ingested).subset(first=3).to_file(source)  # the input changed in between
    code, text = invoke("curate", "segment", str(source), "-o", str(out), "--window", "4", "--resume")
    assert code == 1 and "input changed since" in text


@pytest.fixture(scope="module")
def ingest_args(tiny_corpus, corpus_metadata, tmp_path_factory):
    """The ingest command line and an uninterrupted run's output to compare with."""
    base = ["curate", "ingest", str(tiny_corpus / "audio"), *sum((["-m", str(m)] for m in corpus_metadata), [])]
    full = tmp_path_factory.mktemp("full") / "full.jsonl.gz"
    assert invoke(*base, "-o", str(full))[0] == 0
    return base, full


@pytest.mark.parametrize("crash_after", ["quarantine", "supervisions", "cuts"])
def test_a_kill_between_the_final_renames_is_recovered(ingest_args, tmp_path, crash_after):
    base, full = ingest_args
    out = tmp_path / "i.jsonl.gz"
    killed = run_cli(*base, "-o", str(out), env={"SCOREAWARE_CRASH_AFTER_RENAME": crash_after})
    assert killed.returncode == -9
    if crash_after != "cuts":
        assert not out.exists()  # the main manifest appears last: the output is not "complete" yet
        code, text = invoke(*base, "-o", str(out), "--resume")
        assert code == 0, text
    else:
        code, text = invoke(*base, "-o", str(out))  # everything is in place; the leftover work folder goes
        assert code == 0 and "already complete" in text
        assert not (tmp_path / ".i.partial").exists()
    for stream in ("cuts", "quarantine", "recordings", "supervisions"):
        assert lines(sibling(out, stream)) == lines(sibling(full, stream)), stream
    assert read_provenance(out)["summary"]["kept"] == read_provenance(full)["summary"]["kept"]


def test_counts_cover_the_whole_output_after_resume(ingest_args, tmp_path):
    base, full = ingest_args
    part = tmp_path / "part.jsonl.gz"
    assert run_cli(*base, "-o", str(part), env={"SCOREAWARE_CRASH_AFTER_WRITES": "5"}).returncode == -9
    assert invoke(*base, "-o", str(part), "--resume")[0] == 0
    whole, first = read_provenance(part)["summary"], read_provenance(full)["summary"]
    assert whole["kept"] == first["kept"] == 6 and whole["rejected_by_reason"] == first["rejected_by_reason"]
    assert whole["this_run"]["kept"] < 6  # the last run alone wrote fewer
    report = CliRunner().invoke(cli, ["curate", "report", str(part), "-o", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<td>6</td>" in html and "corrupt 1" in html and "not_audio 1" in html


def test_captions_are_kept_as_they_finish_not_per_batch(tmp_path):
    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    cuts = [file_cut(audio, cut_id=f"c{i}", caption=f"old {i}", caption_verbose=f"piece number {i}.")
            for i in range(4)]
    manifest = tmp_path / "v.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    out = tmp_path / "c.jsonl.gz"
    partial = tmp_path / ".c.partial" / "cuts.jsonl"
    with FakeOpenAI(slow={"piece number 3": 60.0}) as server:  # one answer takes a minute
        process = subprocess.Popen([sys.executable, "-m", "scoreaware", "curate", "caption", str(manifest),
                                    "--stage", "rewrite", "--engine", "openai", "--model", "m", "--base-url",
                                    server.url, "--timeout", "90", "-o", str(out)],  # default batch of 256
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not (partial.is_file() and len(partial.read_text().splitlines()) == 3):
                time.sleep(0.2)
            written = partial.read_text().splitlines() if partial.is_file() else []
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # killed while the slow request is still out
            process.wait()
    assert sorted(json.loads(line)["id"] for line in written) == ["c0", "c1", "c2"]  # kept before the batch ended
    with FakeOpenAI() as server:
        resumed = CliRunner().invoke(cli, ["curate", "caption", str(manifest), "--stage", "rewrite", "--engine",
                                           "openai", "--model", "m", "--base-url", server.url, "-o", str(out),
                                           "--resume"])
        assert resumed.exit_code == 0, resumed.output
        assert len(server.requests) == 1  # only the unfinished cut was asked again
    assert sorted(c.id for c in read_cuts(out)) == ["c0", "c1", "c2", "c3"]


def test_import_reads_a_re_exported_folder_as_it_is_now(tmp_path):
    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    folder = tmp_path / "ds"
    for generation, names in enumerate((["a0", "a1"], ["b0", "b1", "b2"])):
        manifest = tmp_path / f"m{generation}.jsonl.gz"
        CutSet.from_cuts([file_cut(audio, cut_id=n, caption=n) for n in names]).to_file(manifest)
        export_dataset(manifest, folder)
        out = tmp_path / "imp.jsonl.gz"
        result = CliRunner().invoke(cli, ["curate", "import", str(folder), "-o", str(out), "--overwrite"])
        assert result.exit_code == 0, result.output
        assert sorted(c.id for c in read_cuts(out)) == names
    # a finished import of the old folder is not silently kept either
    stale = tmp_path / "stale.jsonl.gz"
    assert CliRunner().invoke(cli, ["curate", "import", str(folder), "-o", str(stale)]).exit_code == 0
    manifest = tmp_path / "m2.jsonl.gz"
    CutSet.from_cuts([file_cut(audio, cut_id="c0", caption="c")]).to_file(manifest)
    export_dataset(manifest, folder)
    rerun = CliRunner().invoke(cli, ["curate", "import", str(folder), "-o", str(stale)])
    assert rerun.exit_code == 1 and "data: " in rerun.output


def test_select_completes_a_mixture_its_kill_left_out(tmp_path):
    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    cuts = [file_cut(audio, cut_id=f"c{i}", caption="x", clap_score=0.1 * i, reward=float(i)) for i in range(10)]
    manifest = tmp_path / "scored.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    out = tmp_path / "sel.jsonl.gz"
    args = ["curate", "select", str(manifest), "--top", "0.2", "--oversample", "3", "-o", str(out)]
    killed = run_cli(*args, env={"SCOREAWARE_CRASH_AFTER_RENAME": "cuts"})  # select done, mixture not begun
    assert killed.returncode == -9 and out.exists() and not sibling(out, "mixture").exists()
    code, text = invoke(*args)
    assert code == 0, text
    mixture = [c.id for c in read_cuts(sibling(out, "mixture"))]
    assert len(mixture) == 10 + 3 * 2 and mixture.count("c9_x3") == 1


def test_manifests_store_paths_relative_to_themselves(ingested):
    cut = next(iter(read_cuts(ingested)))
    raw = json.loads(gzip.open(ingested, "rt").readline())
    assert not os.path.isabs(raw["recording"]["sources"][0]["source"])  # stored relative to the manifest
    assert os.path.isabs(cut.recording.sources[0].source)  # and resolved when read
