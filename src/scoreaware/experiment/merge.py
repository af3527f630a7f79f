"""`scoreaware experiment merge`: the finished cells of other run folders of the same experiment,
moved into one.

A long design runs in parts on several processes or machines (`experiment run FILE -o PART
--seeds …` each); merging moves every finished arm × seed of each PART into OUT::

    PART/runs/<arm>/seed<k>/, PART/samples/<arm>/seed<k>/   →  OUT/runs/…, OUT/samples/… (moved)
    PART/status.json's entry                                →  OUT/status.json (then dropped from PART's)

Checkpoints in `status.json` are relative to the run folder, so a moved cell's entry holds in OUT.
Nothing moves unless every part was made from the same experiment file and manifests as OUT
(their `run.json` claims are equal) and no cell is finished in two places. A part's failed or
unfinished cells stay where they are. The order (a part's folders, then OUT's status, then the part's) lets
an interrupted merge be finished by the same command: a finished cell whose folders are already
gone from the part only has its status entry moved.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import atomic_write_text
from scoreaware.core.provenance import config_changes

CELL_FOLDERS = ("runs", "samples")  # where `experiment run` keeps an arm × seed's work


def read_run(folder: Path) -> tuple[dict, dict]:
    """(the run.json claim, status.json) of an `experiment run` output folder."""
    claim = folder / "run.json"
    if not claim.is_file():
        raise StageError(f"{folder}: not an `experiment run` output folder (no run.json)")
    status = folder / "status.json"
    return json.loads(claim.read_text()), json.loads(status.read_text()) if status.is_file() else {}


def cell_paths(folder: Path, cell: str) -> list[Path]:
    """The folders that hold `cell` ("<arm>/seed<k>") inside a run folder."""
    arm, seed = cell.rsplit("/", 1)
    return [folder / sub / arm / seed for sub in CELL_FOLDERS]


def is_done(status: dict, cell: str) -> bool:
    return status.get(cell, {}).get("state") == "done"


def merge_runs(output: Path, parts: list[Path], log=print) -> dict:
    """Move every finished cell of `parts` into `output` (see the module docstring); what moved,
    per part, and the cells left behind (failed or unfinished)."""
    claim, status = read_run(output)
    states = {part: read_run(part) for part in parts}
    finished = Counter(cell for _, part_status in states.values() for cell in part_status if is_done(part_status, cell))
    for part, (other, part_status) in states.items():  # every check before anything moves
        if part.resolve() == output.resolve():
            raise StageError(f"{part}: is the output folder itself")
        changes = config_changes(claim, other)
        if changes:
            raise StageError(f"{part} was made from another experiment than {output} ({'; '.join(changes[:4])}); "
                             "nothing was moved")
        for cell in part_status:
            # done in both, unless an interrupted merge already moved its folders
            if is_done(part_status, cell) and is_done(status, cell) and any(p.exists() for p in cell_paths(part, cell)):
                raise StageError(f"{cell} is finished in both {output} and {part}: keep one (remove the other's "
                                 f"runs/ and samples/ folders and its status.json entry); nothing was moved")
    twice = sorted(cell for cell, count in finished.items() if count > 1)
    if twice:
        raise StageError(f"{twice[0]} is finished in more than one part; nothing was moved")
    report = {"moved": {}, "left": {}}
    for part, (_, part_status) in states.items():
        moved = sorted(cell for cell in part_status if is_done(part_status, cell))
        left = sorted(cell for cell in part_status if not is_done(part_status, cell))
        for cell in moved:  # a folder already gone was moved by an interrupted merge
            for source, target in zip(cell_paths(part, cell), cell_paths(output, cell)):
                if source.exists():
                    if target.exists():  # OUT's own unfinished attempt at this cell, superseded
                        shutil.rmtree(target)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(source), str(target))
            status[cell] = part_status[cell]
        atomic_write_text(output / "status.json", json.dumps(status, indent=1) + "\n")
        atomic_write_text(part / "status.json", json.dumps({c: part_status[c] for c in left}, indent=1) + "\n")
        report["moved"][str(part)], report["left"][str(part)] = moved, left
        log(f"  {part}: {len(moved)} finished cells moved into {output}"
            + (f"; {len(left)} not finished, left there ({', '.join(left[:4])})" if left else ""))
    return report
