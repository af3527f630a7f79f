"""The curation report as a reader sees it: rendered by headless Chromium, its figures decoded.

Runs where Debian's `chromium` is installed (`.ci/run` installs it); skipped with the reason
elsewhere. The check reads the screenshot's pixels: only the figures are in colour (text,
tables and audio players are grey), so a page whose embedded figures do not decode has almost
no coloured pixel — tested below on a copy of the page with its images broken.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scoreaware.cli.main import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
WIDTH, HEIGHT = 1200, 4000


def screenshot(page: Path, out: Path) -> np.ndarray:
    """The page rendered headless at WIDTH × HEIGHT, as an RGB array (H, W, 3)."""
    # flags as this machine's closed network needs them: no background fetches, a fresh profile
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={out.parent / 'profile'}",
               f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(out).convert("RGB"))


def figure_pixels(image: np.ndarray) -> int:
    """Pixels in colour (channels differing by > 50): histogram bars and curves, not grey UI."""
    image = image.astype(int)
    return int((image.max(axis=-1) - image.min(axis=-1) > 50).sum())


@pytest.fixture
def report(scored, tmp_path) -> Path:  # `scored`: 20 cuts with known scores (conftest)
    kept = tmp_path / "kept.jsonl.gz"
    assert CliRunner().invoke(cli, ["curate", "filter", str(scored), "-o", str(kept)]).exit_code == 0
    result = CliRunner().invoke(cli, ["curate", "report", str(scored), str(kept), "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    return tmp_path / "rep" / "index.html"


def test_the_report_renders_with_its_figures_in_chromium(report, tmp_path):
    image = screenshot(report, tmp_path / "report.png")
    assert image.shape == (HEIGHT, WIDTH, 3)
    ink = (image.astype(int).sum(axis=-1) < 600).mean()  # anything darker than near-white: text, tables
    assert ink > 0.01, f"the page rendered almost blank ({ink:.3%} ink)"
    assert figure_pixels(image) > 20_000, "no figure on the rendered page"


def test_a_report_whose_figures_do_not_decode_fails_the_check(report, tmp_path):
    broken = report.with_name("broken.html")
    page = report.read_text()
    broken.write_text(re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,AAAA", page))  # every figure unreadable
    image = screenshot(broken, tmp_path / "broken.png")
    assert figure_pixels(image) < 500
