"""The held-out flow loss of a finished checkpoint is the loop's own validation: on the manifest
the run validated on, it reproduces the logged EMA validation loss exactly."""

import json

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.errors import StageError
from scoreaware.train.held_out import held_out_flow


def test_it_reproduces_the_loss_the_loop_logged(encoded, tmp_path):
    result = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={encoded}",
                                      "--set", f"run_dir={tmp_path}", "--set", "steps=3", "--set", "batch_size=4",
                                      "--set", "max_frames=32", "--set", f"val_manifest={encoded}",
                                      "--set", "val_every=3"])
    assert result.exit_code == 0, result.output
    run = next(tmp_path.iterdir())
    logged = [h for h in json.loads((run / "history.json").read_text()) if "val_ema_flow" in h][-1]
    measured = held_out_flow(sorted((run / "checkpoints").glob("*.pt"))[-1], encoded)
    assert measured["val_flow"] == pytest.approx(logged["val_ema_flow"], rel=1e-5)
    assert measured["val_flow_per_bin"] == pytest.approx(logged["val_ema_flow_per_bin"], rel=1e-5)
    assert len(measured["val_flow_per_bin"]) == 10


def test_an_empty_or_foreign_manifest_is_refused(tiny_checkpoint, encoded, clap_scored, tmp_path):
    empty = tmp_path / "empty.jsonl.gz"
    import gzip
    empty.write_bytes(gzip.compress(b""))
    (tmp_path / "empty.encode.json").write_text((encoded.parent / "encode.encode.json").read_text())
    with pytest.raises(StageError, match="no segments"):
        held_out_flow(tiny_checkpoint, empty)
    with pytest.raises(FileNotFoundError, match="no .encode.json"):
        held_out_flow(tiny_checkpoint, clap_scored)  # not encoded at all
