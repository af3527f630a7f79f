"""Where a benchmark writes its corpus: the user's ``--workdir`` (kept between runs) or a scratch
folder removed when the script exits (a corpus can be GBs, and a forgotten one fills the disk)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def workdir_or_scratch(workdir: Path | None, prefix: str) -> Path:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch
