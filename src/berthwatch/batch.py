"""Batch runs over a folder of tiles: group by place, order by date, compare pairs, in parallel.

:func:`plan` finds rasters below a folder, reads each one's metadata (:func:`berthwatch.io.scene_info`), groups
tiles of the same place by footprint overlap in lon/lat (whatever their CRS), orders each place by date and
chooses the pairs to compare. :func:`run` compares those pairs with :func:`berthwatch.pipeline.compare_files` on
a dask.distributed cluster — a local one (one process per core) by default, or an existing scheduler — and
writes, next to one compare folder per pair, ``timeseries.csv``, ``timeseries.png``, ``batch.json`` and
``index.html``.

A tile that cannot be read or dated, and a pair that fails, is recorded with its file, stage and reason; the
batch carries on. Every pair folder is written atomically by the pipeline, so a folder named like a pair holds a
complete result: running the same batch again skips pairs whose ``summary.json`` exists and does only the rest.
``batch.json`` is rewritten (atomically) after every pair, so a run killed half-way loses nothing finished.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import glob
import html
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import numpy as np
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from shapely.geometry import Polygon

from berthwatch.config import Settings
from berthwatch.errors import BerthwatchError, InputError, MissingDateError, SchedulerError
from berthwatch.models import KINDS

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
Mode = Literal["consecutive", "first", "reference"]
Outcome = Literal["ok", "failed", "skipped"]

MODES: tuple[str, ...] = ("consecutive", "first", "reference")
#: File name endings read as rasters (case-insensitive).
RASTER_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".jp2", ".vrt")
#: Folders holding one of these files are berthwatch outputs and are never searched for input tiles.
OUTPUT_MARKERS: tuple[str, ...] = ("summary.json", "batch.json")
#: Default share of the smaller footprint two tiles must overlap to count as the same place.
MIN_OVERLAP: float = 0.3

BATCH_JSON = "batch.json"
TIMESERIES_CSV = "timeseries.csv"
TIMESERIES_PNG = "timeseries.png"
INDEX_HTML = "index.html"
TIMESERIES_COLUMNS: tuple[str, ...] = (
    "place",
    "date",
    "kind",
    "present",
    "departed",
    "arrived",
    "before_date",
    "unknown",
    "pair",
)


# ---------------------------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tile:
    """One readable, dated raster of the batch.

    ``date_override`` is the date given in a ``dates`` mapping (passed on to the pipeline); None when the date
    was found in the file itself (``date_source`` says where).
    """

    path: Path
    date: dt.date
    date_source: str
    footprint: Polygon
    crs: str
    pixel_size_m: float
    valid_fraction: float
    acquired: dt.datetime | None = None
    date_override: dt.date | None = None

    @property
    def covered_area(self) -> float:
        """Footprint area (square degrees) times the valid fraction: how much usable ground the tile shows."""
        return float(self.footprint.area) * self.valid_fraction

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        return {
            "path": _rel(self.path, root),
            "date": self.date.isoformat(),
            "date_source": self.date_source,
            "crs": self.crs,
            "pixel_size_m": round(self.pixel_size_m, 4),
            "valid_fraction": round(self.valid_fraction, 4),
        }


@dataclass(frozen=True)
class Place:
    """Tiles of one place (footprints overlapping), one per date, ordered by date."""

    name: str
    tiles: tuple[Tile, ...]

    @property
    def dates(self) -> tuple[dt.date, ...]:
        return tuple(t.date for t in self.tiles)

    @property
    def footprint(self) -> Polygon:
        """Union of the tiles' lon/lat footprints."""
        geom: Polygon = shapely.union_all([t.footprint for t in self.tiles])
        return geom

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        c = self.footprint.centroid
        return {
            "name": self.name,
            "centroid_lon": round(float(c.x), 6),
            "centroid_lat": round(float(c.y), 6),
            "bounds_lonlat": [round(float(v), 6) for v in self.footprint.bounds],
            "dates": [d.isoformat() for d in self.dates],
            "tiles": [t.to_dict(root) for t in self.tiles],
        }


@dataclass(frozen=True)
class Pair:
    """Two tiles of one place to compare; ``name`` is the pair's output folder name."""

    place: str
    before: Tile
    after: Tile

    @property
    def name(self) -> str:
        return f"{self.place}_{self.before.date.isoformat()}_{self.after.date.isoformat()}"

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "place": self.place,
            "before": {"path": _rel(self.before.path, root), "date": self.before.date.isoformat()},
            "after": {"path": _rel(self.after.path, root), "date": self.after.date.isoformat()},
        }


@dataclass(frozen=True)
class Failure:
    """Something the batch could not do: a tile it could not read or date, or a pair that failed.

    ``stage`` is where it failed (``"read"``, ``"date"``, ``"align"``, ``"detect"``, ``"write"``, ``"compare"``,
    ``"worker"``); ``error`` the exception class name; ``reason`` the message (naming file and values).
    """

    path: str
    stage: str
    reason: str
    error: str
    pair: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "stage": self.stage, "reason": self.reason, "error": self.error, "pair": self.pair}


