"""Quay equipment (vehicles, containers) on one date, at fine pixel sizes (METHODS.md section 5).

1. Local pavement background per band: a median over a window much wider than a container row (computed on a
   coarse grid of cells a few metres wide, land cells only) and a local robust noise level (median absolute
   deviation over the same window), so that every band becomes a contrast ``z = (x - background) / noise``.
2. Shadows are not objects: a pixel darker than the pavement in every band whose band ratios to the pavement
   match the scene's own sky-lit ratio (measured on the large shadows of buildings) is a cast shadow.
3. Objects are grown by hysteresis on the band-RMS contrast, separately for brighter and darker than pavement
   (neighbouring items of different colour stay apart), away from the water's edge and off roofs.
4. A blob wider than one item is cut across into rows of about one module width (containers 2.44 m, vehicles
   parked side by side); a strip longer than one item is cut along at module lengths (6.06 / 12.19 m), at the
   seams (the weakest cross-sections near the nominal cut); a strip about 12 m long is cut in two 20 ft
   modules when a seam runs across its middle.
5. Pieces are kept on physical length, width and rectangularity; confidence is a logistic of contrast and fit.

All sizes come from :class:`~berthwatch.config.EquipmentConfig` in metres and are converted with
``scene.pixel_size_m``.
"""

from __future__ import annotations

import functools
import io
import logging
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import shapely
from scipy import ndimage as ndi
from shapely.geometry import MultiPoint, Polygon
from skimage import filters

from berthwatch.config import EquipmentConfig
from berthwatch.detect import _footprint, _odd, _px, measure
from berthwatch.models import Detection, Scene

log = logging.getLogger(__name__)

_EQUIPMENT = EquipmentConfig()

__all__ = [
    "FEATURE_NAMES",
    "detect_equipment",
    "equipment_candidates",
    "equipment_model",
    "equipment_supported",
    "load_training_table",
    "make_classifier",
]


def equipment_supported(scene: Scene, config: EquipmentConfig = _EQUIPMENT) -> tuple[bool, str]:
    """Whether the pixels are fine enough to see vehicles and containers, and the note when they are not."""
    px = scene.pixel_size_m
    if px > config.max_pixel_size_m:
        return False, f"equipment not searched: pixel size {px:.2f} m > {config.max_pixel_size_m:g} m"
    return True, ""


