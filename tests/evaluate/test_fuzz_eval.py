"""Fuzzing what `eval fad` is handed: random shapes, NaN, inf, empty, truncated or garbage files.
Every call ends (a watchdog kills the run if one hangs: LAPACK's sqrtm can hang on NaN, ignoring
Ctrl-C), with a result or one line naming the file, never a traceback or an `internal error`."""

import faulthandler
import io

import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoreaware.cli.main import cli

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e300, -1e-300])


@st.composite
def embedding_file(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["matrix", "vector", "cube", "empty", "truncated", "garbage", "npz"]))
    rows, dims = draw(st.integers(0, 12)), draw(st.integers(1, 10))
    matrix = np.asarray(draw(st.lists(st.floats(-10, 10), min_size=rows * dims, max_size=rows * dims)),
                        dtype=np.float64).reshape(rows, dims)
    if rows and draw(st.booleans()):  # plant special values
        for _ in range(draw(st.integers(1, 3))):
            matrix[draw(st.integers(0, rows - 1)), draw(st.integers(0, dims - 1))] = draw(special)
    buffer = io.BytesIO()
    if kind == "vector":
        np.save(buffer, matrix.ravel())
    elif kind == "cube":
        np.save(buffer, matrix.reshape(1, rows, dims))
    elif kind == "npz":
        np.savez(buffer, embeddings=matrix)
        return ".npz", buffer.getvalue()[: draw(st.integers(0, len(buffer.getvalue())))]
    else:
        np.save(buffer, matrix)
    data = buffer.getvalue()
    if kind == "empty":
        data = b""
    elif kind == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif kind == "garbage":
        data = draw(st.binary(max_size=64))
    return ".npy", data


@FUZZ
@given(first=embedding_file(), second=embedding_file(), bootstrap=st.sampled_from(["0", "10"]))
def test_eval_fad_never_hangs_or_leaks_a_traceback(tmp_path, first, second, bootstrap):
    paths = []
    for index, (suffix, data) in enumerate((first, second)):
        path = tmp_path / f"e{index}{suffix}"
        path.write_bytes(data)
        paths.append(str(path))
    faulthandler.dump_traceback_later(120, exit=True)  # a hang ends the run loudly instead of never
    try:
        result = CliRunner().invoke(cli, ["eval", "fad", *paths, "--bootstrap", bootstrap])
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    if result.exit_code == 1:
        assert any(p.rsplit("/", 1)[-1] in result.output for p in paths) or "embedding sizes" in result.output, \
            result.output
    else:
        assert "FAD" in result.output and "nan" not in result.output.lower()
