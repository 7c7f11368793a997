"""Water and land masks, and the area of interest.

The water mask is the *vessel search domain*: open water, plus land specks enclosed by water that are no
larger than a ship (vessels at anchor are holes in the water), plus ship-shaped protrusions from the quay line
(a hull moored alongside a straight quay makes a bump on the land boundary; METHODS.md section 2), plus land
narrower than a moored hull or rafted pair that juts into the water (a morphological opening by a disk of that
width keeps the quays). Hulls lying flush along a quay stay land here: the vessel detector segments the land
side of the shore for them (:func:`berthwatch.detect.vessel_candidates`). Water is found with NDWI (green vs
near-infrared) when the scene has a NIR band, and from texture and brightness otherwise (its blurred outline
then brought to the quay edge by a local water colour model). The threshold is never one global Otsu: it is
Otsu on the pixels near Canny edges of the index, where both classes are present in similar amounts
(METHODS.md section 1).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rfeatures
from scipy import ndimage as ndi
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from skimage import feature, filters, morphology

from berthwatch.config import WaterConfig
from berthwatch.errors import InputError, VectorInputError
from berthwatch.geo import from_lonlat
from berthwatch.models import Scene

log = logging.getLogger(__name__)

_WATER = WaterConfig()  # frozen: safe as a shared default

__all__ = [
    "aoi_mask",
    "cast_shadow_date",
    "contrast_bands",
    "land_core",
    "local_mean_std",
    "read_aoi",
    "union_water",
    "water_extent",
    "water_index",
    "water_mask",
]


def _px(metres: float, pixel_size_m: float) -> float:
    return metres / pixel_size_m


def _robust_unit(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Scale-free copy of ``x``: (x - median) / (p95 - p5) over valid pixels (no reflectance units assumed)."""
    v = x[valid]
    if v.size == 0:
        return np.zeros_like(x, dtype=np.float32)
    p5, p50, p95 = np.percentile(v, [5, 50, 95])
    span = max(float(p95 - p5), 1e-6)
    return ((x - p50) / span).astype(np.float32)


def water_index(scene: Scene) -> tuple[np.ndarray, str]:
    """A per-pixel index that is high on water, and the method used.

    With green and NIR bands: NDWI = (green - NIR) / (green + NIR) (McFeeters 1996), a ratio, so independent of
    the radiometric scale. Without NIR: an image-based index combining low local texture (water is smooth at
    the scale of a few tens of metres) and low brightness, both in robust units.

    Returns
    -------
    index : float32 (rows, cols)
    method : ``"ndwi"`` or ``"texture"``
    """
    valid = scene.valid
    if scene.has("nir") and scene.has("green"):
        g = scene.band("green")
        n = scene.band("nir")
        den = g + n
        ndwi = np.zeros(scene.shape, dtype=np.float32)
        ok = den > 0
        np.divide(g - n, den, out=ndwi, where=ok)
        return ndwi, "ndwi"
    gray = scene.gray()
    px = scene.pixel_size_m
    # texture at ~15 m: local standard deviation (uniform filters, constant cost whatever the window)
    size = max(3, round(_px(15.0, px)) | 1)
    g = _robust_unit(gray, valid)
    m1 = ndi.uniform_filter(g, size)
    m2 = ndi.uniform_filter(g * g, size)
    sd = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    # smooth brightness and texture at ~ 40 m so isolated bright objects (ships) do not break the water up
    big = max(3, round(_px(40.0, px)) | 1)
    sd = ndi.uniform_filter(sd, big)
    bright = ndi.uniform_filter(g, big)
    tex = np.log(sd + 1e-3)
    idx = -_robust_unit(tex, valid) - _robust_unit(bright, valid)
    return idx.astype(np.float32), "texture"


_WAVELENGTH_ORDER = ("blue", "green", "red", "nir")  # shortest first


