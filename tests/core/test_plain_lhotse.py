"""Every manifest kind we write loads in plain Lhotse from another working directory, with the
recipe docs/concepts.md gives (executed here from the doc itself, so the doc cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet, SupervisionSet
from lhotse.audio.utils import AudioLoadingError

DOC = Path(__file__).parents[2] / "docs" / "concepts.md"


def documented_recipe() -> dict:
    """The python block after the `plain-lhotse-recipe` marker, executed: its functions by name."""
    text = DOC.read_text()
    block = re.search(r"<!-- plain-lhotse-recipe -->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/concepts.md lost its plain-Lhotse recipe"
    code = "\n".join(line[2:] if line.startswith("  ") else line for line in block.group(1).splitlines())
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def array_fields(cut) -> list[str]:
    return [k for k, v in (cut.custom or {}).items() if hasattr(v, "with_path_prefix")]


def load_everything(cuts: CutSet) -> tuple[int, int]:
    """(cuts whose audio loaded, array fields loaded); raises when a file cannot be found."""
    audio = arrays = 0
    for cut in cuts:
        assert np.isfinite(cut.load_audio()).all()
        audio += 1
        for name in array_fields(cut):
            assert cut.load_custom(name) is not None
            arrays += 1
    return audio, arrays


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    # nowhere near any manifest: deep enough that no `../corpus0` of a manifest resolves from here
    # (pytest's session folders are siblings of tmp_path)
    here = tmp_path / "a" / "b" / "c"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    return here


@pytest.fixture
def cut_manifests(ingested, segmented4, clap_scored, encoded) -> dict[str, Path]:
    return {"ingest": ingested, "segment": segmented4, "clap": clap_scored, "encode": encoded}


def test_plain_lhotse_alone_cannot_find_the_files_from_elsewhere(cut_manifests, elsewhere):
    # the reason the recipe exists (if this starts passing, the paths became absolute)
    cut = next(iter(CutSet.from_file(cut_manifests["clap"])))
    with pytest.raises(AudioLoadingError):
        cut.load_audio()
    # prefixing the audio alone (what the docs used to say) still leaves the arrays unreachable
    cut = cut.with_recording_path_prefix(cut_manifests["clap"].parent)
    cut.load_audio()
    with pytest.raises(FileNotFoundError):
        cut.load_custom(array_fields(cut)[0])


def test_every_cut_manifest_loads_audio_and_arrays_with_the_documented_recipe(cut_manifests, elsewhere):
    load_cuts = documented_recipe()["load_cuts"]
    loaded = {name: load_everything(load_cuts(path)) for name, path in cut_manifests.items()}
    for name, path in cut_manifests.items():
        assert loaded[name][0] == len(CutSet.from_file(path)), name
    assert loaded["ingest"][1] == loaded["segment"][1] == 0  # no arrays before scoring
    assert loaded["clap"][1] >= loaded["clap"][0]  # the CLAP audio embedding of every cut
    assert loaded["encode"][1] >= 2 * loaded["encode"][0]  # latents and REPA targets at least


def test_recordings_and_supervisions_load_from_elsewhere(ingested, elsewhere):
    load_recordings = documented_recipe()["load_recordings"]
    recordings_path = ingested.with_name("ingest.recordings.jsonl.gz")
    recordings = load_recordings(recordings_path)
    assert len(recordings) > 0
    for recording in recordings:
        assert recording.load_audio().shape[-1] == recording.num_samples
    supervisions = SupervisionSet.from_file(ingested.with_name("ingest.supervisions.jsonl.gz"))
    assert {s.recording_id for s in supervisions} <= set(recordings.ids)


def test_a_moved_folder_still_loads(clap_scored, tiny_corpus, tmp_path, elsewhere):
    # the reason the paths are relative: move the manifest, its arrays and its audio together
    import shutil

    load_cuts = documented_recipe()["load_cuts"]
    moved = tmp_path / "moved"
    for folder in (clap_scored.parent, tiny_corpus):  # keep their relative layout
        shutil.copytree(folder, moved / folder.name)
    cuts = load_cuts(moved / clap_scored.parent.name / clap_scored.name)
    assert all(str(moved) in c.recording.sources[0].source for c in cuts)  # not the originals
    audio, arrays = load_everything(cuts)
    assert audio == len(cuts) and arrays >= audio
