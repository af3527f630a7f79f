"""Where stages keep vectors (embeddings, features): Lhotse arrays in a folder of .npy files.

`lhotse.features.io.NumpyFilesWriter` writes one lossless .npy per key and returns the
`lhotse.array.Array` manifest stored in ``cut.custom``; ``cut.load_custom(name)`` reads it back.
One file per key (rather than one HDF5 file) keeps a killed run harmless: a half-written file
belongs to a cut that was never written to the manifest, and the resumed run rewrites it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from lhotse.array import Array
from lhotse.features.io import NumpyFilesWriter

from scoreaware.core.files import safe_name
from scoreaware.core.provenance import manifest_base


def arrays_dir(output: str | os.PathLike) -> Path:
    """``dir/name.jsonl.gz`` -> ``dir/name.arrays`` (manifests store it relative to themselves)."""
    base = manifest_base(output)
    return base.with_name(f"{base.name}.arrays").resolve()


class ArrayStore:
    """Named groups of arrays under one folder; each group is one `NumpyFilesWriter`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._writers: dict[str, NumpyFilesWriter] = {}

    def put(self, group: str, key: str, value: np.ndarray) -> Array:
        """Store `value` as float32 under `key` (made file-safe) and return its Lhotse manifest."""
        if group not in self._writers:
            (self.root / group).mkdir(parents=True, exist_ok=True)
            self._writers[group] = NumpyFilesWriter(self.root / group)
        return self._writers[group].store_array(safe_name(key, "key"), np.ascontiguousarray(value, dtype=np.float32))


