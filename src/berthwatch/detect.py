"""Single-date detection of vessels (on the water domain) and quay equipment (on land, fine pixels only).

Vessels (METHODS.md sections 2-4)
    Every band is turned into a two-sided contrast ``z = (x - mean) / std`` against *local water statistics*:
    mean and standard deviation over a large window computed by masked normalized convolution, so land never
    enters the background, in two passes, the second ignoring pixels that the first found anomalous (truncated
    statistics for crowded harbours). Bright and dark hulls are both anomalies. Candidates are grown by
    hysteresis on the root-mean-square contrast over the bands, rafted hulls are split where a seam runs
    along them, a wake is split off at the change point of the along-axis profile of the NIR share of the
    contrast (lower in foam; with a NIR band) or, without NIR, a V-shaped wake blob is cut to the hull at its
    apex, and foam is trimmed where the contrast fades; every object is kept
    or refused on physical size and shape, and on its vegetation index where NIR exists. The confidence is the
    probability of a learned classifier on the candidate's evidence (:mod:`berthwatch.classify`).
Equipment (METHODS.md section 5)
    White and black top-hats with a square slightly wider than a container pick out narrow bright and dark
    objects on open pavement (land away from the water's edge and off large uniform bright roofs); objects are
    kept on length, width and rectangularity, and merged container rows are cut at module lengths.

All sizes come from the config sections in metres and are converted with ``scene.pixel_size_m``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage as ndi
from shapely.geometry import MultiPoint, Polygon
from skimage import filters

from berthwatch.config import EquipmentConfig, Settings, VesselConfig
from berthwatch.geo import oriented_measures, pixel_to_crs, principal_axes
from berthwatch.masks import contrast_bands, local_mean_std, water_mask
from berthwatch.models import Detection, DetectionResult, Scene

log = logging.getLogger(__name__)

# frozen dataclasses: safe as shared defaults
_VESSEL = VesselConfig()
_EQUIPMENT = EquipmentConfig()
_SETTINGS = Settings()

__all__ = [
    "FEATURE_NAMES",
    "VesselCandidate",
    "contrast_bands",
    "detect",
    "detect_vessels",
    "measure",
    "vessel_candidates",
]

Progress = Callable[[str, float], None]


# ---------------------------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------------------------
def measure(geom_crs: shapely.Geometry, scene: Scene) -> tuple[float, float, float, Polygon]:
    """Length and width (metres), heading (degrees 0-180 from true north) and oriented rectangle of a footprint."""
    return oriented_measures(geom_crs, ground_scale=scene.ground_scale, crs=scene.crs)


def _px(metres: float, scene: Scene) -> float:
    return metres / scene.pixel_size_m


def _odd(n: float) -> int:
    return max(3, round(n) | 1)


def _footprint(obj_mask: np.ndarray, r0: int, c0: int, scene: Scene) -> Polygon:
    """Convex outline of the pixel squares of a component, in scene CRS."""
    er = obj_mask & ~ndi.binary_erosion(obj_mask)
    rr, cc = np.nonzero(er)
    if rr.size == 0:
        rr, cc = np.nonzero(obj_mask)
    pts = np.concatenate(
        [np.column_stack([cc + c0 + dx, rr + r0 + dy]) for dx, dy in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))]
    )
    hull = MultiPoint(pts).convex_hull
    if not isinstance(hull, Polygon):
        hull = hull.buffer(0.5, cap_style="square")
    return pixel_to_crs(hull, scene.transform)


def _principal_axes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates of the mask projected on its major (u) and minor (v) axes, with the indices."""
    rr, cc = np.nonzero(mask)
    u, t, *_ = principal_axes(rr, cc)
    return u, t, rr, cc


def _touches(mask: np.ndarray, other: np.ndarray) -> bool:
    return bool((ndi.binary_dilation(mask) & other).any())


# ---------------------------------------------------------------------------------------------------------------
# vessels
# ---------------------------------------------------------------------------------------------------------------
#: Per-candidate evidence given to the classifier (berthwatch.classify), in this order. Sizes are in metres or
#: pixels with the pixel size itself as a feature, contrasts are local z-scores: one model serves 0.5-10 m.
FEATURE_NAMES: tuple[str, ...] = (
    "pixel_size_m",
    "has_nir",
    "length_m",
    "width_m",
    "length_px",
    "width_px",
    "log_area_m2",
    "elongation",
    "rectangularity",
    "z_peak",
    "z_max",
    "z_mean",
    "z_std",
    "zvis_mean",
    "zvis_median",
    "zvis_min",
    "zvis_max",
    "bright_frac",
    "znir_mean",
    "nir_ratio",
    "ring_z",
    "ring_land",
    "ring_water",
    "land_contrast",
    "water_side_z",
    "fringe_frac",
    "touches_invalid",
    "clutter",
    "wake_cut",
    "split",
    "shore_region",
    "end_contrast",
)


@dataclass
class VesselCandidate:
    """One candidate object: its pixel mask in a sub-window at (r0, c0) and its evidence (``FEATURE_NAMES``)."""

    mask: np.ndarray
    r0: int
    c0: int
    features: dict[str, float]

    def vector(self) -> np.ndarray:
        return np.array([self.features[k] for k in FEATURE_NAMES], dtype=np.float64)


def _extent_px(mask: np.ndarray) -> tuple[float, float]:
    """Length and width (pixels) of a component along its principal axes."""
    if mask.sum() < 2:
        return 1.0, 1.0
    u, t, _rr, _cc = _principal_axes(mask)
    return float(np.ptp(u)) + 1.0, float(np.ptp(t)) + 1.0


