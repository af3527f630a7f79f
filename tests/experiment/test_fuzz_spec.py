"""Fuzzing experiment files: a valid file with a few keys replaced, added or removed (any TOML value,
any section, names with NUL bytes) is read by `experiment plan` (the parse every `experiment run`
starts with) into a plan or a one-line error naming the key, never "internal error"."""

import datetime as dt
import json

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoreaware.cli.main import cli

FUZZ = settings(max_examples=120, deadline=dt.timedelta(seconds=10),
                suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID = {
    "top": {"name": "toy", "manifest": "encode.jsonl.gz", "training_seeds": [0, 1], "unit": "training_seed"},
    "base": {"preset": "tiny", "set": {"steps": 4, "batch_size": 4}},
    "evaluate": {"prompts": "prompts.csv", "reference": "ref.npz", "seeds": 2, "steps": 2, "cfg": 1.0,
                 "seconds": 1.0},
    "arm0": {"name": "baseline"},
    "arm1": {"name": "beta", "set": {"timesteps": "beta"}},
    "arm2": {"name": "filter", "filter": {"clap_percentile": 25}},
    "arm3": {"name": "ei", "after": "baseline", "posttrain": "expert-iteration", "options": {"rounds": 1}},
    "contrast0": {"name": "score-aware", "arms": ["beta", "baseline"], "metric": "clap_score", "margin": 0.05},
}
KEYS = sorted({key for table in VALID.values() for key in table} | {"combines", "filter", "set", "options", "labels",
                                                                     "judge", "claim", "primary", "sd", "score"})

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    text, st.sampled_from(["beta", "six", "ten", "", "a\x00b", "../x", "baseline", "1e10"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(KEYS) | text, inner, max_size=2), max_leaves=5)
edits = st.lists(st.tuples(st.sampled_from(sorted(VALID)), st.sampled_from(KEYS) | text,
                           st.none() | values), max_size=3)


def toml(value) -> str:
    """A Python value as a TOML value (inline tables and arrays; strings escaped as JSON, which TOML reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in value.items()) + "}"


def document(tables: dict) -> str:
    lines = [f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in tables["top"].items()]
    for section in ("base", "evaluate"):
        lines.append(f"[{section}]")
        lines += [f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in tables[section].items()]
    for name in sorted(tables):
        if name.startswith(("arm", "contrast")):
            lines.append(f"[[{name.rstrip('0123456789')}]]")
            lines += [f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in tables[name].items()]
    return "\n".join(lines) + "\n"


@FUZZ
@given(edits=edits)
@example(edits=[("arm1", "set", "beta")]).via("issue 36: an internal error after earlier arms trained")
@example(edits=[("arm3", "options", 5)]).via("issue 36")
@example(edits=[("arm2", "filter", {"clap_percentile": "ten"})]).via("issue 36")
@example(edits=[("evaluate", "seeds", "six")]).via("issue 36")
@example(edits=[("evaluate", "cfg", "x")]).via("issue 36")
@example(edits=[("base", "set", {"steps": -1})]).via("issue 36: clips marked done")
@example(edits=[("evaluate", "seconds", 0)]).via("issue 36: a torch shape error")
@example(edits=[("top", "training_seeds", [True])]).via("issue 36")
@example(edits=[("top", "training_seeds", [-1])]).via("issue 36")
@example(edits=[("arm1", "name", "a\x00b")]).via("issue 36: printed to the terminal")
@example(edits=[("arm1", "set", {"timesteps": "beta", "lr": 0.001})]).via("issue 36: two changes in one arm")
def test_any_experiment_file_gives_a_plan_or_a_one_line_error(tmp_path_factory, edits):
    folder = tmp_path_factory.mktemp("spec")
    for name in ("encode.jsonl.gz", "ref.npz"):
        (folder / name).write_bytes(b"")
    (folder / "prompts.csv").write_text("id,prompt\na,a calm piano piece\nb,fast jazz\n")
    tables = json.loads(json.dumps(VALID))
    for table, key, value in edits:
        if value is None:
            tables[table].pop(key, None)
        else:
            tables[table][key] = value
    spec = folder / "exp.toml"
    spec.write_text(document(tables), encoding="utf-8")
    result = CliRunner().invoke(cli, ["experiment", "plan", str(spec)])
    assert result.exit_code in (0, 1, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    if result.exit_code:
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "\x00" not in result.output, result.output
