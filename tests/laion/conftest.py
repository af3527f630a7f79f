"""laion_clap runs offline here: HF_HOME points at a cache seeded with local stand-ins.

Runs in the `laion` tox environment (numpy<2, laion-clap); the core environment ignores this
folder. HF_HOME must be set before transformers/huggingface_hub are imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

HF_HOME = Path(tempfile.mkdtemp(prefix="laion-hf-"))
atexit.register(shutil.rmtree, HF_HOME, ignore_errors=True)  # a seeded cache per run: do not leave it behind
os.environ["HF_HOME"] = str(HF_HOME)
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def seeded_cache() -> Path:
    from scoreaware.demo.tiny_models import seed_laion_hf_cache

    return seed_laion_hf_cache(HF_HOME)


@pytest.fixture(scope="session")
def laion_checkpoint(seeded_cache, tmp_path_factory) -> Path:
    from scoreaware.demo.tiny_models import make_tiny_laion_checkpoint

    return make_tiny_laion_checkpoint(tmp_path_factory.mktemp("laion") / "tiny_music.pt", amodel="HTSAT-tiny")