@dataclass(frozen=True)
class Skip:
    """A file or place left out on purpose (not a failure): UDM2 masks, duplicate dates, no reference date."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class BatchPlan:
    """What a batch will do: places with their dated tiles, the pairs to compare, and what was left out."""

    folder: Path
    mode: str
    reference: dt.date | None
    places: tuple[Place, ...]
    pairs: tuple[Pair, ...]
    failures: tuple[Failure, ...] = ()
    skipped: tuple[Skip, ...] = ()
    min_overlap: float = MIN_OVERLAP

    def place(self, name: str) -> Place:
        for p in self.places:
            if p.name == name:
                return p
        raise KeyError(f"no place named {name!r} (places: {', '.join(p.name for p in self.places)})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "mode": self.mode,
            "reference": self.reference.isoformat() if self.reference else None,
            "min_overlap": self.min_overlap,
            "places": [p.to_dict(self.folder) for p in self.places],
            "pairs": [p.to_dict(self.folder) for p in self.pairs],
            "tile_failures": [f.to_dict() for f in self.failures],
            "skipped_files": [s.to_dict() for s in self.skipped],
        }


def _rel(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _is_udm(name: str) -> bool:
    low = name.lower()
    return "udm2" in low or "_udm" in low


def _excluded(path: Path, root: Path, exclude: Sequence[str | Path], excluded_paths: Sequence[Path]) -> bool:
    rp = path.resolve()
    for ex in excluded_paths:
        if rp == ex or ex in rp.parents:
            return True
    rel = path.relative_to(root).as_posix().lower()
    name = path.name.lower()
    for pat in exclude:
        if isinstance(pat, str) and (fnmatch.fnmatch(rel, pat.lower()) or fnmatch.fnmatch(name, pat.lower())):
            return True
    return False


def find_rasters(folder: str | Path, *, exclude: Sequence[str | Path] = ()) -> tuple[list[Path], list[Skip]]:
    """Rasters below ``folder`` (recursive, sorted), and the raster-named files left out with the reason.

    Reads ``*.tif``, ``*.tiff``, ``*.jp2``, ``*.vrt`` in any case. Leaves out Planet UDM2 masks (``*udm2*``,
    ``*_udm*``; the reader applies them to their image), hidden folders (which include unfinished outputs),
    berthwatch output folders (holding ``summary.json`` or ``batch.json``) and whatever ``exclude`` names:
    paths (files or folders) or glob patterns matched against the path relative to ``folder`` and the file name.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    excluded_paths = [Path(e).resolve() for e in exclude if isinstance(e, Path) or Path(e).exists()]
    patterns = [e for e in exclude if isinstance(e, str)]
    found: list[Path] = []
    skipped: list[Skip] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if d.startswith("."):
                continue
            if any((sub / m).exists() for m in OUTPUT_MARKERS):
                log.debug("not searching berthwatch output folder %s", sub)
                continue
            if _excluded(sub, root, patterns, excluded_paths):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not name.lower().endswith(RASTER_SUFFIXES) or name.startswith("."):
                continue
            path = here / name
            if _excluded(path, root, patterns, excluded_paths):
                continue
            if _is_udm(name):
                skipped.append(Skip(_rel(path, root), "UDM2 usable-data mask (applied to its image, not a scene)"))
                continue
            found.append(path)
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return found, skipped


def _stage_of(exc: BaseException) -> str:
    """Pipeline stage a failure belongs to, from the exception class (or its ``stage`` attribute)."""
    stage = getattr(exc, "stage", None)
    if isinstance(stage, str) and stage:
        return stage
    from berthwatch import errors as e

    if isinstance(exc, e.MissingDateError):
        return "date"
    if isinstance(exc, e.NotARasterError | e.MissingCRSError | e.UnsupportedTransformError | e.UnsupportedBandsError):
        return "read"
    if isinstance(exc, e.NoValidDataError | e.SidecarError):
        return "read"
    if isinstance(exc, e.NoOverlapError | e.AlignmentError):
        return "align"
    if isinstance(exc, e.OutputError):
        return "write"
    if isinstance(exc, e.VectorInputError):
        return "aoi"
    return "compare"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _lookup_date(dates: Mapping[str, dt.date], path: Path, root: Path) -> dt.date | None:
    for key in (path.relative_to(root).as_posix(), path.name, path.stem, str(path), str(path.resolve())):
        if key in dates:
            return dates[key]
    return None


def _normalise_dates(dates: Mapping[str, dt.date | str] | Mapping[Path, dt.date | str] | None) -> dict[str, dt.date]:
    out: dict[str, dt.date] = {}
    for k, v in (dates or {}).items():
        d = v if isinstance(v, dt.date) else _parse_date(str(v), what=f"date for {k}")
        key = Path(k).as_posix() if isinstance(k, Path) else str(k).replace("\\", "/")
        out[key] = d
    return out