def _split_seam(mask: np.ndarray, signal: np.ndarray, *, px_m: float, config: VesselConfig) -> list[np.ndarray]:
    """Split a blob holding hulls side by side (rafted) along a seam parallel to its long axis.

    Only a blob at least twice as wide as a plausible beam for its length is examined (beam ~ 0.12 x length,
    at least ``min_rafted_beam_m``; the blur's extra pixel is discounted), and each part must keep at least
    two pixels of beam. The across-axis profile of the signed contrast is searched, in the middle of the beam,
    for a trough (a dark seam or water sliver) or a step (two hulls of different brightness); both parts must
    be hull-shaped (at least ``min_part_elongation``).
    """
    u, t, rr, cc = _principal_axes(mask)
    length = (np.ptp(u) + 1.0) * px_m
    width = np.ptp(t) * px_m  # the blur adds about one pixel across
    beam = max(config.min_rafted_beam_m, 0.12 * length)
    nb = int(np.ptp(t)) + 1
    if width < 2.0 * beam or nb < 4 or length / max(width, 1e-6) > config.rafted_max_elongation:
        return [mask]
    bins = np.clip(np.floor(t - t.min()).astype(int), 0, nb - 1)
    vals = signal[rr, cc]
    cnt = np.bincount(bins, minlength=nb).astype(np.float64)
    prof = np.bincount(bins, weights=vals, minlength=nb) / np.maximum(cnt, 1)
    lo, hi = max(2, int(nb * 0.3)), min(nb - 2, math.ceil(nb * 0.7))
    if hi <= lo:
        return [mask]
    spread = float(np.std(vals)) + 1e-6
    best, best_score = -1, 0.0
    for k in range(lo, hi + 1):
        left, right = prof[:k], prof[k:]
        step = abs(float(left.mean() - right.mean()))
        trough = min(float(left.max()), float(right.max())) - float(prof[k])
        score = max(step, trough) / spread
        if score > best_score:
            best, best_score = k, score
    if best < 0 or best_score < config.rafted_seam_contrast:
        return [mask]
    parts = []
    for sel in (bins < best, bins >= best):
        part = np.zeros_like(mask)
        part[rr[sel], cc[sel]] = True
        pl, pw = _extent_px(part)
        if pl / pw < config.min_part_elongation or pw < 2:
            return [mask]
        parts.append(part)
    out: list[np.ndarray] = []
    for part in parts:
        out.extend(_split_seam(part, signal, px_m=px_m, config=config))
    return out


def _change_point(g: np.ndarray) -> tuple[int, float]:
    """Best single change point of a profile (least squares, two constant stretches ``g[:k]``, ``g[k:]``).

    Returns ``k`` (each stretch at least two bins) and the share of the profile's variance it explains.
    """
    n = len(g)
    k = np.arange(2, n - 1)
    if k.size == 0:
        return -1, 0.0
    c1, c2 = np.cumsum(g), np.cumsum(g * g)
    total = float(c2[-1] - c1[-1] ** 2 / n)
    left = c2[k - 1] - c1[k - 1] ** 2 / k
    right = (c2[-1] - c2[k - 1]) - (c1[-1] - c1[k - 1]) ** 2 / (n - k)
    gain = total - left - right
    best = int(np.argmax(gain))
    return int(k[best]), float(gain[best]) / max(total, 1e-12)


def _split_wake(mask: np.ndarray, zvis: np.ndarray, znir: np.ndarray | None, *, config: VesselConfig) -> np.ndarray:
    """Separate an under-way hull from its turbulent wake: keep the hull stretch at one end of the long axis.

    Needs a NIR band. The along-axis profile of the NIR share of the contrast ``nir / (|vis| + |nir|)`` (foam
    loses about 40% of its reflectance at 850 nm, a hull does not; Dierssen 2019) is split once where it
    changes most (least squares). The shorter stretch is the hull (a turbulent wake trails for several hull
    lengths; METHODS.md section 4). The longer stretch is cut off only on evidence of foam: it is bright and
    its NIR/visible ratio is below ``wake_nir_drop`` x the hull's. The split must explain at least
    ``wake_split_gain`` of the profile's variance, and the hull kept must be at least ``wake_min_hull_beams``
    beams long. (Without NIR, a split of the visible profile confirmed by a widening wake cut stationary ships
    on the real PlanetScope pairs: change F1 0.62 -> 0.50 and 0.88 -> 0.80, for no gain on the synthetic
    bench; there a V-shaped wake blob is cut to its apex by :func:`_cut_v_wake`, then the fade rule of
    :func:`_cut_wake` applies.)
    """
    if znir is None:
        return mask
    u, _t, rr, cc = _principal_axes(mask)
    nb = int(np.ptp(u)) + 1
    if nb < 6:
        return mask
    bins = np.clip(np.floor(u - u.min()).astype(int), 0, nb - 1)
    width = np.bincount(bins, minlength=nb).astype(np.float64)
    cnt = np.maximum(width, 1.0)
    vis = np.bincount(bins, weights=zvis[rr, cc], minlength=nb) / cnt
    nir = np.bincount(bins, weights=znir[rr, cc], minlength=nb) / cnt
    k, gain = _change_point(nir / (np.abs(vis) + np.abs(nir) + 1e-6))
    if k < 0 or gain < config.wake_split_gain:
        return mask
    head = np.arange(nb) < k
    hull = head if 2 * k <= nb else ~head
    wake = ~hull
    v_hull, v_wake = float(vis[hull].sum()), float(vis[wake].sum())
    beam = float(np.median(width[hull]))
    if v_wake <= 0 or v_hull == 0 or hull.sum() < config.wake_min_hull_beams * beam:
        return mask
    r_hull = float(nir[hull].sum()) / v_hull
    r_wake = float(nir[wake].sum()) / v_wake
    if r_wake >= config.wake_nir_drop * r_hull:
        return mask
    return _largest_part(mask, rr, cc, hull[bins])


