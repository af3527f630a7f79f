"""`python -m scoreaware`; guarded because vLLM spawns workers that re-import the main module."""

from scoreaware.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="scoreaware")