# ---------------------------------------------------------------------------------------------------------------
# background and contrast
# ---------------------------------------------------------------------------------------------------------------
def _cells(a: np.ndarray, block: int) -> np.ndarray:
    """Block means of ``a`` over ``block x block`` pixels (edge-padded)."""
    rows, cols = a.shape
    pr, pc = (-rows) % block, (-cols) % block
    a = np.pad(a, ((0, pr), (0, pc)), mode="edge")
    return a.reshape(a.shape[0] // block, block, a.shape[1] // block, block).mean(axis=(1, 3))


def _expand(a: np.ndarray, shape: tuple[int, int], block: int) -> np.ndarray:
    """Cell grid back to pixels (bilinear between cell centres)."""
    rows, cols = shape
    full = ndi.zoom(a, block, order=1, mode="nearest", grid_mode=True)
    if full.shape[0] < rows or full.shape[1] < cols:
        full = np.pad(full, ((0, max(0, rows - full.shape[0])), (0, max(0, cols - full.shape[1]))), mode="edge")
    return full[:rows, :cols]


def _local_contrast(
    scene: Scene, domain: np.ndarray, *, config: EquipmentConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band contrast against the local pavement and the band ratio to it.

    Returns
    -------
    z : (bands, rows, cols) float32, ``(x - background) / local noise``
    ratio : (bands, rows, cols) float32, ``x / background``
    texture : (rows, cols) float32, local noise relative to the smoothest ground of the scene (1 = smooth)
    """
    block = max(1, round(_px(config.cell_m, scene)))
    win = _odd(config.background_m / max(config.cell_m, scene.pixel_size_m))
    dm = _cells(domain.astype(np.float32), block)
    good = dm > 0.5
    bands = scene.data.shape[0]
    z = np.empty((bands, *scene.shape), dtype=np.float32)
    ratio = np.empty_like(z)
    texture = np.zeros(dm.shape, dtype=np.float32)
    for b in range(bands):
        x = scene.data[b].astype(np.float32)
        c = _cells(np.where(domain, x, 0.0), block) / np.maximum(dm, 1e-6)
        ok = good.copy()
        bg_c = c
        for _ in range(2):
            # cells holding objects are replaced by their nearest pavement cell (trimmed statistics)
            if ok.any():
                near = ndi.distance_transform_edt(~ok, return_distances=False, return_indices=True)
                bg_c = ndi.median_filter(c[tuple(near)], size=win, mode="nearest")
                spread_c = ndi.percentile_filter(np.abs(c - bg_c)[tuple(near)], 25, size=win, mode="nearest") * 2.0
            else:
                bg_c = ndi.median_filter(c, size=win, mode="nearest")
                spread_c = np.abs(c - bg_c)
            floor = max(float(np.median(spread_c[good])) if good.any() else 0.0, 1e-6)
            ok = good & (np.abs(c - bg_c) <= 3.0 * np.maximum(spread_c, floor))
        bg = _expand(bg_c, scene.shape, block)
        # noise: local mean absolute residual to the background, over pavement cells only (objects trimmed)
        ad = _cells(np.where(domain, np.abs(x - bg), 0.0), block) / np.maximum(dm, 1e-6)
        if ok.any():
            near = ndi.distance_transform_edt(~ok, return_distances=False, return_indices=True)
            noise_c = ndi.percentile_filter(ad[tuple(near)], 25, size=win, mode="nearest") * 1.25
        else:
            noise_c = ad * 1.25
        floor = max(float(np.median(noise_c[good])) * 0.25 if good.any() else 0.0, 1e-6)
        noise = _expand(np.maximum(noise_c, floor), scene.shape, block)
        ref = max(float(np.percentile(noise_c[good], 10)) if good.any() else 0.0, 1e-6)
        texture += (noise_c / ref / bands).astype(np.float32)
        z[b] = (x - bg) / noise
        ratio[b] = x / np.maximum(bg, 1e-6)
    return z, ratio, _expand(texture, scene.shape, block)


def _shadow_mask(ratio: np.ndarray, domain: np.ndarray, scene: Scene, *, config: EquipmentConfig) -> np.ndarray:
    """Cast shadows on pavement: darker in every band with the scene's sky-lit band ratios.

    The sky-lit ratio vector is measured on large dark regions (building shadows, at least ``shadow_min_m``
    across) where every band is darker than the pavement; a pixel is shadow when it is darker than
    ``shadow_max_ratio`` in every band and its ratio vector lies within ``shadow_tolerance`` (RMS over bands) of
    the segment from the pavement (1) to that sky-lit vector, at least ``shadow_min_fraction`` of the way.
    """
    darker = (ratio.max(axis=0) < config.shadow_max_ratio) & domain
    k = max(1, round(_px(config.shadow_min_m, scene) / 2))
    big = ndi.binary_opening(darker, structure=np.ones((2 * k + 1, 2 * k + 1), bool))
    if big.sum() < 50:
        return np.zeros_like(domain)
    ref = np.median(ratio[:, big], axis=1).astype(np.float32)
    # a partly shaded pixel (penumbra, blur) mixes pavement (ratio 1) and full shadow (ref): its ratio vector
    # lies on the segment between them; ``a`` is the shaded fraction, ``resid`` the distance off the segment
    dirv = ref - 1.0
    dd = max(float(dirv @ dirv), 1e-6)
    off = ratio - 1.0
    a = np.tensordot(dirv, off, axes=1) / dd
    resid = np.sqrt(np.maximum((off * off).sum(axis=0) - a * a * dd, 0.0) / ratio.shape[0])
    return darker & (a >= config.shadow_min_fraction) & (a <= 1.5) & (resid <= config.shadow_tolerance)


# ---------------------------------------------------------------------------------------------------------------
# candidates and their evidence
# ---------------------------------------------------------------------------------------------------------------
#: Per-candidate evidence given to the classifier, in this order (sizes in metres, contrasts as local z-scores or
#: ratios to the local pavement, so that one model serves 0.5-1.2 m pixels and both band layouts).
FEATURE_NAMES: tuple[str, ...] = (
    "pixel_size_m",
    "has_nir",
    "length_m",
    "width_m",
    "log_area_m2",
    "elongation",
    "rectangularity",
    "fit",
    "z_peak",
    "z_mean",
    "z_signed",
    "z_nir",
    "ratio_mean",
    "ratio_spread",
    "ring_z",
    "edge_z",
    "bright",
    "split",
    "parent_length_m",
    "parent_width_m",
    "texture",
    "shadow_ring",
    "shadow_sun",
    "water_dist_m",
    "neighbours",
    "aligned_neighbours",
    "level_z",
)

TABLE_NAME = "equipment_training.npz"


@dataclass
class _Candidate:
    """One piece that may be an item: its footprint, measures and evidence (``FEATURE_NAMES``)."""

    geometry: Polygon
    length_m: float
    width_m: float
    heading_deg: float
    area_m2: float
    features: dict[str, float]


def equipment_candidates(
    scene: Scene,
    land: np.ndarray,
    *,
    config: EquipmentConfig = _EQUIPMENT,
    valid: np.ndarray | None = None,
) -> tuple[list[_Candidate], np.ndarray]:
    """Item-sized pieces of anomalous pavement (high recall) and their evidence.

    Returns
    -------
    candidates : list of pieces (oriented footprint in the scene CRS, measures, features dict)
    features : (n, len(FEATURE_NAMES)) float64 matrix, in ``FEATURE_NAMES`` order
    """
    valid = scene.valid if valid is None else (valid & scene.valid)
    if land.shape != scene.shape:
        raise ValueError(f"land mask shape {land.shape} != scene shape {scene.shape}")
    land = land.astype(bool)
    domain = land & valid
    empty = np.zeros((0, len(FEATURE_NAMES)))
    if domain.sum() < 100:
        return [], empty
    # open pavement: land away from the water's edge (fenders, moored hulls leaking onto the quay)
    edge_px = max(1, round(_px(config.water_margin_m, scene)))
    search = ndi.binary_erosion(domain, iterations=edge_px, border_value=1)
    z, ratio, texture = _local_contrast(scene, domain, config=config)
    shadow = _shadow_mask(ratio, domain, scene, config=config)
    zr = np.sqrt(np.mean(z * z, axis=0))
    zs = z.mean(axis=0)
    # roofs: bright regions wider than any item. The grey opening at roof scale is nearly constant on flat
    # ground; where it stands above the pavement level by roof_z of the pavement's own spread, it is a roof
    gray = scene.gray()
    gv = gray[domain]
    gmed = float(np.median(gv))
    gmad = max(float(np.median(np.abs(gv - gmed))) * 1.4826, 1e-6)
    opened = ndi.grey_opening(gray, size=_odd(_px(config.roof_min_m, scene)))
    roof = (opened - gmed) / gmad > config.roof_z
    search &= ~ndi.binary_dilation(roof, iterations=max(1, round(_px(2.0, scene))))
    search &= ~shadow
    search &= texture <= config.max_texture
    water_dist = ndi.distance_transform_edt(domain) * scene.pixel_size_m
    ctx = _Context(
        scene=scene,
        z=z,
        zr=zr,
        zs=zs,
        ratio=ratio,
        texture=texture,
        shadow=shadow,
        water=~land,
        water_dist=water_dist,
        has_nir="nir" in scene.bands,
        sun=_sun_step(scene),
    )
    cands: list[_Candidate] = []
    # items in dense blocks only come apart at higher contrast levels: item-sized pieces are collected at
    # every level (a component tree cut at a few levels); overlapping proposals are resolved after scoring
    for polarity in ("bright", "dark"):
        side = (zs > 0) if polarity == "bright" else (zs < 0)
        score = np.where(search & side, zr, 0.0)
        for level in config.levels_z:
            cand = filters.apply_hysteresis_threshold(score, level, level * config.high_z / config.low_z)
            for c in _objects(cand, ctx, config=config, polarity=polarity):
                c.features["level_z"] = level
                cands.append(c)
    _neighbourhood(cands, scene)
    x = np.array([[c.features[k] for k in FEATURE_NAMES] for c in cands], dtype=np.float64) if cands else empty
    return cands, x


@dataclass
class _Context:
    scene: Scene
    z: np.ndarray
    zr: np.ndarray
    zs: np.ndarray
    ratio: np.ndarray
    texture: np.ndarray
    shadow: np.ndarray
    water: np.ndarray
    water_dist: np.ndarray
    has_nir: bool
    sun: tuple[float, float]


def _sun_step(scene: Scene) -> tuple[float, float]:
    """Unit step (rows, cols) pointing away from the sun on the image grid (where shadows are cast).

    The sun azimuth is not in the scene metadata: a morning sun in the south-east (150 degrees, Planet's sun-
    synchronous pass at mid latitudes) is assumed; the feature only says how dark the ground is on that side.
    """
    az = math.radians(150.0 + 180.0)
    # north is up (row decreases): step in (row, col)
    return (-math.cos(az), math.sin(az))


def _neighbourhood(cands: list[_Candidate], scene: Scene) -> None:
    """Density of candidates around each one (rows and blocks of items) and how many share its heading."""
    if not cands:
        return
    from scipy.spatial import cKDTree

    xy = np.array([[c.geometry.centroid.x, c.geometry.centroid.y] for c in cands]) * scene.ground_scale
    heads = np.array([c.heading_deg for c in cands])
    tree = cKDTree(xy)
    for i, nb in enumerate(tree.query_ball_point(xy, r=30.0)):
        others = [j for j in nb if j != i]
        cands[i].features["neighbours"] = float(len(others))
        if others:
            d = np.abs(heads[others] - heads[i]) % 180.0
            d = np.minimum(d, 180.0 - d)
            cands[i].features["aligned_neighbours"] = float(np.sum(d <= 10.0))
        else:
            cands[i].features["aligned_neighbours"] = 0.0


# ---------------------------------------------------------------------------------------------------------------
# splitting blobs into items
# ---------------------------------------------------------------------------------------------------------------
def _oriented_frame(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates projected on the long (u) and short (t) sides of the minimum rotated rectangle."""
    rr, cc = np.nonzero(mask)
    pts = np.concatenate([np.column_stack([cc + dx, rr + dy]) for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1))])
    rect = MultiPoint(pts.astype(np.float64)).minimum_rotated_rectangle
    if isinstance(rect, Polygon):
        xy = np.asarray(rect.exterior.coords)[:4]
        e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
        major = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
        n = float(np.hypot(*major))
        ux, uy = (major / n) if n > 0 else (1.0, 0.0)
    else:
        ux, uy = 1.0, 0.0
    x = cc + 0.5
    y = rr + 0.5
    u = x * ux + y * uy
    t = -x * uy + y * ux
    return u, t, rr, cc