def _cut_wake(mask: np.ndarray, zvis: np.ndarray, znir: np.ndarray | None, *, config: VesselConfig) -> np.ndarray:
    """Trim foam (a wake) off the ends of an object's long axis, only where there is evidence of foam.

    Along the long axis, a stretch at either end is foam when it is bright in the visible and, with a NIR band,
    its NIR/visible contrast ratio is below ``foam_nir_drop`` x that of the object's most contrasted stretch (the
    hull) or below ``foam_nir_ratio`` (whitewater reflects relatively little NIR; Dierssen 2019); without NIR,
    when its contrast has faded below ``wake_fade_fraction`` x the hull's. Dark ends of a mostly bright object
    are its shadow on the water and are trimmed too; dark hulls are never trimmed.
    """
    u, _t, rr, cc = _principal_axes(mask)
    nb = int(np.ptp(u)) + 1
    if nb < 6:
        return mask
    bins = np.clip(np.floor(u - u.min()).astype(int), 0, nb - 1)
    cnt = np.maximum(np.bincount(bins, minlength=nb), 1)
    vis = np.bincount(bins, weights=zvis[rr, cc], minlength=nb) / cnt
    if znir is not None:
        nir = np.bincount(bins, weights=znir[rr, cc], minlength=nb) / cnt
        # the hull's own NIR/visible ratio, from the most contrasted stretch; foam reflects relatively less NIR
        top = np.argsort(np.abs(vis) + np.abs(nir))[-3:]
        v_ref, n_ref = float(vis[top].mean()), float(nir[top].mean())
        ratio = config.foam_nir_drop * n_ref / v_ref if v_ref > 0 else config.foam_nir_ratio
        foam = (vis > 0) & (nir < max(ratio, config.foam_nir_ratio) * vis)
    else:
        mag = ndi.uniform_filter1d(np.abs(vis), 3)
        foam = (vis > 0) & (mag < config.wake_fade_fraction * float(mag.max()))
    # a bright hull's shadow on the water: dark stretches at the ends of an object that is mostly bright
    trim = foam | (vis < 0) if float(np.median(zvis[rr, cc])) > 0 else foam
    a, b = 0, nb - 1
    while a < nb and trim[a]:
        a += 1
    while b >= 0 and trim[b]:
        b -= 1
    if (a == 0 and b == nb - 1) or b - a + 1 < 3:
        return mask
    return _largest_part(mask, rr, cc, (bins >= a) & (bins <= b))


