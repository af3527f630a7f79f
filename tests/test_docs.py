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


def test_the_worked_scorer_example_runs_as_written(segmented4, tmp_path, monkeypatch):
    """docs/adding_a_scorer.md: its three blocks (model, stage, command) are a working scorer: it
    scores a real manifest, records its options, resumes as a finished stage, and its click
    options are its Config's fields."""
    import dataclasses
    import re
    import sys
    import types

    import click
    from click.testing import CliRunner

    from scoreaware.core.manifests import read_cuts
    from scoreaware.core.provenance import read_provenance

    text = (ROOT / "docs" / "adding_a_scorer.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 3, "the example is the model, the stage and the command"
    # each block in its own module, as the three files would be; a later one imports the earlier's names
    names: dict = {}
    for number, (block, name) in enumerate(zip(blocks, ("model", "stage", "command"))):
        module = types.ModuleType(f"brightness_{name}")
        monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up
        module.__dict__.update(names, Path=Path)
        exec(compile(block, f"adding_a_scorer.md block {number + 1}", "exec"), module.__dict__)
        names.update({k: v for k, v in module.__dict__.items() if k in (
            "spectral_centroid", "BrightnessConfig", "run_score_brightness")})

    group = click.Group("score")
    group.add_command(module.score_brightness_cmd)
    out = tmp_path / "brightness.jsonl.gz"
    result = CliRunner().invoke(group, ["brightness", str(segmented4), "-o", str(out), "--max-seconds", "2"])
    assert result.exit_code == 0, result.output
    assert "score brightness" in result.output and "brightness_hz (this run)" in result.output
    cuts = list(read_cuts(out))
    assert len(cuts) == sum(1 for _ in read_cuts(segmented4))
    assert all(0 < c.custom["brightness_hz"] < c.sampling_rate / 2 for c in cuts)
    assert read_provenance(out)["options"]["max_seconds"] == 2.0
    again = CliRunner().invoke(group, ["brightness", str(segmented4), "-o", str(out), "--max-seconds", "2"])
    assert again.exit_code == 0 and "already complete" in again.output
    changed = CliRunner().invoke(group, ["brightness", str(segmented4), "-o", str(out), "--resume"])
    assert "max_seconds: 2.0 → 10.0" in str(changed.exception)  # another option is refused, named

    options = {p.name for p in module.score_brightness_cmd.params} - {
        "manifest", "output", "resume", "overwrite", "executor", "ray_address", "ray_actors", "shard_size",
        "cpus_per_actor"}
    assert options == {f.name for f in dataclasses.fields(module.BrightnessConfig)}
