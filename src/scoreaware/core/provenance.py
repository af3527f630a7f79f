"""Provenance: the sidecar next to every manifest, input fingerprints, lineage and the options
a run was made with."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from scoreaware.core.errors import StageError
from scoreaware.core.files import Pathlike, file_digest

# a stage whose output breaks earlier guarantees (a mixture holds base cuts next to selected ones)
RESETS = {"mixture"}


def manifest_base(path: Pathlike) -> Path:
    """``dir/name.jsonl.gz`` -> ``dir/name`` (the stem every sibling file is named from)."""
    path = Path(path)
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl", ".json.gz", ".json"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    raise StageError(f"{path}: manifest outputs must end in .jsonl.gz or .jsonl")


def provenance_path(path: Pathlike) -> Path:
    """Sidecar path of the manifest `path`."""
    base = manifest_base(path)
    return base.with_name(f"{base.name}.provenance.json")


def read_provenance(path: Pathlike) -> dict | None:
    """The sidecar of `path`, or None when it has none."""
    sidecar = provenance_path(path)
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def weights_fingerprint(path_or_id: str) -> str:
    """A short identity of local weights (file names and sizes) or of a hub id."""
    path = Path(path_or_id)
    if path.exists():
        files = sorted(p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file())
        parts = [f"{p.name}:{p.stat().st_size}" for p in files]
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:12]
    return path_or_id


def describe_input(path: Pathlike) -> dict:
    """Path, size and sha256 of an input file, for the provenance sidecar."""
    path = Path(path)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_digest(path)}


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of scoreaware and the named distributions (missing ones skipped)."""

    found = {"python": platform.python_version()}
    for name in ("scoreaware", "lhotse", "numpy", "pandera", *names):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _json_normal(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """'name: old → new' for every option that differs between two run configurations."""
    before, after = _json_normal(dict(before)), _json_normal(dict(after))
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) == after.get(key):
            continue
        if key.endswith("sha256"):
            changes.append(f"{key.removesuffix('_sha256').replace('_', ' ')} changed since")
        else:
            changes.append(f"{key}: {_short(before.get(key, '(unset)'))} → {_short(after.get(key, '(unset)'))}")
    return changes


def _short(value: Any, limit: int = 80) -> str:
    """A value as a message shows it: long lists by their length, long text cut (a refusal that
    printed a whole prompt list ran to 20 KB)."""
    if isinstance(value, list) and len(repr(value)) > limit:
        return f"[{len(value)} items, {hashlib.sha256(repr(value).encode()).hexdigest()[:8]}]"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lineage_of(manifest: Pathlike | None) -> list[str]:
    """The stages that made `manifest` (oldest first), from its sidecar; [] when unknown."""
    if manifest is None:
        return []
    try:
        sidecar = read_provenance(manifest) or {}
    except (OSError, ValueError, StageError):
        return []
    lineage = sidecar.get("lineage")
    if isinstance(lineage, list):
        return [str(s) for s in lineage]
    return [sidecar["stage"]] if isinstance(sidecar.get("stage"), str) else []




def lineage_after(lineage: list[str], stage: str) -> list[str]:
    """The lineage of a stage's output, given its input's lineage."""
    if stage in RESETS:
        return [s for s in lineage if s in ("ingest", "segment")] + [stage]
    return [*lineage, stage]


def provenance_chain(manifest: Pathlike) -> list[dict]:
    """Sidecars from `manifest` back through the inputs that produced it (newest first)."""
    chain, seen = [], set()
    path = Path(manifest)
    while path.is_file() and str(path) not in seen:
        seen.add(str(path))
        sidecar = read_provenance(path)
        if not sidecar:
            break
        chain.append(sidecar)
        inputs = [i for i in sidecar.get("inputs", []) if str(i.get("path", "")).endswith((".jsonl.gz", ".jsonl"))]
        if not inputs:
            break
        moved = path.resolve().parent / inputs[0]["relpath"] if inputs[0].get("relpath") else None
        path = moved if moved is not None and moved.is_file() else Path(inputs[0]["path"])
    return chain
