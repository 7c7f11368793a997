"""The main jobs, end to end: read -> align -> masks -> detect -> diff -> write.

Each stage is a function of another module taking and returning typed objects (``models.py``); this module only
strings them together, times them, and writes outputs atomically. The CLI and the batch runner call these.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from berthwatch.config import Settings
from berthwatch.errors import InputError
from berthwatch.fsutil import atomic_output_dir
from berthwatch.models import AlignedPair, ChangeSet, DetectionResult, Scene

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
AOI = str | Path | Sequence[BaseGeometry] | None

# Stages of a compare run and their rough share of the work, for progress reporting.
COMPARE_STAGES: tuple[tuple[str, float], ...] = (
    ("read", 0.10),
    ("align", 0.20),
    ("water", 0.10),
    ("detect", 0.35),
    ("diff", 0.10),
    ("write", 0.15),
)


@dataclass
class CompareResult:
    """What a compare run produced: the aligned pair, the change set, the summary written and the files."""

    out_dir: Path | None
    pair: AlignedPair
    changes: ChangeSet
    summary: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class DetectResult:
    """What a detect run produced."""

    out_dir: Path | None
    result: DetectionResult
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Times named stages and reports cumulative progress through an optional callback."""

    def __init__(self, plan: Sequence[tuple[str, float]], progress: Progress | None) -> None:
        self.weights = dict(plan)
        self.total = sum(self.weights.values()) or 1.0
        self.done = 0.0
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, self.done / self.total)
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 4)
        self.done += self.weights.get(name, 0.0)
        if self.progress:
            self.progress(name, min(1.0, self.done / self.total))


def _aoi_mask(aoi: AOI, scene: Scene) -> np.ndarray | None:
    if aoi is None:
        return None
    from berthwatch.masks import aoi_mask, read_aoi

    geoms = read_aoi(aoi) if isinstance(aoi, str | Path) else list(aoi)
    return aoi_mask(geoms, scene)


def compare_scenes(
    before: Scene,
    after: Scene,
    *,
    settings: Settings | None = None,
    aoi: AOI = None,
    max_tile_pixels: int | None = None,
    progress: Progress | None = None,
    _stages: _Stages | None = None,
) -> tuple[AlignedPair, ChangeSet]:
    """Align two scenes, detect on both dates on the common grid and classify every object's change.

    Parameters
    ----------
    before, after
        Scenes as read by :func:`berthwatch.io.read_scene` (any CRS, pixel size, extent, band layout).
    settings
        Effective settings; defaults when None.
    aoi
        Optional port area: a GeoJSON path or lon/lat geometries. Objects are searched only inside it.
    max_tile_pixels
        Memory setting: detection runs tile by tile on grids larger than this many pixels
        (:func:`berthwatch.tiling.detect_windowed`; default :data:`berthwatch.tiling.DEFAULT_MAX_TILE_PIXELS`).

    Returns
    -------
    (AlignedPair, ChangeSet)
    """
    from berthwatch.align import align
    from berthwatch.masks import union_water
    from berthwatch.match import diff
    from berthwatch.tiling import detect_windowed

    settings = settings or Settings()
    st = _stages or _Stages(COMPARE_STAGES[1:-1], progress)
    with st.stage("align"):
        pair = align(before, after, config=settings.align)
    # each date is searched with every band it has (a NIR band the other date lacks included)
    scene_before, scene_after = pair.detection_scenes
    with st.stage("water"):
        aoi_arr = _aoi_mask(aoi, pair.before)
        water = union_water(scene_before, scene_after, config=settings.water, aoi=aoi_arr)
    with st.stage("detect"):
        dets_before = detect_windowed(
            scene_before, settings=settings, water=water, aoi=aoi_arr, max_tile_pixels=max_tile_pixels
        )
        dets_after = detect_windowed(
            scene_after, settings=settings, water=water, aoi=aoi_arr, max_tile_pixels=max_tile_pixels
        )
    with st.stage("diff"):
        changes = diff(dets_before.detections, dets_after.detections, pair, settings=settings, water=water)
    changes.notes = list(dict.fromkeys([*dets_before.notes, *dets_after.notes, *changes.notes]))
    return pair, changes


