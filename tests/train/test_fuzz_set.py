"""Fuzzing `train fit --set KEY=VALUE`: any key and any value ends in exit 1 or 2 with one line
naming what is wrong, never "internal error". The manifest does not exist, so a value every check
accepts ends at the manifest's error instead of training (the check of the data is
tests/train/test_fit.py's)."""

import datetime as dt
import math

from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from scoreaware.cli.main import cli
from scoreaware.train.config import CHOICES, TrainConfig

FUZZ = settings(max_examples=80, deadline=dt.timedelta(seconds=10),
                suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = [name for name in TrainConfig.__dataclass_fields__]
NAMES = sorted({name for names in CHOICES.values() for name in names} | {"clap", "muq", "cuda:0", "auto"})
numbers = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(repr),
                    st.sampled_from(["1e10", "-1", "0", "0.0", "nan", "inf", "-inf", "1_000", "0x10", "true", "1.5"]))
values = st.one_of(numbers, st.sampled_from(NAMES), st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
                   st.lists(st.sampled_from(NAMES + ["", "x"]), max_size=3).map(",".join))


@FUZZ
@given(key=st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), value=values)
@example(key="batch_size", value="0").via("issue 36: an empty AssertionError")
@example(key="max_frames", value="0").via("issue 36: a reshape error")
@example(key="steps", value="-5").via("issue 36: exit 0 with no checkpoint")
@example(key="model", value="huge").via("found by this test: KeyError")
@example(key="device", value="tpu").via("found by this test: torch's RuntimeError")
@example(key="lr", value=repr(math.nan)).via("a NaN learning rate")
def test_any_set_value_is_refused_in_one_line_or_reaches_the_data(tmp_path_factory, key, value):
    missing = tmp_path_factory.mktemp("fuzz") / "no-such.jsonl.gz"
    result = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--manifest", str(missing),
                                      "--set", f"{key}={value}", "--set", f"run_dir={missing.parent / 'runs'}"])
    assert result.exit_code in (1, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, result.output


small = st.one_of(st.integers(-3, 3).map(str), st.sampled_from(["0.5", "-0.1", "nan", "inf", "1e-9", "true", ""]),
                  st.sampled_from(NAMES), st.text(st.characters(exclude_categories=["Cs"]), max_size=8))


@settings(max_examples=12, deadline=dt.timedelta(seconds=30),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=small)
@example(key="model", value="huge").via("an internal KeyError after the data was read")
@example(key="device", value="tpu").via("an internal RuntimeError from torch")
@example(key="precision", value="fp8").via("trained silently with the default")
def test_a_set_value_on_real_data_trains_one_step_or_is_refused_in_one_line(encoded, tmp_path_factory, key, value):
    """The same on an encoded manifest, one training step: what passes the checks must train."""
    assume(not (key == "model" and value in ("S", "L")))  # real widths: minutes per step on a CPU
    assume(key not in ("num_workers", "compile"))  # one process; steps and run_dir are set after it (the last wins)
    folder = tmp_path_factory.mktemp("fuzz")
    result = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--manifest", str(encoded),
                                      "--set", f"{key}={value}", "--set", "steps=1", "--set", "max_frames=32",
                                      "--set", f"run_dir={folder / 'runs'}"]
                                + ([] if key == "batch_size" else ["--set", "batch_size=4"]))
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        assert list((folder / "runs").glob("*/checkpoints/0000001.pt")), result.output
    else:
        assert result.exit_code in (1, 2), result.output
        assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1, result.output
