from scoreaware.cli import cli

cli(prog_name="scoreaware")
