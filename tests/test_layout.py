"""The design card's layout: `curate/`, `train/`, `schemas/`, `manifests/`, `tests/`, `pyproject.toml`
and `tox.ini` at the top of the repository, and one `scoreaware.` import namespace."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import scoreaware.curate
import scoreaware.schemas
import scoreaware.train

ROOT = Path(__file__).resolve().parents[1]
CARD = ("curate", "train", "schemas", "manifests", "tests", "pyproject.toml", "tox.ini")


def test_the_repository_top_shows_the_cards_layout():
    assert all((ROOT / name).exists() for name in CARD), [name for name in CARD if not (ROOT / name).exists()]
    for name in ("curate", "train", "schemas"):
        assert (ROOT / name / "__init__.py").is_file() and not (ROOT / "src" / "scoreaware" / name).exists()


def test_every_package_folder_is_listed_and_mapped_where_it_lives():
    """pyproject lists packages by hand (mapped folders cannot be found): a new subpackage that is not
    listed would be left out of the wheel, so the list is checked against the folders."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = setup["package-dir"]
    found = set()
    for package, folder in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            name = ".".join((package, *parts))
            if not any(name.startswith(other + ".") or name == other for other in roots if other != package
                       and other.startswith(package + ".")):
                found.add(name)
    assert set(setup["packages"]) == found


PROBE = """
import importlib.util as u
def ours(name):
    spec = u.find_spec(name)
    return spec is not None and "scoreaware" in str(spec.origin) + str(spec.submodule_search_locations)
print([name for name in ("curate", "train", "schemas", "evaluate") if ours(name)])
"""


def test_the_mapped_packages_import_under_scoreaware_only(tmp_path):
    for module in (scoreaware.curate, scoreaware.train, scoreaware.schemas):
        assert Path(module.__file__).parent.name == module.__name__.split(".")[-1]
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout  # no top-level import name of ours, from any folder
