"""Import: a dataset exported by scoreaware (local folder or Hub id) back into cuts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from scoreaware.core.provenance import manifest_base
from scoreaware.core.stage import StagePlan, StageResult, done_line, output_options, recorded_options, run_stage
from scoreaware.curate.publish import iter_imported
from scoreaware.schemas.validation import validate_manifest

STAGE = "import"


@dataclass(frozen=True)
class ImportConfig:
    """Options of the import stage (`curate import`'s options, one for one)."""

    split: str = "train"


def run_import(source: str, output: Path, config: ImportConfig = ImportConfig(), *, resume: bool = False,
               overwrite: bool = False) -> StageResult:
    """Read `source` back into cuts; audio is written as FLAC files next to `output`
    (<name>.audio/) and every column becomes a custom field."""
    local = Path(source).is_dir()
    key = dict(source=str(Path(source).resolve()) if local else source, **output_options(config),
               data=_folder_digest(Path(source)) if local else None)
    base = manifest_base(output)
    audio_dir = base.with_name(f"{base.name}.audio").resolve()

    def drive_import(out, bar):
        for cut in iter_imported(source, config.split, audio_dir, skip_ids=out.done_ids):
            out.write(cut)
            bar.update(1)

    def finalize(out, report):
        return dict(options=dict(**recorded_options(config), audio_dir=str(audio_dir), output=str(output)),
                    extra_versions=("datasets",))

    def summary(out, report, seconds):
        return [done_line(out, "cuts"), f"took {seconds:.1f} s"]

    return run_stage(StagePlan(STAGE, Path(output), key, drive_import, summary, finalize,
                               validator=validate_manifest), resume=resume, overwrite=overwrite)


def _folder_digest(folder: Path) -> str:
    """Names, sizes and modification times of a dataset folder's Parquet files: changes when it
    is exported again."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.parquet")):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
