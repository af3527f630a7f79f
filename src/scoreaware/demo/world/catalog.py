"""Which works of music21's bundled corpus the world draws from, their labels and licenses, and the split.

music21's wheel carries 15,112 works; its metadata index (`CoreCorpus().metadataBundle`, read in
about 1.5 s) gives each work's path, number within its file, composer, part count and first time
signature without parsing the score. A work is identified by ``<source path>#<number>`` (the
number only for files that hold many tunes, as the ABC books do); the split is a hash of that id,
so it does not depend on the seed, the clip count or which collections are chosen: a work is in
the test split of every corpus or of none.

Licenses (music21's corpus README and `corpus/essenFolksong/license.txt`): Bach, Palestrina,
O'Neill (1850), Ryan (1883) and Aird (1782–1797) are public domain; the Essen Folksong
Collection is for non-commercial use only. The default world uses the public-domain collections
only, so everything the demo exports or publishes may be redistributed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

PUBLIC_DOMAIN = "public domain"
ESSEN_LICENSE = "non-commercial use only (Essen Folksong Collection, corpus/essenFolksong/license.txt)"


@dataclass(frozen=True)
class Collection:
    """A collection of the music21 corpus as the world uses it."""

    name: str
    prefix: str  # the corpus path it lives under
    style: str  # what a caption calls its music
    composer: str  # when the work's own metadata names none
    license: str
    max_parts: int = 6

    @property
    def public_domain(self) -> bool:
        return self.license == PUBLIC_DOMAIN


COLLECTIONS: dict[str, Collection] = {c.name: c for c in (
    Collection("bach", "bach/", "Baroque chorale", "Johann Sebastian Bach", PUBLIC_DOMAIN),
    Collection("palestrina", "palestrina/", "Renaissance mass movement", "Giovanni Pierluigi da Palestrina",
               PUBLIC_DOMAIN),
    Collection("oneill", "oneills1850/", "Irish fiddle tune", "traditional (O'Neill's Music of Ireland, 1850)",
               PUBLIC_DOMAIN),
    Collection("ryan", "ryansMammoth/", "American fiddle tune", "traditional (Ryan's Mammoth Collection, 1883)",
               PUBLIC_DOMAIN),
    Collection("aird", "airdsAirs/", "Scottish air", "traditional (Aird's Airs, 1782-1797)", PUBLIC_DOMAIN),
    Collection("essen", "essenFolksong/", "European folk song", "traditional (Essen Folksong Collection)",
               ESSEN_LICENSE),
)}
DEFAULT_COLLECTIONS = ("bach", "palestrina", "oneill", "ryan", "aird")  # public domain only
TEST_PERCENT = 20  # share of works held out for evaluation prompts and test renders


@dataclass(frozen=True)
class Work:
    """One work of the corpus, from the metadata index (nothing parsed yet)."""

    id: str  # "<source path>#<number>" or "<source path>"
    source: str  # corpus path, e.g. "oneills1850/0001-0050.abc"
    number: int | None  # tune number inside a many-tune file
    collection: str
    title: str
    composer: str
    meter: str  # the first time signature, e.g. "6/8"
    parts: int

    @property
    def split(self) -> str:
        return split_of(self.id)

    @property
    def license(self) -> str:
        return COLLECTIONS[self.collection].license


def split_of(work_id: str) -> str:
    """'test' for about TEST_PERCENT % of works, 'train' for the rest: a hash of the id only."""
    bucket = int.from_bytes(hashlib.sha256(work_id.encode()).digest()[:4], "big") % 100
    return "test" if bucket < TEST_PERCENT else "train"


def _collection_of(source: str) -> str | None:
    return next((c.name for c in COLLECTIONS.values() if source.startswith(c.prefix)), None)


CATALOG = Path(__file__).with_name("catalog.jsonl.gz")  # index_works() of music21 10.5, shipped (see below)


@functools.lru_cache(maxsize=1)
def _all_works() -> tuple[Work, ...]:
    """The shipped catalog: reading the fields of 15,112 index entries takes ~14 s, the file 0.05 s."""
    with gzip.open(CATALOG, "rt", encoding="utf-8") as f:
        return tuple(Work(**json.loads(line)) for line in f)


def index_works() -> list[Work]:
    """Every eligible work of every collection, from music21's metadata index (~15 s)."""
    from music21 import corpus

    works = []
    for entry in corpus.corpora.CoreCorpus().metadataBundle:
        source = str(entry.sourcePath)
        name = _collection_of(source)
        if name is None:
            continue
        meta = entry.metadata
        try:
            meter, parts, notes = meta.timeSignatureFirst, int(meta.numberOfParts or 0), int(meta.noteCount or 0)
        except (AttributeError, TypeError, ValueError):
            continue
        if not meter or not 1 <= parts <= COLLECTIONS[name].max_parts or notes < 24 or "/" not in str(meter):
            continue
        number = int(entry.number) if entry.number not in (None, "") else None
        ident = source + (f"#{number}" if number is not None else "")
        composer = meta.composer if meta.composer and meta.composer != "None" else COLLECTIONS[name].composer
        title = str(meta.title or meta.bestTitle or ident)
        works.append(Work(ident, source, number, name, title, str(composer), str(meter), parts))
    works.sort(key=lambda w: w.id)
    return works


def write_catalog(path: Path = CATALOG) -> int:
    """Write `index_works()` as gzipped JSON lines (mtime 0: the same bytes every time); the count."""
    found = index_works()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write("".join(json.dumps(asdict(w), sort_keys=True) + "\n" for w in found).encode())
    return len(found)


def works(collections: tuple[str, ...] = DEFAULT_COLLECTIONS, split: str | None = None) -> list[Work]:
    """The eligible works of `collections` (in id order), of one split or both.

    Eligible: a time signature in the index, 1–6 parts, at least 24 notes."""
    unknown = [c for c in collections if c not in COLLECTIONS]
    if unknown:
        raise ValueError(f"collection {unknown[0]!r} not implemented; choose from {', '.join(COLLECTIONS)}")
    return [w for w in _all_works() if w.collection in collections and (split is None or w.split == split)]
