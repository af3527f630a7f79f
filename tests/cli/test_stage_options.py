"""Every curation stage's click options and its `Config` dataclass agree: the same names, the same
defaults. The `Config` is the one list of a stage's options (what --resume compares, what the
provenance records); a command builds it with ``Config(**options)``, so an option added to one
and not the other fails here before any user meets it."""

from __future__ import annotations

import dataclasses

import click
import pytest

from scoreaware.cli.curate import curate
from scoreaware.core.stage import output_options, recorded_options
from scoreaware.curate.stages.caption import CaptionConfig
from scoreaware.curate.stages.filter import FilterConfig
from scoreaware.curate.stages.hub_import import ImportConfig
from scoreaware.curate.stages.ingest import IngestConfig
from scoreaware.curate.stages.score_clap import ClapScoreConfig
from scoreaware.curate.stages.score_reward import RewardScoreConfig
from scoreaware.curate.stages.segment import SegmentConfig
from scoreaware.curate.stages.select import SelectConfig

STAGES = {
    ("ingest",): IngestConfig,
    ("segment",): SegmentConfig,
    ("score", "clap"): ClapScoreConfig,
    ("score", "reward"): RewardScoreConfig,
    ("caption",): CaptionConfig,
    ("filter",): FilterConfig,
    ("select",): SelectConfig,
    ("import",): ImportConfig,
}
# what every stage command has besides its Config: its input, where it writes, how it runs
RUN_PARAMETERS = {"manifest", "audio_dir", "source", "output", "resume", "overwrite", "executor", "ray_address",
                  "ray_actors", "shard_size", "cpus_per_actor", "rejected", "mixture", "mixture_base"}


def command(path: tuple[str, ...]) -> click.Command:
    group: click.Command = curate
    for name in path:
        group = group.commands[name]  # type: ignore[attr-defined]
    return group


def test_every_stage_command_is_covered():
    """A new stage command with a `Config` must be listed above (stages write manifests with
    --resume; export, publish, report, validate and describe write no manifest)."""
    stage_commands = {(name,) for name, cmd in curate.commands.items()
                      if any(p.name == "resume" for p in cmd.params)}
    stage_commands |= {("score", name) for name in command(("score",)).commands}
    assert stage_commands == set(STAGES)


@pytest.mark.parametrize("path", list(STAGES), ids=" ".join)
def test_click_options_are_the_config_fields(path):
    config_type = STAGES[path]
    cmd = command(path)
    options = {p.name for p in cmd.params} - RUN_PARAMETERS
    fields = {f.name for f in dataclasses.fields(config_type)}
    assert options == fields, (f"`curate {' '.join(path)}` options without a {config_type.__name__} field: "
                               f"{sorted(options - fields)}; fields without an option: {sorted(fields - options)}")


def parsed_defaults(path: tuple[str, ...], tmp_path) -> dict:
    """What click hands the command when only the input is given (and --stage for caption)."""
    manifest = tmp_path / "in.jsonl.gz"
    manifest.write_bytes(b"")
    cmd = command(path)
    args = [str(tmp_path)] if path == ("ingest",) else [str(manifest)]
    args += ["--stage", "rewrite"] if path == ("caption",) else []
    args += ["--checkpoint", str(manifest)] if path == ("score", "reward") else []
    with cmd.make_context(" ".join(path), args) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("path", list(STAGES), ids=" ".join)
def test_click_defaults_are_the_config_defaults(path, tmp_path):
    """The defaults agree too; a click default of None means "derived" (its help says from what)."""
    config_type = STAGES[path]
    defaults = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(config_type)}
    given = {"stage", "checkpoint"}  # required options, given above
    for name, value in parsed_defaults(path, tmp_path).items():
        if name in defaults and name not in given and value is not None:
            assert value == defaults[name], (path, name, value, defaults[name])


def test_resume_compares_only_what_changes_the_output():
    """Threads, batch sizes and devices may differ on --resume; anything that changes what is
    written may not; the provenance records both."""
    config = ClapScoreConfig(model="m", batch_size=4, workers=1, device="cpu")
    assert set(output_options(config)) == {"backend", "model", "amodel", "caption_field", "policy"}
    assert output_options(config) == output_options(dataclasses.replace(config, batch_size=64, workers=0))
    assert output_options(config) != output_options(dataclasses.replace(config, policy="mean"))
    assert recorded_options(config)["batch_size"] == 4
    assert set(output_options(SegmentConfig())) == {"window", "hop", "min_duration", "min_lufs"}
    assert "base_url" not in output_options(CaptionConfig()) and "seed" in output_options(CaptionConfig())


def test_a_command_builds_its_config_from_its_options(tmp_path):
    """Each command hands its options to its Config unchanged (no second list of names): every
    stage's parsed options build its Config, and a Config missing one of them fails loudly."""
    for path, config_type in STAGES.items():
        options = {k: v for k, v in parsed_defaults(path, tmp_path).items() if k not in RUN_PARAMETERS}
        config_type(**options)

    @dataclasses.dataclass(frozen=True)
    class Narrow:
        window: float = 10.0

    with pytest.raises(TypeError, match="unexpected keyword"):
        Narrow(**{k: v for k, v in parsed_defaults(("segment",), tmp_path).items() if k not in RUN_PARAMETERS})