def _cuts(coord: np.ndarray, weight: np.ndarray, k: int, *, step_px: float) -> np.ndarray:
    """Cut positions dividing ``coord`` into ``k`` parts at the weakest cross-sections near equal division."""
    lo, hi = float(coord.min()), float(coord.max()) + 1.0
    if k <= 1:
        return np.array([lo, hi])
    nb = max(1, math.ceil(hi - lo))
    bins = np.clip(np.floor(coord - lo).astype(int), 0, nb - 1)
    prof = np.bincount(bins, weights=weight, minlength=nb)
    edges = [lo]
    nominal = np.linspace(lo, hi, k + 1)[1:-1]
    reach = max(1, round(0.2 * step_px))
    for p in nominal:
        i0 = round(p - lo)
        a, b = max(1, i0 - reach), min(nb - 1, i0 + reach + 1)
        if b <= a:
            edges.append(p)
            continue
        j = a + int(np.argmin(prof[a:b]))
        edges.append(lo + j)
    edges.append(hi)
    return np.array(edges)


def _seam_strength(u: np.ndarray, weight: np.ndarray, at: float) -> float:
    """How much weaker the cross-section at ``at`` is than the sections a few pixels either side (0-1)."""
    lo = float(u.min())
    nb = math.ceil(float(u.max()) - lo) + 1
    bins = np.clip(np.floor(u - lo).astype(int), 0, nb - 1)
    cnt = np.bincount(bins, minlength=nb).astype(np.float64)
    prof = np.bincount(bins, weights=weight, minlength=nb) / np.maximum(cnt, 1)
    i = round(at - lo)
    if i < 2 or i > nb - 3:
        return 0.0
    mid = float(prof[max(0, i - 1) : i + 2].min())
    side = 0.5 * (float(np.median(prof[: i - 1])) + float(np.median(prof[i + 2 :])))
    return max(0.0, 1.0 - mid / max(side, 1e-6))


