"""The one rule for recorded paths: relative to the recording artifact, with a digest, resolved
against the artifact's folder and never the working directory; Hub ids kept as given."""

import os

import pytest

from scoreaware.core.errors import StageError
from scoreaware.core.locations import locate, path_digest, record, require


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "models" / "t5").mkdir(parents=True)
    (tmp_path / "models" / "t5" / "config.json").write_text('{"d": 1}')
    (tmp_path / "runs" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_local_folder_is_recorded_relative_to_the_artifact_with_its_content_digest(project):
    written, digest = record("models/t5", project / "runs" / "a")
    assert written == os.path.join("..", "..", "models", "t5") and len(digest) == 64
    (project / "models" / "t5" / "config.json").write_text('{"d": 2}')  # other content: another digest
    assert path_digest(project / "models" / "t5") != digest
    assert record("google/flan-t5-large", project) == ("google/flan-t5-large", None)  # a Hub id as given


def test_a_recorded_path_is_found_from_the_artifact_whatever_the_working_directory(project, monkeypatch):
    written, _ = record("models/t5", project / "runs" / "a")
    monkeypatch.chdir("/")
    assert locate(written, project / "runs" / "a", local=True) == str(project / "models" / "t5")
    # "models/t5" recorded as local is never read from the working directory, nor taken for a Hub id
    monkeypatch.chdir(project)
    located = locate("models/t5", project / "runs" / "a", local=True)
    assert located == str(project / "runs" / "a" / "models" / "t5")
    with pytest.raises(StageError, match=r"ckpt\.pt: text_encoder names the local path .*sha256 abcdef012345…, "
                                         r"which is missing; pass --text-encoder"):
        require(located, artifact="ckpt.pt", field="text_encoder", digest="abcdef0123456789", override="--text-encoder")
    assert locate("google/flan-t5-large", project, local=False) == "google/flan-t5-large"


def test_an_artifact_without_digests_is_read_as_before(project):
    """Written before digests: a path that exists beside it, or starts with '.' or '/', is local."""
    assert locate("../../models/t5", project / "runs" / "a") == str(project / "models" / "t5")
    assert locate("./gone", project).startswith(str(project))
    assert locate("org/name", project) == "org/name"
