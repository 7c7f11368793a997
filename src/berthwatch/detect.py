"""Single-date detection of vessels (on the water domain) and quay equipment (on land, fine pixels only).

Vessels (METHODS.md sections 2-4)
    Every band is turned into a two-sided contrast ``z = (x - mean) / std`` against *local water statistics*:
    mean and standard deviation over a large window computed by masked normalized convolution, so land never
    enters the background, in two passes, the second ignoring pixels that the first found anomalous (truncated
    statistics for crowded harbours). Bright and dark hulls are both anomalies. Candidates are grown by
    hysteresis on the root-mean-square contrast over the bands, rafted hulls are split where a seam runs
    along them, wakes are cut where the along-axis contrast fades (using NIR, where foam is weaker, when the
    scene has it), and every object is kept or refused on physical size and shape. Confidence is a logistic
    combination of contrast, shape regularity and size plausibility.
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
from berthwatch.geo import oriented_measures, pixel_to_crs
from berthwatch.masks import land_core, water_mask
from berthwatch.models import Detection, DetectionResult, Scene

log = logging.getLogger(__name__)

# frozen dataclasses: safe as shared defaults
_VESSEL = VesselConfig()
_EQUIPMENT = EquipmentConfig()
_SETTINGS = Settings()

__all__ = [
    "contrast_bands",
    "detect",
    "detect_vessels",
    "measure",
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


def _masked_mean_std(x: np.ndarray, m: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local mean, std and support (fraction of masked pixels) of ``x`` over ``m`` in a square window.

    Masked normalized convolution: box sums of ``x*m``, ``x*x*m`` and ``m``. Large windows are computed on a
    block-averaged grid and interpolated back (the background varies slowly), so the cost does not grow with
    the window.
    """
    mf = m.astype(np.float32)
    xm = np.where(m, x, 0.0).astype(np.float32)
    rows, cols = x.shape
    block = max(1, window // 8)
    if block > 1:
        pr, pc = (-rows) % block, (-cols) % block

        def reduce(a: np.ndarray) -> np.ndarray:
            a = np.pad(a, ((0, pr), (0, pc)))
            return a.reshape(a.shape[0] // block, block, a.shape[1] // block, block).mean(axis=(1, 3))

        s_m, s_x, s_xx = reduce(mf), reduce(xm), reduce(xm * x)
        w = max(3, (window // block) | 1)
    else:
        s_m, s_x, s_xx = mf, xm, xm * x
        w = max(3, window | 1)
    b_m = ndi.uniform_filter(s_m, w, mode="constant")
    b_x = ndi.uniform_filter(s_x, w, mode="constant")
    b_xx = ndi.uniform_filter(s_xx, w, mode="constant")
    good = b_m > 1e-3
    mean = np.zeros_like(b_m)
    var = np.zeros_like(b_m)
    np.divide(b_x, b_m, out=mean, where=good)
    np.divide(b_xx, b_m, out=var, where=good)
    var = np.maximum(var - mean * mean, 0.0)
    std = np.sqrt(var)
    if block > 1:
        zoom = (rows + pr) / mean.shape[0], (cols + pc) / mean.shape[1]

        def expand(a: np.ndarray) -> np.ndarray:
            # block centres -> pixel centres: shift by half a block
            out = ndi.zoom(a, zoom, order=1, mode="nearest", grid_mode=True)
            return out[:rows, :cols]

        return expand(mean), expand(std), expand(b_m)
    return mean, std, b_m


def contrast_bands(
    scene: Scene, domain: np.ndarray, *, window_m: float, trim_z: float = 3.0
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-band two-sided contrast ``z`` against local statistics of the ``domain`` pixels (float32).

    Two passes: the second recomputes the statistics without the pixels whose first-pass ``|z|`` exceeded
    ``trim_z`` (ships, wakes), so crowded anchorages do not raise their own background.

    Returns
    -------
    z : (bands, rows, cols) float32, 0 outside the domain
    roles : band roles in the same order
    """
    window = _odd(_px(window_m, scene))
    out = np.zeros(scene.data.shape, dtype=np.float32)
    if not domain.any():
        return out, scene.bands
    for i in range(scene.data.shape[0]):
        x = scene.data[i].astype(np.float32)
        bg = domain
        for _ in range(2):
            mean, std, _support = _masked_mean_std(x, bg, window)
            # floor on the std: the median std over the domain times a small factor (flat synthetic water)
            floor = max(float(np.median(std[domain])) * 0.25, 1e-6)
            z = (x - mean) / np.maximum(std, floor)
            z[~domain] = 0.0
            bg = domain & (np.abs(z) < trim_z)
        out[i] = z
    return out, scene.bands


@dataclass
class _Object:
    mask: np.ndarray  # bool sub-image
    r0: int
    c0: int


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
    y = rr.astype(np.float64) - rr.mean()
    x = cc.astype(np.float64) - cc.mean()
    cov = np.cov(np.vstack([x, y])) if rr.size > 1 else np.eye(2)
    w, v = np.linalg.eigh(cov)
    major = v[:, int(np.argmax(w))]
    u = x * major[0] + y * major[1]
    t = -x * major[1] + y * major[0]
    return u, t, rr, cc


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _touches(mask: np.ndarray, other: np.ndarray) -> bool:
    return bool((ndi.binary_dilation(mask) & other).any())


# ---------------------------------------------------------------------------------------------------------------
# vessels
# ---------------------------------------------------------------------------------------------------------------
def _split_seam(mask: np.ndarray, signal: np.ndarray, *, px_m: float, config: VesselConfig) -> list[np.ndarray]:
    """Split a blob holding hulls side by side (rafted) along a seam parallel to its long axis.

    The across-axis profile of the object's signed contrast is searched, in the middle of the beam, for a
    trough (a dark seam or water sliver between the hulls) or a step (two hulls of different brightness). A cut
    is accepted when both parts are themselves hull-shaped (at least ``min_part_elongation``).
    """
    u, t, rr, cc = _principal_axes(mask)
    length = (np.ptp(u) + 1.0) * px_m
    width = (np.ptp(t) + 1.0) * px_m
    if width < 2 * config.min_rafted_beam_m or length / max(width, 1e-6) > config.rafted_max_elongation:
        return [mask]
    nb = int(np.ptp(t)) + 1
    if nb < 4:
        return [mask]
    bins = np.clip(np.floor(t - t.min()).astype(int), 0, nb - 1)
    vals = signal[rr, cc]
    cnt = np.bincount(bins, minlength=nb).astype(np.float64)
    prof = np.bincount(bins, weights=vals, minlength=nb) / np.maximum(cnt, 1)
    lo, hi = max(1, int(nb * 0.25)), min(nb - 1, math.ceil(nb * 0.75))
    if hi <= lo:
        return [mask]
    spread = float(np.std(vals)) + 1e-6
    best, best_score = -1, 0.0
    for k in range(lo, hi):
        left, right = prof[:k], prof[k:]
        # step between hulls of different brightness, or trough (seam) lower than both sides
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
        pu, pt, _, _ = _principal_axes(part) if part.sum() > 2 else (u[:1], t[:1], None, None)
        el = (np.ptp(pu) + 1.0) / (np.ptp(pt) + 1.0)
        if el < config.min_part_elongation:
            return [mask]
        parts.append(part)
    out: list[np.ndarray] = []
    for part in parts:
        out.extend(_split_seam(part, signal, px_m=px_m, config=config))
    return out


def _cut_wake(mask: np.ndarray, along_signal: np.ndarray, *, config: VesselConfig) -> np.ndarray:
    """Keep the contiguous stretch along the long axis where the contrast stays above a fraction of its peak.

    A turbulent wake trails the hull with fading contrast (weaker still in NIR); the hull is the strong part.
    """
    u, _t, rr, cc = _principal_axes(mask)
    nb = int(np.ptp(u)) + 1
    if nb < 6:
        return mask
    bins = np.clip(np.floor(u - u.min()).astype(int), 0, nb - 1)
    vals = np.abs(along_signal[rr, cc])
    prof = np.zeros(nb)
    np.maximum.at(prof, bins, vals)
    prof = ndi.uniform_filter1d(prof, 3)
    peak = int(np.argmax(prof))
    thr = config.wake_fade_fraction * prof[peak]
    keep = prof >= thr
    a = peak
    while a > 0 and keep[a - 1]:
        a -= 1
    b = peak
    while b < nb - 1 and keep[b + 1]:
        b += 1
    if a == 0 and b == nb - 1:
        return mask
    sel = (bins >= a) & (bins <= b)
    out = np.zeros_like(mask)
    out[rr[sel], cc[sel]] = True
    # keep the largest piece
    lab, n = ndi.label(out)
    if n > 1:
        sizes = np.bincount(lab.ravel())[1:]
        out = lab == (int(np.argmax(sizes)) + 1)
    return out


def detect_vessels(
    scene: Scene,
    water: np.ndarray,
    *,
    config: VesselConfig = _VESSEL,
    valid: np.ndarray | None = None,
) -> list[Detection]:
    """Vessels on the water domain: at anchor, under way, alongside quays and rafted.

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
    list of :class:`~berthwatch.models.Detection` with ``kind="vessel"``, oriented footprint in scene CRS and
    per-object evidence in ``features`` (``z_peak``, ``z_mean``, ``nir_ratio``, ``elongation``, ``solidity``,
    ``rectangularity``, ``touches_shore``, ``touches_invalid``, ``wake_cut``, ``split``).
    """
    valid = scene.valid if valid is None else (valid & scene.valid)
    if water.shape != scene.shape:
        raise ValueError(f"water mask shape {water.shape} != scene shape {scene.shape}")
    px = scene.pixel_size_m
    domain = water & valid
    if domain.sum() < 16:
        return []
    # pixels next to the quay line (mixed land/water pixels) never seed an object
    core = land_core(water | ~valid, pixel_size_m=px) & valid
    fringe_px = max(1, round(_px(config.shore_fringe_m, scene)))
    fringe = ndi.binary_dilation(core, iterations=fringe_px)
    z, roles = contrast_bands(scene, domain, window_m=config.background_window_m, trim_z=config.low_z)
    score = np.sqrt(np.mean(z * z, axis=0))
    vis = [i for i, r in enumerate(roles) if r in ("blue", "green", "red", "pan")] or list(range(len(roles)))
    zvis = z[vis].mean(axis=0)
    nir_i = roles.index("nir") if "nir" in roles else None
    along = np.abs(z[nir_i]) if nir_i is not None else np.abs(zvis)
    seeds = (score >= config.high_z) & domain & ~fringe
    grow = (score >= config.low_z) & domain
    cand = filters.apply_hysteresis_threshold(np.where(grow, score, 0.0), config.low_z, config.high_z)
    cand &= grow
    cand &= ndi.binary_propagation(seeds, mask=cand)
    # close small gaps inside hulls (hatches, deck shadows) at fine resolution, then fill enclosed holes
    r_close = round(_px(config.close_m, scene))
    if r_close >= 1:
        cand = ndi.binary_closing(cand, structure=np.ones((2 * r_close + 1,) * 2, bool)) & domain
    lab, n = ndi.label(cand)
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    area_px = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64)
    min_area_px = max(2.0, (config.min_length_m * config.min_width_m) / px**2 * 0.5)
    max_area_px = config.max_length_m * config.max_width_m * 2.0 / px**2  # rafted pairs + wake still go through
    keep = (area_px >= min_area_px) & (area_px <= max_area_px)
    slices = ndi.find_objects(lab)
    log.debug("vessel candidates: %d components, %d in size range", n, int(keep.sum()))
    invalid_near = ~valid
    dets: list[Detection] = []
    for i in idx[keep]:
        sl = slices[i - 1]
        if sl is None:
            continue
        # pad the slice by one pixel for adjacency tests
        r0, r1 = max(0, sl[0].start - 1), min(scene.height, sl[0].stop + 1)
        c0, c1 = max(0, sl[1].start - 1), min(scene.width, sl[1].stop + 1)
        sub = lab[r0:r1, c0:c1] == i
        sub = ndi.binary_fill_holes(sub)
        sig = zvis[r0:r1, c0:c1]
        parts = _split_seam(sub, sig, px_m=px, config=config)
        for part in parts:
            cut = _cut_wake(part, along[r0:r1, c0:c1], config=config)
            det = _vessel_detection(
                cut,
                r0,
                c0,
                scene,
                config=config,
                score=score[r0:r1, c0:c1],
                zvis=sig,
                znir=None if nir_i is None else z[nir_i, r0:r1, c0:c1],
                core=core[r0:r1, c0:c1],
                invalid=invalid_near[r0:r1, c0:c1],
                wake_cut=float(part.sum() - cut.sum()) / max(1.0, float(part.sum())),
                split=len(parts) > 1,
            )
            if det is not None:
                dets.append(det)
    dets.sort(key=lambda d: -d.confidence)
    return dets


def _vessel_detection(
    mask: np.ndarray,
    r0: int,
    c0: int,
    scene: Scene,
    *,
    config: VesselConfig,
    score: np.ndarray,
    zvis: np.ndarray,
    znir: np.ndarray | None,
    core: np.ndarray,
    invalid: np.ndarray,
    wake_cut: float,
    split: bool,
) -> Detection | None:
    px = scene.pixel_size_m
    n = int(mask.sum())
    if n < 2:
        return None
    geom = _footprint(mask, r0, c0, scene)
    length, width, heading, rect = measure(geom, scene)
    # the outline runs along pixel corners and the blur adds a half pixel each side: take one pixel off
    length, width = max(length - px, px), max(width - px, min(px, width))
    # a measured length must span at least two pixels (sampling limit), and physical limits apply
    if length < max(config.min_length_m, 2.0 * px) or length > config.max_length_m or width > config.max_width_m:
        return None
    area_m2 = n * px * px
    rect_area = max(rect.area * scene.ground_scale**2, 1e-9)
    rectangularity = min(1.0, area_m2 / rect_area)
    hull_area = max(geom.area * scene.ground_scale**2, 1e-9)
    solidity = min(1.0, area_m2 / hull_area)
    elongation = length / max(width, 1e-6)
    s = score[mask]
    zv = zvis[mask]
    z_peak = float(np.percentile(s, 90))
    z_mean = float(zv.mean())
    nir_ratio = float("nan")
    if znir is not None:
        zn = znir[mask]
        nir_ratio = float(np.mean(zn) / (abs(z_mean) + 1e-6)) if abs(z_mean) > 1e-6 else 0.0
    touches_shore = _touches(mask, core)
    touches_invalid = _touches(mask, invalid)
    # whitecaps and wake foam: bright in the visible, much weaker in NIR (Dierssen 2019)
    foam = znir is not None and z_mean > 0 and nir_ratio < config.foam_nir_ratio
    # evidence -> confidence (logistic; weights set on physical grounds, see module docstring)
    size_ok = min(1.0, length / max(config.min_length_m * 3.0, 3.0 * px))
    shape_ok = 0.5 * rectangularity + 0.5 * min(1.0, elongation / 3.0)
    x = (
        1.6 * math.log(max(z_peak, 1e-3) / config.high_z)
        + 2.5 * (shape_ok - 0.6)
        + 1.5 * (size_ok - 0.5)
        + 0.3
        - (3.0 if foam else 0.0)
        - (0.6 if touches_invalid else 0.0)
    )
    conf = _logistic(x)
    if conf < config.min_confidence:
        return None
    return Detection(
        geometry=rect,
        kind="vessel",
        confidence=round(conf, 4),
        length_m=float(length),
        width_m=float(width),
        heading_deg=float(heading),
        area_m2=float(area_m2),
        features={
            "z_peak": z_peak,
            "z_mean": z_mean,
            "nir_ratio": nir_ratio,
            "elongation": float(elongation),
            "solidity": float(solidity),
            "rectangularity": float(rectangularity),
            "touches_shore": float(touches_shore),
            "touches_invalid": float(touches_invalid),
            "wake_cut": float(wake_cut),
            "split": float(split),
            "area_px": float(n),
            "dark": float(z_mean < 0),
        },
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