def _runs(occ: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop (exclusive) of the runs of True in a 1-d boolean array."""
    d = np.diff(np.concatenate([[0], occ.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _cut_v_wake(mask: np.ndarray, zvis: np.ndarray, *, px_m: float, config: VesselConfig) -> np.ndarray:
    """Without NIR, replace a V-shaped wake blob (hull, Kelvin arms and turbulent trail) by the hull at its apex.

    A hull under way and its foam form one hollow V: the Kelvin arms leave the bow at about 19.5 degrees each
    side of the track and the trail widens behind the stern, so the blob is narrow at one end of its long axis
    (the apex, the bow) and opens away from it. Moored or anchored hulls (with their shadow) are convex and do
    not open into separate branches. The rule examines only blobs at least 3 x ``min_length_m`` long that
    (1) fill at most ``v_max_solidity`` of their convex hull, (2) open from the apex end (median across-axis
    extent of the fifth of the length there) to their widest point by at least ``v_open_ratio`` x, at a
    half-angle of at least ``v_min_half_angle_deg``, and (3) split into separate branches across the axis (the
    arms leaving the hull) within ``v_arm_beams`` beams of the apex. The central branch is followed from the
    apex (the beam is its median width where the branches separate); the hull is its stretch from the apex to
    where the mean visible contrast along it changes (hull -> foam of the trail: a least-squares change point
    explaining ``v_split_gain`` of the variance, or a dark stretch followed by a bright one), searched within
    ``v_max_hull_beams`` beams and the first half of the V, and at least ``v_min_hull_beams`` beams long.
    Without such a change (e.g. a bright hull as bright as its foam) the blob is left whole.
    """
    rr, cc = np.nonzero(mask)
    if rr.size < 20:
        return mask
    u, t, *_ = principal_axes(rr, cc)
    length_m = (float(np.ptp(u)) + 1.0) * px_m
    if length_m < 3.0 * config.min_length_m:
        return mask
    # (1) hollow: a V fills little of its convex hull
    hull_area = MultiPoint(np.column_stack([cc, rr]).astype(float)).convex_hull.buffer(0.5, join_style="mitre").area
    if rr.size / max(hull_area, 1.0) > config.v_max_solidity:
        return mask
    nb = int(np.ptp(u)) + 1
    bins = np.clip(np.floor(u - u.min()).astype(int), 0, nb - 1)
    tb = np.floor(t - t.min()).astype(int)
    nt = int(tb.max()) + 1
    # (2) narrow at one end, opening away from it: extent across the axis along the length
    q = max(2, nb // 5)
    ext = np.full(nb, np.nan)
    lo_t = np.full(nb, np.inf)
    hi_t = np.full(nb, -np.inf)
    np.minimum.at(lo_t, bins, t)
    np.maximum.at(hi_t, bins, t)
    ok = np.isfinite(lo_t)
    ext[ok] = hi_t[ok] - lo_t[ok] + 1.0
    half = nb // 2
    if float(np.nanmean(ext[:half])) > float(np.nanmean(ext[nb - half :])):  # the apex (narrow end) goes to bin 0
        bins = nb - 1 - bins
        ext = ext[::-1]
    ext_s = ndi.median_filter(np.nan_to_num(ext, nan=0.0), size=3)
    e_apex, far = float(np.median(ext_s[:q])), int(np.argmax(ext_s))
    e_far = float(ext_s[far])
    half_angle = math.degrees(math.atan2((e_far - e_apex) / 2.0, max(far - q / 2.0, 1.0)))
    if e_far < config.v_open_ratio * e_apex or half_angle < config.v_min_half_angle_deg:
        return mask
    # occupancy grid: along-axis bin (from the apex) x across-axis bin; one-pixel gaps (noise) are closed
    grid = np.zeros((nb, nt), bool)
    grid[bins, tb] = True
    grid = ndi.binary_closing(grid, structure=np.ones((1, 3), bool), border_value=0) | grid
    # (3) follow the central branch from the apex; note where separate branches (>= 2 px) appear beside it
    c = c_apex = float(np.mean(t[bins < max(2, q // 2)] - t.min()))
    span = np.zeros((nb, 2), int)
    nruns = np.zeros(nb, int)
    for i in range(nb):
        runs = _runs(grid[i])
        if not runs:
            break
        nruns[i] = sum(b - a >= 2 for a, b in runs)
        mids = [0.5 * (a + b - 1) for a, b in runs]
        j = int(np.argmin([0.0 if a <= c < b else abs(m - c) for (a, b), m in zip(runs, mids, strict=True)]))
        span[i] = runs[j]
        c = mids[j]
    width = (span[:, 1] - span[:, 0]).astype(float)
    # the arms leave the hull's sides: separate branches in most of five consecutive bins
    sep = np.flatnonzero(ndi.uniform_filter1d((nruns >= 2).astype(float), 5) > 0.7)
    if sep.size == 0:
        return mask
    s = int(sep[0])
    beam = float(np.median(width[s : s + max(3, int(2 * width[s]))]))
    if beam < 2 or s > config.v_arm_beams * beam + 2:
        return mask
    # the hull ends where the contrast along the central branch changes (hull -> foam of the trail), within
    # v_max_hull_beams and the first half of the V (the wake trails for longer than the hull)
    limit = min(nb // 2, s + round(config.v_max_hull_beams * beam))
    prof = np.zeros(limit)
    rows = []
    c_s = 0.5 * (span[s, 0] + span[s, 1] - 1)
    for i in range(limit):
        if i < s:  # before the arms leave the hull: a beam about the line from the apex to the branch at `s`
            ci = c_apex + (c_s - c_apex) * i / max(s, 1)
            lo_, hi_ = ci - beam / 2.0, ci + beam / 2.0 + 1.0
        else:
            lo_, hi_ = span[i]
        row = (bins == i) & (tb >= lo_) & (tb < hi_)
        rows.append(row)
        prof[i] = float(zvis[rr[row], cc[row]].mean()) if row.any() else 0.0
    k, gain = _change_point(prof)
    # evidence of a hull/foam change: a clear change point, or a dark hull followed by bright foam
    dark_to_foam = k > 0 and float(prof[:k].mean()) < 0.0 < float(prof[k:].mean())
    if k < config.v_min_hull_beams * beam or not (gain >= config.v_split_gain or dark_to_foam):
        return mask
    keep = np.logical_or.reduce(rows[:k])
    if not keep.any():
        return mask
    return _largest_part(mask, rr, cc, keep)


def _end_contrast(mask: np.ndarray, r0: int, c0: int, z: np.ndarray, *, px_m: float, config: VesselConfig) -> float:
    """How unlike the object the image is just beyond its two ends, the less unlike end counted (0: alike).

    A hull is a finite object: past its bow and its stern lie water, a quay or another hull, not more of itself.
    A piece cut from a longer structure - a breakwater, a pier, a quay apron, a strip of coast - continues past
    at least one of its ends. For each end, the mean band contrasts ``z`` of a strip beyond it (as wide as the
    object across its axis, ``end_strip_m`` deep but at least two pixels and at most a quarter of the length)
    are compared with the object's own: root mean square difference over the bands, relative to the object's
    root mean square contrast. Returns the smaller of the two (NaN when no end lies inside the image).
    """
    rr, cc = np.nonzero(mask)
    u, t, x0, y0, major = principal_axes(rr, cc)
    length = float(np.ptp(u)) + 1.0
    depth = max(2.0, min(config.end_strip_m / px_m, 0.25 * length))
    reach = math.ceil(0.5 * length + depth + 1.0)
    rows = np.arange(max(0, r0 + round(y0) - reach), min(z.shape[1], r0 + round(y0) + reach + 1))
    cols = np.arange(max(0, c0 + round(x0) - reach), min(z.shape[2], c0 + round(x0) + reach + 1))
    gr, gc = np.meshgrid(rows - r0 - y0, cols - c0 - x0, indexing="ij")
    uu = gc * major[0] + gr * major[1]
    tt = -gc * major[1] + gr * major[0]
    across = (tt >= t.min() - 0.5) & (tt <= t.max() + 0.5)
    inside = z[:, rr + r0, cc + c0].mean(axis=1)
    scale = float(np.sqrt(np.mean(inside**2))) + 1e-6
    diffs = []
    for past in (uu - u.max() - 0.5, u.min() - 0.5 - uu):
        sel = (past > 0) & (past <= depth) & across
        if sel.any():
            ir, ic = np.nonzero(sel)
            beyond = z[:, rows[0] + ir, cols[0] + ic].mean(axis=1)
            diffs.append(float(np.sqrt(np.mean((inside - beyond) ** 2))) / scale)
    return min(diffs) if diffs else math.nan


def _largest_part(mask: np.ndarray, rr: np.ndarray, cc: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """The largest connected piece of the object's pixels ``(rr, cc)`` selected by ``sel``."""
    out = np.zeros_like(mask)
    out[rr[sel], cc[sel]] = True
    lab, n = ndi.label(out)
    if n > 1:
        out = lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)
    return out


