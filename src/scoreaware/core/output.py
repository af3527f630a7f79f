"""Stage outputs: atomic, resumable manifest writing with quarantine and a provenance sidecar.

For an output ``OUT = dir/name.jsonl.gz`` a stage produces::

    dir/name.jsonl.gz              the cuts; appears only once the stage has completed
    dir/name.quarantine.jsonl.gz   inputs the stage rejected, each with a reason
    dir/name.<stream>.jsonl.gz     any extra stream (ingest: recordings, supervisions)
    dir/name.provenance.json       command, options, versions, input hashes, counts, time

While it runs, everything goes to ``dir/.name.partial/<stream>.jsonl``: plain JSONL, one
flushed line per item, written through Lhotse's ``SequentialJsonlWriter``. A killed run leaves
at most one torn last line, which ``--resume`` cuts off before Lhotse re-reads the ids it
already holds; the stage then skips those ids, so the resumed output equals an uninterrupted
one. Completion validates the cuts against the stage's pandera schema, gzips every stream to a
temporary name and renames it into place (``os.replace`` is atomic on one filesystem).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lhotse.serialization import SequentialJsonlWriter

from scoreaware.core.errors import StageError
from scoreaware.core.files import Pathlike, atomic_write_text, count_lines, repair_jsonl_tail
from scoreaware.core.manifests import portable
from scoreaware.core.provenance import (
    _json_normal,
    config_changes,
    library_versions,
    lineage_after,
    lineage_of,
    manifest_base,
    provenance_path,
    read_provenance,
)
from scoreaware.core.redact import redact


class Validator(Protocol):
    """``validate_manifest(path, stage=..., lineage=...) -> report`` with ``.ok`` and ``.format()``."""

    def __call__(self, path: Path, *, stage: str | None, lineage: list[str] | None) -> Any: ...


MAIN = "cuts"
QUARANTINE = "quarantine"
_CRASH_ENV = "SCOREAWARE_CRASH_AFTER_WRITES"  # fault injection for the resume tests
_CRASH_FINALIZE_ENV = "SCOREAWARE_CRASH_AFTER_RENAME"  # ... and for a kill between the renames of finalize


@dataclass(frozen=True)
class Rejection:
    """One input a stage refused, with a machine-readable reason and a human-readable detail."""

    id: str
    stage: str
    reason: str
    detail: str
    source: str | None = None
    item: dict | None = None  # the cut (or recording) as a dict, when one exists

    def to_dict(self) -> dict:
        return asdict(self)


def sibling(path: Pathlike, stream: str) -> Path:
    """The final file of `stream` next to the main manifest `path` (same compression)."""
    if stream == MAIN:
        return Path(path)
    base = manifest_base(path)
    suffix = ".jsonl.gz" if str(path).endswith(".gz") else ".jsonl"
    return base.with_name(f"{base.name}.{stream}{suffix}")


@dataclass
class StageSummary:
    """Counts a stage reports at the end and stores in its sidecar.

    During a run `kept` and `rejected` count this run's writes; `StageOutput.finalize` replaces
    them by the counts of the whole output (earlier, interrupted runs included).
    """

    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped_done: int = 0
    hours: float = 0.0
    tallies: dict[str, int] = field(default_factory=dict)
    this_run: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict:
        return {
            "kept": self.kept,
            "quarantined": self.quarantined,
            "rejected_by_reason": dict(self.rejected),
            "hours": round(self.hours, 6),
            **self.tallies,
            "this_run": self.this_run,
            **self.extra,
        }


class StageOutput:
    """The outputs of one stage run; use as a context manager, then call :meth:`finalize`.

    :param path: the main manifest, ``*.jsonl.gz`` (or ``*.jsonl``).
    :param stage: stage name; with the input's lineage it selects the pandera schema that
        validates the cuts.
    :param resume: continue the partial output an interrupted run left behind.
    :param overwrite: discard any previous output, complete or partial.
    :param streams: extra item streams besides cuts and quarantine.
    :param counted_streams: extra streams whose items count as done on --resume, mapped to
        the custom field that holds each item's reason (filter's rejected cuts: filter_rule).
    :param schema_stage: an explicit schema for the cuts; default: the lineage's schema.
    :param config: the options that decide what the stage writes. Recorded when the run
        starts; `--resume` with other options, or a rerun of a finished stage with other
        options, is refused (naming what differs) unless `overwrite`.
    :param input_manifest: the manifest the stage reads (its lineage is continued).
    :param stream_paths: final paths of extra streams that do not sit next to `path`.
    :param validator: checks the written cuts before they are moved into place (the schemas
        layer's ``validate_manifest``; core sits below the schemas and does not import them).
        Required unless ``finalize(validate=False)``.
    """

    def __init__(
        self,
        path: Pathlike,
        *,
        stage: str,
        resume: bool = False,
        overwrite: bool = False,
        streams: Iterable[str] = (),
        counted_streams: Mapping[str, str] | Iterable[str] = (),
        schema_stage: str | None = None,
        config: Mapping[str, Any] | None = None,
        input_manifest: Pathlike | None = None,
        stream_paths: Mapping[str, Pathlike] | None = None,
        validator: Validator | None = None,
    ) -> None:
        self.path = Path(path)
        self.root = self.path.parent.resolve()
        self.stage = stage
        self.schema_stage = schema_stage
        self.counted_streams = dict(counted_streams) if isinstance(counted_streams, Mapping) else {
            s: "reason" for s in counted_streams}
        self.base = manifest_base(self.path)
        self.partial_dir = self.base.with_name(f".{self.base.name}.partial")
        self.streams = list(dict.fromkeys([MAIN, QUARANTINE, *streams, *self.counted_streams]))
        self.stream_paths = {k: Path(v) for k, v in (stream_paths or {}).items()}
        self.resume = resume
        self.overwrite = overwrite
        self.config = _json_normal(dict(config or {}))
        self.validator = validator
        self.input_manifest = input_manifest
        self.lineage = lineage_after(lineage_of(input_manifest), stage)
        self.summary = StageSummary()
        self.resumed_items = 0
        self._writers: dict[str, SequentialJsonlWriter] = {}
        self._done: set[str] = set()
        self._writes = 0
        self._crash_after = int(os.environ.get(_CRASH_ENV, "0") or 0)
        self._started = _dt.datetime.now(_dt.UTC)

    # ------------------------------------------------------------------ state
    @property
    def complete(self) -> bool:
        """True when a finished output from an earlier run is in place."""
        return self.path.is_file()

    @property
    def has_partial(self) -> bool:
        return self.partial_dir.is_dir()

    @property
    def _run_file(self) -> Path:
        return self.partial_dir / "run.json"

    def check(self) -> str:
        """Decide what this run does: 'skip' (already complete), 'resume' or 'fresh'.

        :raises StageError: a partial output without --resume, or options that differ from
            the ones the existing (complete or partial) output was made with.
        """
        if self.overwrite:
            return "fresh"
        if self.complete:
            sidecar = read_provenance(self.path) or {}
            if "config" in sidecar and self.config and config_changes(sidecar["config"], self.config):
                raise StageError(f"{self.path} is complete but was made with other options ("
                                 + "; ".join(config_changes(sidecar["config"], self.config))
                                 + "); pass --overwrite to redo it with the new ones")
            return "skip"
        if self.has_partial:
            if not self.resume:
                raise StageError(
                    f"an interrupted run left {self.partial_dir}; pass --resume to continue it "
                    "or --overwrite to start over"
                )
            if self._run_file.is_file():
                before = json.loads(self._run_file.read_text()).get("config", {})
                changes = config_changes(before, self.config)
                if changes:
                    raise StageError("--resume would mix two configurations in one output; the interrupted run "
                                     "used other options (" + "; ".join(changes) + "). Run it again with the same "
                                     "options, or pass --overwrite to start over with the new ones")
            return "resume"
        return "fresh"

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> StageOutput:
        mode = self.check()
        if mode == "skip":
            raise StageError(f"{self.path} is already complete; pass --overwrite to redo it")
        if mode == "fresh" and self.has_partial:
            shutil.rmtree(self.partial_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(exist_ok=True)
        if mode == "fresh" or not self._run_file.is_file():
            atomic_write_text(self._run_file, json.dumps({"stage": self.stage, "config": self.config}, indent=1))
        for stream in self.streams:
            part = self.partial_dir / f"{stream}.jsonl"
            if part.exists():
                repair_jsonl_tail(part)
            writer = SequentialJsonlWriter(part, overwrite=False)
            writer._maybe_open()
            self._writers[stream] = writer
        # Items already written (kept or quarantined) are done; so are the ones this run writes.
        self._done = set().union(*(self._writers[s].ignore_ids for s in (MAIN, QUARANTINE, *self.counted_streams)))
        self.resumed_items = len(self._done)
        return self

    def __exit__(self, *exc) -> None:
        for writer in self._writers.values():
            writer.close()

    # ----------------------------------------------------------------- writes
    @property
    def done_ids(self) -> set[str]:
        """Ids already written (kept, quarantined or counted) by this or an earlier run."""
        return self._done

    def is_done(self, item_id: str) -> bool:
        """True when `item_id` was written (kept or quarantined) by this or an earlier run."""
        return item_id in self._done

    def _put(self, stream: str, item: Any) -> None:
        """Write one item with its file paths relative to the output's folder (portable)."""

        self._writers[stream].write(portable(item, self.root), flush=True)

    def write(self, cut: Any) -> None:
        """Append a kept cut (skipped when its id is already done)."""
        if cut.id in self._done:
            return
        self._put(MAIN, cut)
        self._done.add(cut.id)
        self.summary.kept += 1
        self._tick()

    def reject(self, rejection: Rejection) -> None:
        """Append a rejection to the quarantine (skipped when its id is already done)."""
        if rejection.id in self._done:
            return
        self._put(QUARANTINE, rejection.to_dict())
        self._done.add(rejection.id)
        self.summary.rejected[rejection.reason] += 1
        self._tick()

    def write_to(self, stream: str, item: Any, reason: str | None = None) -> None:
        """Append an item to an extra stream (deduplicated by id within the stream).

        For a counted stream, `reason` is tallied in the summary like a rejection.
        """
        writer = self._writers[stream]
        if item.id in writer.ignore_ids or (stream in self.counted_streams and item.id in self._done):
            return
        self._put(stream, item)
        writer.ignore_ids.add(item.id)
        if stream in self.counted_streams:
            self._done.add(item.id)
            self.summary.rejected[reason or stream] += 1
            self._tick()

    def _tick(self) -> None:
        self._writes += 1
        if self._crash_after and self._writes >= self._crash_after:
            os.kill(os.getpid(), 9)  # simulate a hard kill mid-stage (tests only)

    # -------------------------------------------------------------- finishing
    def final_path(self, stream: str) -> Path:
        return self.stream_paths.get(stream) or sibling(self.path, stream)

    def _recount(self, tallies: Mapping[str, Any]) -> None:
        """Counts of the whole output, read back from the partial files (all runs)."""
        this_run = {"kept": self.summary.kept, "quarantined": self.summary.quarantined,
                    "resumed_from_items": self.resumed_items}
        kept, hours, counts = 0, 0.0, Counter()
        for line in _jsonl_lines(self.partial_dir / f"{MAIN}.jsonl"):
            data = json.loads(line)
            kept += 1
            hours += float(data.get("duration") or 0.0) / 3600
            for name, test in tallies.items():
                counts[name] += bool(test(data))
        rejected = Counter()
        for line in _jsonl_lines(self.partial_dir / f"{QUARANTINE}.jsonl"):
            rejected[json.loads(line).get("reason", "?")] += 1
        for stream, field_name in self.counted_streams.items():
            for line in _jsonl_lines(self.partial_dir / f"{stream}.jsonl"):
                data = json.loads(line)
                rejected[data.get(field_name) or (data.get("custom") or {}).get(field_name) or stream] += 1
        self.summary.kept, self.summary.rejected, self.summary.hours = kept, rejected, hours
        self.summary.tallies = {name: counts[name] for name in tallies}
        self.summary.this_run = this_run

    def finalize(
        self,
        *,
        options: Mapping[str, Any] | None = None,
        inputs: Iterable[dict] = (),
        validate: bool = True,
        extra_versions: Iterable[str] = (),
        tallies: Mapping[str, Any] | None = None,
    ) -> dict:
        """Validate, compress and move every stream into place, then write the sidecar.

        Every companion (quarantine, extra streams, sidecar) is in place before the main
        manifest appears, and the main manifest appears last, atomically: a kill at any point
        leaves either the partial output (which ``--resume`` finalizes again) or everything.
        Counts in the sidecar cover the whole output, earlier interrupted runs included.

        :param options: what the sidecar records besides `config` (workers, device, paths).
        :param tallies: name -> predicate over a written cut's dict; counted over the whole output.
        :raises StageError: when the written cuts fail the stage's schema (the partial output
            stays in place, so nothing is lost).
        """
        for writer in self._writers.values():
            writer.close()
        main_part = self.partial_dir / f"{MAIN}.jsonl"
        if validate:
            # finalize validates unless told not to: an output with no validator is a caller's bug,
            # never a silently unchecked manifest
            assert self.validator is not None, f"{self.stage}: needs validator= (or finalize(validate=False))"
            report = self.validator(main_part, stage=self.schema_stage,
                                       lineage=None if self.schema_stage else self.lineage)
            if not report.ok:
                raise StageError(
                    f"the {self.stage} output failed its schema; it stays in {self.partial_dir}\n"
                    + report.format()
                )
        self._recount(tallies or {})
        outputs = {}
        for stream in [*self.streams[1:], MAIN]:  # the main manifest last: its presence means "complete"
            part = self.partial_dir / f"{stream}.jsonl"
            final = self.final_path(stream)
            if stream == MAIN:
                atomic_write_text(provenance_path(self.path), json.dumps(
                    self._provenance(options, inputs, extra_versions, outputs), indent=2, default=str) + "\n")
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp")
            if str(final).endswith(".gz"):
                with open(part, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                shutil.copyfile(part, tmp)
            outputs[stream] = {"path": str(final), "items": count_lines(part)}
            os.replace(tmp, final)
            if os.environ.get(_CRASH_FINALIZE_ENV) == stream:
                os.kill(os.getpid(), 9)  # simulate a kill right after this rename (tests only)
        shutil.rmtree(self.partial_dir)
        return read_provenance(self.path)

    def _provenance(self, options, inputs, extra_versions, outputs) -> dict:
        main = self.partial_dir / f"{MAIN}.jsonl"
        outputs = {MAIN: {"path": str(self.path), "items": count_lines(main)}, **outputs}
        described = []
        for item in inputs:
            item = dict(item)
            if "path" in item and Path(item["path"]).exists():  # also findable after the folder moves
                item["relpath"] = os.path.relpath(Path(item["path"]).resolve(), self.root)
            described.append(item)
        return {
            "stage": self.stage,
            "lineage": self.lineage,
            "command": redact(" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])),  # no secret in a sidecar
            "config": self.config,
            "options": {**self.config, **dict(options or {})},
            "inputs": described,
            "outputs": outputs,
            "summary": self.summary.to_dict(),
            "versions": library_versions(*extra_versions),
            "started_at": self._started.isoformat(timespec="seconds"),
            "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }




def _jsonl_lines(path: Path) -> Iterable[str]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line
