"""Object-level diff between two dates: departed, arrived, stayed, unknown.

Detections of both dates (on the common grid of an :class:`~berthwatch.models.AlignedPair`) are matched one to
one by :func:`scipy.optimize.linear_sum_assignment` on a cost made of footprint overlap, centroid distance,
length and heading. Unmatched detections are not taken at face value: the two-date evidence — the normalised
difference image — is read inside their footprint (METHODS.md section 6). A footprint that looks the same at
the other date (high correlation, little difference) means the single-date detector missed the object there:
it stayed. Only clear change makes a departure or an arrival (hysteresis: weak evidence defaults to stayed).
Regions of strong change of vessel size and shape that no detection explains are recovered as departed or
arrived vessels, deciding the date by which one shows a hull against the surrounding water.

Quay equipment (items of a few metres, packed in rows and blocks) is judged against the bare ground around it
— the pixels farther than ``ground_margin_m`` from every detection of either date, within ``ground_radius_m``:
an item changed when its footprint's median moved well beyond the bare ground's own change (haze, gain, a
shadow), the change is its own when the other date looks at least as much like that ground as its own date
does (not a detection on a spot another item vacated), and its neighbourhood is occluded only when the bare
ground itself changed (a block of items that left together is no cloud).

Pixels invalid at the other date (nodata, cloud masks) make an object ``unknown``, as does a footprint that is
bright and featureless at the other date (an unmasked cloud).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rfeatures
from rasterio.crs import CRS
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from skimage.filters import apply_hysteresis_threshold
from skimage.morphology import remove_small_objects

from berthwatch.berths import berth_changes
from berthwatch.config import MatchConfig, Settings
from berthwatch.geo import heading_difference, oriented_measures
from berthwatch.masks import cast_shadow_date
from berthwatch.models import (
    STATUSES,
    AlignedPair,
    ChangedObject,
    ChangeSet,
    Detection,
    Kind,
    Status,
    band_mean,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

__all__ = ["change_layers", "change_magnitude", "diff", "footprint_evidence", "match_detections"]

_DEFAULT_SETTINGS = Settings()
_DEFAULT_MATCH = MatchConfig()
_INFEASIBLE = 1e6


# ------------------------------------------------------------------------------------------------
# change magnitude
# ------------------------------------------------------------------------------------------------
def _robust_sigma(x: np.ndarray) -> float:
    if x.size == 0:
        return 1.0
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    return max(1.4826 * mad, 1e-6)


def change_magnitude(pair: AlignedPair, *, shift_px: int = 1) -> np.ndarray:
    """Per-pixel normalised change magnitude between the two dates of ``pair`` (float32).

    Each band's difference (AFTER, already in BEFORE's radiometry, minus BEFORE) is divided by its robust noise
    sigma (1.4826 MAD over jointly valid pixels); the magnitude is the root mean square over bands, so pure
    noise gives about 1. To keep misregistration residue on edges out, the magnitude is the minimum over AFTER
    displaced by up to ``shift_px`` pixels in each direction. Invalid pixels are 0.
    """
    valid = pair.valid
    # band by band in float32, without float copies of the whole stacks (memory of large scenes)
    b = pair.before.data
    a = pair.after.data
    nb, rows, cols = b.shape
    sig = np.array(
        [_robust_sigma((a[i].astype(np.float32) - b[i].astype(np.float32))[valid]) for i in range(nb)],
        dtype=np.float32,
    )
    r = max(0, int(shift_px))
    padded = [np.pad(a[i].astype(np.float32, copy=False), r, mode="edge") for i in range(nb)] if r else None
    best = np.full((rows, cols), np.inf, dtype=np.float32)
    acc = np.empty((rows, cols), dtype=np.float32)
    z = np.empty((rows, cols), dtype=np.float32)
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            acc.fill(0.0)
            for i in range(nb):
                shifted = padded[i][r + dr : r + dr + rows, r + dc : r + dc + cols] if padded else a[i]
                np.subtract(shifted, b[i], out=z, dtype=np.float32, casting="unsafe")
                z /= sig[i]
                z *= z
                acc += z
            np.minimum(best, acc, out=best)
    del padded, acc, z
    best /= np.float32(nb)
    mag = np.sqrt(best, out=best)
    mag[~valid] = 0.0
    return mag


# ------------------------------------------------------------------------------------------------
# footprint evidence
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Grid:
    """What the evidence functions need from the pair, computed once."""

    transform: Affine
    crs: CRS
    shape: tuple[int, int]
    pixel_size_m: float
    ground_scale: float
    gray_before: np.ndarray
    gray_after: np.ndarray
    valid_before: np.ndarray
    valid_after: np.ndarray
    magnitude: np.ndarray
    noise_before: float
    noise_after: float
    bright_before: float
    bright_after: float
    data_before: np.ndarray | None = None  # (bands, rows, cols) as stored: multi-band evidence on small windows
    data_after: np.ndarray | None = None
    band_noise_before: np.ndarray | None = None  # pixel noise of each band (robust, from neighbour differences)
    band_noise_after: np.ndarray | None = None
    water: np.ndarray | None = None  # union water of both dates (the vessel search domain), when known


def _grid(pair: AlignedPair, magnitude: np.ndarray, water: np.ndarray | None = None) -> _Grid:
    gb = band_mean(pair.before.data)
    ga = band_mean(pair.after.data)
    vb, va = pair.before.valid, pair.after.valid

    def noise(g: np.ndarray, v: np.ndarray) -> float:
        # pixel-to-pixel noise from horizontal differences (robust against edges)
        d = np.diff(g, axis=1)[v[:, 1:] & v[:, :-1]]
        return _robust_sigma(d) / math.sqrt(2.0)

    def bright(g: np.ndarray, v: np.ndarray) -> float:
        return float(np.quantile(g[v], 0.99)) if v.any() else math.inf

    return _Grid(
        transform=pair.before.transform,
        crs=pair.before.crs,
        shape=pair.before.shape,
        pixel_size_m=pair.before.pixel_size_m,
        ground_scale=pair.before.ground_scale,
        gray_before=gb,
        gray_after=ga,
        valid_before=vb,
        valid_after=va,
        magnitude=magnitude,
        noise_before=noise(gb, vb),
        noise_after=noise(ga, va),
        bright_before=bright(gb, vb),
        bright_after=bright(ga, va),
        data_before=pair.before.data,
        data_after=pair.after.data,
        # (at least the noise of the band mean: integer data quantised finer than its noise has a zero MAD)
        band_noise_before=np.array([max(noise(x.astype(np.float32), vb), noise(gb, vb)) for x in pair.before.data]),
        band_noise_after=np.array([max(noise(x.astype(np.float32), va), noise(ga, va)) for x in pair.after.data]),
        water=water,
    )


def _window_masks(geom: BaseGeometry, grid: _Grid, pad_px: int) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Slices of a window around ``geom`` (padded) and the footprint mask inside it; None if off the grid."""
    inv = ~grid.transform
    minx, miny, maxx, maxy = geom.bounds
    cols_rows = [inv @ (x, y) for x in (minx, maxx) for y in (miny, maxy)]
    c0 = math.floor(min(p[0] for p in cols_rows)) - pad_px
    c1 = math.ceil(max(p[0] for p in cols_rows)) + pad_px
    r0 = math.floor(min(p[1] for p in cols_rows)) - pad_px
    r1 = math.ceil(max(p[1] for p in cols_rows)) + pad_px
    rows, cols = grid.shape
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, rows), min(c1, cols)
    if r1 <= r0 or c1 <= c0:
        return None
    wt = grid.transform @ Affine.translation(c0, r0)
    shp = (r1 - r0, c1 - c0)
    inside = rfeatures.geometry_mask([geom], out_shape=shp, transform=wt, invert=True)
    if not inside.any():
        inside = rfeatures.geometry_mask([geom], out_shape=shp, transform=wt, invert=True, all_touched=True)
    return (slice(r0, r1), slice(c0, c1)), inside


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _contrast(g: np.ndarray, inside: np.ndarray, ring: np.ndarray, noise: float) -> float:
    """|median inside - median ring| in units of the ring's robust spread (at least the pixel noise)."""
    if inside.sum() < 1 or ring.sum() < 3:
        return 0.0
    ring_v = g[ring]
    spread = max(_robust_sigma(ring_v), noise)
    return float(abs(np.median(g[inside]) - np.median(ring_v)) / spread)