def vessel_candidates(
    scene: Scene,
    water: np.ndarray,
    *,
    config: VesselConfig = _VESSEL,
    valid: np.ndarray | None = None,
) -> list[VesselCandidate]:
    """Candidate objects on the water domain with their evidence, tuned for recall (the classifier decides).

    Every band is a two-sided contrast against local water statistics (:func:`contrast_bands`); candidates are
    grown by hysteresis on the root-mean-square contrast, holes filled, rafted hulls split at a seam, foam cut
    off the ends, and each part described by ``FEATURE_NAMES`` (size, shape, signed contrast per band group,
    NIR/visible ratio, ring contrast, shore contact, local sea clutter, contrast past the ends, pixel size).

    Parameters
    ----------
    scene, water, config, valid
        As for :func:`detect_vessels`.

    Returns
    -------
    list of :class:`VesselCandidate`
    """
    valid = scene.valid if valid is None else (valid & scene.valid)
    if water.shape != scene.shape:
        raise ValueError(f"water mask shape {water.shape} != scene shape {scene.shape}")
    px = scene.pixel_size_m
    domain = water & valid
    if domain.sum() < 16:
        return []
    land = ~water & valid
    fringe_px = max(1, round(_px(config.shore_fringe_m, scene)))
    fringe = ndi.binary_dilation(land, iterations=fringe_px)
    z, roles = contrast_bands(scene, domain, window_m=config.background_window_m, trim_z=config.low_z, everywhere=True)
    np.clip(z, -50.0, 50.0, out=z)
    score = np.sqrt(np.mean(z * z, axis=0))
    vis = [i for i, r in enumerate(roles) if r in ("blue", "green", "red", "pan")] or list(range(len(roles)))
    zvis = z[vis].mean(axis=0)
    nir_i = roles.index("nir") if "nir" in roles else None
    vegetation_index = scene.has("nir") and scene.has("red")
    seeds = (score >= config.high_z) & domain & ~fringe
    grow = (score >= config.low_z) & domain
    cand = filters.apply_hysteresis_threshold(np.where(grow, score, 0.0), config.low_z, config.high_z) & grow
    cand &= ndi.binary_propagation(seeds, mask=cand)
    r_close = round(_px(config.close_m, scene))
    if r_close >= 1:
        cand = ndi.binary_closing(cand, structure=np.ones((2 * r_close + 1,) * 2, bool)) & domain
    # sea clutter: the share of anomalous water pixels around (whitecap fields, rough water, glint)
    clutter_map, _s, _m = local_mean_std(grow.astype(np.float32), domain, _odd(_px(config.clutter_window_m, scene)))
    lab, n = ndi.label(cand)
    n_water = n
    shore = _shore_regions(z, domain, land, scene=scene, config=config)
    if shore is not None:
        lab = np.where(shore > 0, shore + n, lab)
        n = n + int(shore.max())
    if n == 0:
        return []
    area_px = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64)
    min_area_px = max(2.0, (config.min_length_m * config.min_width_m) / px**2 * 0.5)
    max_area_px = config.max_length_m * config.max_width_m * 2.0 / px**2
    keep = (area_px >= min_area_px) & (area_px <= max_area_px)
    slices = ndi.find_objects(lab)
    log.debug("vessel candidates: %d components, %d in size range", n, int(keep.sum()))
    ring_px = max(2, round(_px(config.ring_m, scene)))
    pad = ring_px + 1
    out: list[VesselCandidate] = []
    for i in np.flatnonzero(keep) + 1:
        sl = slices[i - 1]
        if sl is None:
            continue
        r0, r1 = max(0, sl[0].start - pad), min(scene.height, sl[0].stop + pad)
        c0, c1 = max(0, sl[1].start - pad), min(scene.width, sl[1].stop + pad)
        sub = ndi.binary_fill_holes(lab[r0:r1, c0:c1] == i)
        zv = zvis[r0:r1, c0:c1]
        zn = None if nir_i is None else z[nir_i, r0:r1, c0:c1]
        on_shore = i > n_water
        parts = [sub] if on_shore else _split_seam(sub, zv, px_m=px, config=config)
        for part in parts:
            if on_shore:
                cut = part
            elif zn is None:
                cut = _cut_wake(_cut_v_wake(part, zv, px_m=px, config=config), zv, zn, config=config)
            else:
                cut = _cut_wake(_split_wake(part, zv, zn, config=config), zv, zn, config=config)
            if cut.sum() < min_area_px:
                continue
            feats = _candidate_features(
                cut,
                scene=scene,
                score=score[r0:r1, c0:c1],
                zall=z[:, r0:r1, c0:c1],
                zvis=zv,
                znir=zn,
                domain=domain[r0:r1, c0:c1],
                land=land[r0:r1, c0:c1],
                fringe=fringe[r0:r1, c0:c1],
                invalid=~valid[r0:r1, c0:c1],
                ring_px=ring_px,
            )
            cy, cx = ndi.center_of_mass(cut)
            feats["clutter"] = float(
                clutter_map[min(r0 + round(cy), scene.height - 1), min(c0 + round(cx), scene.width - 1)]
            )
            feats["wake_cut"] = float(part.sum() - cut.sum()) / max(1.0, float(part.sum()))
            feats["split"] = float(len(parts) > 1)
            feats["shore_region"] = float(on_shore)
            feats["end_contrast"] = _end_contrast(cut, r0, c0, z, px_m=px, config=config)
            if vegetation_index:  # (evidence for the vegetation rule, not a classifier feature)
                feats["ndvi"] = _ndvi(scene, (slice(r0, r1), slice(c0, c1)), cut)
            out.append(VesselCandidate(mask=cut, r0=r0, c0=c0, features=feats))
    return out


def _ndvi(scene: Scene, window: tuple[slice, slice], mask: np.ndarray) -> float:
    """Median normalised difference vegetation index (NIR - red) / (NIR + red) of the ``mask`` pixels of a window."""
    nir = scene.data[scene.bands.index("nir")][window][mask].astype(np.float64)
    red = scene.data[scene.bands.index("red")][window][mask].astype(np.float64)
    return float(np.median((nir - red) / np.maximum(nir + red, 1e-6)))


