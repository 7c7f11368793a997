"""Geometry helpers shared by every stage: oriented measures, CRS <-> lon/lat, pixel <-> CRS.

Physical measures go through :func:`oriented_measures` so that detection, ground truth, evaluation and reports
all measure an object the same way.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS as PCRS
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _crs_key(crs: CRS | str) -> str:
    if isinstance(crs, str):
        return crs
    epsg = crs.to_epsg(confidence_threshold=100) if crs.is_epsg_code else None
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def reproject_geometry(geom: BaseGeometry, src: CRS | str, dst: CRS | str) -> BaseGeometry:
    """Geometry from ``src`` to ``dst`` CRS (x/y order = lon/lat order for geographic CRSs)."""
    tr = _transformer(_crs_key(src), _crs_key(dst))
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def to_lonlat(geom: BaseGeometry, crs: CRS | str) -> BaseGeometry:
    return reproject_geometry(geom, crs, "EPSG:4326")


def from_lonlat(geom: BaseGeometry, crs: CRS | str) -> BaseGeometry:
    return reproject_geometry(geom, "EPSG:4326", crs)


def pixel_to_crs(geom: BaseGeometry, transform: Affine) -> BaseGeometry:
    """Geometry in (col, row) pixel coordinates (pixel corners at integers) to CRS coordinates."""
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    return shapely.affinity.affine_transform(geom, [a, b, d, e, c, f])


def crs_to_pixel(geom: BaseGeometry, transform: Affine) -> BaseGeometry:
    inv = ~transform
    return shapely.affinity.affine_transform(geom, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])


@lru_cache(maxsize=64)
def _proj(crs_key: str) -> Any:
    """A pyproj Proj for a projected CRS (None for geographic ones), built once per CRS."""
    from pyproj import Proj

    pcrs = PCRS.from_user_input(crs_key)
    return None if pcrs.is_geographic else Proj(pcrs)


def _convergence(crs_key: str, x: float, y: float) -> float:
    """Meridian convergence (degrees) at a point: true azimuth = grid azimuth + convergence."""
    proj = _proj(crs_key)
    if proj is None:
        return 0.0
    lon, lat = _transformer(crs_key, "EPSG:4326").transform(x, y)
    try:
        return float(proj.get_factors(lon, lat).meridian_convergence)
    except Exception:  # pragma: no cover - exotic CRS without factors
        return 0.0


def oriented_measures(
    geom: BaseGeometry, *, ground_scale: float = 1.0, crs: CRS | None = None
) -> tuple[float, float, float, Polygon]:
    """Length, width (metres), heading (degrees 0-180 clockwise from north) and the oriented rectangle.

    Measures come from shapely's minimum rotated rectangle. ``ground_scale`` converts CRS units to metres
    (see :attr:`berthwatch.models.Scene.ground_scale`). With ``crs`` given, the heading is corrected for
    meridian convergence so it is relative to true north; a geographic (lon/lat) ``crs`` is measured in the
    local UTM zone instead, since a degree is not the same length east-west and north-south.
    """
    if crs is not None and _proj(_crs_key(crs)) is None and not geom.is_empty:
        c = geom.centroid
        utm = local_utm(float(c.x), float(c.y))
        length, width, heading, _ = oriented_measures(reproject_geometry(geom, crs, utm), crs=utm)
        return length, width, heading, shapely.minimum_rotated_rectangle(geom)
    rect = shapely.minimum_rotated_rectangle(geom)
    if not isinstance(rect, Polygon) or rect.is_empty:
        return 0.0, 0.0, 0.0, Polygon()
    xs, ys = rect.exterior.coords.xy
    p = np.column_stack([xs, ys])[:4]
    e1 = p[1] - p[0]
    e2 = p[2] - p[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    major = e1 if l1 >= l2 else e2
    length, width = max(l1, l2) * ground_scale, min(l1, l2) * ground_scale
    # azimuth of the long axis, clockwise from grid north (y up in CRS coordinates)
    heading = math.degrees(math.atan2(major[0], major[1]))
    if crs is not None:
        c = rect.centroid
        heading += _convergence(_crs_key(crs), float(c.x), float(c.y))
    heading %= 180.0
    if heading >= 180.0 - 1e-9:
        heading = 0.0
    return length, width, heading, rect


@lru_cache(maxsize=64)
def local_utm(lon: float, lat: float) -> str:
    """EPSG code ("EPSG:326NN"/"EPSG:327NN") of the UTM zone holding a lon/lat point."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def heading_difference(a: float, b: float) -> float:
    """Smallest difference between two axial headings (0-180 periodic), in degrees 0-90."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def metres_to_px(metres: float, pixel_size_m: float) -> float:
    return metres / pixel_size_m


def principal_axes(rr: np.ndarray, cc: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    """Pixel centres (rows ``rr``, columns ``cc``) projected on their principal axes.

    Returns
    -------
    u, t : projections on the major and the minor axis (pixels, from the centroid)
    x0, y0 : the centroid (column, row)
    major : unit major axis as (column, row)
    """
    y0, x0 = float(np.mean(rr)), float(np.mean(cc))
    y, x = np.asarray(rr, dtype=np.float64) - y0, np.asarray(cc, dtype=np.float64) - x0
    cov = np.cov(np.vstack([x, y])) if x.size > 1 else np.eye(2)
    w, v = np.linalg.eigh(cov)
    major = v[:, int(np.argmax(w))]
    return x * major[0] + y * major[1], -x * major[1] + y * major[0], x0, y0, major
