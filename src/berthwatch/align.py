"""Two-date alignment: common grid, sub-pixel co-registration, radiometric normalisation.

AFTER is brought onto BEFORE's grid cropped to the common overlap, with one resampling only
(:func:`rasterio.warp.reproject`, bilinear or cubic: ``AlignConfig.resampling``; bilinear blurs AFTER by up to
a half-pixel kernel that BEFORE does not have, cubic keeps it as sharp). The misregistration between the dates is
estimated on stable structure (gradient magnitude of land and quay edges, tile by tile, robust median) and removed
by correcting AFTER's geotransform before that single resampling. AFTER's bands are then mapped to BEFORE's
radiometry using pseudo-invariant pixels (pixels whose rank hardly changes between the dates), so that gain,
offset, gamma and haze differences do not look like changes.

Every function takes arrays or scenes and returns new objects: no global state, so each step can later run
window by window.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import rasterio.windows
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window
from scipy import ndimage as ndi
from skimage.filters import sobel, window
from skimage.registration import phase_cross_correlation
from skimage.transform import downscale_local_mean

from berthwatch.config import AlignConfig
from berthwatch.errors import AlignmentError, NoOverlapError
from berthwatch.models import AlignedPair, Alignment, BandRole, Scene, band_mean

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

_DEFAULT_CONFIG = AlignConfig()

__all__ = ["align", "common_bands", "common_grid", "estimate_shift", "normalise_radiometry", "warp_to_grid"]

_REGISTRATION_METHOD = "phase correlation of gradient magnitude, per-tile robust median (skimage)"


# ------------------------------------------------------------------------------------------------
# grid
# ------------------------------------------------------------------------------------------------
def common_grid(
    before: Scene, after: Scene, *, config: AlignConfig = _DEFAULT_CONFIG
) -> tuple[Affine, tuple[int, int], Window]:
    """BEFORE's grid cropped to the overlap of both footprints.

    Parameters
    ----------
    before, after
        The two scenes as read (any CRS, pixel size and extent).
    config
        ``min_overlap_m2`` and ``min_overlap_fraction`` (of BEFORE's footprint) bound the overlap.

    Returns
    -------
    transform, shape, window
        Geotransform and ``(rows, cols)`` of the cropped grid, and the window of BEFORE it covers.

    Raises
    ------
    NoOverlapError
        When the footprints do not overlap or the overlap is too small; the message names both files.
    """
    bb = before.bounds
    ab = transform_bounds(after.crs, before.crs, *after.bounds, densify_pts=21)
    left, bottom = max(bb[0], ab[0]), max(bb[1], ab[1])
    right, top = min(bb[2], ab[2]), min(bb[3], ab[3])
    if not (left < right and bottom < top):
        raise NoOverlapError(f"does not overlap {before.path or before.name} at all", path=after.path or after.name)
    win = rasterio.windows.from_bounds(left, bottom, right, top, transform=before.transform)
    eps = 1e-6
    col0 = max(0, math.ceil(win.col_off - eps))
    row0 = max(0, math.ceil(win.row_off - eps))
    col1 = min(before.width, math.floor(win.col_off + win.width + eps))
    row1 = min(before.height, math.floor(win.row_off + win.height + eps))
    rows, cols = max(0, row1 - row0), max(0, col1 - col0)
    area_m2 = rows * cols * before.pixel_size_m**2
    fraction = rows * cols / float(before.height * before.width)
    if area_m2 < config.min_overlap_m2 or fraction < config.min_overlap_fraction:
        raise NoOverlapError(
            f"overlaps {before.path or before.name} by only {area_m2:.0f} m² ({fraction:.1%} of it); need at least "
            f"{config.min_overlap_m2:.0f} m² and {config.min_overlap_fraction:.0%}",
            path=after.path or after.name,
        )
    window_ = Window(col0, row0, cols, rows)
    transform = before.transform @ Affine.translation(col0, row0)
    return transform, (rows, cols), window_


def common_bands(before: Scene, after: Scene) -> tuple[list[int], list[int], tuple[BandRole, ...]]:
    """Indices of the band roles both scenes have, in BEFORE's order.

    With no role in common (e.g. a panchromatic scene against an RGB one), returns empty index lists and the
    single role ``("pan",)``: the caller compares :meth:`Scene.gray` instead.
    """
    roles = [r for r in before.bands if r in after.bands and r != "other"]
    # keep each role once (some layouts repeat "other")
    seen: list[BandRole] = []
    for r in roles:
        if r not in seen:
            seen.append(r)
    if not seen:
        return [], [], ("pan",)
    return [before.bands.index(r) for r in seen], [after.bands.index(r) for r in seen], tuple(seen)


def _select(scene: Scene, idx: list[int]) -> np.ndarray:
    """Bands ``idx`` of a scene (native dtype), or its gray level as one float32 band when ``idx`` is empty."""
    if idx:
        return scene.data[idx]
    return scene.gray()[None]


def warp_to_grid(
    data: np.ndarray,
    valid: np.ndarray,
    *,
    src_transform: Affine,
    src_crs: object,
    dst_transform: Affine,
    dst_crs: object,
    dst_shape: tuple[int, int],
    resampling: Resampling = Resampling.bilinear,
) -> tuple[np.ndarray, np.ndarray]:
    """Reproject ``(bands, rows, cols)`` data and its valid mask onto a grid.

    Data are warped as float32 with ``resampling``; the valid mask is warped bilinearly as a fraction and only
    pixels entirely made of valid source pixels stay valid, so edges are conservative.
    """
    nb = data.shape[0]
    out = np.zeros((nb, *dst_shape), dtype=np.float32)
    for b in range(nb):
        reproject(
            source=np.ascontiguousarray(data[b], dtype=np.float32),
            destination=out[b],
            src_transform=src_transform,
            src_crs=src_crs,
            dst_transform=dst_transform,
            dst_crs=dst_crs,
            resampling=resampling,
            src_nodata=None,
            dst_nodata=None,
        )
    frac = np.zeros(dst_shape, dtype=np.float32)
    reproject(
        source=valid.astype(np.float32),
        destination=frac,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        resampling=Resampling.bilinear,
        src_nodata=None,
        dst_nodata=None,
    )
    ok = frac > 0.999
    if resampling in (Resampling.cubic, Resampling.cubic_spline, Resampling.lanczos):
        ok = ndi.binary_erosion(ok, iterations=1)
    out[:, ~ok] = 0.0
    return out, ok


# ------------------------------------------------------------------------------------------------
# co-registration
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TileShift:
    shift: tuple[float, float]
    ncc: float


def _structure(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the valid pixels (zero where a 3x3 neighbourhood touches invalid data).

    Only the valid mask, identical for both dates' windows it is compared on, is applied here: zeroing the
    water or other unstable pixels would give both images the same artificial edges and pull the estimate
    to zero. Stable structure is chosen by selecting tiles instead.
    """
    inner = ndi.binary_erosion(valid, iterations=2, border_value=1)
    filled = np.where(valid, image, np.median(image[valid]) if valid.any() else 0.0).astype(np.float32)
    grad = sobel(filled).astype(np.float32)
    grad[~inner] = 0.0
    return grad


def _starts(lo: int, hi: int, size: int) -> list[int]:
    """Tile origins from ``lo`` to ``hi`` (inclusive) with half-tile overlap, the last one flush with ``hi``."""
    if hi < lo:
        return []
    out = list(range(lo, hi + 1, max(1, size // 2)))
    if out[-1] != hi:
        out.append(hi)
    return out


def _pcc(ref: np.ndarray, mov: np.ndarray, upsample: int) -> tuple[float, float]:
    """Displacement (rows, cols) of ``mov``'s content relative to ``ref`` (skimage returns its opposite)."""
    win = window("hann", ref.shape).astype(np.float32)
    shift, _, _ = phase_cross_correlation(ref * win, mov * win, upsample_factor=upsample)
    return (-float(shift[0]), -float(shift[1]))


#: Side (pixels) above which the whole-image coarse shift is estimated on block means: its FFTs (complex, several
#: copies of the image) would otherwise dominate the memory of a large scene.
COARSE_MAX_SIDE = 2048


def _coarse_shift(ref: np.ndarray, mov: np.ndarray) -> tuple[float, float]:
    """Whole-image displacement to about a pixel, as a start for the tile estimates (which refine it by +-2 px).

    Images larger than ``COARSE_MAX_SIDE`` are reduced by block means of ``f`` pixels
    (:func:`skimage.transform.downscale_local_mean`) and correlated with ``upsample_factor=f``, which gives the
    shift to a pixel of the full grid at a fraction of the memory.
    """
    f = math.ceil(max(ref.shape) / COARSE_MAX_SIDE)
    if f <= 1:
        return _pcc(ref, mov, upsample=1)
    small_ref = downscale_local_mean(ref, (f, f)).astype(np.float32)
    small_mov = downscale_local_mean(mov, (f, f)).astype(np.float32)
    dr, dc = _pcc(small_ref, small_mov, upsample=f)
    return (dr * f, dc * f)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def estimate_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    stable: np.ndarray,
    max_shift_px: float,
    valid: np.ndarray | None = None,
    tile_px: int = 96,
    min_stable_fraction: float = 0.3,
    upsample_factor: int = 50,
    min_tiles: int = 3,
    min_ncc: float = 0.3,
    max_tiles: int = 400,
) -> tuple[tuple[float, float], float, float]:
    """Sub-pixel displacement of ``moving`` relative to ``reference`` on stable structure.

    Both images are on the same grid. Their gradient magnitudes are phase-correlated over the whole image for a
    coarse estimate, then tile by tile (``tile_px`` square, Hann-windowed, ``upsample_factor``) around it and
    around zero. Only tiles entirely valid and with at least ``min_stable_fraction`` stable pixels are used;
    tiles whose gradients do not correlate (``min_ncc``: water, moving ships, clouds) are dropped; the result is
    the median of the remaining tiles. A large scene holds thousands of structured tiles: at most ``max_tiles`` of
    them, evenly spread over the scene, are correlated, so the cost stops growing with the scene.

    Parameters
    ----------
    reference, moving
        2-D float images (e.g. gray levels of BEFORE and of AFTER warped onto BEFORE's grid).
    stable
        Boolean mask of stable structure (land, quays: textured, not water, where known).
    valid
        Boolean mask of pixels with data at both dates (default: all).
    max_shift_px
        The caller's bound. Displacements up to 4 x this are estimated (the caller refuses those beyond the
        bound); larger ones are not searched and give ``quality == 0``.

    Returns
    -------
    shift, residual, quality
        ``shift`` = (rows, cols): a feature at ``(r, c)`` in ``reference`` sits at ``(r + rows, c + cols)``
        in ``moving``. ``residual`` is the robust spread (px) of the tile estimates around the median (NaN if
        no estimate); ``quality`` in 0..1 (fraction of structured tiles agreeing, times their median
        correlation). ``quality == 0`` means no estimate could be made (too little stable structure).
    """
    if reference.shape != moving.shape or stable.shape != reference.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, moving {moving.shape}, stable {stable.shape}")
    ok = np.ones(reference.shape, dtype=bool) if valid is None else valid
    gr = _structure(reference, ok)
    gm = _structure(moving, ok)
    if not (gr.any() and gm.any() and stable.any()):
        return (0.0, 0.0), math.nan, 0.0
    inner = ndi.binary_erosion(ok, iterations=2, border_value=1)
    rows, cols = reference.shape
    coarse = _coarse_shift(gr, gm)
    # tiles are searched around the coarse estimate and around zero (the coarse peak may be a moving ship)
    # beyond 4x the bound the coarse peak is not a misregistration worth refining (quality 0 then)
    plausible = 1.0 <= math.hypot(*coarse) <= 4.0 * max_shift_px + 2.0
    candidates = [coarse, (0.0, 0.0)] if plausible else [(0.0, 0.0)]
    t = int(min(tile_px, rows, cols))
    best: list[_TileShift] = []
    struct_best = 0
    for cand in candidates:
        ir, ic = round(cand[0]), round(cand[1])
        tiles: list[_TileShift] = []
        n_struct = 0
        # tile origins such that the reference tile and the displaced moving tile both lie inside the image
        r_lo, r_hi = max(0, -ir), rows - t - max(0, ir)
        c_lo, c_hi = max(0, -ic), cols - t - max(0, ic)
        origins = [
            (r0, c0)
            for r0 in _starts(r_lo, r_hi, t)
            for c0 in _starts(c_lo, c_hi, t)
            if inner[r0 : r0 + t, c0 : c0 + t].all()
            and inner[r0 + ir : r0 + ir + t, c0 + ic : c0 + ic + t].all()
            and stable[r0 : r0 + t, c0 : c0 + t].mean() >= min_stable_fraction
        ]
        if len(origins) > max_tiles:  # a large scene: an even sample of its structured tiles (the median is robust)
            origins = [origins[i] for i in np.linspace(0, len(origins) - 1, max_tiles).round().astype(int)]
        for r0, c0 in origins:
            r1, c1 = r0 + ir, c0 + ic
            ref_t = gr[r0 : r0 + t, c0 : c0 + t]
            mov_t = gm[r1 : r1 + t, c1 : c1 + t]
            n_struct += 1
            ncc = _ncc(ref_t, mov_t)
            fine = _pcc(ref_t, mov_t, upsample=upsample_factor)
            if abs(fine[0]) > 2 or abs(fine[1]) > 2:
                continue
            ncc = max(ncc, _ncc(ref_t, ndi.shift(mov_t, (-fine[0], -fine[1]), order=1)))
            if ncc >= min_ncc:
                tiles.append(_TileShift((ir + fine[0], ic + fine[1]), ncc))
        if len(tiles) > len(best):
            best = tiles
            struct_best = n_struct
        if len(best) >= max(min_tiles, struct_best // 2):
            break  # most structured tiles agree around this candidate: no need to search around zero
    if not best:
        return (0.0, 0.0), math.nan, 0.0
    shifts = np.array([ts.shift for ts in best])
    med = np.median(shifts, axis=0)
    dist = np.hypot(*(shifts - med).T)
    agree = dist <= 1.0
    if agree.sum() >= 2:
        med = np.median(shifts[agree], axis=0)
        dist = np.hypot(*(shifts[agree] - med).T)
    residual = float(1.4826 * np.median(dist)) if dist.size else math.nan
    nccs = np.array([ts.ncc for ts in best])[agree]
    quality = float(agree.sum() / max(struct_best, 1) * np.clip(np.median(nccs), 0.0, 1.0))
    if agree.sum() < min_tiles:
        quality = min(quality, 0.0)
    return (float(med[0]), float(med[1])), residual, quality


def _shift_transform(
    transform: Affine,
    crs: object,
    *,
    grid_transform: Affine,
    grid_crs: object,
    centre_px: tuple[float, float],
    shift_px: tuple[float, float],
) -> Affine:
    """AFTER's transform corrected so that content displaced by ``shift_px`` (grid pixels) lands in place."""
    r, c = centre_px
    x0, y0 = grid_transform @ (c, r)
    x1, y1 = grid_transform @ (c - shift_px[1], r - shift_px[0])
    tr = Transformer.from_crs(grid_crs, crs, always_xy=True)
    (ax0, ax1), (ay0, ay1) = tr.transform([x0, x1], [y0, y1])
    return Affine.translation(ax1 - ax0, ay1 - ay0) @ transform


# ------------------------------------------------------------------------------------------------
# radiometry
# ------------------------------------------------------------------------------------------------
def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float32)
    ranks[order] = np.linspace(0.0, 1.0, values.size, dtype=np.float32)
    return ranks


def normalise_radiometry(
    before: Scene,
    after: Scene,
    *,
    mask: np.ndarray,
    invariant_fraction: float = 0.3,
    method: str = "auto",
    max_samples: int = 500_000,
    seed: int = 0,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[float], list[float], str]:
    """Map AFTER's bands onto BEFORE's radiometry using pseudo-invariant pixels.

    Both scenes are on the same grid with the same band roles. Pseudo-invariant pixels are the
    ``invariant_fraction`` of pixels in ``mask`` whose rank (in every band) changes least between the dates:
    ranks are unaffected by gain, offset, gamma or haze, but change where the ground changed. On them, per band,
    the quantiles of AFTER are paired with the quantiles of BEFORE; a straight line through these pairs gives
    gain and offset. When the pairs bend away from the line (gamma), AFTER is mapped through the quantile
    curve itself (monotone, linear beyond its ends) and the method says ``"quantile"``.

    ``out`` (float32, AFTER's shape) receives the result, band by band; it may be AFTER's own data (mapped in
    place, saving a copy of the scene).

    Returns
    -------
    data, gains, offsets, method
        AFTER's bands as float32 in BEFORE's scale (``out`` when given), the per-band linear gain and offset
        (``before ≈ gain * after + offset``), and ``"linear"``/``"quantile"``/``"none"`` (too few valid pixels).
    """
    nb = after.data.shape[0]
    a = after.data.astype(np.float32, copy=False)
    idx = np.flatnonzero(mask.ravel())
    if out is not None and (out.shape != a.shape or out.dtype != np.float32):
        raise ValueError(f"out must be float32 of shape {a.shape}, got {out.dtype} {out.shape}")
    if idx.size < 100:
        if out is None:
            return a.astype(np.float32), [1.0] * nb, [0.0] * nb, "none"
        if out is not a:
            out[...] = a
        return out, [1.0] * nb, [0.0] * nb, "none"
    rng = np.random.default_rng(seed)
    if idx.size > max_samples:
        idx = np.sort(rng.choice(idx, size=max_samples, replace=False))
    bflat = before.data.reshape(before.data.shape[0], -1)[:, idx].astype(np.float32)
    aflat = a.reshape(nb, -1)[:, idx]
    rank_change = np.zeros(idx.size, dtype=np.float32)
    for b in range(nb):
        rank_change = np.maximum(rank_change, np.abs(_ranks(bflat[b]) - _ranks(aflat[b])))
    keep = rank_change <= np.quantile(rank_change, invariant_fraction)
    probs = np.linspace(0.01, 0.99, 99)
    gains: list[float] = []
    offsets: list[float] = []
    curves: list[tuple[np.ndarray, np.ndarray]] = []
    bend = 0.0
    for b in range(nb):
        qa = np.quantile(aflat[b, keep], probs)
        qb = np.quantile(bflat[b, keep], probs)
        if np.ptp(qa) <= 0:
            gains.append(1.0)
            offsets.append(float(np.median(qb) - np.median(qa)))
            curves.append((qa, qb))
            continue
        g, o = np.polyfit(qa, qb, 1)
        gains.append(float(g))
        offsets.append(float(o))
        curves.append((qa, qb))
        spread = float(np.ptp(qb)) or 1.0
        bend = max(bend, float(np.max(np.abs(g * qa + o - qb))) / spread)
    if out is None:
        out = np.empty(a.shape, dtype=np.float32)
    # a curve departing from the line by more than 3 % of the range is a non-linear (gamma) difference
    if method == "auto":
        method = "quantile" if bend > 0.03 else "linear"
    elif method not in ("linear", "quantile"):
        raise ValueError(f"method must be 'auto', 'linear' or 'quantile', got {method!r}")
    for b in range(nb):
        if method == "linear":
            np.multiply(a[b], np.float32(gains[b]), out=out[b])
            out[b] += np.float32(offsets[b])
            continue
        qa, qb = curves[b]
        qa_u, first = np.unique(qa, return_index=True)
        qb_u = np.maximum.accumulate(qb[first])
        mapped = np.interp(a[b], qa_u, qb_u)
        lo, hi = a[b] < qa_u[0], a[b] > qa_u[-1]
        mapped[lo] = qb_u[0] + gains[b] * (a[b][lo] - qa_u[0])
        mapped[hi] = qb_u[-1] + gains[b] * (a[b][hi] - qa_u[-1])
        out[b] = mapped
    out[:, ~after.valid] = 0.0
    return out, gains, offsets, method


# ------------------------------------------------------------------------------------------------
# pipeline step
# ------------------------------------------------------------------------------------------------
def _texture_mask(gray: np.ndarray, valid: np.ndarray, pixel_size_m: float) -> np.ndarray:
    """Pixels with local texture well above the flattest part of the scene: land and quays, not open water."""
    size = max(3, round(15.0 / pixel_size_m) | 1)
    # float32 with the scene's median taken off first (keeps the variance accurate without float64 images)
    centre = float(np.median(gray[valid])) if valid.any() else 0.0
    g = np.where(valid, gray - np.float32(centre), np.float32(0.0)).astype(np.float32, copy=False)
    w = ndi.uniform_filter(valid.astype(np.float32), size)
    m1 = ndi.uniform_filter(g, size)
    g *= g
    m2 = ndi.uniform_filter(g, size)
    del g
    inv = np.float32(1.0) / np.maximum(w, np.float32(1e-6))
    m1 *= inv
    m2 *= inv
    del inv
    m1 *= m1
    m2 -= m1  # variance
    del m1
    np.maximum(m2, np.float32(0.0), out=m2)
    std = np.sqrt(m2, out=m2)
    std[w <= 1e-6] = 0.0
    inner = valid & (w > 0.99)
    if inner.sum() < 100:
        return inner
    floor = float(np.quantile(std[inner], 0.1))
    return inner & (std > 2.0 * max(floor, 1e-6))


def align(
    before: Scene,
    after: Scene,
    *,
    config: AlignConfig = _DEFAULT_CONFIG,
    progress: Progress | None = None,
) -> AlignedPair:
    """Bring AFTER onto BEFORE's grid over their overlap, co-registered and radiometrically normalised.

    Parameters
    ----------
    before, after
        Scenes as read (CRS, pixel size, extent and band layout may differ).
    config
        Overlap bounds, ``max_shift_m`` and co-registration options.
    progress
        Optional ``progress(stage, fraction)`` callback.

    Returns
    -------
    AlignedPair
        ``before`` = BEFORE cropped to the overlap (native dtype, bands common to both dates);
        ``after`` = AFTER warped onto that grid, float32, in BEFORE's radiometric scale. ``alignment`` records
        the shift (displacement of AFTER's content relative to BEFORE, in BEFORE pixels; the correction applied
        is its opposite), residual, quality and the radiometric gains/offsets. ``before_own``/``after_own``:
        a date with all of its own bands on the same grid (AFTER co-registered, in its own radiometry) when it has
        bands the other date lacks (see :attr:`AlignedPair.detection_scenes`).

    Raises
    ------
    NoOverlapError
        Footprints (or jointly valid pixels) overlap too little.
    AlignmentError
        The estimated misregistration exceeds ``config.max_shift_m``: it is refused, never applied blindly.
    """

    def report(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    report("align: grid", 0.0)
    transform, shape, win = common_grid(before, after, config=config)
    bidx, aidx, roles = common_bands(before, after)
    slices = win.toslices()
    b_data = _select(before, bidx)[(slice(None), *slices)]
    b_valid = before.valid[slices].copy()
    a_src = _select(after, aidx)
    warp = dict(
        src_crs=after.crs,
        dst_transform=transform,
        dst_crs=before.crs,
        dst_shape=shape,
        resampling=Resampling[config.resampling],
    )
    a_data, a_valid = warp_to_grid(a_src, after.valid, src_transform=after.transform, **warp)
    joint = b_valid & a_valid
    joint_m2 = float(joint.sum()) * before.pixel_size_m**2
    if joint_m2 < config.min_overlap_m2:
        raise NoOverlapError(
            f"has only {joint_m2:.0f} m² of valid data in common with {before.path or before.name} "
            f"(need {config.min_overlap_m2:.0f} m²)",
            path=after.path or after.name,
        )
    report("align: co-registration", 0.3)
    b_gray = band_mean(b_data)
    a_gray = band_mean(a_data)
    px = before.pixel_size_m
    stable = joint & _texture_mask(b_gray, joint, px)
    max_shift_px = config.max_shift_m / px
    shift, residual, quality = estimate_shift(
        b_gray,
        a_gray,
        stable=stable,
        valid=joint,
        max_shift_px=max_shift_px,
        tile_px=int(np.clip(config.tile_m / px, 32, max(32, min(shape) // 3))),
        min_tiles=config.min_tiles,
    )
    names = f"{before.path or before.name} -> {after.path or after.name}"
    applied = quality >= config.min_quality and math.isfinite(residual)
    flagged = not applied
    message = ""
    magnitude = math.hypot(*shift)
    if applied and magnitude > max_shift_px:
        raise AlignmentError(
            f"estimated misregistration {magnitude * px:.1f} m ({shift[0]:.2f}, {shift[1]:.2f} px) exceeds "
            f"align.max_shift_m = {config.max_shift_m:g} m; refusing to apply it",
            path=names,
        )
    a_transform = after.transform  # AFTER's georeferencing, corrected by the shift below when it is applied
    if flagged:
        message = (
            f"co-registration not applied: too little stable structure agreeing on one shift within "
            f"{4 * config.max_shift_m:g} m (quality {quality:.2f}); georeferencing trusted as is"
        )
        logger.warning("%s: %s", names, message)
        shift_applied: tuple[float, float] = (0.0, 0.0)
    else:
        shift_applied = shift
        if magnitude > 0:
            centre = (shape[0] / 2.0, shape[1] / 2.0)
            a_transform = _shift_transform(
                after.transform,
                after.crs,
                grid_transform=transform,
                grid_crs=before.crs,
                centre_px=centre,
                shift_px=shift,
            )
            del a_data, a_gray, b_gray, stable  # free the first warp before the second
            a_data, a_valid = warp_to_grid(a_src, after.valid, src_transform=a_transform, **warp)
            joint = b_valid & a_valid
    logger.info("%s: shift %s px, residual %.3f px, quality %.2f, applied=%s", names, shift, residual, quality, applied)
    # each date with all of its own bands, for single-date detection (only when it has bands the other lacks)
    b_own = a_own = None
    if any(r not in roles and r != "other" for r in before.bands):
        b_own = before.with_(data=before.data[(slice(None), *slices)], transform=transform, valid=b_valid)
    if any(r not in roles and r != "other" for r in after.bands):
        own_data, _ = warp_to_grid(after.data, after.valid, src_transform=a_transform, **warp)
        a_own = after.with_(data=own_data, transform=transform, crs=before.crs, valid=a_valid)
    report("align: radiometry", 0.7)
    b_scene = before.with_(data=np.ascontiguousarray(b_data), transform=transform, bands=roles, valid=b_valid)
    a_tmp = after.with_(data=a_data, transform=transform, crs=before.crs, bands=roles, valid=a_valid)
    a_norm, gains, offsets, rmethod = normalise_radiometry(b_scene, a_tmp, mask=joint, out=a_data)
    a_norm[:, ~a_valid] = 0.0
    a_scene = a_tmp.with_(data=a_norm)
    alignment = Alignment(
        shift_px=(float(shift_applied[0]), float(shift_applied[1])) if applied else (float(shift[0]), float(shift[1])),
        residual_px=float(residual) if math.isfinite(residual) else 0.0,
        quality=float(quality),
        method=_REGISTRATION_METHOD,
        applied=applied,
        flagged=flagged,
        message=message,
        gain=tuple(gains),
        offset=tuple(offsets),
        radiometric_method=rmethod,
    )
    report("align: done", 1.0)
    return AlignedPair(
        before=b_scene,
        after=a_scene,
        alignment=alignment,
        before_source=before,
        after_source=after,
        before_own=b_own,
        after_own=a_own,
    )
