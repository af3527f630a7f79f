import pytest

from scoreaware.train.config import PRESETS, ConfigError, parse_overrides, resolve


def test_layers_apply_in_order(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 50\nrepa = ["clap"]\nlr = 0.01\n')
    config = resolve("tiny", str(toml), parse_overrides(("steps=7", "timesteps=beta")))
    assert (config.model, config.steps, config.repa) == ("tiny", 7, ("clap",))
    assert (config.lr, config.timesteps) == (0.01, "beta")
    assert config.batch_size == PRESETS["tiny"]["batch_size"]


@pytest.mark.parametrize("overrides, message", [
    (("stepz=3",), "unknown keys \\['stepz'\\]"),
    (("steps=three",), "steps: expected int"),
    (("lr=fast",), "lr: expected float"),
    (("steps",), "key=value"),
])
def test_unknown_keys_and_bad_types_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve("tiny", None, parse_overrides(overrides))


def test_unknown_key_in_a_file(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("learning_rate = 1e-4\n")
    with pytest.raises(ConfigError, match=f"{toml}: unknown keys"):
        resolve(None, str(toml))


def test_presets_name_their_models():
    assert resolve("S").model == "S" and resolve("L").timesteps == "beta" and resolve("L").repa == ("clap", "muq")


def test_an_unknown_key_suggests_the_closest_one():
    with pytest.raises(ConfigError, match=r"'stepz' → did you mean 'steps'\?"):
        resolve(overrides=parse_overrides(("stepz=3",)))


def test_fit_help_lists_every_key_with_its_default():
    import dataclasses

    from click.testing import CliRunner

    from scoreaware.cli.main import cli
    from scoreaware.train.config import TrainConfig

    text = CliRunner().invoke(cli, ["train", "fit", "--help"]).output
    for field in dataclasses.fields(TrainConfig):
        default = ",".join(field.default) if isinstance(field.default, tuple) else field.default
        assert f"{field.name}={default}" in text, field.name