def cast_shadow_date(
    xb: np.ndarray,
    xa: np.ndarray,
    shift: np.ndarray,
    noise_b: np.ndarray,
    noise_a: np.ndarray,
    bands: Sequence[str] | None,
) -> str | None:
    """The date at which a footprint is in a cast shadow it is not in at the other date, or None.

    ``xb``/``xa`` are the footprint's pixels (bands, n) at both dates, ``shift`` its per-band median change
    (AFTER - BEFORE) beyond the bare ground's. A cast shadow keeps only the sky light: every band darker, and the
    ratio shaded / lit largest in the shortest wavelength (sky light is bluer than sunlight); a painted item
    arriving or leaving changes the bands in the proportions of its own colour.
    """
    if bands is None or len(bands) != xb.shape[0] or xb.shape[1] < 3:
        return None
    order = [bands.index(b) for b in _WAVELENGTH_ORDER if b in bands]
    if len(order) < 3:
        return None
    lit_b = np.median(xb, axis=1)
    if np.all(shift < 0):
        tag, lit, noise = "after", lit_b, noise_a
    elif np.all(shift > 0):
        tag, lit, noise = "before", lit_b + shift, noise_b
    else:
        return None
    lit = np.maximum(lit, 1e-6)
    ratio = 1.0 - np.abs(shift) / lit
    # ratios compared within the uncertainty of the medians (pixel noise over the footprint's pixels)
    tol = 2.0 * np.maximum(noise, 1e-6) / lit / math.sqrt(xb.shape[1])
    r, t = ratio[order], tol[order]
    return tag if bool(np.all(r[:-1] >= r[1:] - np.hypot(t[:-1], t[1:]))) else None