def _objects(cand: np.ndarray, ctx: _Context, *, config: EquipmentConfig, polarity: str) -> list[_Candidate]:
    scene = ctx.scene
    px = scene.pixel_size_m
    lab, n = ndi.label(cand)
    if n == 0:
        return []
    area_px = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64)
    min_a = config.min_length_m * config.min_width_m * 0.5 / px**2
    max_a = config.max_row_length_m * config.max_block_width_m / px**2
    keep = np.flatnonzero((area_px >= max(min_a, 3)) & (area_px <= max_a)) + 1
    slices = ndi.find_objects(lab)
    module_w = config.container_width_m + config.row_gap_m
    pad = max(2, round(_px(config.ring_m, scene)) + 1)
    out: list[_Candidate] = []
    for i in keep:
        sl = slices[i - 1]
        if sl is None:
            continue
        r0, r1 = max(0, sl[0].start - pad), min(scene.height, sl[0].stop + pad)
        c0, c1 = max(0, sl[1].start - pad), min(scene.width, sl[1].stop + pad)
        sub = ndi.binary_fill_holes(lab[r0:r1, c0:c1] == i)
        zsub = ctx.zr[r0:r1, c0:c1]
        u, t, rr, cc = _oriented_frame(sub)
        length = (float(np.ptp(u)) + 1.0) * px
        width = (float(np.ptp(t)) + 1.0) * px
        if length > config.max_row_length_m or width > config.max_block_width_m:
            continue
        w = zsub[rr, cc].astype(np.float64)
        k_across = 1 if width <= config.max_width_m else max(1, round(width / module_w))
        tcuts = _cuts(t, w, k_across, step_px=module_w / px)
        for a in range(k_across):
            sel_t = (t >= tcuts[a]) & (t < tcuts[a + 1]) if a < k_across - 1 else (t >= tcuts[a])
            if sel_t.sum() < 3:
                continue
            su, sw = u[sel_t], w[sel_t]
            slen = (float(np.ptp(su)) + 1.0) * px
            k_along = _modules_along(slen, su, sw, px=px, config=config)
            ucuts = _cuts(su, sw, k_along, step_px=slen / px / max(k_along, 1))
            for b in range(k_along):
                sel = (su >= ucuts[b]) & (su < ucuts[b + 1]) if b < k_along - 1 else (su >= ucuts[b])
                if sel.sum() < 3:
                    continue
                # cheap size test in the pixel frame before the exact measures
                plen = (float(np.ptp(su[sel])) + 1.0) * px
                pwid = (float(np.ptp(t[sel_t][sel])) + 1.0) * px
                if plen < config.min_length_m - px or plen > config.max_length_m + 2 * px:
                    continue
                if pwid < config.min_width_m - px or pwid > config.max_width_m + 2 * px:
                    continue
                part = np.zeros_like(sub)
                idx = np.flatnonzero(sel_t)[sel]
                part[rr[idx], cc[idx]] = True
                c = _piece(
                    part,
                    (r0, r1, c0, c1),
                    ctx,
                    config=config,
                    polarity=polarity,
                    split=float(k_across * k_along),
                    parent=(length, width),
                )
                if c is not None:
                    out.append(c)
    return out


