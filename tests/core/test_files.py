"""The core file helpers: one safe-name rule, one line-numbered JSON-lines reader."""

import gzip

import pytest

from scoreaware.core.errors import ManifestError
from scoreaware.core.files import iter_json_lines, iter_json_text, safe_name

HOSTILE = ["../../etc/passwd", "/abs/path", ".hidden", "..", "a/b", "x" * 300, "", "caf\u00e9 \u266b", "a\x00b"]


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_name_never_leaves_its_folder(text):
    name = safe_name(text)
    assert "/" not in name and "\x00" not in name and not name.startswith(".") and ".." not in name
    assert 0 < len(name) <= 200


def test_safe_name_keeps_plain_names_and_separates_different_ids():
    assert safe_name("track_00012-a.b") == "track_00012-a.b"
    assert safe_name("a/b") != safe_name("a_b")  # the digest tells apart ids that read alike
    assert len({safe_name(t) for t in HOSTILE}) == len(HOSTILE)


def test_the_reader_names_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"id": "a"}\n\n{"id": "b"}\n[1]\n')
    rows = iter_json_lines(path)
    assert next(rows) == (1, {"id": "a"}) and next(rows) == (3, {"id": "b"})
    with pytest.raises(ManifestError, match=r"m.jsonl.gz:4: expected a JSON object, got list"):
        next(rows)
    with pytest.raises(ManifestError, match=r"p.jsonl:2: invalid JSON"):
        list(iter_json_text('{"a": 1}\n{oops\n', "p.jsonl"))


@pytest.mark.parametrize("content", [b"no", gzip.compress(b'{"id": "a"}\n' * 50)[:30]])
def test_a_gz_that_is_not_one_or_is_cut_short_is_named_not_an_internal_error(tmp_path, content):
    """Seen in issue 36's probes: `train fit` on a training manifest that was not gzip (b'no')
    ended in "internal error: BadGzipFile" with no file named (its sha256 is taken first)."""
    from scoreaware.core.files import content_digest

    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(content)
    with pytest.raises(ManifestError, match=r"train\.jsonl\.gz: not a readable gzip file"):
        content_digest(path)
