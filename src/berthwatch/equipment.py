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

import logging
import math

import numpy as np
from scipy import ndimage as ndi
from shapely.geometry import MultiPoint, Polygon
from skimage import filters

from berthwatch.config import EquipmentConfig
from berthwatch.detect import _footprint, _logistic, _odd, _px, measure
from berthwatch.models import Detection, Scene

log = logging.getLogger(__name__)

_EQUIPMENT = EquipmentConfig()

__all__ = ["detect_equipment", "equipment_supported"]


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
    list of :class:`~berthwatch.models.Detection` with ``kind="equipment"``, in decreasing confidence, with
    per-object evidence in ``features`` (``z_peak``, ``rectangularity``, ``elongation``, ``bright``,
    ``fit``, ``split``).
    """
    valid = scene.valid if valid is None else (valid & scene.valid)
    if land.shape != scene.shape:
        raise ValueError(f"land mask shape {land.shape} != scene shape {scene.shape}")
    land = land.astype(bool)
    domain = land & valid
    if domain.sum() < 100:
        return []
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
    # open pavement is smooth: rough ground (rubble, vegetation, dense urban fabric) is not searched
    search &= texture <= config.max_texture
    dets: list[Detection] = []
    for polarity in ("bright", "dark"):
        side = (zs > 0) if polarity == "bright" else (zs < 0)
        score = np.where(search & side, zr, 0.0)
        cand = filters.apply_hysteresis_threshold(score, config.low_z, config.high_z)
        dets.extend(_objects(cand, zr, scene, config=config, polarity=polarity, water=~land))
    dets.sort(key=lambda d: -d.confidence)
    log.debug("equipment: %d detections", len(dets))
    return dets


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


def _objects(
    cand: np.ndarray,
    zr: np.ndarray,
    scene: Scene,
    *,
    config: EquipmentConfig,
    polarity: str,
    water: np.ndarray,
) -> list[Detection]:
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
    out: list[Detection] = []
    for i in keep:
        sl = slices[i - 1]
        if sl is None:
            continue
        r0, r1 = max(0, sl[0].start - 1), min(scene.height, sl[0].stop + 1)
        c0, c1 = max(0, sl[1].start - 1), min(scene.width, sl[1].stop + 1)
        sub = ndi.binary_fill_holes(lab[r0:r1, c0:c1] == i)
        zsub = zr[r0:r1, c0:c1]
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
                det = _piece(
                    part,
                    r0,
                    c0,
                    scene,
                    zsub=zsub,
                    water=water[r0:r1, c0:c1],
                    config=config,
                    polarity=polarity,
                    split=(k_across * k_along) > 1,
                )
                if det is not None:
                    out.append(det)
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
    r0: int,
    c0: int,
    scene: Scene,
    *,
    zsub: np.ndarray,
    water: np.ndarray,
    config: EquipmentConfig,
    polarity: str,
    split: bool,
) -> Detection | None:
    px = scene.pixel_size_m
    npx = int(part.sum())
    if npx < 3:
        return None
    geom = _footprint(part, r0, c0, scene)
    length, width, heading, rect = measure(geom, scene)
    if not (config.min_length_m <= length <= config.max_length_m):
        return None
    if not (config.min_width_m <= width <= config.max_width_m):
        return None
    if length / max(width, 1e-6) > config.max_elongation:
        return None
    # objects reaching the water are hull parts leaking onto the quay
    if (ndi.binary_dilation(part) & water).any():
        return None
    a_m2 = npx * px * px
    rectangularity = min(1.0, a_m2 / max(rect.area * scene.ground_scale**2, 1e-9))
    if rectangularity < config.min_rectangularity:
        return None
    zpk = float(np.percentile(zsub[part], 90))
    # how well the size fits a known item: container modules or the vehicle range
    fit_c = (
        min(
            abs(length - config.container_20ft_m) / config.container_20ft_m,
            abs(length - config.container_40ft_m) / config.container_40ft_m,
        )
        + abs(width - config.container_width_m) / config.container_width_m
    )
    fit = max(0.0, 1.0 - 2.0 * min(fit_c, 0.5))
    x = 1.2 * math.log(max(zpk, 1e-3) / config.high_z) + 4.0 * (rectangularity - 0.6) + 0.8 * fit + 0.3
    conf = _logistic(x)
    return Detection(
        geometry=rect,
        kind="equipment",
        confidence=round(conf, 4),
        length_m=float(length),
        width_m=float(width),
        heading_deg=float(heading),
        area_m2=float(a_m2),
        features={
            "z_peak": zpk,
            "rectangularity": float(rectangularity),
            "elongation": float(length / max(width, 1e-6)),
            "bright": 1.0 if polarity == "bright" else 0.0,
            "fit": float(fit),
            "split": float(split),
        },
    )