def _modules_along(length: float, u: np.ndarray, w: np.ndarray, *, px: float, config: EquipmentConfig) -> int:
    """How many items end to end a strip of ``length`` metres holds (container modules, seam evidence)."""
    if length <= config.max_length_m:
        # one 40 ft or two 20 ft end to end: a seam across the middle decides
        two20 = 2 * config.container_20ft_m + config.end_gap_m
        if abs(length - two20) <= 0.15 * two20:
            mid = 0.5 * (float(u.min()) + float(u.max()) + 1.0)
            if _seam_strength(u, w, mid) >= config.seam_contrast:
                return 2
        return 1
    best: tuple[float, int] | None = None
    for module in (config.container_20ft_m, config.container_40ft_m):
        step = module + config.end_gap_m
        k = round((length + config.end_gap_m) / step)
        if k < 2:
            continue
        resid = abs(length + config.end_gap_m - k * step) / module
        if best is None or resid < best[0]:
            best = (resid, k)
    if best is None:
        return 1
    return best[1]


def _piece(
    part: np.ndarray,
    box: tuple[int, int, int, int],
    ctx: _Context,
    *,
    config: EquipmentConfig,
    polarity: str,
    split: float,
    parent: tuple[float, float],
) -> _Candidate | None:
    scene = ctx.scene
    px = scene.pixel_size_m
    r0, r1, c0, c1 = box
    npx = int(part.sum())
    if npx < 3:
        return None
    geom = _footprint(part, r0, c0, scene)
    length, width, heading, rect = measure(geom, scene)
    if not (config.min_length_m - px <= length <= config.max_length_m + px):
        return None
    if not (config.min_width_m - px <= width <= config.max_width_m + px):
        return None
    if length / max(width, 1e-6) > config.max_elongation:
        return None
    # objects reaching the water are hull parts leaking onto the quay
    water = ctx.water[r0:r1, c0:c1]
    grown = ndi.binary_dilation(part)
    if (grown & water).any():
        return None
    a_m2 = npx * px * px
    rectangularity = min(1.0, a_m2 / max(rect.area * scene.ground_scale**2, 1e-9))
    if rectangularity < config.min_rectangularity:
        return None
    zsub = ctx.zr[r0:r1, c0:c1]
    zin = zsub[part]
    zb = ctx.z[:, r0:r1, c0:c1][:, part]
    rb = ctx.ratio[:, r0:r1, c0:c1][:, part]
    nir = scene.bands.index("nir") if ctx.has_nir else None
    vis = [k for k in range(zb.shape[0]) if k != nir]
    k_ring = max(1, round(_px(config.ring_m, scene)))
    ring = ndi.binary_dilation(part, iterations=k_ring) & ~ndi.binary_dilation(part, iterations=1)
    edge = grown & ~part
    shadow = ctx.shadow[r0:r1, c0:c1]
    # the ground on the side away from the sun, one to three metres out
    dr, dc = ctx.sun
    steps = max(1, round(_px(3.0, scene)))
    rr, cc = np.nonzero(part)
    sun_side = np.zeros_like(part)
    for s in range(1, steps + 1):
        r2 = np.clip(np.round(rr + dr * s).astype(int), 0, part.shape[0] - 1)
        c2 = np.clip(np.round(cc + dc * s).astype(int), 0, part.shape[1] - 1)
        sun_side[r2, c2] = True
    sun_side &= ~part
    gray_ratio = ctx.ratio[:, r0:r1, c0:c1].mean(axis=0)
    fit_c = (
        min(
            abs(length - config.container_20ft_m) / config.container_20ft_m,
            abs(length - config.container_40ft_m) / config.container_40ft_m,
        )
        + abs(width - config.container_width_m) / config.container_width_m
    )
    fit = max(0.0, 1.0 - 2.0 * min(fit_c, 0.5))
    rm = rb.mean(axis=1)
    feats = {
        "pixel_size_m": px,
        "has_nir": 1.0 if ctx.has_nir else 0.0,
        "length_m": float(length),
        "width_m": float(width),
        "log_area_m2": math.log(a_m2),
        "elongation": float(length / max(width, 1e-6)),
        "rectangularity": float(rectangularity),
        "fit": fit,
        "z_peak": float(np.percentile(zin, 90)),
        "z_mean": float(zin.mean()),
        "z_signed": float(zb[vis].mean()),
        "z_nir": float(zb[nir].mean()) if nir is not None else 0.0,
        "ratio_mean": float(rm[vis].mean() - 1.0),
        "ratio_spread": float(np.std(rm[vis])),
        "ring_z": float(zsub[ring].mean()) if ring.any() else 0.0,
        "edge_z": float(zsub[edge].mean()) if edge.any() else 0.0,
        "bright": 1.0 if polarity == "bright" else 0.0,
        "split": split,
        "parent_length_m": float(parent[0]),
        "parent_width_m": float(parent[1]),
        "texture": float(ctx.texture[r0:r1, c0:c1][part].mean()),
        "shadow_ring": float(shadow[ring].mean()) if ring.any() else 0.0,
        "shadow_sun": float(gray_ratio[sun_side].mean() - 1.0) if sun_side.any() else 0.0,
        "water_dist_m": float(ctx.water_dist[r0:r1, c0:c1][part].max()),
        "neighbours": 0.0,
        "aligned_neighbours": 0.0,
    }
    return _Candidate(
        geometry=rect,
        length_m=float(length),
        width_m=float(width),
        heading_deg=float(heading),
        area_m2=float(a_m2),
        features=feats,
    )