def _parse_date(text: str, *, what: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(f"{what} must be YYYY-MM-DD, got {text!r}") from exc


def read_dates_csv(path: str | Path) -> dict[str, dt.date]:
    """Read a ``path,date`` CSV (header required; ``path`` relative to the batch folder or a file name)."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"cannot read dates file ({exc.strerror})", path=p) from exc
    out: dict[str, dt.date] = {}
    for i, row in enumerate(rows, start=2):
        if not row.get("path") or not row.get("date"):
            raise InputError(f"line {i}: needs columns 'path' and 'date'", path=p)
        out[row["path"].strip().replace("\\", "/")] = _parse_date(row["date"], what=f"line {i} date")
    return out


def _read_tiles(
    files: Sequence[Path], root: Path, dates: Mapping[str, dt.date], progress: Progress | None
) -> tuple[list[Tile], list[Failure]]:
    from berthwatch.io import scene_info

    tiles: list[Tile] = []
    failures: list[Failure] = []
    for i, path in enumerate(files):
        override = _lookup_date(dates, path, root)
        try:
            info = scene_info(path, date=override)
        except Exception as exc:  # one bad tile must not stop the batch: record it and go on
            if not isinstance(exc, BerthwatchError):
                log.debug("unexpected error reading %s", path, exc_info=True)
            stage = "date" if isinstance(exc, MissingDateError) else _stage_of(exc)
            if stage == "compare":
                stage = "read"
            failures.append(Failure(_rel(path, root), stage, _one_line(exc), type(exc).__name__))
            log.info("left out %s: %s", path, exc)
        else:
            fp = info.footprint
            if not fp.is_valid or fp.area <= 0:
                failures.append(Failure(_rel(path, root), "read", "footprint is empty or invalid", "InputError"))
            else:
                epsg = info.crs.to_epsg()
                tiles.append(
                    Tile(
                        path=path,
                        date=info.date,
                        date_source=info.date_source,
                        footprint=fp,
                        crs=f"EPSG:{epsg}" if epsg else info.crs_name,
                        pixel_size_m=float(info.pixel_size_m),
                        valid_fraction=float(info.valid_fraction),
                        acquired=info.acquired,
                        date_override=override,
                    )
                )
        if progress:
            progress(f"read {path.name}", (i + 1) / max(1, len(files)))
    return tiles, failures


def group_tiles(tiles: Sequence[Tile], *, min_overlap: float = MIN_OVERLAP) -> list[list[int]]:
    """Indices of tiles grouped by place: connected components of the "same place" graph.

    Two tiles are the same place when their lon/lat footprints overlap by at least ``min_overlap`` of the
    smaller footprint's area (an area ratio, so the degrees' distortion cancels out). Candidate pairs come
    from a shapely STRtree. Groups are ordered by their first tile's index; indices ascend within a group.
    """
    if not tiles:
        return []
    geoms = np.array([t.footprint for t in tiles], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left):
        inter = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
        same = inter >= min_overlap * smaller
        left, right = left[same], right[same]
    n = len(tiles)
    graph = coo_array((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


_SLUG = re.compile(r"[^A-Za-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-").lower()


def _place_names(groups: Sequence[Sequence[Tile]], root: Path) -> list[str]:
    """Names for places: the tiles' common sub-folder when they share one of their own, else ``place01``, ..."""
    folders: list[str | None] = []
    for tiles in groups:
        parents = {t.path.parent.relative_to(root).as_posix() for t in tiles}
        folder = parents.pop() if len(parents) == 1 else None
        folders.append(_slug(Path(folder).name) if folder and folder != "." else None)
    width = max(2, len(str(len(groups))))
    names: list[str] = []
    numbered = 0
    for folder in folders:
        if folder and folders.count(folder) == 1 and not re.fullmatch(r"place\d+", folder):
            names.append(folder)
        else:
            numbered += 1
            names.append(f"place{numbered:0{width}d}")
    return names


def _pairs_for(place: Place, mode: str, reference: dt.date | None) -> tuple[list[Pair], Skip | None]:
    tiles = place.tiles
    if len(tiles) < 2:
        return [], None
    if mode == "consecutive":
        return [Pair(place.name, a, b) for a, b in itertools.pairwise(tiles)], None
    if mode == "first":
        return [Pair(place.name, tiles[0], t) for t in tiles[1:]], None
    assert reference is not None
    ref = [t for t in tiles if t.date == reference]
    if not ref:
        dates = ", ".join(d.isoformat() for d in place.dates)
        return [], Skip(place.name, f"place has no tile dated {reference.isoformat()} (dates: {dates})")
    return [
        Pair(place.name, ref[0], t) if t.date > reference else Pair(place.name, t, ref[0])
        for t in tiles
        if t is not ref[0]
    ], None