def _shore_regions(
    z: np.ndarray, domain: np.ndarray, land: np.ndarray, *, scene: Scene, config: VesselConfig
) -> np.ndarray | None:
    """Hull candidates on the land side of the shore: ships alongside quays that the water mask calls land.

    The land within ``shore_band_m`` (about a moored beam) of the water is cut into regions by a graph-based
    segmentation (Felzenszwalb and Huttenlocher 2004) of the band contrasts (regions of at least
    ``shore_min_region_m2``), so a hull separates from the quay behind it where their reflectances differ.
    The over-segmented pieces of one hull are then joined (:func:`_merge_regions`). Regions that look like
    water (mean contrast below ``low_z``: the straightened quay line of the water mask leaves slivers of water
    on the land side) pass the water's contact on, so a hull behind such a sliver still touches the water;
    regions touching the water are candidates. Returns a label image (0 = none) or None.
    """
    from skimage.segmentation import felzenszwalb

    px = scene.pixel_size_m
    if config.shore_band_m <= 0 or not domain.any() or not land.any():
        return None
    near = ndi.distance_transform_edt(~domain) * px <= config.shore_band_m
    band = land & near
    if not band.any():
        return None
    sl = ndi.find_objects(band.astype(np.int32))[0]
    zb = z[:, sl[0], sl[1]]
    score = np.sqrt(np.mean(zb * zb, axis=0))
    if zb.shape[0] > 3:  # at most three channels: first band, mean of the middle ones, last band (B, G+R, NIR)
        zb = np.stack([zb[0], zb[1:-1].mean(axis=0), zb[-1]])
    img = np.moveaxis(zb, 0, -1).astype(np.float64)
    min_px = max(2, round(config.shore_min_region_m2 / px**2))
    seg = felzenszwalb(img, scale=config.shore_segment_scale, sigma=0.0, min_size=min_px, channel_axis=-1) + 1
    sub_band = band[sl]
    seg[~sub_band] = 0
    if config.shore_merge_z > 0:
        seg = _merge_regions(seg, zb, score, px=px, config=config)
    n = int(seg.max())
    cnt = np.maximum(np.bincount(seg.ravel(), minlength=n + 1), 1)
    water_like_id = np.bincount(seg.ravel(), weights=score.ravel(), minlength=n + 1) / cnt < config.low_z
    water_like_id[0] = False
    sub_domain = domain[sl]
    if config.shore_water_like:
        # water-like regions connected to the water are water
        sub_domain = ndi.binary_propagation(sub_domain, mask=sub_domain | water_like_id[seg])
    # keep regions touching the water
    touch = ndi.binary_dilation(sub_domain) & (seg > 0)
    ids = np.unique(seg[touch])
    keep = np.isin(seg, ids[ids > 0])
    seg = np.where(keep, seg, 0)
    seg_ids = np.unique(seg[seg > 0])
    relabel = np.zeros(int(seg.max()) + 1, dtype=np.int64)
    relabel[seg_ids] = np.arange(1, seg_ids.size + 1)
    out = np.zeros(domain.shape, dtype=np.int64)
    out[sl] = relabel[seg]
    return out


def _merge_regions(
    seg: np.ndarray, zb: np.ndarray, score: np.ndarray, *, px: float, config: VesselConfig
) -> np.ndarray:
    """Join the pieces of one hull in a over-segmentation ``seg`` of the shore band (0 = outside).

    A region adjacency graph is merged in order of similarity: (i) neighbours whose mean contrasts ``zb`` differ
    by less than ``shore_merge_z`` (average linkage: the merged components' own means are compared, so no
    chaining through mixed pixels); (ii) then anomalous neighbours (mean ``score`` at least ``low_z``) joined end
    to end - the union is more elongated than either piece, at least ``min_part_elongation``, and fills at
    least ``shore_merge_fill`` of the rectangle with its second moments - a hull cut by a crane boom or a deck
    shadow. A union is never wider than ``max_width_m`` nor larger than ``max_length_m`` x ``max_width_m``.
    """
    n = int(seg.max())
    flat = seg.ravel()
    cnt = np.bincount(flat, minlength=n + 1).astype(np.float64)
    means = (
        np.stack([np.bincount(flat, weights=b.ravel(), minlength=n + 1) for b in zb], axis=1)
        / np.maximum(cnt, 1)[:, None]
    )
    rr, cc = np.indices(seg.shape, dtype=np.float64)
    mom = np.stack(
        [cnt] + [np.bincount(flat, weights=w.ravel(), minlength=n + 1) for w in (rr, cc, rr * rr, cc * cc, rr * cc)],
        axis=1,
    )
    pairs = np.concatenate(
        [np.stack([seg[:, :-1].ravel(), seg[:, 1:].ravel()], 1), np.stack([seg[:-1].ravel(), seg[1:].ravel()], 1)]
    )
    pairs = pairs[(pairs[:, 0] != pairs[:, 1]) & (pairs.min(axis=1) > 0)]
    if pairs.size == 0:
        return seg
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    w = np.linalg.norm(means[pairs[:, 0]] - means[pairs[:, 1]], axis=1)
    order = np.argsort(w)
    max_area = config.max_length_m * config.max_width_m / px**2
    max_w = config.max_width_m / px
    parent = np.arange(n + 1)
    zsum = means * cnt[:, None]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    anomalous = np.bincount(flat, weights=score.ravel(), minlength=n + 1) / np.maximum(cnt, 1) >= config.low_z

    def shape_of(m: np.ndarray) -> tuple[float, float]:
        """Length and width (pixels) of the rectangle with the component's second moments."""
        cy, cx = m[1] / m[0], m[2] / m[0]
        cyy, cxx, cxy = m[3] / m[0] - cy * cy, m[4] / m[0] - cx * cx, m[5] / m[0] - cx * cy
        half, root_ = 0.5 * (cyy + cxx), math.sqrt(max(0.25 * (cyy - cxx) ** 2 + cxy * cxy, 0.0))
        return math.sqrt(12.0 * max(half + root_, 1.0 / 12.0)), math.sqrt(12.0 * max(half - root_, 1.0 / 12.0))

    def elong(m: np.ndarray) -> float:
        length, width = shape_of(m)
        return length / width

    def try_merge(k: int, by_shape: bool) -> bool:
        a, b = root(int(pairs[k, 0])), root(int(pairs[k, 1]))
        if a == b:
            return False
        m = mom[a] + mom[b]
        if m[0] > max_area:
            return False
        length, width = shape_of(m)
        if width > max_w:
            return False
        if by_shape:
            # two anomalous pieces whose union is a filled, elongated rectangle: one hull cut by a crane, a shadow
            # ... joined end to end (the union is more elongated than either: not side by side, not a quay strip)
            if not (anomalous[a] and anomalous[b]) or length < config.min_part_elongation * width:
                return False
            if length / width < max(elong(mom[a]), elong(mom[b])):
                return False
            if m[0] < config.shore_merge_fill * length * width:
                return False
        # average linkage: the merged components' own means must be similar (no chaining through mixed pixels)
        elif np.linalg.norm(zsum[a] / mom[a, 0] - zsum[b] / mom[b, 0]) >= config.shore_merge_z:
            return False
        parent[b] = a
        mom[a] = m
        zsum[a] += zsum[b]
        anomalous[a] = anomalous[a] or anomalous[b]
        return True

    for k in order:
        if w[k] >= config.shore_merge_z:
            break
        try_merge(int(k), False)
    if config.shore_merge_fill > 0:
        for _ in range(4):
            if not sum(try_merge(int(k), True) for k in order):
                break
    roots = np.array([root(i) for i in range(n + 1)])
    return roots[seg]