# ---------------------------------------------------------------------------------------------------------------
# classifier
# ---------------------------------------------------------------------------------------------------------------
def load_training_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The shipped training table (``berthwatch/data/equipment_training.npz``, made by
    ``bench/train_equipment.py``).

    Returns
    -------
    x : (n, len(FEATURE_NAMES)) float64 features
    y : (n,) int labels (1 item, 0 clutter)
    groups : (n,) str scene ids (``synth-<seed>``)
    weight : (n,) float64 sample weights (clutter was subsampled per scene; the weight restores its share)
    """
    raw = resources.files("berthwatch.data").joinpath(TABLE_NAME).read_bytes()
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        names = tuple(str(n) for n in f["feature_names"])
        if names != FEATURE_NAMES:
            raise ValueError(f"{TABLE_NAME} has features {names}, expected {FEATURE_NAMES}")
        x = f["x"].astype(np.float64)
        y = f["y"].astype(np.int64)
        seeds = f["seed"].astype(np.int64)
        w = f["weight"].astype(np.float64)
    return x, y, np.array([f"synth-{s}" for s in seeds]), w


def make_classifier() -> Any:
    """The (unfitted) classifier: gradient-boosted trees with a fixed seed."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=31, l2_regularization=1.0, random_state=0
    )


@functools.lru_cache(maxsize=1)
def equipment_model() -> Any:
    """The classifier fitted on the shipped training table (at first use; cached for the process)."""
    x, y, _g, w = load_training_table()
    model = make_classifier()
    model.fit(x, y, sample_weight=w)
    return model


