"""Ground truth as GeoJSON (RFC 7946: lon/lat polygons, counter-clockwise exteriors)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio.crs import CRS
from shapely.geometry import Polygon, mapping
from shapely.geometry.polygon import orient

from berthwatch.geo import to_lonlat
from berthwatch.synth._specs import TruthObject

TRUTH_PROPERTIES = (
    "id", "kind", "subtype", "status", "length_m", "width_m", "heading_deg", "area_m2", "occluded", "moored",
    "rafted", "underway", "hull", "before_date", "after_date",
)  # fmt: skip


def _round_coords(geom: Polygon, nd: int = 8) -> Polygon:
    return shapely.transform(geom, lambda c: np.round(c, nd))


def truth_feature_collection(
    objects: Iterable[TruthObject],
    crs: CRS | str,
    *,
    before_date: dt.date | None = None,
    after_date: dt.date | None = None,
    with_status: bool = True,
    date: dt.date | None = None,
) -> dict[str, Any]:
    """Ground truth objects as a GeoJSON FeatureCollection in EPSG:4326.

    Parameters
    ----------
    objects
        Truth objects whose polygons are in ``crs``.
    crs
        CRS of the polygons (the port's UTM zone).
    before_date, after_date
        Written into every feature (``None`` -> null).
    with_status
        Include ``status`` (pair truth); single-date truth leaves it out.
    date
        Date of a single-date truth (written as ``date``).
    """
    feats = []
    for o in objects:
        ll = to_lonlat(o.polygon, crs)
        ll = orient(ll, sign=1.0) if isinstance(ll, Polygon) else ll
        props: dict[str, Any] = {
            "id": o.id,
            "kind": o.kind,
            "subtype": o.subtype,
            "length_m": round(float(o.length_m), 2),
            "width_m": round(float(o.width_m), 2),
            "heading_deg": round(float(o.heading_deg), 2),
            "area_m2": round(float(o.polygon.area), 2),
            "occluded": bool(o.occluded),
            "moored": bool(o.moored),
            "rafted": bool(o.rafted),
            "underway": bool(o.underway),
            "hull": o.hull,
            "before_date": before_date.isoformat() if before_date else None,
            "after_date": after_date.isoformat() if after_date else None,
        }
        if with_status:
            props["status"] = o.status
            props["occluded_before"] = bool(o.occluded_before)
            props["occluded_after"] = bool(o.occluded_after)
        if date is not None:
            props["date"] = date.isoformat()
        if o.name:
            props["name"] = o.name
        for k, v in o.extra.items():
            props.setdefault(k, v)
        feats.append({"type": "Feature", "id": o.id, "geometry": mapping(_round_coords(ll)), "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def write_truth(objects: Iterable[TruthObject], crs: CRS | str, path: str | Path, **kw: Any) -> Path:
    """Write :func:`truth_feature_collection` to ``path`` (keywords passed on)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fc = truth_feature_collection(objects, crs, **kw)
    path.write_text(json.dumps(fc, indent=1) + "\n", encoding="utf-8")
    return path