def _candidate_features(
    mask: np.ndarray,
    *,
    scene: Scene,
    score: np.ndarray,
    zall: np.ndarray,
    zvis: np.ndarray,
    znir: np.ndarray | None,
    domain: np.ndarray,
    land: np.ndarray,
    fringe: np.ndarray,
    invalid: np.ndarray,
    ring_px: int,
) -> dict[str, float]:
    px = scene.pixel_size_m
    n = int(mask.sum())
    lpx, wpx = _extent_px(mask)
    s = score[mask]
    zv = zvis[mask]
    ring = ndi.binary_dilation(mask, iterations=ring_px) & ~mask
    ring_dom = ring & domain
    zn_mean = float(np.mean(znir[mask])) if znir is not None else math.nan
    # contrast with the land next to the object (a hull differs from the quay it lies against), per band, RMS
    ring_land = ring & land
    inside = zall[:, mask].mean(axis=1)
    land_contrast = (
        float(np.sqrt(np.mean((inside - zall[:, ring_land].mean(axis=1)) ** 2))) if ring_land.any() else math.nan
    )
    # contrast of the water right next to the object (wakes, foam, shadows; 0 in calm water)
    near = ndi.binary_dilation(mask, iterations=max(1, ring_px // 2)) & ~mask & domain
    water_side = float(np.abs(zvis[near]).mean()) if near.any() else math.nan
    zv_mean = float(zv.mean())
    return {
        "pixel_size_m": px,
        "has_nir": float(znir is not None),
        "length_m": lpx * px,
        "width_m": wpx * px,
        "length_px": lpx,
        "width_px": wpx,
        "log_area_m2": math.log(n * px * px),
        "elongation": lpx / wpx,
        "rectangularity": n / (lpx * wpx),
        "z_peak": float(np.percentile(s, 90)),
        "z_max": float(s.max()),
        "z_mean": float(s.mean()),
        "z_std": float(zv.std()),
        "zvis_mean": zv_mean,
        "zvis_median": float(np.median(zv)),
        "zvis_min": float(zv.min()),
        "zvis_max": float(zv.max()),
        "bright_frac": float(np.mean(zv > 0)),
        "znir_mean": zn_mean,
        "nir_ratio": zn_mean / max(abs(zv_mean), 0.5) if znir is not None else math.nan,
        "ring_z": float(score[ring_dom].mean()) if ring_dom.any() else 0.0,
        "ring_land": float(ring_land.sum()) / max(1.0, float(ring.sum())),
        "ring_water": float(ring_dom.sum()) / max(1.0, float(ring.sum())),
        "land_contrast": land_contrast,
        "water_side_z": water_side,
        "fringe_frac": float((mask & fringe).sum()) / n,
        "touches_invalid": float(_touches(mask, invalid)),
    }


def detect_vessels(
    scene: Scene,
    water: np.ndarray,
    *,
    config: VesselConfig = _VESSEL,
    valid: np.ndarray | None = None,
) -> list[Detection]:
    """Vessels on the water domain: at anchor, under way, alongside quays and rafted.

    Candidates from :func:`vessel_candidates` (masked two-sided CFAR, tuned for recall) are scored by the
    learned classifier of :mod:`berthwatch.classify` (gradient-boosted trees on the candidate evidence,
    trained on labelled Sentinel-2 ports and synthetic scenes); the probability is the confidence and objects
    below ``config.min_confidence`` or outside the physical size limits are dropped, and so are, with red and NIR
    bands, candidates with a median NDVI above ``config.max_ndvi``: vegetation (mangrove and reed banks cut from a
    river shore), which no painted hull is.

    Parameters
    ----------
    scene
        Any band layout and pixel size; values are used in native units (contrast is local and relative).
    water
        Boolean (rows, cols) search domain from :func:`berthwatch.masks.water_mask` (or the union of two dates).
    config
        Physical limits and detector settings (metres).
    valid
        Boolean (rows, cols); nothing is detected outside it. Defaults to ``scene.valid``.

    Returns
    -------
    list of :class:`~berthwatch.models.Detection` with ``kind="vessel"``, oriented footprint in scene CRS,
    decreasing confidence, and the candidate evidence in ``features`` (``FEATURE_NAMES`` plus ``dark``,
    ``touches_shore``, ``area_px``).
    """
    from berthwatch.classify import vessel_probability

    cands = vessel_candidates(scene, water, config=config, valid=valid)
    if not cands:
        return []
    prob = vessel_probability(np.vstack([c.vector() for c in cands]))
    px = scene.pixel_size_m
    dets: list[Detection] = []
    for c, p in zip(cands, prob, strict=True):
        if p < config.min_confidence or c.features.get("ndvi", -1.0) > config.max_ndvi:
            continue  # (no hull is green: a bank of mangroves or reeds cut from the shore is vegetation)
        det = _vessel_detection(c, float(p), scene, config=config)
        if det is not None:
            dets.append(det)
    dets.sort(key=lambda d: -d.confidence)
    kept = _suppress_overlaps(dets, config.max_overlap)
    log.debug(
        "vessels: %d candidates, %d kept, %d overlapping (pixel %.2f m)",
        len(cands),
        len(kept),
        len(dets) - len(kept),
        px,
    )
    return kept


def _suppress_overlaps(dets: list[Detection], max_overlap: float) -> list[Detection]:
    """Greedy non-maximum suppression on footprints, most confident first.

    Candidates are disjoint sets of pixels, but one ship can still give two: its hull and its shadow on the water
    cut apart, a bright superstructure separated from a dark hull, or the water-side part of a moored hull beside
    the shore-band region of the same hull. Their oriented rectangles overlap; hulls rafted side by side only
    touch. A detection whose overlap with a kept one exceeds ``max_overlap`` of the smaller footprint is dropped.
    """
    if max_overlap >= 1.0 or len(dets) < 2:
        return dets
    geoms = np.array([d.geometry for d in dets], dtype=object)
    tree = shapely.STRtree(geoms)
    kept: list[int] = []
    dropped = np.zeros(len(dets), dtype=bool)
    for i, g in enumerate(geoms):
        if dropped[i]:
            continue
        kept.append(i)
        for j in tree.query(g, predicate="intersects"):
            if j > i and not dropped[j]:
                smaller = min(shapely.area(g), shapely.area(geoms[j]))
                share = shapely.area(shapely.intersection(g, geoms[j])) / max(smaller, 1e-9)
                dropped[j] = share > max_overlap
    return [dets[i] for i in kept]


def _vessel_detection(c: VesselCandidate, prob: float, scene: Scene, *, config: VesselConfig) -> Detection | None:
    px = scene.pixel_size_m
    geom = _footprint(c.mask, c.r0, c.c0, scene)
    length, width, heading, rect = measure(geom, scene)
    # the outline runs along pixel corners and the blur adds a half pixel each side: take one pixel off
    length, width = max(length - px, px), max(width - px, min(px, width))
    if length < max(config.min_length_m, 2.0 * px) or length > config.max_length_m or width > config.max_width_m:
        return None
    if length > config.max_elongation * width:
        return None  # thinner than any hull: a quay edge, a boom's shadow, a wake trail
    n = int(c.mask.sum())
    feats = dict(c.features)
    feats["dark"] = float(feats["zvis_median"] < 0)  # most of the hull darker than the water
    feats["touches_shore"] = float(feats["ring_land"] > 0)
    feats["area_px"] = float(n)
    return Detection(
        geometry=rect,
        kind="vessel",
        confidence=round(prob, 4),
        length_m=float(length),
        width_m=float(width),
        heading_deg=float(heading),
        area_m2=float(n * px * px),
        features=feats,
    )


# ---------------------------------------------------------------------------------------------------------------
# whole scene
# ---------------------------------------------------------------------------------------------------------------
def detect(
    scene: Scene,
    *,
    settings: Settings = _SETTINGS,
    water: np.ndarray | None = None,
    aoi: np.ndarray | None = None,
    progress: Progress | None = None,
) -> DetectionResult:
    """Single-date inventory: water mask, vessels on it, equipment on land when pixels are fine enough.

    Parameters
    ----------
    scene
        The scene (possibly resampled onto a two-date common grid).
    settings
        All settings; the ``water``, ``vessel`` and ``equipment`` sections are used.
    water
        A precomputed water mask (e.g. the union of two dates); computed from the scene when None.
    aoi
        Optional boolean (rows, cols): only objects inside it are searched.
    progress
        Optional ``callback(stage, fraction)``.

    Returns
    -------
    :class:`~berthwatch.models.DetectionResult`; ids are ``v001``... for vessels and ``e001``... for equipment,
    in decreasing confidence.
    """

    def report(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    valid = scene.valid.copy()
    if aoi is not None:
        if aoi.shape != scene.shape:
            raise ValueError(f"AOI mask shape {aoi.shape} != scene shape {scene.shape}")
        valid &= aoi.astype(bool)
    report("water", 0.0)
    if water is None:
        water = water_mask(scene, config=settings.water, aoi=aoi)
    elif water.shape != scene.shape:
        raise ValueError(f"water mask shape {water.shape} != scene shape {scene.shape}")
    report("vessels", 0.3)
    vessels = detect_vessels(scene, water & valid, config=settings.vessel, valid=valid)
    from berthwatch.equipment import detect_equipment, equipment_supported

    notes: list[str] = []
    ok, reason = equipment_supported(scene, settings.equipment)
    equipment: list[Detection] = []
    report("equipment", 0.7)
    if ok:
        equipment = detect_equipment(scene, ~water & valid, config=settings.equipment, valid=valid)
    else:
        notes.append(reason)
    for k, d in enumerate(vessels, 1):
        d.id = f"v{k:03d}"
    for k, d in enumerate(equipment, 1):
        d.id = f"e{k:03d}"
    report("done", 1.0)
    log.info("%s: %d vessels, %d equipment", scene.name, len(vessels), len(equipment))
    return DetectionResult(scene=scene, detections=vessels + equipment, water=water, equipment_searched=ok, notes=notes)
