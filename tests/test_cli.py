import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli

COMMANDS = [[], ["curate"], ["curate", "ingest"], ["curate", "segment"], ["curate", "validate"],
            ["curate", "describe"], ["curate", "score"], ["curate", "score", "clap"], ["curate", "score", "reward"],
            ["curate", "filter"], ["curate", "select"], ["curate", "report"], ["curate", "export"],
            ["curate", "publish"], ["curate", "import"],
            ["demo"], ["demo", "make-corpus"], ["demo", "make-models"], ["demo", "run"], ["demo", "prepare-seed-a"],
            ["demo", "prepare-seed-b"],
            ["train"],
            ["train", "reward"], ["train", "encode"], ["train", "fit"], ["train", "sample"], ["eval"],
            ["eval", "generate"], ["eval", "reference"], ["eval", "score"], ["eval", "fad"], ["eval", "compare"],
            ["experiment"], ["experiment", "run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from scoreaware.cli.main import cli; "
            "heavy = [m for m in ('lhotse', 'torch', 'pandera', 'pandas', 'matplotlib') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_input_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["curate", "segment", str(tmp_path / "missing.jsonl.gz")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_bad_option_values_are_usage_errors(ingested, tmp_path):
    result = CliRunner().invoke(cli, ["curate", "segment", str(ingested), "--window", "5", "--min-duration", "6",
                                      "-o", str(tmp_path / "s.jsonl.gz")])
    assert result.exit_code == 2 and "--min-duration" in result.output


def test_rerunning_a_finished_stage_is_a_noop(ingested, tmp_path):
    out = tmp_path / "s.jsonl.gz"
    args = ["curate", "segment", str(ingested), "-o", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = out.stat().st_mtime_ns
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "already complete" in again.output
    assert out.stat().st_mtime_ns == before
    redo = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert redo.exit_code == 0 and out.stat().st_mtime_ns != before


def test_describe_prints_counts_histograms_and_writes_a_plot(ingested, tmp_path):
    png = tmp_path / "d.png"
    result = CliRunner().invoke(cli, ["curate", "describe", str(ingested), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "cuts 6" in result.output and "recordings 6" in result.output
    assert "quarantined 2: " in result.output and "duration (s)" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_run_end_to_end(tmp_path):
    workdir = tmp_path / "demo"
    args = ["demo", "run", "--workdir", str(workdir), "--clips", "8", "--duration", "11", "--train-steps", "4",
            "--post-steps", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for name in ("ingest.jsonl.gz", "segment.jsonl.gz", "clap.jsonl.gz", "reward.jsonl.gz", "verbose.jsonl.gz",
                 "caption.jsonl.gz", "rescored.jsonl.gz", "filter.jsonl.gz",
                 "select.jsonl.gz", "select.mixture.jsonl.gz", "scores.png", "corpus/truth.jsonl",
                 "filter_metadata.jsonl.gz",
                 "truth.json", "report/clap_score_by_label.png", "report/reward_by_label.png",
                 "report/index.html", "report/beta_schedule.png", "dataset/README.md", "encode.jsonl.gz",
                 "runs/baseline/000-tiny/loss.png", "runs/score/000-tiny/checkpoints/0000004.pt",
                 "samples/samples.jsonl", "post/ei/summary.json", "post/crossload.pt", "post/crpo/summary.json",
                 "eval/compare/compare.md", "timing.json"):
        assert (workdir / name).is_file(), name
    assert "RewardScoredCuts" in result.output and "demo finished" in result.output
    assert "where the time went" in result.output
    assert len(list((workdir / "samples").glob("*.wav"))) == 2
    table = (workdir / "eval" / "compare" / "compare.md").read_text()
    stages = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
    assert stages == ["baseline", "score_sft", "ei", "crossload", "crpo"], table
    summary = json.loads((workdir / "post" / "ei" / "summary.json").read_text())
    assert summary["rounds"][0]["keepers"] >= 1
    first = json.loads((workdir / "timing.json").read_text())
    assert {"train fit", "expert iteration", "crpo", "evaluation"} <= set(first["steps"])

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "baseline: already trained" in again.output and "score_sft: already trained" in again.output
    assert "side by side" in result.output and "side by side" not in again.output  # no worker started again
    generated = [line for line in again.output.splitlines() if "generated now" in line]
    assert generated and all(", 0 generated now" in line for line in generated), generated
    assert again.output.count("already trained") >= 4 and "already exported" in again.output


def test_every_command_help_ends_with_an_example():
    from scoreaware.cli.examples import EXAMPLES, commands

    paths = [path for path, _ in commands(cli)]
    assert set(paths) == set(EXAMPLES), set(paths) ^ set(EXAMPLES)
    for path in paths:
        result = CliRunner().invoke(cli, [*path.split(), "--help"])
        assert result.exit_code == 0, result.output
        tail = result.output.rstrip().splitlines()[-2:]
        assert tail[0].strip() == "Example:" and tail[1].strip() == EXAMPLES[path], (path, tail)


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == "scoreaware, version 0.1.0"