def plan(
    folder: str | Path,
    *,
    mode: Mode | str = "consecutive",
    reference: dt.date | str | None = None,
    exclude: Sequence[str | Path] = (),
    dates: Mapping[str, dt.date | str] | Mapping[Path, dt.date | str] | None = None,
    min_overlap: float = MIN_OVERLAP,
    progress: Progress | None = None,
) -> BatchPlan:
    """Find the rasters below ``folder``, group them by place, order them by date and choose pairs to compare.

    Parameters
    ----------
    folder
        Folder searched recursively (see :func:`find_rasters` for what is read and what is left out).
    mode
        ``"consecutive"``: each date against the previous one of the same place; ``"first"``: every date
        against the place's first date; ``"reference"``: every date against ``reference`` (the earlier of the
        two is always BEFORE).
    reference
        The reference date (``YYYY-MM-DD`` or a date) for ``mode="reference"``; giving it implies that mode.
        A place with no tile on that date is skipped (listed in ``skipped``).
    exclude
        Paths (files or folders, e.g. the output folder) or glob patterns to leave out.
    dates
        Date overrides by file (relative path, file name or stem -> date), for files without a readable date.
    min_overlap
        Two tiles are one place when their footprints overlap by at least this share of the smaller one.
    progress
        Optional callback ``(message, fraction)`` while reading tile metadata.

    Returns
    -------
    BatchPlan
        Places (named after their common sub-folder, else ``place01``, ``place02``, ... in order of their first
        file), pairs, and ``failures`` for tiles that could not be read or dated. When two tiles of a place
        share a date, the one showing more valid ground is used and the other is listed in ``skipped``.

    Raises
    ------
    InputError
        ``folder`` is not a folder, holds no raster, or the mode/reference is invalid.
    """
    root = Path(folder)
    if reference is not None and not isinstance(reference, dt.date):
        reference = _parse_date(str(reference), what="reference")
    if reference is not None and mode == "consecutive":
        mode = "reference"
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "reference" and reference is None:
        raise InputError("mode 'reference' needs a reference date")
    if mode != "reference" and reference is not None:
        raise InputError(f"a reference date is only used with mode 'reference', not {mode!r}")
    if not 0.0 < min_overlap <= 1.0:
        raise InputError(f"min_overlap must be in (0, 1], got {min_overlap}")
    files, skipped = find_rasters(root, exclude=exclude)
    if not files:
        raise InputError(f"no rasters ({', '.join('*' + s for s in RASTER_SUFFIXES)}) found", path=root)
    tiles, failures = _read_tiles(files, root, _normalise_dates(dates), progress)
    groups = [[tiles[i] for i in g] for g in group_tiles(tiles, min_overlap=min_overlap)]
    names = _place_names(groups, root)
    places: list[Place] = []
    pairs: list[Pair] = []
    for name, group in zip(names, groups, strict=True):
        by_date: dict[dt.date, list[Tile]] = {}
        for t in group:
            by_date.setdefault(t.date, []).append(t)
        chosen: list[Tile] = []
        for d in sorted(by_date):
            cands = sorted(by_date[d], key=lambda t: (-t.covered_area, t.pixel_size_m, t.path.as_posix()))
            chosen.append(cands[0])
            for other in cands[1:]:
                reason = (
                    f"same place ({name}) and date ({d.isoformat()}) as {_rel(cands[0].path, root)}, "
                    "which shows more valid ground"
                )
                skipped.append(Skip(_rel(other.path, root), reason))
        place = Place(name, tuple(chosen))
        places.append(place)
        place_pairs, skip = _pairs_for(place, mode, reference)
        pairs.extend(place_pairs)
        if skip is not None:
            skipped.append(skip)
    log.info(
        "planned %d pairs over %d places from %d tiles (%d unreadable)",
        len(pairs),
        len(places),
        len(tiles),
        len(failures),
    )
    return BatchPlan(
        folder=root,
        mode=str(mode),
        reference=reference,
        places=tuple(places),
        pairs=tuple(pairs),
        failures=tuple(failures),
        skipped=tuple(skipped),
        min_overlap=min_overlap,
    )


# ---------------------------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class PairOutcome:
    """What became of one pair: ``ok`` (compared now), ``skipped`` (complete from an earlier run) or ``failed``.

    ``seconds`` is the compare's wall time in its worker, ``cpu_seconds`` the CPU time that worker process spent
    on it (much less than ``seconds`` when the machine is busy with other work).
    """

    pair: Pair
    status: Outcome
    out_dir: Path
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    failure: Failure | None = None
    worker: str = ""

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        d = self.pair.to_dict(root)
        d.update(
            {
                "status": self.status,
                "out": self.pair.name + "/",
                "seconds": round(self.seconds, 3),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "counts": self.counts,
                "timings": self.timings,
                "worker": self.worker,
            }
        )
        if self.failure is not None:
            d.update({"stage": self.failure.stage, "reason": self.failure.reason, "error": self.failure.error})
        return d


@dataclass
class BatchResult:
    """What a batch run did: one outcome per planned pair, every failure, and the files written."""

    plan: BatchPlan
    out_dir: Path
    outcomes: list[PairOutcome]
    timeseries: list[dict[str, Any]]
    files: list[Path]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[Failure]:
        """Tiles that could not be read or dated, then pairs that failed."""
        return [*self.plan.failures, *(o.failure for o in self.outcomes if o.failure is not None)]

    @property
    def ok(self) -> bool:
        """True when no tile and no pair failed."""
        return not self.failures

    def count(self, status: Outcome) -> int:
        return sum(o.status == status for o in self.outcomes)


def _compare_pair(
    before: str,
    after: str,
    out: str,
    before_date: dt.date | None,
    after_date: dt.date | None,
    settings: Settings | None,
    aoi: Any,
) -> dict[str, Any]:
    """Worker task: compare one pair into ``out``; never raises (a failure is returned as data)."""
    import socket

    from berthwatch.pipeline import compare_files

    t0, c0 = time.perf_counter(), time.process_time()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        res = compare_files(
            before, after, out, before_date=before_date, after_date=after_date, settings=settings, aoi=aoi
        )
    except Exception as exc:  # the batch records every failure and carries on
        path = getattr(exc, "path", None)
        return {
            "status": "failed",
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "stage": _stage_of(exc),
            "reason": _one_line(exc),
            "error": type(exc).__name__,
            "path": path or f"{before} -> {after}",
            "worker": worker,
        }
    summary = res.summary or {}
    return {
        "status": "ok",
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "counts": _clean_counts(summary.get("counts")),
        "timings": summary.get("timings") or dict(res.timings),
        "worker": worker,
    }


