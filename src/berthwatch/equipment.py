"""Quay equipment (vehicles, containers) on one date, at fine pixel sizes (METHODS.md section 5).

White and black top-hats with a square slightly wider than a container pick out narrow bright and dark objects on
open pavement (land away from the water's edge and off large uniform bright roofs); objects are kept on length,
width and rectangularity, and merged container rows are cut at module lengths. All sizes come from
:class:`~berthwatch.config.EquipmentConfig` in metres and are converted with ``scene.pixel_size_m``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import shapely
from scipy import ndimage as ndi
from shapely.geometry import Polygon
from skimage import filters

from berthwatch.config import EquipmentConfig
from berthwatch.detect import _footprint, _logistic, _odd, _principal_axes, _px, _touches, measure
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


def _robust_z(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    v = x[m]
    if v.size < 10:
        return np.zeros_like(x)
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * 1.4826
    return (x - med) / max(mad, 1e-6)


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
    list of :class:`~berthwatch.models.Detection` with ``kind="equipment"``.
    """
    valid = scene.valid if valid is None else (valid & scene.valid)
    if land.shape != scene.shape:
        raise ValueError(f"land mask shape {land.shape} != scene shape {scene.shape}")
    # open pavement: land, away from the water's edge
    edge_px = max(1, round(_px(config.water_margin_m, scene)))
    domain = land & valid
    domain = ndi.binary_erosion(domain, iterations=edge_px, border_value=1)
    if domain.sum() < 100:
        return []
    gray = scene.gray()
    size = _odd(_px(config.tophat_m, scene))
    wth = ndi.white_tophat(gray, size=size)
    bth = ndi.black_tophat(gray, size=size)
    zw = _robust_z(wth, domain)
    zb = _robust_z(bth, domain)
    # large uniform bright regions (roofs): the opening at a building scale is bright
    big = _odd(_px(config.roof_min_m, scene))
    opened = ndi.grey_opening(gray, size=big)
    # in units of the pavement's own brightness spread (the opening itself is nearly constant on flat ground)
    gv = gray[domain]
    gmed = float(np.median(gv))
    gmad = max(float(np.median(np.abs(gv - gmed))) * 1.4826, 1e-6)
    zroof = (opened - gmed) / gmad
    roof = zroof > config.roof_z
    roof = ndi.binary_dilation(roof, iterations=max(1, size // 2))
    search = domain & ~roof
    dets: list[Detection] = []
    for polarity, zz in (("bright", zw), ("dark", zb)):
        cand = filters.apply_hysteresis_threshold(np.where(search, zz, 0.0), config.low_z, config.high_z)
        cand &= search
        dets.extend(_equipment_objects(cand, zz, scene, config=config, polarity=polarity, invalid=~valid))
    # a dark object directly beside a bright one of the same size is the shadow of it: keep the bright one
    dets = _drop_shadows(dets, scene)
    dets.sort(key=lambda d: -d.confidence)
    return dets


def _drop_shadows(dets: list[Detection], scene: Scene) -> list[Detection]:
    bright = [d for d in dets if d.features.get("bright", 0.0) > 0]
    dark = [d for d in dets if d.features.get("bright", 0.0) <= 0]
    if not bright or not dark:
        return dets
    tree = shapely.STRtree([d.geometry for d in bright])
    out = list(bright)
    tol = 1.5 * scene.pixel_size_m / scene.ground_scale
    for d in dark:
        hits = tree.query(d.geometry.buffer(tol), predicate="intersects")
        if len(hits) == 0:
            out.append(d)
    return out


def _equipment_objects(
    cand: np.ndarray,
    zz: np.ndarray,
    scene: Scene,
    *,
    config: EquipmentConfig,
    polarity: str,
    invalid: np.ndarray,
) -> list[Detection]:
    px = scene.pixel_size_m
    lab, n = ndi.label(cand)
    if n == 0:
        return []
    area_px = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64)
    min_a = config.min_length_m * config.min_width_m * 0.5 / px**2
    max_a = config.max_row_length_m * config.max_width_m * 1.5 / px**2
    keep = np.flatnonzero((area_px >= max(min_a, 3)) & (area_px <= max_a)) + 1
    slices = ndi.find_objects(lab)
    out: list[Detection] = []
    for i in keep:
        sl = slices[i - 1]
        if sl is None:
            continue
        r0, r1 = max(0, sl[0].start - 1), min(scene.height, sl[0].stop + 1)
        c0, c1 = max(0, sl[1].start - 1), min(scene.width, sl[1].stop + 1)
        sub = ndi.binary_fill_holes(lab[r0:r1, c0:c1] == i)
        geom = _footprint(sub, r0, c0, scene)
        length, width, heading, rect = measure(geom, scene)
        if width < config.min_width_m or width > config.max_width_m:
            continue
        pieces = [(sub, geom, length, width, heading, rect)]
        if length > config.max_length_m:
            pieces = _split_row(sub, r0, c0, scene, config=config, length=length)
            if not pieces:
                continue
        for psub, _pgeom, plen, pwid, phead, prect in pieces:
            if not (config.min_length_m <= plen <= config.max_length_m):
                continue
            a_m2 = float(psub.sum()) * px * px
            rectangularity = min(1.0, a_m2 / max(prect.area * scene.ground_scale**2, 1e-9))
            if rectangularity < config.min_rectangularity:
                continue
            zpk = float(np.percentile(zz[r0:r1, c0:c1][psub], 90))
            x = 1.2 * math.log(max(zpk, 1e-3) / config.high_z) + 4.0 * (rectangularity - 0.6) + 0.5
            conf = _logistic(x)
            out.append(
                Detection(
                    geometry=prect,
                    kind="equipment",
                    confidence=round(conf, 4),
                    length_m=float(plen),
                    width_m=float(pwid),
                    heading_deg=float(phead),
                    area_m2=a_m2,
                    features={
                        "z_peak": zpk,
                        "rectangularity": float(rectangularity),
                        "elongation": float(plen / max(pwid, 1e-6)),
                        "bright": 1.0 if polarity == "bright" else 0.0,
                        "touches_invalid": float(_touches(psub, invalid[r0:r1, c0:c1])),
                        "row_split": float(len(pieces) > 1),
                    },
                )
            )
    return out


def _split_row(
    sub: np.ndarray, r0: int, c0: int, scene: Scene, *, config: EquipmentConfig, length: float
) -> list[tuple[np.ndarray, Polygon, float, float, float, Polygon]]:
    """Cut a merged row of containers into modules of 6.06 m or 12.19 m, whichever fits the length better."""
    if length > config.max_row_length_m:
        return []
    best: tuple[float, int] | None = None
    for module in (config.container_20ft_m, config.container_40ft_m):
        k = round(length / module)
        if k < 2:
            continue
        resid = abs(length - k * module) / module
        if best is None or resid < best[0]:
            best = (resid, k)
    if best is None or best[0] > 0.3:
        return []
    k = best[1]
    u, _t, rr, cc = _principal_axes(sub)
    edges = np.linspace(u.min(), u.max() + 1e-6, k + 1)
    out = []
    for j in range(k):
        sel = (u >= edges[j]) & (u < edges[j + 1])
        part = np.zeros_like(sub)
        part[rr[sel], cc[sel]] = True
        if part.sum() < 3:
            continue
        g = _footprint(part, r0, c0, scene)
        ln, wd, hd, rc = measure(g, scene)
        out.append((part, g, ln, wd, hd, rc))
    return out