def local_mean_std(x: np.ndarray, m: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    scene: Scene, domain: np.ndarray, *, window_m: float, trim_z: float = 3.0, everywhere: bool = False
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-band two-sided contrast ``z`` against local statistics of the ``domain`` pixels (float32).

    Two passes: the second recomputes the statistics without the pixels whose first-pass ``|z|`` exceeded
    ``trim_z`` (ships, wakes), so crowded anchorages do not raise their own background.

    With ``everywhere`` the contrast is also given outside the domain (against the nearest water statistics).

    Returns
    -------
    z : (bands, rows, cols) float32, 0 outside the domain unless ``everywhere``
    roles : band roles in the same order
    """
    window = max(3, round(_px(window_m, scene.pixel_size_m)) | 1)
    out = np.zeros(scene.data.shape, dtype=np.float32)
    if not domain.any():
        return out, scene.bands
    for i in range(scene.data.shape[0]):
        x = scene.data[i].astype(np.float32)
        bg = domain
        for _ in range(2):
            mean, std, _support = local_mean_std(x, bg, window)
            # floor on the std: the median std over the domain times a small factor (flat synthetic water)
            floor = max(float(np.median(std[domain])) * 0.25, 1e-6)
            z = (x - mean) / np.maximum(std, floor)
            bg = domain & (np.abs(z) < trim_z)
        if not everywhere:
            z[~domain] = 0.0
        out[i] = z
    return out, scene.bands


def _local_std(x: np.ndarray, size: int) -> np.ndarray:
    m1 = ndi.uniform_filter(x, size)
    m2 = ndi.uniform_filter(x * x, size)
    return np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def _edge_otsu(index: np.ndarray, valid: np.ndarray, pixel_size_m: float, evidence: np.ndarray) -> float:
    """Water threshold from the pixels near Canny edges of the index (all valid pixels if there are few edges).

    Ports hold three kinds of surface with distinct indices (vegetation, built-up, water), so a two-class Otsu
    may split vegetation from the rest. Three-class Otsu gives two thresholds; the middle class joins the water
    when it is closer to the water class than to the land class in every layer of ``evidence`` (log NIR
    brightness; without NIR, log texture and log brightness: a smooth, empty quay is as smooth as water but far
    brighter, and stays land).
    """
    sigma = max(1.0, _px(10.0, pixel_size_m))
    edges = feature.canny(index, sigma=sigma, mask=valid)
    near = ndi.binary_dilation(edges, iterations=max(1, round(_px(20.0, pixel_size_m)))) & valid
    sel = near if near.sum() >= 500 else valid
    vals = index[sel]
    ok = np.isfinite(vals)
    vals = vals[ok]
    if vals.size < 2 or np.ptp(vals) <= 0:
        return float(np.median(index[valid])) if valid.any() else 0.0
    t2 = float(filters.threshold_otsu(vals))
    try:
        ta, tb = (float(t) for t in filters.threshold_multiotsu(vals, classes=3))
    except ValueError:
        return t2
    # the middle class's brightness in ``evidence`` (log NIR: water absorbs NIR; or texture) over all valid
    # pixels, compared with the two outer classes
    allv = index[valid]
    fin = np.isfinite(allv)
    allv = allv[fin]
    lo, mid, hi = allv <= ta, (allv > ta) & (allv <= tb), allv > tb
    if lo.sum() < 10 or mid.sum() < 10 or hi.sum() < 10:
        return t2
    for layer in evidence.reshape(-1, *index.shape):
        ev = layer[valid][fin]
        t_lo, t_mid, t_hi = (float(np.median(ev[m])) for m in (lo, mid, hi))
        if abs(t_mid - t_hi) >= abs(t_mid - t_lo):
            return tb  # unlike the water in one of its evidences: the middle class is land
    return ta


def land_core(water: np.ndarray, *, pixel_size_m: float, config: WaterConfig = _WATER) -> np.ndarray:
    """The land that is not part of the vessel search domain: simply ``~water`` (kept for callers)."""
    del pixel_size_m, config
    return ~water


def _straight_quay_pieces(water: np.ndarray, *, pixel_size_m: float, config: WaterConfig) -> np.ndarray:
    """Land that a straightened water outline claims: hulls lying alongside straight quays.

    The water outline is simplified (Douglas-Peucker) with a tolerance of about a hull beam, so a ship moored
    alongside a quay - a step of one beam in the outline - is cut off by the straight quay line (METHODS.md
    section 2). Only elongated, beam-wide pieces are kept.
    """
    tol = _px(config.quay_tolerance_m, pixel_size_m)
    polys = [
        shape(g).simplify(tol, preserve_topology=False)
        for g, v in rfeatures.shapes(water.astype(np.uint8), mask=water, connectivity=4)
        if v == 1
    ]
    polys = [g for g in polys if not g.is_empty and g.area > 0]
    if not polys:
        return np.zeros_like(water)
    straight = rfeatures.rasterize(
        [(g, 1) for g in polys], out_shape=water.shape, transform=Affine.identity(), dtype="uint8"
    ).astype(bool)
    pieces = straight & ~water
    r = round(_px(config.min_moored_beam_m / 2.0, pixel_size_m))
    if r >= 1:  # coarser pixels: a beam is one or two pixels, nothing to open
        pieces = ndi.binary_opening(pieces, structure=morphology.disk(r))
    lab, n = ndi.label(pieces)
    if n == 0:
        return pieces
    out = np.zeros_like(water)
    for i, sl in enumerate(ndi.find_objects(lab), 1):
        if sl is None:
            continue
        sub = lab[sl] == i
        area_m2 = float(sub.sum()) * pixel_size_m**2
        if area_m2 < config.min_vessel_area_m2 or area_m2 > config.max_hole_m2:
            continue
        rr, cc = np.nonzero(sub)
        if rr.size < 3:
            continue
        ev = np.sort(np.linalg.eigvalsh(np.cov(np.vstack([rr, cc]).astype(np.float64))))
        width_m = 4.0 * np.sqrt(max(ev[0], 1.0 / 12.0)) * pixel_size_m
        elong = float(np.sqrt(max(ev[1], 1e-9) / max(ev[0], 1.0 / 12.0)))
        # a hull is rectangular: its area over that of the rectangle with the same second moments (12 sqrt(det C))
        # is about 1 at any orientation and pixel size; the wedge a straightened line cuts off a quay corner (a
        # triangle) gives 0.87
        fill = rr.size / (12.0 * np.sqrt(max(ev[0] * ev[1], 1e-9)))
        if (
            elong >= config.min_moored_elongation
            and width_m <= config.max_moored_width_m
            and fill >= config.min_moored_fill
        ):
            out[sl] |= sub
    return out


def water_mask(scene: Scene, *, config: WaterConfig = _WATER, aoi: np.ndarray | None = None) -> np.ndarray:
    """Boolean water mask of one scene (True = water), the domain where vessels are searched.

    Parameters
    ----------
    scene
        Any band layout (NDWI is used when a NIR band exists, texture and brightness otherwise).
    config
        Sizes in metres: smallest water body kept, largest enclosed object treated as a ship, quay bumps.
    aoi
        Optional boolean (rows, cols); outside it the mask is False.

    Returns
    -------
    numpy.ndarray of bool, (rows, cols). Ship-occupied berths are water where they can be recognised: land
    specks enclosed by water up to ``max_hole_m2`` and hull-shaped bumps on the quay line.
    """
    water = _search_water(scene, config=config)
    water = _add_ship_domain(water, pixel_size_m=scene.pixel_size_m, config=config)
    water &= scene.valid
    if aoi is not None:
        water &= _check_aoi(aoi, scene)
    return water


def _open_water(scene: Scene, *, config: WaterConfig) -> np.ndarray:
    """Open water of one date from the water index (ships, quays and foam are holes or outline)."""
    valid = scene.valid
    if not valid.any():
        return np.zeros(scene.shape, dtype=bool)
    px = scene.pixel_size_m
    index, method = water_index(scene)
    if method == "ndwi":
        evidence = np.log1p(np.maximum(scene.band("nir"), 0.0))
    else:
        win = max(3, round(_px(30.0, px)) | 1)
        gray = scene.gray()
        evidence = np.stack([np.log(_local_std(gray, win) + 1e-3), np.log(ndi.uniform_filter(gray, win) + 1e-3)])
    t = _edge_otsu(index, valid, px, evidence)
    water = (index > t) & valid
    log.debug("water index %s, threshold %.3f, raw water fraction %.3f", method, t, water.mean())
    # roughness test, against built-up areas with a water-like index; the water's own edge is restored afterwards
    # by a geodesic dilation of the same radius (~30 m) inside the thresholded mask.
    win = max(3, round(_px(30.0, px)) | 1)
    if method == "ndwi":
        # NDWI is a physical ratio: water sits far above the threshold even where waves, whitecaps and glint
        # roughen it, while built-up pixels straddle it. Water: the local mean clears the threshold by
        # ``ndwi_margin`` local standard deviations (the roughness of the rough open sea is not a reason to drop it).
        smooth = water & (ndi.uniform_filter(index, win) - t > config.ndwi_margin * _local_std(index, win))
    else:
        # the image index is itself blurred texture: pixels whose local index texture is far above that of the
        # confident water interior are not water
        smooth = water
        tex = np.log(_local_std(index, win) + 1e-4)
        interior = ndi.binary_erosion(water, iterations=win)
        if interior.sum() >= 50:
            ref = tex[interior]
            med = float(np.median(ref))
            mad = float(np.median(np.abs(ref - med))) * 1.4826
            smooth = water & (tex <= med + config.texture_z * max(mad, 1e-3))
    smooth = morphology.remove_small_objects(smooth, max_size=max(1, round(config.min_water_area_m2 / px**2)))
    water = ndi.binary_dilation(smooth, iterations=win, mask=water)
    if method == "texture":
        # smooth the outline: the texture index is blurred at ~40 m anyway
        r = max(1, round(_px(5.0, px)))
        water = ndi.binary_opening(water, structure=morphology.disk(r))
    # remove small water bodies (puddles, shadows, dark roofs) - keep water connected to large bodies
    min_px = max(1, round(config.min_water_area_m2 / px**2))
    return morphology.remove_small_objects(water, max_size=min_px - 1) if min_px > 1 else water


def _search_water(scene: Scene, *, config: WaterConfig) -> np.ndarray:
    """Water of one date as the vessel search domain: open water with ships at anchor (land specks) filled in.

    Without NIR the texture index is blurred at tens of metres and keeps off the quays by as much, so ships
    moored there lie on the land side, where they could only be found as pieces of the shore band. The water
    colour model of :func:`water_extent` brings the outline to the quay edge. (The price: a pier narrower than
    ``max_moored_width_m`` now reads as a rafted pair, as it always did with NDWI, and leaves the land domain of
    the equipment search.)
    """
    water = _open_water(scene, config=config)
    if scene.has("nir") and scene.has("green"):
        return _fill_ships(water, pixel_size_m=scene.pixel_size_m, config=config)  # NDWI: glint stays water
    colour = _colour_water(scene, water, config=config)
    if colour is not None:
        water |= colour
    water = _fill_ships(water, pixel_size_m=scene.pixel_size_m, config=config)
    return _fill_water_coloured(scene, water, config=config)


def _fill_water_coloured(scene: Scene, water: np.ndarray, *, config: WaterConfig) -> np.ndarray:
    """Regions of land whose typical pixel has the local water colour are water, however large.

    Without NIR the water index is a texture, and a field of sun glint or whitecaps on the open sea is as rough as
    land: the mask gets holes of hectares there (or bays at the image's edge), larger than any ship at anchor
    (``max_hole_m2``), in which the single-date detector then looks for hulls moored at a shore that is not there.
    Such a region is still water in most of its pixels (the glints and caps are specks on it): its median band
    contrast to the local water colour (:func:`contrast_bands` against the confident water interior) is below
    ``colour_z``. Land, an island, a pier head, a cloud or a ship keeps its own colour and stays land.
    """
    land = ~water & scene.valid
    if not land.any():
        return water
    px = scene.pixel_size_m
    lab, n = ndi.label(land)
    interior = ndi.binary_erosion(water, iterations=max(1, round(_px(config.colour_interior_m, px))))
    if interior.sum() < 50:
        return water
    z, _roles = contrast_bands(
        scene, interior, window_m=config.colour_window_m, trim_z=config.colour_z, everywhere=True
    )
    rms = np.sqrt(np.mean(z * z, axis=0))
    typical = np.asarray(ndi.median(rms, lab, np.arange(1, n + 1)))
    like_water = np.flatnonzero(typical < config.colour_z) + 1
    if like_water.size == 0:
        return water
    log.debug("%d enclosed land regions with the water's colour are water", like_water.size)
    return water | np.isin(lab, like_water)


def _fill_ships(water: np.ndarray, *, pixel_size_m: float, config: WaterConfig) -> np.ndarray:
    """Land specks inside water (ships at anchor, buoys, debris, whitecaps) become water: the detector looks there."""
    hole_px = max(0, round(config.max_hole_m2 / pixel_size_m**2))
    return morphology.remove_small_holes(water, max_size=hole_px) if hole_px > 0 else water


def water_extent(scene: Scene, *, config: WaterConfig = _WATER) -> np.ndarray:
    """Pixel-accurate open water of one date: ships, quays, shadows and foam are *not* water here.

    Unlike :func:`water_mask` (the vessel search domain, where ships are holes to look into), this is the water
    surface as seen, so that comparing two dates shows where a hull lay on one and open water on the other
    (METHODS.md section 1, "union of both dates' water masks"). With NIR it is the NDWI water without hole
    filling. Without NIR the texture index is blurred at tens of metres, so its outline is refined with a
    *water colour model*: every band's contrast against local statistics of the confident water interior
    (two passes, the second without the first's anomalies, :func:`contrast_bands`), after a light smoothing of
    ``colour_smooth_m``; pixels within ``colour_z`` (root mean square over bands) of the local water colour
    and connected to that interior are water.

    Returns
    -------
    numpy.ndarray of bool, (rows, cols)
    """
    water = _open_water(scene, config=config)
    if scene.has("nir") and scene.has("green"):
        return water
    colour = _colour_water(scene, water, config=config)
    return water if colour is None else colour


def _colour_water(scene: Scene, water: np.ndarray, *, config: WaterConfig) -> np.ndarray | None:
    """Pixels of the local water colour connected to the interior of ``water`` (None: too little interior)."""
    px = scene.pixel_size_m
    interior = ndi.binary_erosion(water, iterations=max(1, round(_px(config.colour_interior_m, px))))
    if interior.sum() < 50:
        return None
    sigma = max(0.5, _px(config.colour_smooth_m, px))
    smoothed = np.stack([ndi.gaussian_filter(b.astype(np.float32), sigma) for b in scene.data])
    z, _roles = contrast_bands(
        dataclasses.replace(scene, data=smoothed),
        interior,
        window_m=config.colour_window_m,
        trim_z=config.colour_z,
        everywhere=True,
    )
    like = (np.sqrt(np.mean(z * z, axis=0)) < config.colour_z) & scene.valid
    lab, _n = ndi.label(like)
    ids = np.unique(lab[interior & like])
    return np.isin(lab, ids[ids > 0])


def _thin_land_pieces(water: np.ndarray, *, pixel_size_m: float, config: WaterConfig) -> np.ndarray:
    """Land narrower than a moored hull (or rafted pair) that juts into the water: berthed ships.

    A morphological opening of the land with a disk of diameter ``max_moored_width_m`` keeps the quays, which are
    wider, and removes what is narrower: hulls alongside a quay (they make land out of water in a single-date
    mask), rafted pairs, and also narrow jetties and breakwater arms, which the vessel classifier rejects on
    their evidence. Computed with two Euclidean distance transforms (an opening by a disk), so the cost does not
    grow with the radius. Only pieces touching the water and at least ``min_vessel_area_m2`` are kept.
    (A pier narrower than ``max_moored_width_m`` is taken too, and with it leaves the equipment search: known
    weakness. Keeping only pieces that touch the wide land along their length made breakwaters land, where their
    rocks read as vessels and equipment.)
    """
    land = ~water
    r = _px(config.max_moored_width_m / 2.0, pixel_size_m)
    if r < 1.0:
        return np.zeros_like(water)
    core = ndi.distance_transform_edt(land) > r
    opened = ndi.distance_transform_edt(~core) <= r
    pieces = land & ~opened
    lab, n = ndi.label(pieces)
    if n == 0:
        return pieces
    idx = np.arange(1, n + 1)
    area = ndi.sum_labels(np.ones_like(lab, dtype=np.float64), lab, idx) * pixel_size_m**2
    touch = ndi.maximum(ndi.binary_dilation(water) & pieces, lab, idx).astype(bool)
    ok = touch & (area >= config.min_vessel_area_m2)
    return np.isin(lab, idx[ok]) & pieces


def _add_ship_domain(water: np.ndarray, *, pixel_size_m: float, config: WaterConfig) -> np.ndarray:
    if not water.any() or water.all():
        return water
    quay = _straight_quay_pieces(water, pixel_size_m=pixel_size_m, config=config)
    return water | quay | _thin_land_pieces(water, pixel_size_m=pixel_size_m, config=config)


def union_water(
    before: Scene, after: Scene, *, config: WaterConfig = _WATER, aoi: np.ndarray | None = None
) -> np.ndarray:
    """Union of both dates' water masks on their common grid, so a berth occupied on one date is water.

    Pixels invalid on one date take the other date's answer.
    """
    if before.shape != after.shape:
        raise InputError(f"union_water needs scenes on one grid, got shapes {before.shape} and {after.shape}")
    wa = _search_water(before, config=config)
    wb = _search_water(after, config=config)
    va, vb = before.valid, after.valid
    water = (wa & va) | (wb & vb)
    # after the union, holes that were ships on both dates are filled again and bumps re-evaluated
    px = before.pixel_size_m
    water = _fill_ships(water, pixel_size_m=px, config=config)
    water = _add_ship_domain(water, pixel_size_m=px, config=config)
    water &= va | vb
    if aoi is not None:
        water &= _check_aoi(aoi, before)
    return water


def _check_aoi(aoi: np.ndarray, scene: Scene) -> np.ndarray:
    aoi = np.asarray(aoi)
    if aoi.shape != scene.shape:
        raise InputError(f"AOI mask shape {aoi.shape} != scene shape {scene.shape}", path=scene.path)
    return aoi.astype(bool)


def read_aoi(path: str | Path) -> list[BaseGeometry]:
    """Polygons of a GeoJSON file in lon/lat (FeatureCollection, Feature or bare geometry).

    Raises
    ------
    VectorInputError
        When the file is missing, not JSON, or holds no polygon.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VectorInputError("AOI file not found", path=p) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VectorInputError(f"AOI is not readable GeoJSON ({exc})", path=p) from exc
    if not isinstance(data, dict):
        raise VectorInputError("AOI GeoJSON must be an object", path=p)
    kind = data.get("type")
    if kind == "FeatureCollection":
        raw = [f.get("geometry") for f in data.get("features") or [] if isinstance(f, dict)]
    elif kind == "Feature":
        raw = [data.get("geometry")]
    else:
        raw = [data]
    geoms: list[BaseGeometry] = []
    for g in raw:
        if not g:
            continue
        try:
            geom = shape(g)
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
            raise VectorInputError(f"AOI holds an invalid geometry ({exc})", path=p) from exc
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            raise VectorInputError(f"AOI geometries must be polygons, got {geom.geom_type}", path=p)
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        b = geom.bounds
        if not (-180.0 <= b[0] <= 180.0 and -180.0 <= b[2] <= 180.0 and -90.0 <= b[1] <= 90.0 and -90 <= b[3] <= 90):
            raise VectorInputError(f"AOI coordinates are not lon/lat degrees (bounds {b})", path=p)
        geoms.append(geom)
    if not geoms:
        raise VectorInputError("AOI holds no polygon", path=p)
    return geoms


def aoi_mask(geoms: Sequence[BaseGeometry], scene: Scene) -> np.ndarray:
    """Boolean (rows, cols) mask of the scene pixels whose centres fall inside the lon/lat polygons."""
    shapes = [from_lonlat(g, scene.crs) for g in geoms]
    shapes = [g for g in shapes if not g.is_empty]
    if not shapes:
        return np.zeros(scene.shape, dtype=bool)
    return rfeatures.geometry_mask(shapes, out_shape=scene.shape, transform=scene.transform, invert=True)
