"""Strings that once went stale in the docs and docstrings stay gone (issue 35)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STALE = ["28 minutes", "(default 1200)", "scoreaware.tiny_models", "the same click commands a user types",
         "curate.synth", "curate.schedule", "Top-level packages are"]


@pytest.mark.parametrize("stale", STALE)
def test_stale_strings_are_gone(stale):
    files = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), *(ROOT / "src").rglob("*.py"),
             *[f for name in ("curate", "train", "schemas") for f in (ROOT / name).rglob("*.py")],
             *(ROOT / "tests").rglob("*.py")]
    found = [str(f.relative_to(ROOT)) for f in files if f.name != "test_docs.py" and stale in f.read_text()]
    assert found == [], f"{stale!r} in {found}"


def quickstart() -> list[list[str]]:
    """The README's quickstart commands, split as a shell would (comments dropped)."""
    import shlex

    text = (ROOT / "README.md").read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.strip().splitlines() if line.strip()]


def test_the_readme_quickstart_reads_only_what_an_earlier_command_wrote_and_every_option_exists():
    """Issue 35: `curate filter manifests/rescored.jsonl.gz` read a file no command above wrote, and
    `publish`/`train encode` read the filtered set instead of the selected one."""
    import click

    from scoreaware.cli.main import cli

    written: list[str] = []
    commands = quickstart()
    assert len(commands) >= 10 and all(c[0] == "scoreaware" for c in commands)
    for tokens in commands:
        group, rest = cli, tokens[1:]
        while isinstance(group, click.Group):  # descend: curate score clap ...
            group, rest = group.get_command(None, rest[0]), rest[1:]
            assert group is not None, tokens
        parser = group.make_parser(click.Context(group, info_name=tokens[-1]))
        options, _, _ = parser.parse_args(list(rest))  # arguments land here too; an unknown option raises
        inputs = [v for k, v in options.items() if k != "output" and isinstance(v, str)]
        for path in inputs:
            if path.startswith(("manifests/", "samples/")):
                assert path in written, f"{' '.join(tokens)} reads {path}, which no command above writes"
        if options.get("output"):
            written.append(options["output"])
    assert written[-1] == "samples/" and "manifests/select.jsonl.gz" in written
    publish = next(c for c in commands if "publish" in c)
    encode = next(c for c in commands if "encode" in c)
    assert "manifests/select.jsonl.gz" in publish and "manifests/select.jsonl.gz" in encode