def _read_pair(
    before_path: str | Path, after_path: str | Path, before_date: Any, after_date: Any
) -> tuple[Scene, Scene]:
    from berthwatch.io import read_scene

    before = read_scene(before_path, date=before_date)
    after = read_scene(after_path, date=after_date)
    if before.date > after.date:
        raise InputError(
            f"BEFORE is dated {before.date.isoformat()}, later than AFTER {after.path} "
            f"({after.date.isoformat()}): swap the two files (or correct --before-date/--after-date)",
            path=before_path,
        )
    return before, after


def compare_files(
    before_path: str | Path,
    after_path: str | Path,
    out_dir: str | Path,
    *,
    before_date: dt.date | str | None = None,
    after_date: dt.date | str | None = None,
    settings: Settings | None = None,
    aoi: AOI = None,
    max_tile_pixels: int | None = None,
    progress: Progress | None = None,
) -> CompareResult:
    """Compare two GeoTIFFs of a port and write the whole output contract into ``out_dir``.

    Outputs are written into a temporary folder beside ``out_dir`` and moved into place at the end, so a failed
    run leaves nothing half-written. See DESIGN.md for the files and their properties.
    """
    from berthwatch.report import write_compare_outputs

    settings = settings or Settings()
    st = _Stages(COMPARE_STAGES, progress)
    with st.stage("read"):
        before, after = _read_pair(before_path, after_path, before_date, after_date)
    pair, changes = compare_scenes(
        before, after, settings=settings, aoi=aoi, max_tile_pixels=max_tile_pixels, _stages=st
    )
    out = Path(out_dir)
    with atomic_output_dir(out) as tmp, st.stage("write"):
        t0 = time.perf_counter()
        files = write_compare_outputs(
            tmp,
            pair=pair,
            changes=changes,
            settings=settings,
            timings=dict(st.timings),
            notes=changes.notes,
        )
        log.info("wrote %d files in %.2fs", len(files), time.perf_counter() - t0)
    files = [out / f.relative_to(tmp) for f in files]
    summary = _load_summary(out)
    return CompareResult(out, pair, changes, summary, files, dict(st.timings))


def detect_scene(
    scene: Scene,
    *,
    settings: Settings | None = None,
    aoi: AOI = None,
    max_tile_pixels: int | None = None,
    progress: Progress | None = None,
) -> DetectionResult:
    """Single-date inventory of one scene (water mask, vessels, equipment), tile by tile on large scenes
    (:func:`berthwatch.tiling.detect_windowed`; ``max_tile_pixels`` is its memory setting)."""
    from berthwatch.tiling import detect_windowed

    settings = settings or Settings()
    return detect_windowed(
        scene, settings=settings, aoi=_aoi_mask(aoi, scene), max_tile_pixels=max_tile_pixels, progress=progress
    )


def detect_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    date: dt.date | str | None = None,
    settings: Settings | None = None,
    aoi: AOI = None,
    max_tile_pixels: int | None = None,
    progress: Progress | None = None,
) -> DetectResult:
    """Read one image, detect vessels and equipment, write the single-date inventory into ``out_dir``."""
    from berthwatch.io import read_scene
    from berthwatch.report import write_detect_outputs

    settings = settings or Settings()
    st = _Stages((("read", 0.2), ("detect", 0.6), ("write", 0.2)), progress)
    with st.stage("read"):
        scene = read_scene(path, date=date)
    with st.stage("detect"):
        result = detect_scene(scene, settings=settings, aoi=aoi, max_tile_pixels=max_tile_pixels)
    out = Path(out_dir)
    with atomic_output_dir(out) as tmp, st.stage("write"):
        files = write_detect_outputs(tmp, result=result, settings=settings, timings=dict(st.timings))
    files = [out / f.relative_to(tmp) for f in files]
    return DetectResult(out, result, files, dict(st.timings))


def _load_summary(out: Path) -> dict[str, Any]:
    import json

    path = out / "summary.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
