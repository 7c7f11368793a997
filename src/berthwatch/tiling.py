"""Windowed (tile-by-tile) detection, so that very large scenes fit in memory.

A scene larger than one tile is cut into a grid of *core* windows that partition it; each core is grown by a
*margin* as wide as the widest neighbourhood the detectors look at (the local water statistics, the sea clutter
window, half the longest vessel, the equipment background), :func:`berthwatch.detect.detect` runs on that tile
and keeps only the objects whose centroid lies in the core. An object straddling a core boundary is therefore
seen whole by the tiles on both sides and reported by exactly one of them. The margin is derived from the
settings in metres; the tile size is a memory setting (``max_tile_pixels``), not a detection setting.

Whole-scene layers are computed once: the water mask (cheap next to detection) is passed to every tile, so the
vessel search domain is the same as without tiling. The detectors' own scene-level statistics (e.g. the
pavement brightness of the roof test, the sky-lit shadow colour) are measured per tile; a tile is millions of
pixels, so they are stable, but results near a tile are not bit-identical to a whole-scene run.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio.windows import Window

from berthwatch.config import Settings
from berthwatch.errors import ConfigError
from berthwatch.models import Detection, DetectionResult, Scene

log = logging.getLogger(__name__)

__all__ = [
    "BYTES_PER_PIXEL",
    "DEFAULT_MAX_TILE_PIXELS",
    "DEFAULT_MEMORY_BUDGET",
    "Tile",
    "detect_windowed",
    "tile_grid",
    "tile_margin_m",
]

Progress = Callable[[str, float], None]

_SETTINGS = Settings()

#: Peak working memory of :func:`berthwatch.detect.detect` per pixel of a 4-band scene (bytes): the resident
#: memory of ``bench/speed.py``'s 8000 x 8000 compare rose by about 5.6 GB above the rest of the run while a
#: 16.6 Mpx tile was detected (per-band float32 contrasts, int64 label images, float64 distance transforms,
#: equipment layers, allocator slack).
BYTES_PER_PIXEL = 340

#: Working memory one tile of detection may take (bytes): a 4000 x 4000 scene still goes in one piece; larger
#: scenes are cut into tiles of at most ~17 Mpx (about 4200 x 4200 pixels), so that the margins (600 m by
#: default) stay a modest share of each tile. The two dates and the rest of a compare run come on top.
DEFAULT_MEMORY_BUDGET = 11 * 1024**3 // 2

#: Largest tile (margin included), in pixels: the memory budget divided by the per-pixel working memory.
#: Scenes up to this size are processed in one piece.
DEFAULT_MAX_TILE_PIXELS = DEFAULT_MEMORY_BUDGET // BYTES_PER_PIXEL


def tile_margin_m(settings: Settings = _SETTINGS) -> float:
    """Width (metres) of the context around a tile's core that the detectors need to see an object whole.

    The widest of: an object's half length plus the widest neighbourhood measured around its pixels (half the
    vessel background window, half the sea clutter window, the shore band, the evidence ring), for the longest
    vessel and the longest container row; and the full vessel background window (its two passes of trimmed
    statistics each reach half a window).
    """
    v, e = settings.vessel, settings.equipment
    vessel_reach = v.max_length_m / 2.0 + max(
        v.background_window_m / 2.0, v.clutter_window_m / 2.0, v.shore_band_m, v.ring_m
    )
    equipment_reach = e.max_row_length_m / 2.0 + max(e.background_m, e.ring_m, e.roof_min_m, e.shadow_min_m)
    return float(max(vessel_reach, v.background_window_m, equipment_reach))


@dataclass(frozen=True)
class Tile:
    """One tile of a grid: ``core`` (the part it reports) inside ``window`` (the part it reads), scene pixels."""

    core: Window
    window: Window

    def core_contains(self, row: float, col: float) -> bool:
        """Whether a point in scene pixel coordinates (fractional, pixel corners at integers) is in the core."""
        c = self.core
        return bool(c.row_off <= row < c.row_off + c.height and c.col_off <= col < c.col_off + c.width)


def tile_grid(shape: tuple[int, int], *, margin_px: int, max_tile_pixels: int) -> list[Tile]:
    """Cut a ``(rows, cols)`` grid into near-equal core windows whose tiles (core + margin, clipped to the grid)
    hold at most ``max_tile_pixels`` pixels each, with as few tiles as possible.

    A grid that fits the budget gives one tile (core = window = the whole grid). Cut into ``k`` parts along an
    axis, a tile spans ``ceil(n / k)`` core pixels plus one margin per inner side (none for ``k = 1``, one for
    ``k = 2``, two beyond); the fewest parts (then the squarest) whose largest tile fits are chosen.
    """
    rows, cols = shape
    if rows * cols <= max_tile_pixels:
        whole = Window(0, 0, cols, rows)
        return [Tile(core=whole, window=whole)]
    if _span(rows, rows, margin_px) * _span(cols, cols, margin_px) > max_tile_pixels:
        need = _span(rows, rows, margin_px) * _span(cols, cols, margin_px)
        raise ConfigError(
            f"memory budget too small: a detection tile of at most {max_tile_pixels} pixels "
            f"({max_tile_pixels * BYTES_PER_PIXEL / 1024**3:.2g} GiB) cannot hold any core with its margin of "
            f"{margin_px} px on each side; allow at least {need} pixels ({need * BYTES_PER_PIXEL / 1024**3:.2g} GiB)"
        )
    best = (rows * cols + 1, rows, cols)  # (number of tiles, parts along rows, parts along columns)
    min_span_c = _span(cols, cols, margin_px)
    for kr in range(1, rows + 1):
        if kr >= best[0]:
            break
        span_r = _span(rows, kr, margin_px)
        if span_r * min_span_c > max_tile_pixels:
            continue
        kc = next(k for k in range(1, cols + 1) if span_r * _span(cols, k, margin_px) <= max_tile_pixels)
        if (kr * kc, abs(kr - kc)) < (best[0], abs(best[1] - best[2])):
            best = (kr * kc, kr, kc)
    _, kr, kc = best
    full = Window(0, 0, cols, rows)
    edges_r, edges_c = _edges(rows, kr), _edges(cols, kc)
    tiles = []
    for r0, r1 in itertools.pairwise(edges_r):
        for c0, c1 in itertools.pairwise(edges_c):
            core = Window(c0, r0, c1 - c0, r1 - r0)
            grown = Window(c0 - margin_px, r0 - margin_px, c1 - c0 + 2 * margin_px, r1 - r0 + 2 * margin_px)
            tiles.append(Tile(core=core, window=grown.intersection(full)))
    return tiles


def _span(n: int, k: int, margin_px: int) -> int:
    """Largest tile extent along an axis of ``n`` pixels cut into ``k`` cores (core plus inner margins)."""
    return min(n, math.ceil(n / k) + margin_px * min(2, k - 1))


def _edges(n: int, k: int) -> list[int]:
    """Boundaries of ``k`` near-equal parts of ``0..n``."""
    return [round(i * n / k) for i in range(k + 1)]


def detect_windowed(
    scene: Scene,
    *,
    settings: Settings = _SETTINGS,
    water: np.ndarray | None = None,
    aoi: np.ndarray | None = None,
    max_tile_pixels: int | None = None,
    progress: Progress | None = None,
) -> DetectionResult:
    """:func:`berthwatch.detect.detect`, tile by tile when the scene is larger than one tile.

    Parameters
    ----------
    scene
        The scene (possibly resampled onto a two-date common grid).
    settings
        All settings; the tile margin is derived from the ``vessel`` and ``equipment`` sections
        (:func:`tile_margin_m`).
    water
        A precomputed water mask (e.g. the union of two dates); computed once on the whole scene when None.
    aoi
        Optional boolean (rows, cols): only objects inside it are searched.
    max_tile_pixels
        Largest tile (core and margin) in pixels; default :data:`DEFAULT_MAX_TILE_PIXELS` (from a 5.5 GiB working
        memory budget). A scene that fits is processed in one piece, exactly as :func:`~berthwatch.detect.detect`.
    progress
        Optional ``callback(stage, fraction)``.

    Returns
    -------
    :class:`~berthwatch.models.DetectionResult` for the whole scene; ids ``v001``... and ``e001``... in decreasing
    confidence over the whole scene.
    """
    from berthwatch.detect import detect
    from berthwatch.masks import water_mask

    budget = DEFAULT_MAX_TILE_PIXELS if max_tile_pixels is None else int(max_tile_pixels)
    if budget < 1:
        raise ValueError(f"max_tile_pixels must be positive, got {max_tile_pixels}")
    if scene.height * scene.width <= budget:
        return detect(scene, settings=settings, water=water, aoi=aoi, progress=progress)
    for name, mask in (("water", water), ("AOI", aoi)):
        if mask is not None and mask.shape != scene.shape:
            raise ValueError(f"{name} mask shape {mask.shape} != scene shape {scene.shape}")
    margin_px = math.ceil(tile_margin_m(settings) / scene.pixel_size_m)
    tiles = tile_grid(scene.shape, margin_px=margin_px, max_tile_pixels=budget)
    if water is None:
        water = water_mask(scene, config=settings.water, aoi=aoi)
    log.info(
        "%s: %d x %d px in %d tiles (margin %d px = %.0f m, at most %d px per tile)",
        scene.name,
        scene.height,
        scene.width,
        len(tiles),
        margin_px,
        margin_px * scene.pixel_size_m,
        budget,
    )
    kept: list[tuple[int, Detection]] = []
    notes: list[str] = []
    searched = True
    inv = ~scene.transform
    for k, tile in enumerate(tiles):
        if progress is not None:
            progress(f"detect: tile {k + 1}/{len(tiles)}", k / len(tiles))
        rows, cols = tile.window.toslices()
        part = scene.window(tile.window)
        if not part.valid.any():
            continue
        res = detect(
            part,
            settings=settings,
            water=water[rows, cols],
            aoi=None if aoi is None else aoi[rows, cols],
        )
        searched = searched and res.equipment_searched
        notes.extend(res.notes)
        for d in res.detections:
            col, row = inv @ d.centroid
            if tile.core_contains(row, col):
                kept.append((k, d))
        del res, part
    dets = _drop_cross_tile_duplicates(kept)
    vessels = sorted((d for d in dets if d.kind == "vessel"), key=lambda d: -d.confidence)
    equipment = sorted((d for d in dets if d.kind == "equipment"), key=lambda d: -d.confidence)
    for i, d in enumerate(vessels, 1):
        d.id = f"v{i:03d}"
    for i, d in enumerate(equipment, 1):
        d.id = f"e{i:03d}"
    if progress is not None:
        progress("done", 1.0)
    log.info("%s: %d vessels, %d equipment (windowed)", scene.name, len(vessels), len(equipment))
    return DetectionResult(
        scene=scene,
        detections=vessels + equipment,
        water=water,
        equipment_searched=searched,
        notes=list(dict.fromkeys(notes)),
    )


def _drop_cross_tile_duplicates(kept: list[tuple[int, Detection]], *, overlap: float = 0.5) -> list[Detection]:
    """Drop an object that two tiles both kept (its outline measured slightly differently put its centroid on
    each side of their common core boundary): same kind, overlapping by more than ``overlap`` of the smaller
    footprint, from different tiles. The more confident one stays."""
    if not kept:
        return []
    order = sorted(range(len(kept)), key=lambda i: -kept[i][1].confidence)
    geoms = np.array([kept[i][1].geometry for i in order], dtype=object)
    areas = shapely.area(geoms)
    tree = shapely.STRtree(geoms)
    alive = np.ones(len(order), dtype=bool)
    for a in range(len(order)):
        if not alive[a]:
            continue
        tile_a, det_a = kept[order[a]]
        for b in tree.query(geoms[a]):
            tile_b, det_b = kept[order[b]]
            if b <= a or not alive[b] or tile_b == tile_a or det_b.kind != det_a.kind:
                continue
            inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
            if inter > overlap * min(areas[a], areas[b]):
                alive[b] = False
    return [kept[order[i]][1] for i in np.flatnonzero(alive)]
