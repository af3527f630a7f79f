"""Prompt files in the formats people have."""

import json

import pytest

from scoreaware.train.prompts import PromptError, read_prompts


@pytest.mark.parametrize("name, content", [
    ("p.txt", "A calm piano piece\n\nAn energetic rock track\n"),
    ("p.jsonl", json.dumps({"id": "a", "prompt": "A calm piano piece"}) + "\n"
     + json.dumps({"id": "b", "caption": "An energetic rock track"}) + "\n"),
    ("p.csv", 'id,prompt\r\na,A calm piano piece\r\nb,"An energetic rock track"\r\n'),
    ("p.json", json.dumps(["A calm piano piece", {"id": "b", "text": "An energetic rock track"}])),
    ("q.json", json.dumps({"a": "A calm piano piece", "b": "An energetic rock track"})),
])
def test_every_format(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    prompts = read_prompts(path)
    assert [p.text for p in prompts] == ["A calm piano piece", "An energetic rock track"]
    assert len({p.id for p in prompts}) == 2


def test_the_challenge_csv_keeps_its_ids(tmp_path):
    path = tmp_path / "dry-run_prompts.csv"
    path.write_text("id,prompt\n17,A slow ambient drone\n3,Upbeat folk with fiddle\n")
    assert [(p.id, p.text) for p in read_prompts(path)] == [("17", "A slow ambient drone"),
                                                              ("3", "Upbeat folk with fiddle")]


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"prompt": "x"}\n{oops\n', "bad.jsonl:2"),
    ("empty.txt", "\n\n", "no prompts"),
    ("dup.csv", "id,prompt\n1,a\n1,b\n", "used twice"),
    ("nocol.csv", "id,words\n1,a\n", "needs a 'prompt'"),
    # an unquoted comma would cut the prompt short at "guitar" (it did, in the demo's prompts)
    ("comma.csv", "id,prompt\n1,a calm piece\n2,rock with guitar, bass and drums\n", "comma.csv:3: 3 fields"),
    ("blank.jsonl", '{"prompt": "  "}\n', "blank.jsonl:1"),
    ("dupkey.json", '{"p1": "calm piano", "p2": "rock", "p1": "jazz trio"}', "'p1' appears twice"),
    ("nul.txt", "calm piano\nrock\x00 song\n", r"nul.txt:2: the prompt holds a control character \(U\+0000"),
    ("nul.jsonl", '{"prompt": "a\\u0000b"}\n', "nul.jsonl:1: the prompt holds a control character"),
])
def test_bad_files_name_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PromptError, match=message):
        read_prompts(path)


def test_a_refusal_does_not_print_the_whole_prompt_list():
    from scoreaware.core.provenance import config_changes

    before = {"prompts": [[str(i), "a very long prompt " * 50] for i in range(40)], "cfg": 4.0}
    after = {"prompts": before["prompts"][:-1], "cfg": 4.0}
    (change,) = config_changes(before, after)
    assert change.startswith("prompts: [40 items,") and "→ [39 items," in change and len(change) < 120