def _clean_counts(raw: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if isinstance(raw, dict):
        for kind, statuses in raw.items():
            if isinstance(statuses, dict):
                out[str(kind)] = {str(s): int(n) for s, n in statuses.items() if isinstance(n, int | float)}
    return out


def _complete_summary(pair_dir: Path) -> dict[str, Any] | None:
    """The pair's summary when its folder holds a complete earlier result, else None."""
    path = pair_dir / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def _atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix + ".tmp", dir=p.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and move it into place (never half-written)."""
    with _atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def local_cluster(workers: int | None = None, *, processes: bool = True) -> LocalCluster:
    """A dask LocalCluster listening on the loopback interface only.

    ``workers`` single-threaded workers (default one per core), as processes (or as threads of this process with
    ``processes=False``), no dashboard; the HTTP endpoints dask serves anyway go to free loopback ports, so it
    never takes, nor warns about, a port another cluster holds. Close it (``with local_cluster() as cluster:``).
    """
    from distributed import LocalCluster

    n = workers or os.cpu_count() or 1
    loopback = "127.0.0.1"
    return LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=processes,
        # worker processes talk over TCP on the loopback; threads in this process (processes=False) over inproc
        host=loopback if processes else None,
        dashboard_address=None,
        # the scheduler and workers serve a small HTTP API (health, metrics) even without dashboard: keep it on
        # the loopback too, on a free port
        scheduler_kwargs={"dashboard_address": f"{loopback}:0"},
        worker_dashboard_address=f"{loopback}:0",
        silence_logs=logging.ERROR,
    )


@contextmanager
def _client(scheduler: str | Client | None, workers: int | None) -> Iterator[tuple[Client, str]]:
    """A dask client: to ``scheduler`` (an address or a Client), or to a new loopback-only LocalCluster."""
    from distributed import Client

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler, str(scheduler.scheduler.address if scheduler.scheduler else "client")
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:  # unreachable, or not an address
            raise SchedulerError(f"cannot use dask scheduler {scheduler!r}: {_one_line(exc)}") from exc
        with client:
            yield client, scheduler
        return
    with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
        n = len(cluster.workers)
        yield client, f"local ({n} worker process{'es' if n != 1 else ''})"


def run(
    batch_plan: BatchPlan,
    out_dir: str | Path,
    *,
    settings: Settings | None = None,
    workers: int | None = None,
    scheduler: str | Client | None = None,
    aoi: Any = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_pair: Callable[[PairOutcome], None] | None = None,
) -> BatchResult:
    """Compare every planned pair into ``out_dir`` in parallel and write the batch outputs.

    Parameters
    ----------
    batch_plan
        From :func:`plan`.
    out_dir
        Gets one compare folder per pair (``{place}_{before}_{after}/``, the compare output contract), and
        ``timeseries.csv``, ``timeseries.png``, ``batch.json``, ``index.html``.
    settings
        Effective settings for every pair; defaults when None.
    workers
        Worker processes of the local cluster (default: one per core). Ignored with ``scheduler``.
    scheduler
        Address of an existing dask.distributed scheduler (``tcp://host:8786``) or a ``distributed.Client``;
        its workers need berthwatch installed and the tiles and ``out_dir`` at the same paths. None starts a
        local cluster listening on the loopback interface only, without dashboard.
    aoi
        Optional port area for every pair (GeoJSON path or lon/lat geometries), as for ``compare_files``.
    overwrite
        Compare again pairs whose folder is already complete (default: skip them, so a re-run resumes).
    progress
        Optional callback ``(message, fraction of pairs done)``; the message is ``"{status} {pair name}"``.
    on_pair
        Optional callback receiving each :class:`PairOutcome` as it completes (skipped ones first).

    Returns
    -------
    BatchResult

    Raises
    ------
    SchedulerError
        ``scheduler`` cannot be reached.
    OutputError
        ``out_dir`` cannot be created.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    settings = settings or Settings()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    outcomes: dict[str, PairOutcome] = {}
    todo: list[Pair] = []
    total = len(batch_plan.pairs)
    done = 0

    state: dict[str, Any] = {"started": started, "scheduler": None}

    def save(status: str) -> None:
        doc = _batch_json(batch_plan, out, settings, outcomes, status=status, state=state, t_start=t_start)
        write_json_atomic(out / BATCH_JSON, doc)

    def report(outcome: PairOutcome, *, write: bool = True) -> None:
        nonlocal done
        outcomes[outcome.pair.name] = outcome
        done += 1
        if write:  # batch.json on disk lists this pair before anyone hears of it
            save("running")
        if progress:
            progress(f"{outcome.status} {outcome.pair.name}", done / max(1, total))
        if on_pair:
            on_pair(outcome)

    for pair in batch_plan.pairs:
        pair_dir = out / pair.name
        summary = None if overwrite else _complete_summary(pair_dir)
        if summary is not None:
            report(
                PairOutcome(
                    pair,
                    "skipped",
                    pair_dir,
                    counts=_clean_counts(summary.get("counts")),
                    timings=summary.get("timings") or {},
                ),
                write=False,
            )
        else:
            todo.append(pair)
            _remove_stale_partials(out, pair.name)

    with ExitStack() as stack:
        client = None
        if todo:  # connect first: an unreachable scheduler must leave no output behind
            client, where = stack.enter_context(_client(scheduler, workers))
            state["scheduler"] = where
            log.info("comparing %d pairs on %s (%d already complete)", len(todo), where, total - len(todo))
        _make_dir(out)
        save("running")
        if client is not None:
            _compare_all(client, todo, out, settings, aoi, report)
    ordered = [outcomes[p.name] for p in batch_plan.pairs]
    rows = timeseries_rows(batch_plan, ordered)
    files = [
        write_timeseries_csv(rows, out / TIMESERIES_CSV),
        plot_timeseries(rows, out / TIMESERIES_PNG),
    ]
    result = BatchResult(batch_plan, out, ordered, rows, files, {})
    result.timings["total_s"] = round(time.perf_counter() - t_start, 3)
    files.append(write_index_html(result, out / INDEX_HTML))
    save("complete")
    files.append(out / BATCH_JSON)
    return result


def _remove_stale_partials(out: Path, name: str) -> None:
    """Remove what a killed earlier run left of this pair: hidden ``.{name}.partial-*`` folders that
    :func:`berthwatch.fsutil.atomic_output_dir` never got to move into place (the pair is about to be redone)."""
    for stale in out.glob(f".{glob.escape(name)}.partial-*"):
        if stale.is_dir():
            log.info("removing unfinished output of an earlier run: %s", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _make_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from berthwatch.errors import OutputError

        raise OutputError(f"cannot create output folder ({exc.strerror})", path=out) from exc


def _compare_all(
    client: Client,
    todo: Sequence[Pair],
    out: Path,
    settings: Settings,
    aoi: Any,
    report: Callable[[PairOutcome], None],
) -> None:
    """Submit every pair to the cluster and report each outcome as it completes (cancel the rest if stopped)."""
    from distributed import as_completed

    futures = {}
    for pair in todo:
        fut = client.submit(
            _compare_pair,
            str(pair.before.path),
            str(pair.after.path),
            str(out / pair.name),
            pair.before.date_override,
            pair.after.date_override,
            settings,
            aoi,
            key=f"berthwatch-pair-{pair.name}-{uuid.uuid4().hex[:8]}",
            pure=False,
        )
        futures[fut.key] = (fut, pair)
    try:
        for fut in as_completed([f for f, _ in futures.values()], loop=client.loop):
            _, pair = futures.pop(fut.key)
            try:
                res = fut.result()
            except Exception as exc:  # worker died (KilledWorker), cancelled, unpicklable result...
                res = {
                    "status": "failed",
                    "stage": "worker",
                    "reason": _one_line(exc),
                    "error": type(exc).__name__,
                    "path": f"{pair.before.path} -> {pair.after.path}",
                }
            fut.release()
            report(_outcome(pair, out, res))
    finally:
        if futures:  # interrupted: do not leave work queued on a shared scheduler
            client.cancel([f for f, _ in futures.values()])


def _outcome(pair: Pair, out: Path, res: dict[str, Any]) -> PairOutcome:
    failure = None
    if res["status"] != "ok":
        failure = Failure(str(res.get("path") or pair.name), res["stage"], res["reason"], res["error"], pair.name)
        log.warning("pair %s failed at %s: %s", pair.name, res["stage"], res["reason"])
    return PairOutcome(
        pair,
        "ok" if failure is None else "failed",
        out / pair.name,
        seconds=float(res.get("seconds", 0.0)),
        cpu_seconds=float(res.get("cpu_seconds", 0.0)),
        counts=res.get("counts") or {},
        timings=res.get("timings") or {},
        failure=failure,
        worker=str(res.get("worker", "")),
    )


def _batch_json(
    batch_plan: BatchPlan,
    out: Path,
    settings: Settings,
    outcomes: Mapping[str, PairOutcome],
    *,
    status: str,
    state: Mapping[str, Any],
    t_start: float,
) -> dict[str, Any]:
    from berthwatch import __version__

    root = batch_plan.folder
    pairs = []
    for p in batch_plan.pairs:
        o = outcomes.get(p.name)
        pairs.append(o.to_dict(root) if o else {**p.to_dict(root), "status": "pending", "out": p.name + "/"})
    pair_failures = [o.failure.to_dict() for o in outcomes.values() if o.failure is not None]
    totals = {s: sum(o.status == s for o in outcomes.values()) for s in ("ok", "failed", "skipped")}
    totals["pending"] = len(batch_plan.pairs) - len(outcomes)
    return {
        "berthwatch_version": __version__,
        "status": status,
        "started": state.get("started"),
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "folder": str(root),
        "out_dir": str(out),
        "mode": batch_plan.mode,
        "reference": batch_plan.reference.isoformat() if batch_plan.reference else None,
        "min_overlap": batch_plan.min_overlap,
        "scheduler": state.get("scheduler"),
        "totals": {
            "places": len(batch_plan.places),
            "pairs": len(batch_plan.pairs),
            **totals,
            "tile_failures": len(batch_plan.failures),
            "pair_failures": totals["failed"],
        },
        "places": [p.to_dict(root) for p in batch_plan.places],
        "pairs": pairs,
        "failures": [*(f.to_dict() for f in batch_plan.failures), *pair_failures],
        "skipped_files": [s.to_dict() for s in batch_plan.skipped],
        "settings": settings.to_dict(),
        "timings": {"elapsed_s": round(time.perf_counter() - t_start, 3)},
    }


# ---------------------------------------------------------------------------------------------------------------
# Time series, plot, index
# ---------------------------------------------------------------------------------------------------------------
def _present(counts: Mapping[str, Mapping[str, int]], kind: str, side: str) -> int:
    c = counts.get(kind, {})
    return int(c.get("stayed", 0)) + int(c.get("departed" if side == "before" else "arrived", 0))


def timeseries_rows(batch_plan: BatchPlan, outcomes: Iterable[PairOutcome]) -> list[dict[str, Any]]:
    """Long-format time series: one row per place, date and kind.

    ``present`` counts the objects seen on that date inside the compared overlap (stayed + departed on the
    BEFORE side, stayed + arrived on the AFTER side), taken from the pair in which the date is AFTER when it
    succeeded (otherwise from one in which it is BEFORE). ``departed``/``arrived`` are the changes since
    ``before_date`` in that pair (empty for a place's first or reference date); ``unknown`` are objects seen on
    one date whose other date was clouded or outside the valid data; ``pair`` names the source folder. Dates
    whose every pair failed have no row.
    """
    done = [o for o in outcomes if o.status in ("ok", "skipped") and o.counts]
    kinds = list(dict.fromkeys([*KINDS, *(k for o in done for k in o.counts)]))
    rows: list[dict[str, Any]] = []
    for place in batch_plan.places:
        mine = [o for o in done if o.pair.place == place.name]
        for d in place.dates:
            as_after = [o for o in mine if o.pair.after.date == d]
            as_before = [o for o in mine if o.pair.before.date == d]
            for kind in kinds:
                if as_after:
                    o = as_after[0]
                    c = o.counts.get(kind, {})
                    rows.append(
                        {
                            "place": place.name,
                            "date": d.isoformat(),
                            "kind": kind,
                            "present": _present(o.counts, kind, "after"),
                            "departed": int(c.get("departed", 0)),
                            "arrived": int(c.get("arrived", 0)),
                            "before_date": o.pair.before.date.isoformat(),
                            "unknown": int(c.get("unknown", 0)),
                            "pair": o.pair.name,
                        }
                    )
                elif as_before:
                    o = as_before[0]
                    rows.append(
                        {
                            "place": place.name,
                            "date": d.isoformat(),
                            "kind": kind,
                            "present": _present(o.counts, kind, "before"),
                            "departed": "",
                            "arrived": "",
                            "before_date": "",
                            "unknown": int(o.counts.get(kind, {}).get("unknown", 0)),
                            "pair": o.pair.name,
                        }
                    )
    return rows


def write_timeseries_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the time-series rows (columns :data:`TIMESERIES_COLUMNS`) atomically."""
    with _atomic_file(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(TIMESERIES_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in TIMESERIES_COLUMNS})
    return Path(path)


def read_timeseries_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read ``timeseries.csv`` back (counts as int, empty cells as None)."""
    out: list[dict[str, Any]] = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rec: dict[str, Any] = dict(row)
            for k in ("present", "departed", "arrived", "unknown"):
                rec[k] = int(row[k]) if row.get(k) not in (None, "") else None
            out.append(rec)
    return out


_KIND_COLOURS = {"vessel": "#1f77b4", "equipment": "#d62728"}


def plot_timeseries(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Plot objects present per date (lines) and departed/arrived (bars) for every place and kind, as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    places = list(dict.fromkeys(str(r["place"]) for r in rows))
    n = max(1, len(places))
    fig = Figure(figsize=(11, 2.8 * n + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 2, squeeze=False, sharex="row")
    if not places:
        for ax in axes[0]:
            ax.set_axis_off()
        axes[0][0].text(0.5, 0.5, "no pair compared", ha="center", va="center", transform=axes[0][0].transAxes)
    for row_axes, place in zip(axes, places, strict=False):
        ax_p, ax_c = row_axes
        mine = [r for r in rows if r["place"] == place]
        kinds = list(dict.fromkeys(str(r["kind"]) for r in mine))
        dates = sorted({dt.date.fromisoformat(str(r["date"])) for r in mine})
        span = (dates[-1] - dates[0]).days if len(dates) > 1 else 1
        width = max(0.3, span / max(1, len(dates)) / (2.5 * max(1, len(kinds))))
        for j, kind in enumerate(kinds):
            colour = _KIND_COLOURS.get(kind, f"C{j + 2}")
            kr = sorted((r for r in mine if r["kind"] == kind), key=lambda r: str(r["date"]))
            x = [dt.date.fromisoformat(str(r["date"])) for r in kr]
            ax_p.plot(x, [int(r["present"]) for r in kr], marker="o", color=colour, label=kind)
            ch = [r for r in kr if r["departed"] not in ("", None)]
            xc = [dt.date.fromisoformat(str(r["date"])) + dt.timedelta(days=(j - 0.5) * width) for r in ch]
            ax_c.bar(xc, [int(r["arrived"]) for r in ch], width=width, color=colour, label=f"{kind} arrived")
            ax_c.bar(
                xc,
                [-int(r["departed"]) for r in ch],
                width=width,
                color=colour,
                alpha=0.45,
                hatch="//",
                label=f"{kind} departed",
            )
        for ax in (ax_p, ax_c):
            loc = AutoDateLocator(maxticks=8)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
            ax.grid(True, alpha=0.3)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_p.set_title(f"{place}: objects present")
        ax_p.set_ylabel("count")
        ax_p.set_ylim(bottom=0)
        ax_p.legend(loc="best", fontsize="small")
        ax_c.axhline(0, color="black", linewidth=0.8)
        ax_c.set_title(f"{place}: arrived (up), departed (down)")
        ax_c.legend(loc="best", fontsize="small")
    with _atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)


def _counts_text(counts: Mapping[str, Mapping[str, int]]) -> str:
    parts = []
    for kind, st in counts.items():
        bits = ", ".join(f"{s} {n}" for s, n in st.items() if n)
        parts.append(f"{kind}: {bits or 'none'}")
    return "; ".join(parts)


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.ok{color:#176317}.failed{color:#b00020;font-weight:bold}.skipped{color:#555}
img.thumb{max-width:260px;max-height:130px}
"""


def write_index_html(result: BatchResult, path: str | Path) -> Path:
    """A self-contained ``index.html`` linking every pair's report and overview, the failures and the plot."""
    esc = html.escape
    bp = result.plan
    out = Path(path).parent
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>berthwatch batch: {esc(str(bp.folder))}</title><style>{_CSS}</style></head><body>",
        f"<h1>berthwatch batch of {esc(str(bp.folder))}</h1>",
        f"<p>Mode <b>{esc(bp.mode)}</b>"
        + (f" (reference {esc(bp.reference.isoformat())})" if bp.reference else "")
        + f"; {len(bp.places)} place(s), {len(bp.pairs)} pair(s): "
        + f"{result.count('ok')} compared, {result.count('skipped')} already complete, "
        + f"{result.count('failed')} failed; {len(bp.failures)} unreadable tile(s).</p>",
    ]
    if (out / TIMESERIES_PNG).exists():
        parts.append(
            f'<h2>Time series</h2><p><a href="{TIMESERIES_CSV}">timeseries.csv</a></p>'
            f'<img src="{TIMESERIES_PNG}" alt="objects per date and place" style="max-width:100%">'
        )
    parts.append("<h2>Pairs</h2>")
    for place in bp.places:
        dates = ", ".join(d.isoformat() for d in place.dates)
        parts.append(f"<h3>{esc(place.name)}</h3><p>Dates: {esc(dates)}</p>")
        mine = [o for o in result.outcomes if o.pair.place == place.name]
        if not mine:
            parts.append("<p>No pair to compare.</p>")
            continue
        parts.append(
            "<table><tr><th>pair</th><th>before</th><th>after</th><th>outcome</th><th>changes</th><th>overview</th></tr>"
        )
        for o in mine:
            link = quote(o.pair.name)
            name = esc(o.pair.name)
            if o.status == "failed" or not (out / o.pair.name / "report.html").exists():
                name_cell = name
            else:
                name_cell = f'<a href="{link}/report.html">{name}</a>'
            thumb = ""
            if (out / o.pair.name / "overview.png").exists():
                img = f'<img class="thumb" src="{link}/overview.png" alt="overview {name}">'
                thumb = f'<a href="{link}/overview.png">{img}</a>'
            detail = esc(_counts_text(o.counts)) if o.failure is None else esc(f"{o.failure.stage}: {o.failure.reason}")
            parts.append(
                f"<tr><td>{name_cell}</td><td>{esc(o.pair.before.date.isoformat())}<br><small>"
                f"{esc(_rel(o.pair.before.path, bp.folder))}</small></td><td>{esc(o.pair.after.date.isoformat())}"
                f"<br><small>{esc(_rel(o.pair.after.path, bp.folder))}</small></td>"
                f'<td class="{esc(o.status)}">{esc(o.status)}</td><td>{detail}</td><td>{thumb}</td></tr>'
            )
        parts.append("</table>")
    failures = result.failures
    parts.append(f"<h2>Failures ({len(failures)})</h2>")
    if failures:
        parts.append("<table><tr><th>file</th><th>pair</th><th>stage</th><th>error</th><th>reason</th></tr>")
        for f in failures:
            parts.append(
                f"<tr><td>{esc(f.path)}</td><td>{esc(f.pair or '')}</td><td>{esc(f.stage)}</td>"
                f"<td>{esc(f.error)}</td><td>{esc(f.reason)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    if bp.skipped:
        parts.append("<h2>Left out on purpose</h2><table><tr><th>file or place</th><th>reason</th></tr>")
        for s in bp.skipped:
            parts.append(f"<tr><td>{esc(s.path)}</td><td>{esc(s.reason)}</td></tr>")
        parts.append("</table>")
    parts.append('<p><a href="batch.json">batch.json</a></p></body></html>')
    with _atomic_file(path) as tmp:
        tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return Path(path)


__all__ = [
    "BatchPlan",
    "BatchResult",
    "Failure",
    "Pair",
    "PairOutcome",
    "Place",
    "SchedulerError",
    "Skip",
    "Tile",
    "find_rasters",
    "group_tiles",
    "local_cluster",
    "plan",
    "read_dates_csv",
    "read_timeseries_csv",
    "run",
    "timeseries_rows",
    "write_index_html",
]