# ---------------------------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------------------------
def detect_equipment(
    scene: Scene,
    land: np.ndarray,
    *,
    config: EquipmentConfig = _EQUIPMENT,
    valid: np.ndarray | None = None,
) -> list[Detection]:
    """Vehicles and containers on quays and hardstands (only meaningful at pixels of about 1.2 m or finer).

    Item-sized pieces of anomalous pavement are proposed (:func:`equipment_candidates`) and each is scored by a
    classifier trained on synthetic ports (``bench/train_equipment.py``); pieces with a probability of at least
    ``config.min_confidence`` are kept.

    Parameters
    ----------
    scene
        The scene (any band layout).
    land
        Boolean (rows, cols): where to search (land; objects lying on the water domain are vessels).
    config
        Sizes in metres.
    valid
        Boolean (rows, cols); defaults to ``scene.valid``.

    Returns
    -------
    list of :class:`~berthwatch.models.Detection` with ``kind="equipment"``, in decreasing confidence (the
    classifier's probability), with the per-object evidence (``FEATURE_NAMES``) in ``features``.
    """
    cands, x = equipment_candidates(scene, land, config=config, valid=valid)
    if not cands:
        return []
    prob = equipment_model().predict_proba(x)[:, 1]
    dets: list[Detection] = []
    kept: list[Polygon] = []
    # proposals from several contrast levels overlap: the most probable one of each item is kept
    for i in np.argsort(-prob, kind="stable"):
        if prob[i] < config.min_confidence:
            break
        c = cands[i]
        g = c.geometry
        if kept:
            others = np.asarray(kept, dtype=object)
            inter = shapely.area(shapely.intersection(g, others))
            smaller = np.minimum(g.area, shapely.area(others))
            if np.any(inter > config.max_overlap * smaller):
                continue
        kept.append(g)
        dets.append(
            Detection(
                geometry=g,
                kind="equipment",
                confidence=round(float(prob[i]), 4),
                length_m=c.length_m,
                width_m=c.width_m,
                heading_deg=c.heading_deg,
                area_m2=c.area_m2,
                features=c.features,
            )
        )
    log.debug("equipment: %d candidates, %d detections", len(cands), len(dets))
    return dets