def _band_contrast(
    data: np.ndarray | None, noise: np.ndarray | None, sl: tuple[slice, slice], inside: np.ndarray, ring: np.ndarray
) -> float:
    """The largest :func:`_contrast` over the bands (each against its own ring spread and pixel noise): a hull
    that stands out in one band only (a dark hull on dark water in the near-infrared) still stands out."""
    if data is None or noise is None:
        return 0.0
    return max(
        (_contrast(band[sl].astype(np.float32), inside, ring, float(n)) for band, n in zip(data, noise, strict=True)),
        default=0.0,
    )


def footprint_evidence(
    geom: BaseGeometry, grid: _Grid, *, change_sigma: float, ring_m: float | None = None, hull: bool = False
) -> dict[str, float]:
    """Two-date evidence inside one footprint on the common grid.

    Returns a dict with ``ncc`` (correlation of the two dates' gray levels over the footprint where both
    are valid; with a thin margin for footprints under 12 pixels), ``diff_z`` (median normalised change
    magnitude inside), ``changed_fraction`` (share of inside pixels whose magnitude exceeds ``change_sigma``),
    ``invalid_before``/``invalid_after`` (share of inside pixels without data at that date),
    ``contrast_before``/``contrast_after`` (how much the footprint stands out from a surrounding ring at each
    date), ``cloud_before``/``cloud_after`` (1 when the footprint is bright and featureless at that date),
    ``pixels``, ``ring_z`` (90th percentile of the change magnitude in the ring: how much the surroundings
    changed, e.g. a rougher sea) and ``ring_z50`` (its median: well above ``change_sigma`` the whole
    neighbourhood changed — a cloud, its shadow — and the object's own change cannot be told apart).

    With ``hull`` (vessels), when the grid knows the water (the union of both dates': it takes in every berth),
    the footprint is its part on the water and the contrasts are taken against the water of the ring, each when
    it makes up a quarter of the whole (an outline alongside a quay takes in some of the quay, and the ring has
    quay on one side: their brightness and spread would swamp a dark hull's contrast); and the contrasts are the
    largest over the bands rather than on the band mean (a hull and the water can have the same mean brightness
    and differ in one band).
    """
    px = grid.pixel_size_m
    if ring_m is None:
        ring_m = 10.0
    ring_px = max(2, round(ring_m / px))
    wm = _window_masks(geom, grid, ring_px + 2)
    empty = {
        "ncc": 0.0,
        "diff_z": 0.0,
        "changed_fraction": 0.0,
        "invalid_before": 1.0,
        "invalid_after": 1.0,
        "contrast_before": 0.0,
        "contrast_after": 0.0,
        "cloud_before": 0.0,
        "cloud_after": 0.0,
        "pixels": 0.0,
    }
    if wm is None:
        return empty
    sl, inside = wm
    wet = grid.water[sl] if hull and grid.water is not None else None
    if wet is not None and (inside & wet).sum() >= max(3, inside.sum() // 4):
        inside = inside & wet  # the hull's pixels: not the quay edge an outline alongside a quay takes in
    n_in = int(inside.sum())
    if n_in == 0:
        return empty
    vb, va = grid.valid_before[sl], grid.valid_after[sl]
    gb, ga = grid.gray_before[sl], grid.gray_after[sl]
    both = vb & va
    margin = ndi.binary_dilation(inside, iterations=2)
    near = ndi.binary_dilation(inside, iterations=1)
    ring = ndi.binary_dilation(inside, iterations=ring_px) & ~near
    contrast_ring = ring
    if wet is not None and (ring & wet).sum() >= max(3, ring.sum() // 4):
        contrast_ring = ring & wet
    sel = margin & both
    inner = inside & both
    mag = grid.magnitude[sl][inner]
    ev = {
        # inside the footprint only when it is big enough: a margin of quay edge would look the same at both
        # dates and hide a departure of a small hull
        "ncc": _ncc(gb[inner], ga[inner]) if inner.sum() >= 12 else (_ncc(gb[sel], ga[sel]) if sel.sum() >= 6 else 0.0),
        "diff_z": float(np.median(mag)) if mag.size else 0.0,
        "changed_fraction": float((mag > change_sigma).mean()) if mag.size else 0.0,
        "invalid_before": float(1.0 - (inside & vb).sum() / n_in),
        "invalid_after": float(1.0 - (inside & va).sum() / n_in),
        "contrast_before": _contrast(gb, inside & vb, contrast_ring & vb, grid.noise_before),
        "contrast_after": _contrast(ga, inside & va, contrast_ring & va, grid.noise_after),
        "pixels": float(n_in),
        "ring_z": float(np.quantile(grid.magnitude[sl][ring & both], 0.9)) if (ring & both).sum() >= 3 else 0.0,
        "ring_z50": float(np.median(grid.magnitude[sl][ring & both])) if (ring & both).sum() >= 3 else 0.0,
    }
    if hull:
        for tag, data, bnoise, v in (
            ("before", grid.data_before, grid.band_noise_before, vb),
            ("after", grid.data_after, grid.band_noise_after, va),
        ):
            c = _band_contrast(data, bnoise, sl, inside & v, contrast_ring & v)
            ev[f"contrast_{tag}"] = max(ev[f"contrast_{tag}"], c)
    for tag, g, v, noise, bright in (
        ("before", gb, vb, grid.noise_before, grid.bright_before),
        ("after", ga, va, grid.noise_after, grid.bright_after),
    ):
        vals = g[inside & v]
        cloudy = vals.size >= 4 and float(np.median(vals)) >= bright and _robust_sigma(vals) <= 3.0 * noise
        ev[f"cloud_{tag}"] = 1.0 if cloudy else 0.0
    return ev


_MIN_GROUND_PX = 30  # fewest bare-ground pixels for a robust median and spread of their change
_GROUND_NEAREST = 0.25  # a footprint "looks like the ground" when it resembles this share of the bare ground
# bare ground in a cast shadow at one date: darker than at the other date in every band by at least this factor
# (the equipment detector's ``shadow_max_ratio``); a footprint darkened as that ground was, within this factor per
# band, is the same surface in the shade
_SHADE_RATIO = 0.8
_SHADE_TOLERANCE = 1.25


def _bare_ground(detections: Sequence[Detection], grid: _Grid, margin_m: float) -> np.ndarray:
    """Pixels valid at both dates and farther than ``margin_m`` from every detection of either date.

    What is left around quay equipment is the ground between items: its change between the dates is the local
    reference (haze, gain, a cloud's shadow change it; an item that left or arrived does not).
    """
    both = grid.valid_before & grid.valid_after
    buf = margin_m / grid.ground_scale
    shapes = [(d.geometry.buffer(buf), 1) for d in detections if not d.geometry.is_empty]
    if not shapes:
        return both
    near = rfeatures.rasterize(
        shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8", all_touched=True
    ).astype(bool)
    return both & ~near


def _ground_evidence(
    geom: BaseGeometry,
    grid: _Grid,
    bare: np.ndarray,
    *,
    radius_m: float,
    change_sigma: float,
    bands: Sequence[str] | None = None,
) -> dict[str, float]:
    """How the footprint changed compared with the bare ground around it (within ``radius_m``, else twice that).

    ``ground_shift_z``: per band, the footprint's median change minus the bare ground's median change (the
    local radiometric change: haze, gain, a shadow), in robust sigmas of the bare ground's per-pixel change;
    root mean square over bands. An item that left or arrived shifts its whole footprint (its median) even when
    few of its pixels pass ``change_sigma`` on their own (small, low-contrast items are mostly edge pixels).
    ``ground_contrast_before``/``_after``: how unlike the bare ground the footprint is at that date: distance of
    its median colour to the nearest quarter of the bare-ground pixels, in pixel-noise units (RMS over bands).
    ``ground_quiet``: share of the bare ground whose change magnitude is below ``change_sigma`` — low when the
    whole neighbourhood changed (an unmasked cloud or its shadow), not when neighbouring items left.
    ``ground_shadow_before``/``_after``: 1 when the footprint is darker at that date than at the other in every
    band (beyond the bare ground's own change) by the spectrum of a cast shadow — lit only by the sky, whose light
    is bluer than the sun's, so that the darkening ratio (shaded / lit) does not fall from one band to the next
    shorter one (``bands`` gives the band roles; without them, 0).
    ``occupant_change``: how far the footprint's median colour minus the bare ground's median moved between the
    dates, as a share of the larger of the two (RMS over bands): small when the same item is there at both dates.
    ``shade_mismatch`` (only with a cast shadow and enough shaded bare ground): see :func:`_shaded_not_changed`.
    Empty when there is too little bare ground (an item deep inside a packed block) or too few valid pixels.
    """
    pad = max(2, round(radius_m / grid.pixel_size_m))
    for scale in (1, 2):
        wm = _window_masks(geom, grid, pad * scale)
        if wm is None:
            return {}
        sl, inside = wm
        ground = bare[sl] & ~ndi.binary_dilation(inside, iterations=1)
        n_ground = int(ground.sum())
        if n_ground >= max(_MIN_GROUND_PX, int(inside.sum())):
            break
    else:
        return {}
    inner = inside & grid.valid_before[sl] & grid.valid_after[sl]
    if inner.sum() < 3:
        return {}
    if grid.data_before is not None and grid.data_after is not None:
        xb = grid.data_before[:, sl[0], sl[1]].astype(np.float32)
        xa = grid.data_after[:, sl[0], sl[1]].astype(np.float32)
    else:
        xb, xa = grid.gray_before[sl][None], grid.gray_after[sl][None]
    nb = grid.band_noise_before if grid.band_noise_before is not None else np.full(len(xb), grid.noise_before)
    na = grid.band_noise_after if grid.band_noise_after is not None else np.full(len(xa), grid.noise_after)
    floor = math.hypot(grid.noise_before, grid.noise_after)
    z = np.empty(xb.shape[0], dtype=np.float64)
    shift = np.empty(xb.shape[0], dtype=np.float64)
    for k in range(xb.shape[0]):
        d = xa[k] - xb[k]
        g = d[ground]
        shift[k] = np.median(d[inner]) - np.median(g)
        z[k] = shift[k] / max(_robust_sigma(g), floor)
    shadow = cast_shadow_date(xb[:, inner], xa[:, inner], shift, nb, na, bands)
    shade = {}
    if shadow is not None:
        # the bare ground beside it in the same shadow: did the footprint darken as that ground did?
        shaded_x, lit_x = (xb, xa) if shadow == "before" else (xa, xb)
        ratio = shaded_x[:, ground] / np.maximum(lit_x[:, ground], 1e-6)
        in_shade = np.all(ratio < _SHADE_RATIO, axis=0)
        if in_shade.sum() >= max(_MIN_GROUND_PX, int(inner.sum())):
            r_ground = np.median(ratio[:, in_shade], axis=1)
            r_here = np.median(shaded_x[:, inner] / np.maximum(lit_x[:, inner], 1e-6), axis=1)
            shade["shade_mismatch"] = float(np.max(np.abs(np.log(np.maximum(r_here, 1e-6) / r_ground))))
    unlike = {}
    against: dict[str, np.ndarray] = {}
    for tag, x, noise in (("before", xb, nb), ("after", xa, na)):
        # the ground may be of several surfaces (pavement, a road, rails, shade): the footprint is compared with
        # the part of the bare ground it resembles most (its nearest quarter), not with the ground's median
        colour = np.median(x[:, inner], axis=1)
        dist = np.sqrt(np.mean(((x[:, ground] - colour[:, None]) / np.maximum(noise, 1e-6)[:, None]) ** 2, axis=0))
        unlike[tag] = float(np.quantile(dist, _GROUND_NEAREST))
        against[tag] = colour - np.median(x[:, ground], axis=1)
    # how far the footprint's colour against the ground moved, as a share of the larger of the two (RMS over bands)
    size = max(float(np.sqrt(np.mean(against["before"] ** 2))), float(np.sqrt(np.mean(against["after"] ** 2))), 1e-6)
    occupant = float(np.sqrt(np.mean((against["after"] - against["before"]) ** 2))) / size
    return {
        "ground_shift_z": float(np.sqrt(np.mean(z * z))),
        "ground_contrast_before": unlike["before"],
        "ground_contrast_after": unlike["after"],
        "ground_quiet": float((grid.magnitude[sl][ground] < change_sigma).mean()),
        "ground_pixels": float(n_ground),
        "ground_shadow_before": 1.0 if shadow == "before" else 0.0,
        "ground_shadow_after": 1.0 if shadow == "after" else 0.0,
        "occupant_change": occupant,
        **shade,
    }


def _moved_similarity(geom_before: BaseGeometry, geom_after: BaseGeometry, grid: _Grid) -> float:
    """Correlation of BEFORE's footprint (plus a 2 px margin) with AFTER displaced by the detections' offset.

    High when the same object moved a little between the dates; low when another object took its place.
    """
    wm = _window_masks(geom_before, grid, 3)
    if wm is None:
        return 0.0
    (rs, cs), inside = wm
    (xb, yb), (xa, ya) = geom_before.centroid.coords[0], geom_after.centroid.coords[0]
    dc = round((xa - xb) / grid.transform.a)
    dr = round((ya - yb) / grid.transform.e)
    rows, cols = grid.shape
    if rs.start + dr < 0 or cs.start + dc < 0 or rs.stop + dr > rows or cs.stop + dc > cols:
        return 0.0
    rs2, cs2 = slice(rs.start + dr, rs.stop + dr), slice(cs.start + dc, cs.stop + dc)
    sel = ndi.binary_dilation(inside, iterations=2) & grid.valid_before[rs, cs] & grid.valid_after[rs2, cs2]
    if sel.sum() < 6:
        return 0.0
    return _ncc(grid.gray_before[rs, cs][sel], grid.gray_after[rs2, cs2][sel])


# ------------------------------------------------------------------------------------------------
# matching
# ------------------------------------------------------------------------------------------------
def _max_shift_m(kind: Kind, config: MatchConfig) -> float:
    return config.max_vessel_shift_m if kind == "vessel" else config.max_equipment_shift_m


def _pair_terms(b: Detection, a: Detection, *, ground_scale: float) -> tuple[float, float, float, float]:
    """IoU, centroid distance (m), relative length difference, heading difference (deg)."""
    gb, ga = b.geometry, a.geometry
    inter = shapely.area(shapely.intersection(gb, ga))
    union = shapely.area(shapely.union(gb, ga))
    iou = float(inter / union) if union > 0 else 0.0
    (xb, yb), (xa, ya) = b.centroid, a.centroid
    dist = math.hypot(xa - xb, ya - yb) * ground_scale
    lmax = max(b.length_m, a.length_m, 1e-9)
    dlen = abs(b.length_m - a.length_m) / lmax
    return iou, dist, dlen, heading_difference(b.heading_deg, a.heading_deg)


def _elongated(d: Detection) -> bool:
    return d.width_m > 0 and d.length_m / d.width_m >= 1.5


def _components(edges: dict[tuple[int, int], float], nb: int, na: int) -> list[tuple[list[int], list[int]]]:
    """Connected groups of a bipartite graph given by its edges: (BEFORE indices, AFTER indices) per group."""
    if not edges:
        return []
    ij = np.array(list(edges), dtype=np.int64)
    graph = coo_array((np.ones(len(ij)), (ij[:, 0], nb + ij[:, 1])), shape=(nb + na, nb + na))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i in sorted(set(ij[:, 0].tolist())):
        groups.setdefault(int(labels[i]), ([], []))[0].append(i)
    for j in sorted(set(ij[:, 1].tolist())):
        groups.setdefault(int(labels[nb + j]), ([], []))[1].append(j)
    return list(groups.values())


def match_detections(
    before: Sequence[Detection],
    after: Sequence[Detection],
    *,
    config: MatchConfig = _DEFAULT_MATCH,
    ground_scale: float,
    registration_m: float = 0.0,
) -> list[tuple[int | None, int | None]]:
    """One-to-one matching of two dates' detections (same CRS).

    A pair is feasible when both are of the same kind, their centroids are within the kind's mooring drift
    (``max_vessel_shift_m`` / ``max_equipment_shift_m``) plus ``registration_m``, their lengths differ by at
    most ``length_tolerance`` and, for elongated objects, their headings by at most ``max_heading_change_deg``.
    Feasible pairs are assigned by :func:`scipy.optimize.linear_sum_assignment` on ``(1 - IoU) +
    distance/gate + length difference + heading difference/90``.

    Returns
    -------
    list of (before index or None, after index or None)
        Matched pairs first, then unmatched BEFORE detections ``(i, None)``, then unmatched AFTER ``(None, j)``.
    """
    nb, na = len(before), len(after)
    edges: dict[tuple[int, int], float] = {}
    # Only pairs whose centroids lie within the largest gate can be feasible: find them with an STRtree
    # instead of testing every pair (thousands of equipment items per date at sub-metre pixels).
    max_gate_m = max(config.max_vessel_shift_m, config.max_equipment_shift_m) + registration_m
    centres_b = shapely.points([d.centroid for d in before]) if nb else np.empty(0, dtype=object)
    centres_a = shapely.points([d.centroid for d in after]) if na else np.empty(0, dtype=object)
    near_b, near_a = (
        shapely.STRtree(centres_a).query(centres_b, predicate="dwithin", distance=max_gate_m / ground_scale)
        if nb and na
        else (np.empty(0, dtype=int), np.empty(0, dtype=int))
    )
    for i, j in zip(near_b.tolist(), near_a.tolist(), strict=True):
        b, a = before[i], after[j]
        if a.kind != b.kind:
            continue
        gate = _max_shift_m(b.kind, config) + registration_m
        iou, dist, dlen, dhead = _pair_terms(b, a, ground_scale=ground_scale)
        if dist > gate or dlen > config.length_tolerance:
            continue
        if _elongated(b) and _elongated(a) and dhead > config.max_heading_change_deg:
            continue
        edges[(i, j)] = (1.0 - iou) + min(dist / max(gate, 1e-9), 2.0) + dlen + dhead / 90.0
    pairs: list[tuple[int | None, int | None]] = []
    used_b: set[int] = set()
    used_a: set[int] = set()
    for rows_b, cols_a in _components(edges, nb, na):
        # one small assignment problem per connected group of feasible pairs (never an nb x na matrix)
        cost = np.full((len(rows_b), len(cols_a)), _INFEASIBLE)
        for r, i in enumerate(rows_b):
            for c, j in enumerate(cols_a):
                cost[r, c] = edges.get((i, j), _INFEASIBLE)
        for r, c in zip(*linear_sum_assignment(cost), strict=True):
            if cost[r, c] < _INFEASIBLE:
                pairs.append((rows_b[r], cols_a[c]))
                used_b.add(rows_b[r])
                used_a.add(cols_a[c])
    pairs.extend((i, None) for i in range(nb) if i not in used_b)
    pairs.extend((None, j) for j in range(na) if j not in used_a)
    return pairs


# ------------------------------------------------------------------------------------------------
# decisions
# ------------------------------------------------------------------------------------------------
def _changed(ev: dict[str, float], config: MatchConfig, here: str | None = None) -> bool:
    """Clear two-date change inside a footprint (hysteresis: anything weaker counts as no change).

    Either most of the footprint changed, or — for an object seen at date ``here`` — it stands out from its
    surroundings at that date and looks like its surroundings (water) at the other; an item on land must also
    have at least half the usual share of its pixels changed.

    With bare-ground evidence (equipment, :func:`_ground_evidence`) the footprint also changed when its median
    moved by ``ground_shift_sigma`` beyond the bare ground's own change (see :func:`_vacated` for which date's
    item the change is).
    """
    other = "after" if here == "before" else "before"
    if ev["ncc"] >= config.same_ncc and not _bare_at_other(ev, here, config):
        return False
    if ev["changed_fraction"] >= config.min_changed_fraction:
        return True
    if ev.get("ground_shift_z", 0.0) >= config.ground_shift_sigma:
        return True  # the footprint as a whole changed, well beyond the change of the bare ground around it
    if here is None:
        return False
    c_here, c_other = ev[f"contrast_{here}"], ev[f"contrast_{other}"]
    # a hull that stands out from the water at its date and is water-like at the other has changed, however few of
    # its pixels survive the ±1 px minimum (at coarse pixels a hull is only two or three pixels wide); items on
    # land also need part of their pixels changed (pavement texture can hide or mimic an item's contrast)
    if "ground_contrast_before" not in ev:
        return c_here >= config.min_gone_contrast and c_other <= 0.25 * c_here
    enough = ev["changed_fraction"] >= 0.5 * config.min_changed_fraction
    return c_here >= config.min_recover_contrast and c_other <= 0.25 * c_here and enough


def _bare_at_other(ev: dict[str, float], here: str | None, config: MatchConfig) -> bool:
    """The footprint is bare ground at the other date and not at date ``here`` (within ``change_sigma``).

    Then a correlation between the dates says nothing: what correlates is a gradient both dates share (blur
    of the edges, the ground's texture), not the item.
    """
    if here is None or "ground_contrast_before" not in ev:
        return False
    other = "after" if here == "before" else "before"
    return ev[f"ground_contrast_{other}"] < config.change_sigma <= ev[f"ground_contrast_{here}"]


def _vacated(ev: dict[str, float], here: str) -> bool:
    """Whether the other date looks at least as much like the bare ground as date ``here`` does.

    A change at the footprint of an item seen at date ``here`` is that item's own departure or arrival only
    then: a detection on the spot another item vacated (a piece of pavement, a neighbour's edge, a new shadow
    beside a stayed item) shows the other date's item, not its own coming or going. True without bare-ground
    evidence (vessels: judged by their contrast to the water in :func:`_changed`).
    """
    if "ground_contrast_before" not in ev:
        return True
    other = "after" if here == "before" else "before"
    return ev[f"ground_contrast_{other}"] <= ev[f"ground_contrast_{here}"]


def _occluded(ev: dict[str, float], other: str, config: MatchConfig) -> bool:
    """No data, a bright featureless footprint, or a whole neighbourhood changed (unmasked cloud/shadow).

    With bare-ground evidence (equipment), the neighbourhood is the bare ground between items: a block of items
    that left together changes the ring around each of them, not the ground between the blocks.
    """
    if "ground_quiet" in ev:
        whole = ev["ground_quiet"] < config.min_quiet_ground
    else:
        whole = ev["ring_z50"] >= 2.0 * config.change_sigma
    return ev[f"invalid_{other}"] > config.max_invalid_fraction or ev[f"cloud_{other}"] > 0 or whole


def _in_changed_light(ev: dict[str, float], other: str, config: MatchConfig) -> bool:
    """Occluded (:func:`_occluded`) only because the whole neighbourhood changed: the other date has data there."""
    return ev[f"invalid_{other}"] <= config.max_invalid_fraction and ev[f"cloud_{other}"] <= 0


def _same_item(
    b: Detection,
    a: Detection,
    evidence: Callable[[BaseGeometry, Detection], dict[str, float]],
    config: MatchConfig,
) -> bool:
    """Whether two overlapping equipment outlines of the two dates are the same item whose dark fringe moved.

    The part both outlines share (the item's body) is occupied at both dates (unlike the bare ground at each,
    beyond ``change_sigma``) and changed only by a cast shadow (:func:`cast_shadow_date`), or holds the same
    occupant at both (:func:`_same_occupant`: its colour against the ground hardly changed). A shadow that moved with
    the sun changes where a dark item's outline ends (the outline takes in its shadow), not the item itself. (Another
    item of the same colour put down overlapping it is taken for the same.)
    """
    if b.kind != "equipment":
        return False
    body = shapely.intersection(b.geometry, a.geometry)
    if body.is_empty or body.area <= 0:
        return False
    ev = evidence(body, b)
    if ev["pixels"] < config.min_change_pixels:
        return False
    return _shaded_not_changed(ev, config) or _same_occupant(ev, config)


def _shaded_not_changed(ev: dict[str, float], config: MatchConfig) -> bool:
    """The footprint is occupied at both dates and changed only by a cast shadow it lies in at one date: darker
    by the sky-lit spectrum (:func:`cast_shadow_date`) and, where there is bare ground beside it in that shadow to
    compare with, by the same factor per band as that ground, within ``_SHADE_TOLERANCE`` (``shade_mismatch``).
    An item that a structure's shadow moved onto or off with the sun, not one that came or left: an item that came
    onto ground that was in the shade shows that ground at the other date, darkened by another factor."""
    if "ground_contrast_before" not in ev or max(ev["ground_shadow_before"], ev["ground_shadow_after"]) < 1.0:
        return False
    if ev.get("shade_mismatch", 0.0) > math.log(_SHADE_TOLERANCE):
        return False
    return _occupied_at_both(ev, config)


def _shadow_piece(ev: dict[str, float], here: str, config: MatchConfig) -> bool:
    """A detection at date ``here`` that is bare ground in a cast shadow there, not an item: darker than at the other
    date by the sky-lit spectrum, by the same factor as the shaded bare ground beside it (``shade_mismatch``), and
    like the bare ground at the other date. The shadow of a structure moved there with the sun."""
    other = "after" if here == "before" else "before"
    if ev.get(f"ground_shadow_{here}", 0.0) < 1.0 or ev.get("shade_mismatch", math.inf) > math.log(_SHADE_TOLERANCE):
        return False
    return ev[f"ground_contrast_{other}"] < config.change_sigma


def _same_occupant(ev: dict[str, float], config: MatchConfig) -> bool:
    """The footprint holds the same occupant at both dates: unlike the bare ground at both (:func:`_occupied_at_both`)
    and its colour against that ground changed by less than ``same_occupant_change`` of itself (``occupant_change``).
    A shadow over part of it, or an outline the detector drew at one date only, changes the footprint a little; an
    item that left shows the ground, and one put down in its place has its own colour. (Unless it has the same
    colour: a blue container stacked onto a blue one, or put where one stood, is taken for the same.)"""
    return ev.get("occupant_change", math.inf) <= config.same_occupant_change and _occupied_at_both(ev, config)


def _occupied_at_both(ev: dict[str, float], config: MatchConfig) -> bool:
    """The footprint is unlike the bare ground around it at both dates (beyond ``change_sigma``): occupied."""
    if "ground_contrast_before" not in ev:
        return False
    return min(ev["ground_contrast_before"], ev["ground_contrast_after"]) >= config.change_sigma


_DIRECTIONS = [(math.cos(t), math.sin(t)) for t in np.arange(8) * math.pi / 4]  # (col, row) unit steps


def _shadow_direction(geoms: Sequence[BaseGeometry], grid: _Grid, tag: str, step_m: float) -> np.ndarray | None:
    """Direction in which items cast their shadows at date ``tag``: unit (x, y) vector in the CRS, or None.

    Each item's surroundings ``step_m`` out are sampled in eight directions; how much darker each side is than the
    item's median surroundings, as a vector, points down-sun; the items' unit vectors are averaged. None when fewer
    than three items or no consistent side (their mean vector shorter than a half: overcast, or no shadows).
    """
    gray = grid.gray_before if tag == "before" else grid.gray_after
    valid = grid.valid_before if tag == "before" else grid.valid_after
    k = max(1, round(step_m / grid.pixel_size_m))
    total = np.zeros(2)
    weight = 0.0
    for geom in geoms[:300]:
        wm = _window_masks(geom, grid, k + 1)
        if wm is None:
            continue
        sl, inside = wm
        g, v = gray[sl], valid[sl]
        sides = []
        for dc, dr in _DIRECTIONS:
            moved = ndi.shift(inside.astype(np.uint8), (dr * k, dc * k), order=0).astype(bool) & ~inside & v
            sides.append(float(np.mean(g[moved])) if moved.sum() >= 2 else math.nan)
        side = np.asarray(sides)
        if not np.isfinite(side).all():
            continue
        dark = np.clip(np.median(side) - side, 0.0, None)  # how much darker than its usual side
        vec = np.sum(dark[:, None] * np.asarray(_DIRECTIONS), axis=0)
        n = float(np.hypot(*vec))
        if n > 0:
            total += vec / n  # one vote per item (a tall stack's long shadow does not outvote the rest)
            weight += 1.0
    if weight < 3 or np.hypot(*total) < 0.5 * weight:
        return None
    # (col, row) -> CRS (x, y): rows grow southwards on a north-up grid
    x, y = total[0] * np.sign(grid.transform.a), total[1] * np.sign(grid.transform.e)
    n = math.hypot(x, y)
    return np.array([x / n, y / n]) if n > 0 else None


def _bright(o: ChangedObject) -> bool:
    """Whether an equipment object was detected brighter than the pavement (at either date)."""
    return any(d is not None and d.features.get("bright", 0.0) >= 1.0 for d in (o.before, o.after))


def _outlines_at(objects: Sequence[ChangedObject], tag: str) -> list[BaseGeometry]:
    """Outlines detected at date ``tag`` of the bright equipment that stayed: their shadows lie beside them (a dark
    item's outline takes in its own shadow), and at that date (not copies verified from the other date)."""
    out = []
    for o in objects:
        d = o.before if tag == "before" else o.after
        if (
            o.status == "stayed"
            and o.kind == "equipment"
            and d is not None
            and d.features.get("bright", 0.0) >= 1.0
            and not d.features.get("verified_from_other_date")
        ):
            out.append(d.geometry)
    return out


def _moved_shadow(
    ev: dict[str, float],
    det: Detection,
    casters: Sequence[BaseGeometry],
    tree: shapely.STRtree,
    down_sun: dict[str, np.ndarray | None],
    reach: float,
) -> bool:
    """Whether the change at a detection seen at one date only is a cast shadow that moved with the sun.

    It is when the footprint is in a shadow at one date that it is not in at the other (darker by the sky-lit
    spectrum, :func:`cast_shadow_date`: a shadow came, or left and the detection is the ground it uncovered) and lies
    within ``reach`` (CRS units) of an item present at both dates that casts it: the change is in the shadow beside
    that item, not in an item's body of its own — on the side away from the sun at the date of the shadow
    (``down_sun``, :func:`_shadow_direction`: within 45 degrees of the direction from the item to the footprint).
    A dark item (black paint darkens like a shadow) beside others but not down-sun of them stays a change.
    """
    for tag in ("before", "after"):
        direction = down_sun.get(tag)
        if ev.get(f"ground_shadow_{tag}", 0.0) < 1.0 or direction is None:
            continue
        c = det.geometry.centroid
        for i in tree.query(det.geometry, predicate="dwithin", distance=reach):
            o = casters[int(i)].centroid
            v = np.array([c.x - o.x, c.y - o.y])
            n = float(np.hypot(*v))
            if n > 0 and float(v @ direction) / n >= math.cos(math.pi / 4):
                return True
    return False


def _copy_detection(d: Detection, **features: float) -> Detection:
    return Detection(
        geometry=d.geometry,
        kind=d.kind,
        confidence=d.confidence,
        length_m=d.length_m,
        width_m=d.width_m,
        heading_deg=d.heading_deg,
        area_m2=d.area_m2,
        id=d.id,
        features={**d.features, **features},
    )


def _object(
    status: Status,
    det: Detection,
    *,
    before: Detection | None,
    after: Detection | None,
    confidence: float,
    evidence: dict[str, float],
) -> ChangedObject:
    return ChangedObject(
        id="",
        kind=det.kind,
        status=status,
        geometry=det.geometry,
        confidence=float(np.clip(confidence, 0.0, 1.0)),
        length_m=det.length_m,
        width_m=det.width_m,
        heading_deg=det.heading_deg,
        area_m2=det.area_m2,
        before=before,
        after=after,
        evidence={k: round(float(v), 4) for k, v in evidence.items()},
    )


def _change_strength(ev: dict[str, float], config: MatchConfig = _DEFAULT_MATCH) -> float:
    # share of the footprint that changed; a footprint shifted as a whole counts as half changed at the
    # threshold, fully at twice the threshold
    changed = ev["changed_fraction"]
    if "ground_shift_z" in ev:
        changed = max(changed, 0.5 * ev["ground_shift_z"] / max(config.ground_shift_sigma, 1e-9))
    return float(np.clip(changed, 0.0, 1.0) * (1.0 - max(ev["ncc"], 0.0)))


def _ring_m(d: Detection) -> float:
    return float(np.clip(d.width_m, 3.0, 20.0))


def _one_sided(
    b: Detection, a: Detection, ev_b: dict[str, float], ev_a: dict[str, float], *, gone: bool, config: MatchConfig
) -> list[ChangedObject]:
    """A matched pair where only one side changed: that side departed/arrived, the other is a verified stay."""
    changed, ev_c, kept, ev_k = (b, ev_b, a, ev_a) if gone else (a, ev_a, b, ev_b)
    conf = 0.5 * (changed.confidence + _change_strength(ev_c, config))
    ev_k = {**ev_k, "verified": 1.0}
    twin = _copy_detection(kept, verified_from_other_date=1.0)
    sameness = max(ev_k["ncc"], 0.0) * (1.0 - ev_k["changed_fraction"])
    conf_k = 0.5 * (kept.confidence + sameness)
    if gone:
        return [
            _object("departed", b, before=b, after=None, confidence=conf, evidence=ev_c),
            _object("stayed", a, before=twin, after=a, confidence=conf_k, evidence=ev_k),
        ]
    return [
        _object("arrived", a, before=None, after=a, confidence=conf, evidence=ev_c),
        _object("stayed", b, before=b, after=twin, confidence=conf_k, evidence=ev_k),
    ]


def _classify(
    before: list[Detection],
    after: list[Detection],
    grid: _Grid,
    config: MatchConfig,
    registration_m: float,
    bands: Sequence[str] | None = None,
) -> list[ChangedObject]:
    pairs = match_detections(
        before, after, config=config, ground_scale=grid.ground_scale, registration_m=registration_m
    )
    use_ground = config.ground_radius_m > 0 and any(d.kind == "equipment" for d in (*before, *after))
    bare = _bare_ground([*before, *after], grid, config.ground_margin_m) if use_ground else None

    def evidence(geom: BaseGeometry, d: Detection) -> dict[str, float]:
        ev = footprint_evidence(
            geom, grid, change_sigma=config.change_sigma, ring_m=_ring_m(d), hull=d.kind == "vessel"
        )
        if bare is not None and d.kind == "equipment":
            # small items are judged against the bare ground around them, not a thin ring (full of neighbours
            # in a packed row) nor pixel by pixel (a 3 x 2 m item is mostly edge pixels)
            ev.update(
                _ground_evidence(
                    geom,
                    grid,
                    bare,
                    radius_m=config.ground_radius_m,
                    change_sigma=config.change_sigma,
                    bands=bands,
                )
            )
        return ev

    objects: list[ChangedObject] = []
    unmatched_b = [i for i, j in pairs if j is None and i is not None]
    unmatched_a = [j for i, j in pairs if i is None and j is not None]
    for i, j in pairs:
        if i is None or j is None:
            continue
        b, a = before[i], after[j]
        iou, dist, dlen, dhead = _pair_terms(b, a, ground_scale=grid.ground_scale)
        ev = evidence(b.geometry, b)
        ev.update(iou=iou, distance_m=dist, length_change=dlen, heading_change_deg=dhead)
        # same object, or another one of similar size at the same berth? compare its appearance with the
        # displacement between the two detections compensated; split only on clear change at both footprints
        sim = _moved_similarity(b.geometry, a.geometry, grid)
        ev["moved_ncc"] = sim
        if sim < config.same_ncc and dhead <= 10.0:
            ev_a = evidence(a.geometry, a)
            gone, came = _changed(ev, config, "before"), _changed(ev_a, config, "after")
            ev_a.update(iou=iou, distance_m=dist, length_change=dlen, heading_change_deg=dhead, moved_ncc=sim)
            if b.kind == "equipment" and (gone or came) and _same_item(b, a, evidence, config):
                gone = came = False  # the same item at both dates: only its shadow moved
            if b.kind == "equipment":
                # both footprints changed, and both or neither look like the bare ground at the other date: one
                # item left and another came (or replaced it); otherwise only the vacated side changed (below)
                gone_here, came_here = gone and _vacated(ev, "before"), came and _vacated(ev_a, "after")
                if not (gone and came and gone_here == came_here):
                    gone, came = gone_here, came_here
            if gone and came:
                s_b, s_a = _change_strength(ev, config), _change_strength(ev_a, config)
                objects.append(
                    _object("departed", b, before=b, after=None, confidence=0.5 * (b.confidence + s_b), evidence=ev)
                )
                objects.append(
                    _object("arrived", a, before=None, after=a, confidence=0.5 * (a.confidence + s_a), evidence=ev_a)
                )
                continue
            if b.kind == "equipment" and (gone or came):
                # one item left (or came) and the other date's detection near it is not an item of its own that
                # changed (a piece of a neighbour, pavement, the vacated spot): report the change, and the other
                # detection as verified on both dates (absorbed if it lies inside the changed item)
                objects.extend(_one_sided(b, a, ev, ev_a, gone=gone, config=config))
                continue
        conf = 0.5 * (b.confidence + a.confidence) * (1.0 - 0.5 * min(dist / max(config.max_vessel_shift_m, 1), 1))
        objects.append(_object("stayed", b, before=b, after=a, confidence=conf, evidence=ev))

    # an unmatched detection overlapping an unmatched one of the other date (another length or heading):
    # judge the berth as a whole — changed => one departure plus one arrival, unchanged => the same object
    taken_a: set[int] = set()
    lone_b: list[int] = []
    for i in unmatched_b:
        b = before[i]
        partner = None
        best = 0.0
        for j in unmatched_a:
            a = after[j]
            if j in taken_a or a.kind != b.kind:
                continue
            inter = shapely.area(shapely.intersection(b.geometry, a.geometry))
            share = inter / max(min(b.geometry.area, a.geometry.area), 1e-12)
            if share > 0.2 and share > best:
                partner, best = j, share
        if partner is None:
            lone_b.append(i)
            continue
        a = after[partner]
        taken_a.add(partner)
        union = shapely.union(b.geometry, a.geometry)
        ev = evidence(union, b)
        iou, dist, dlen, dhead = _pair_terms(b, a, ground_scale=grid.ground_scale)
        ev.update(iou=iou, distance_m=dist, length_change=dlen, heading_change_deg=dhead)
        if ev["invalid_after"] > config.max_invalid_fraction or ev["invalid_before"] > config.max_invalid_fraction:
            objects.append(_object("unknown", b, before=b, after=a, confidence=0.5 * b.confidence, evidence=ev))
        elif (
            _changed(ev, config) and not _same_item(b, a, evidence, config) and not _shaded_not_changed(ev, config)
        ) or (
            b.kind == "vessel"
            and dlen > 2 * config.length_tolerance
            and ev["ncc"] < config.same_ncc
            and ev["changed_fraction"] >= 0.5 * config.min_changed_fraction
        ):
            # (equipment outlines split and merge along packed rows from one date to the other: for equipment
            # only the footprint's evidence says whether it changed; a vessel of another length is another ship
            # unless the berth looks the same at both dates or hardly any of its pixels changed — then the detector
            # cut the same hull differently: a faint hull at coarse pixels has no pattern to correlate)
            s = _change_strength(ev, config)
            objects.append(
                _object("departed", b, before=b, after=None, confidence=0.5 * (b.confidence + s), evidence=ev)
            )
            objects.append(
                _object("arrived", a, before=None, after=a, confidence=0.5 * (a.confidence + s), evidence=ev)
            )
        else:
            conf = 0.5 * (b.confidence + a.confidence) * (1.0 - _change_strength(ev, config))
            objects.append(_object("stayed", b, before=b, after=a, confidence=conf, evidence=ev))

    # lone detections: verify on the other date before calling them departed / arrived
    lone = [(before[i], "departed", "after") for i in lone_b]
    lone += [(after[j], "arrived", "before") for j in unmatched_a if j not in taken_a]
    # objects present at both dates: the casters of shadows that moved with the sun between the dates
    # (bright ones: a dark item's outline takes in its own shadow, and its moved shadow moves its outline instead)
    casters = [o.geometry for o in objects if o.status == "stayed" and o.kind == "equipment" and _bright(o)]
    caster_tree = shapely.STRtree(casters)
    caster_reach = config.ground_margin_m / grid.ground_scale
    down_sun = {
        tag: _shadow_direction(_outlines_at(objects, tag), grid, tag, config.ground_margin_m)
        for tag in ("before", "after")
    }
    for det, change_status, other in lone:
        ev = evidence(det.geometry, det)
        here = "before" if other == "after" else "after"
        if ev[f"invalid_{here}"] > config.max_invalid_fraction:
            continue  # detected on no data: nothing to say
        status: Status
        thin = ev["pixels"] < config.min_change_pixels and ev["ncc"] < config.same_ncc
        if _occluded(ev, other, config):
            if _in_changed_light(ev, other, config) and _occupied_at_both(ev, config) and ev["ncc"] >= config.same_ncc:
                # the whole neighbourhood changed (a cloud's shadow), yet the item stands out from the ground around
                # it at both dates with the same pattern: it is there at both (under a cloud it is neither)
                status, conf = "stayed", 0.5 * (det.confidence + ev["ncc"])
            else:
                status, conf = "unknown", 0.5 * det.confidence
        elif thin:
            # a few pixels seen at one date only (whitecap, glint, speck): neither a change nor a stay can be
            # vouched for, so the object is not reported
            logger.debug("lone %s of %d px at %s dropped: too small to verify", det.kind, ev["pixels"], det.centroid)
            continue
        elif _shadow_piece(ev, here, config):
            logger.debug("lone %s at %s dropped: bare ground in a shadow at one date", det.kind, det.centroid)
            continue
        elif (
            _changed(ev, config, here)
            and _vacated(ev, here)
            and not _moved_shadow(ev, det, casters, caster_tree, down_sun, caster_reach)
            and not _shaded_not_changed(ev, config)
            and not _same_occupant(ev, config)
        ):
            status, conf = change_status, 0.5 * (det.confidence + _change_strength(ev, config))  # type: ignore[assignment]
        else:
            # default to stayed; confidence says how much the footprint really looks the same at both dates
            sameness = max(ev["ncc"], 0.0) * (1.0 - ev["changed_fraction"])
            status, conf = "stayed", 0.5 * (det.confidence + sameness)
        ev["verified"] = 1.0 if status == "stayed" else 0.0
        twin = _copy_detection(det, verified_from_other_date=1.0) if status == "stayed" else None
        if other == "after":
            objects.append(_object(status, det, before=det, after=twin, confidence=conf, evidence=ev))
        else:
            objects.append(_object(status, det, before=twin, after=det, confidence=conf, evidence=ev))
    return _absorb_fragments(_drop_turned_shadows(objects, config.shadow_pair_m / grid.ground_scale))


def _drop_turned_shadows(objects: list[ChangedObject], reach: float) -> list[ChangedObject]:
    """Drop a shadow seen gone at one date and a shadow seen come within ``reach`` (CRS units) at the other.

    Each is dark equipment reported gone (or come) whose footprint is in a shadow at its own date that it is not
    in at the other (darker by the sky-lit spectrum, :func:`cast_shadow_date`): detected at one date only, or
    matched to a detection of the other date and judged a different item. The shadow of a structure that is
    not an item (a crane leg, a mast, a light pole) turns with the sun between the dates: where it lay the
    pavement is bare afterwards, where it lies now it was bare before, side by side. Each half looks like a dark
    item that left or came; together they are one shadow that moved. A bright item is its own evidence and is
    never dropped; shadows cast by items present at both dates are handled by :func:`_moved_shadow`.
    """
    if reach <= 0:
        return objects

    def dark_change(o: ChangedObject, status: str) -> bool:
        here = "before" if status == "departed" else "after"
        return (
            o.kind == "equipment"
            and o.status == status
            and not _bright(o)
            and o.evidence.get(f"ground_shadow_{here}", 0.0) >= 1.0
        )

    gone = [o for o in objects if dark_change(o, "departed")]
    came = [o for o in objects if dark_change(o, "arrived")]
    if not gone or not came:
        return objects
    tree = shapely.STRtree([o.geometry for o in came])
    drop: set[int] = set()
    for o in gone:
        near = tree.query(o.geometry, predicate="dwithin", distance=reach)
        if near.size:
            drop.add(id(o))
            drop.update(id(came[int(i)]) for i in near)
    if drop:
        logger.debug("%d dark equipment changes dropped as a shadow that turned with the sun", len(drop))
    return [o for o in objects if id(o) not in drop]


def _absorb_fragments(objects: list[ChangedObject]) -> list[ChangedObject]:
    """Drop lone "stayed" detections lying mostly inside a departed/arrived object of the same kind.

    A detector often splits one hull (or its wake) into pieces; a piece left unmatched and defaulted to stayed
    inside an object that clearly changed is part of that object, not a second one.
    """
    changed = [o for o in objects if o.status in ("departed", "arrived")]
    if not changed:
        return objects
    keep: list[ChangedObject] = []
    for o in objects:
        if o.status == "stayed" and o.evidence.get("verified") == 1.0:
            area = o.geometry.area
            inside = max(
                (shapely.area(shapely.intersection(o.geometry, c.geometry)) for c in changed if c.kind == o.kind),
                default=0.0,
            )
            if area > 0 and inside / area > 0.5:
                logger.debug("stayed fragment %s absorbed by a changed object", o.geometry.centroid)
                continue
        keep.append(o)
    return keep


# ------------------------------------------------------------------------------------------------
# recovery of vessels the single-date detector missed
# ------------------------------------------------------------------------------------------------
def _explained_mask(geoms: Sequence[BaseGeometry], grid: _Grid, buffer_m: float) -> np.ndarray:
    if not geoms:
        return np.zeros(grid.shape, dtype=bool)
    buf = buffer_m / grid.ground_scale
    shapes = [(g.buffer(buf), 1) for g in geoms if not g.is_empty]
    return rfeatures.rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8").astype(
        bool
    )


def _change_clutter(
    mag: np.ndarray, zone: np.ndarray, regions: np.ndarray, sigma: float, window_px: float
) -> np.ndarray:
    """Share of the zone's pixels around each pixel (box of ``window_px``) that changed by ``sigma`` or more,
    leaving out the candidate regions themselves: the local background change rate (CFAR-like)."""
    size = max(3, round(window_px) | 1)
    background = zone & ~regions
    changed = ndi.uniform_filter(((mag >= sigma) & background).astype(np.float32), size=size, mode="constant")
    total = ndi.uniform_filter(background.astype(np.float32), size=size, mode="constant")
    return np.where(total > 1e-6, changed / np.maximum(total, 1e-6), 1.0)


def _recover_vessels(
    grid: _Grid,
    explained: np.ndarray,
    zone: np.ndarray,
    *,
    settings: Settings,
) -> list[ChangedObject]:
    cfg = settings.match
    vcfg = settings.vessel
    px = grid.pixel_size_m
    valid = grid.valid_before & grid.valid_after
    mag = np.where(valid & zone & ~explained, grid.magnitude, 0.0)
    cand = apply_hysteresis_threshold(mag, cfg.change_sigma, cfg.recover_sigma)
    min_area_px = max(4.0, vcfg.min_length_m * max(vcfg.min_width_m, px) / px**2)
    cand = remove_small_objects(cand, max_size=int(min_area_px), connectivity=2)
    labels, n = ndi.label(cand, structure=np.ones((3, 3)))
    out: list[ChangedObject] = []
    if n == 0:
        return out
    clutter = _change_clutter(mag, valid & zone & ~explained, cand, cfg.change_sigma, cfg.recover_clutter_window_m / px)
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        sub = labels[sl] == k
        rr, cc = np.nonzero(sub)
        if clutter[sl[0].start + int(np.median(rr)), sl[1].start + int(np.median(cc))] >= cfg.max_recover_clutter:
            continue  # rough or glinting water changes everywhere: a change here is sea clutter, not a hull
        # the ±1 px minimum erodes the region by about one pixel on each side: give it back
        sub = ndi.binary_dilation(np.pad(sub, 1), iterations=1)
        r0, c0 = sl[0].start - 1, sl[1].start - 1
        wt = grid.transform @ Affine.translation(c0, r0)
        polys = [shape(g) for g, v in rfeatures.shapes(sub.astype(np.uint8), mask=sub, transform=wt) if v == 1]
        if not polys:
            continue
        geom = shapely.union_all(polys)
        length, width, heading, rect = oriented_measures(geom, ground_scale=grid.ground_scale, crs=grid.crs)
        if not (vcfg.min_length_m <= length <= vcfg.max_length_m and width <= vcfg.max_width_m):
            continue
        if width <= 0 or length / width < cfg.min_recover_elongation:
            continue
        fill = geom.area / max(rect.area, 1e-12)
        if fill < 0.5:
            continue
        ev = footprint_evidence(
            rect, grid, change_sigma=cfg.change_sigma, ring_m=float(np.clip(width, 3.0, 20.0)), hull=True
        )
        if ev["ring_z50"] >= 0.5 * cfg.change_sigma:
            continue  # the water around a hull that came or went is quiet; here it changed too (cloud, shadow)
        cb, ca = ev["contrast_before"], ev["contrast_after"]
        hi, lo = max(cb, ca), min(cb, ca)
        if hi < cfg.min_recover_contrast or hi < 2.0 * lo:
            continue  # no date clearly shows a hull against its surroundings: not recovered
        status: Status = "departed" if cb > ca else "arrived"
        conf = float(
            np.clip(0.25 + 0.5 * _change_strength(ev) * min(1.0, hi / (2 * cfg.min_recover_contrast)), 0.0, 0.75)
        )
        det = Detection(
            geometry=rect,
            kind="vessel",
            confidence=conf,
            length_m=length,
            width_m=width,
            heading_deg=heading if heading < 180.0 else 0.0,
            area_m2=float(geom.area * grid.ground_scale**2),
            features={"recovered_from_change": 1.0},
        )
        ev["recovered"] = 1.0
        ev["fill"] = fill
        if status == "departed":
            out.append(_object(status, det, before=det, after=None, confidence=conf, evidence=ev))
        else:
            out.append(_object(status, det, before=None, after=det, confidence=conf, evidence=ev))
    return out


def _merge_berth_changes(
    objects: list[ChangedObject], berths: Sequence[ChangedObject], grid: _Grid, config: MatchConfig
) -> list[ChangedObject]:
    """Add vessels found from water-surface change (:mod:`berthwatch.berths`) to the matched objects.

    A region whose footprint is cloud-like at the date it is "present" (bright and featureless), whose whole
    neighbourhood changed (an unmasked cloud or its shadow), or whose pixels hardly changed between the dates
    (few past ``change_sigma`` and a median change under ``berth_min_diff_z``: the water outline flipped on its
    threshold, or a shadow moved in the ring around it) is not a hull and is dropped; nor is one that does not
    stand out from the water ring in any band at its date while it is water-like at the other
    (:func:`_changed`). A detector object of the same status
    that the berth change overlaps (footprint IoU >= 0.3) is kept, and measured on the berth change when less than
    ``berth_outline_agreement`` of its outline lies in it; one that lies for at least half inside such an object is
    a piece of it and adds nothing. Otherwise
    the berth change wins over the vessel objects it covers for at least half of their area: fragments of the
    hull, or a "stayed" that the water, open at one of the dates, contradicts.
    """
    out = list(objects)
    for b in berths:
        ring_m = float(np.clip(b.width_m, 3.0, 20.0))
        ev = footprint_evidence(b.geometry, grid, change_sigma=config.change_sigma, ring_m=ring_m, hull=True)
        here = "before" if b.status == "departed" else "after"
        if ev[f"cloud_{here}"] > 0 or ev["ring_z50"] >= 2.0 * config.change_sigma:
            continue
        weak = ev["changed_fraction"] < 0.5 * config.min_changed_fraction and ev["diff_z"] < config.berth_min_diff_z
        if weak or not _changed(ev, config, here):
            continue  # the pixels hardly changed: the water outline flipped on its threshold (colour drift), no hull
        b.evidence.update({k: round(float(ev[k]), 4) for k in ("ncc", "changed_fraction", "ring_z50")})
        vessels = [o for o in out if o.kind == "vessel" and not o.geometry.is_empty]
        same = [
            o
            for o in vessels
            if o.status == b.status
            and o.geometry.intersection(b.geometry).area >= 0.3 * o.geometry.union(b.geometry).area
        ]
        if not same and any(
            o.status == b.status and o.geometry.intersection(b.geometry).area >= 0.5 * b.geometry.area for o in vessels
        ):
            continue  # a piece of a hull already reported with this status (the water opened only under part of it)
        if same:
            # the region that became (or stopped being) open water is the hull itself; a single-date outline at a
            # quay that reaches well beyond it took in the quay edge, a shadow or the next hull: keep the object,
            # measure it on the water change instead
            o = same[0]
            o.evidence.update(b.evidence)
            if o.geometry.intersection(b.geometry).area >= config.berth_outline_agreement * o.geometry.area:
                continue
            rest = o.geometry.difference(b.geometry)
            under = shapely.union_all([v.geometry for v in vessels if v.status != b.status]).intersection(rest)
            if under.area >= 0.5 * rest.area:
                continue  # the rest of the hull lies under a ship of the other date: only part of the berth opened
            o.geometry, o.length_m, o.width_m = b.geometry, b.length_m, b.width_m
            o.heading_deg, o.area_m2 = b.heading_deg, b.area_m2
            o.confidence = max(o.confidence, b.confidence)
            continue
        covered = {
            id(o) for o in vessels if o.geometry.intersection(b.geometry).area >= 0.5 * max(o.geometry.area, 1e-12)
        }
        out = [o for o in out if id(o) not in covered]
        out.append(b)
    return out


# ------------------------------------------------------------------------------------------------
# layers and the public entry point
# ------------------------------------------------------------------------------------------------
def _layers(
    pair: AlignedPair,
    objects: Sequence[ChangedObject],
    magnitude: np.ndarray,
    *,
    config: MatchConfig,
    water: np.ndarray | None = None,
) -> np.ndarray:
    valid = pair.valid
    shape_ = pair.before.shape
    transform = pair.before.transform
    px = pair.before.pixel_size_m
    gs = pair.before.ground_scale
    cls = np.zeros(shape_, dtype=np.uint8)
    other = magnitude > config.other_change_sigma
    # changes around any reported object (its edges, a swing at berth) are that object's, not "other"
    around = [(o.geometry.buffer(config.object_margin_m / gs), 1) for o in objects if not o.geometry.is_empty]
    if around:
        near = rfeatures.rasterize(around, out_shape=shape_, transform=transform, fill=0, dtype="uint8").astype(bool)
        other &= ~near
    other &= valid
    min_px = max(1, round(config.min_other_change_m2 / px**2))
    other = remove_small_objects(other, max_size=min_px - 1) if min_px > 1 else other
    cls[other] = 3
    for status, value in (("departed", 1), ("arrived", 2)):
        geoms = [(o.geometry, value) for o in objects if o.status == status and not o.geometry.is_empty]
        if geoms:
            burned = rfeatures.rasterize(geoms, out_shape=shape_, transform=transform, fill=0, dtype="uint8")
            cls[burned == value] = value
    cls[~valid] = 255
    return cls


def change_layers(
    pair: AlignedPair,
    objects: Sequence[ChangedObject],
    *,
    water: np.ndarray | None = None,
    config: MatchConfig = _DEFAULT_MATCH,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel change class and magnitude on the pair's grid.

    Returns
    -------
    change_class : uint8
        0 no change, 1 inside a departed object, 2 inside an arrived object, 3 other significant surface change
        (magnitude above ``other_change_sigma`` away from reported objects, regions of at least
        ``min_other_change_m2``), 255 no valid data at one of the dates.
    magnitude : float32
        :func:`change_magnitude` (robust-sigma units, minimum over ±1 px misregistration).
    """
    mag = change_magnitude(pair, shift_px=_shift_radius(pair))
    return _layers(pair, objects, mag, config=config, water=water), mag


def _shift_radius(pair: AlignedPair) -> int:
    res = pair.alignment.residual_px if math.isfinite(pair.alignment.residual_px) else 0.0
    return int(np.clip(math.ceil(res), 1, 2))


def _order_and_name(objects: list[ChangedObject], transform: Affine) -> list[ChangedObject]:
    inv = ~transform

    def key(o: ChangedObject) -> tuple[int, float, float]:
        c = o.geometry.centroid
        col, row = inv @ (c.x, c.y)
        return (STATUSES.index(o.status), round(row, 3), round(col, 3))

    out: list[ChangedObject] = []
    for kind, prefix in (("vessel", "V"), ("equipment", "E")):
        mine = sorted((o for o in objects if o.kind == kind), key=key)
        for n, o in enumerate(mine, start=1):
            o.id = f"{prefix}{n:03d}"
            out.append(o)
    return out


def diff(
    before: Sequence[Detection],
    after: Sequence[Detection],
    pair: AlignedPair,
    *,
    settings: Settings = _DEFAULT_SETTINGS,
    water: np.ndarray | None = None,
    progress: Progress | None = None,
) -> ChangeSet:
    """Object-level comparison of two dates on the common grid of ``pair``.

    Parameters
    ----------
    before, after
        Detections on ``pair.before`` and ``pair.after`` (CRS of the pair).
    pair
        The aligned pair (its normalised difference is the two-date evidence).
    settings
        ``settings.match`` drives matching and evidence thresholds; ``settings.vessel`` bounds recovered
        vessels.
    water
        Union water mask of both dates (vessel search domain) on the pair's grid. Regions of change are
        recovered as vessels only inside it; without it, anywhere.
    progress
        Optional ``progress(stage, fraction)`` callback.

    Returns
    -------
    ChangeSet
        Objects with status (ids ``V001``…, ``E001``… ordered by status then position), the change class and
        magnitude layers and the water mask used.
    """
    cfg = settings.match
    if water is not None and water.shape != pair.before.shape:
        raise ValueError(f"water mask shape {water.shape} != pair grid {pair.before.shape}")

    def report(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    report("diff: change magnitude", 0.0)
    mag = change_magnitude(pair, shift_px=_shift_radius(pair))
    grid = _grid(pair, mag, water)
    res_px = pair.alignment.residual_px if math.isfinite(pair.alignment.residual_px) else 0.0
    registration_m = 3.0 * res_px * grid.pixel_size_m
    report("diff: matching", 0.3)
    objects = _classify(list(before), list(after), grid, cfg, registration_m, bands=pair.before.bands)
    report("diff: recovery", 0.6)
    if cfg.berth:
        objects = _merge_berth_changes(objects, berth_changes(pair, settings=settings), grid, cfg)
    if cfg.recover:
        geoms = [d.geometry for d in (*before, *after)] + [o.geometry for o in objects]
        explained = _explained_mask(geoms, grid, buffer_m=max(2.0 * grid.pixel_size_m, cfg.object_margin_m))
        zone = water if water is not None else np.ones(grid.shape, dtype=bool)
        objects.extend(_recover_vessels(grid, explained, zone, settings=settings))
    objects = _order_and_name(objects, pair.before.transform)
    report("diff: layers", 0.85)
    cls = _layers(pair, objects, mag, config=cfg, water=water)
    counts: dict[str, int] = {}
    for o in objects:
        counts[f"{o.kind}/{o.status}"] = counts.get(f"{o.kind}/{o.status}", 0) + 1
    logger.info("diff: %d objects %s", len(objects), counts)
    report("diff: done", 1.0)
    return ChangeSet(objects=objects, change_class=cls, magnitude=mag, water=water)
