"""Output writers: GeoJSON, CSV, summary.json, the change-map COG, Markdown and HTML reports.

Everything follows the output contract in DESIGN.md; file names and property names are stable.

Change map
----------
``change_map.tif`` is one Cloud-Optimized GeoTIFF with two bands on the aligned (BEFORE) grid. A GeoTIFF has a
single sample type for all its bands (TIFF ``SampleFormat``/``BitsPerSample`` are per file in GDAL's GTiff
driver), so the contract's "band 1 uint8 class, band 2 float32 magnitude" cannot live in one file as such. We
keep one file and write **both bands as float32**: band 1 ``change_class`` holds the integer codes exactly
(0 no change, 1 departed object, 2 arrived object, 3 other surface change, 255 no valid data), band 2
``change_magnitude`` the magnitude, kept to a relative precision of about 5e-4 (GDAL ``DISCARD_LSB``, which
halves the file). The dataset nodata value is 255, so pixels without valid data are
transparent in QGIS on both bands; a genuine magnitude within 0.125 of 255 is stored as 254.875.
The class legend is in the dataset tags (``CHANGE_CLASS_<code>``) and in band 1's tags.

Text from file names or metadata is escaped everywhere it reaches HTML (``html.escape``) or Markdown.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from shapely.geometry import Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

import berthwatch
from berthwatch.config import Settings
from berthwatch.errors import OutputError
from berthwatch.geo import to_lonlat
from berthwatch.models import (
    KINDS,
    STATUSES,
    AlignedPair,
    ChangedObject,
    ChangeSet,
    Detection,
    DetectionResult,
    Scene,
)
from berthwatch.render import (
    STATUS_COLOURS,
    display_rgb,
    encode_png,
    render_annotated,
    render_chip,
    render_overview,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None] | None

CLASS_LEGEND: dict[int, str] = {
    0: "no change",
    1: "departed object",
    2: "arrived object",
    3: "other surface change",
    255: "no valid data",
}
NODATA = 255.0
MAX_CHIPS = 200
"""At most this many changed objects get before/after chips in the reports (the rest are counted)."""
MAX_TABLE_ROWS = 2000
"""At most this many rows in the HTML/Markdown object table (all objects are always in GeoJSON/CSV)."""
COORD_DECIMALS = 7  # ~1 cm in latitude

COMPARE_COLUMNS = [
    "id",
    "kind",
    "status",
    "lon",
    "lat",
    "length_m",
    "width_m",
    "heading_deg",
    "area_m2",
    "confidence",
    "before_date",
    "after_date",
]
DETECT_COLUMNS = ["id", "kind", "lon", "lat", "length_m", "width_m", "heading_deg", "area_m2", "confidence", "date"]


# ================================================================================================ vectors
def _iso(d: dt.date | str | None) -> str | None:
    if d is None:
        return None
    return d if isinstance(d, str) else d.isoformat()


def _round_coords(geom: BaseGeometry) -> list[Any]:
    """GeoJSON coordinates (lists) rounded to COORD_DECIMALS."""
    gj = mapping(geom)
    return [
        [[round(float(x), COORD_DECIMALS), round(float(y), COORD_DECIMALS)] for x, y in ring]
        for ring in gj["coordinates"]
    ]


def _lonlat_polygon(geom: BaseGeometry, crs: CRS | str) -> Polygon:
    """Reproject to lon/lat and orient by the right-hand rule (exterior counter-clockwise), RFC 7946 §3.1.6."""
    ll = to_lonlat(geom, crs)
    if not isinstance(ll, Polygon):
        # a footprint should be one polygon; keep its largest part (or its envelope for degenerate shapes)
        parts = [g for g in getattr(ll, "geoms", []) if isinstance(g, Polygon)]
        ll = max(parts, key=lambda g: g.area) if parts else ll.envelope
    return orient(Polygon(ll.exterior.coords, [i.coords for i in ll.interiors]), sign=1.0)


def _num(x: float, nd: int) -> float | None:
    x = float(x)
    return round(x, nd) if math.isfinite(x) else None


def _measures(obj: ChangedObject | Detection) -> dict[str, Any]:
    return {
        "length_m": _num(obj.length_m, 2),
        "width_m": _num(obj.width_m, 2),
        "heading_deg": _num(obj.heading_deg % 180.0, 1),
        "area_m2": _num(obj.area_m2, 1),
        "confidence": _num(min(max(obj.confidence, 0.0), 1.0), 3),
    }


def _extras(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, bool | str) or v is None:
            out[str(k)] = v
        elif isinstance(v, int | float | np.integer | np.floating):
            out[str(k)] = _num(float(v), 4)
    return out


def _object_id(obj: ChangedObject | Detection, index: int) -> str:
    if obj.id:
        return str(obj.id)
    return f"{'V' if obj.kind == 'vessel' else 'E'}{index + 1}"


def objects_feature_collection(
    objects: Sequence[ChangedObject | Detection],
    crs: CRS | str,
    *,
    before_date: dt.date | str | None = None,
    after_date: dt.date | str | None = None,
    date: dt.date | str | None = None,
) -> dict[str, Any]:
    """RFC 7946 FeatureCollection of objects in lon/lat (EPSG:4326), one Polygon each.

    Parameters
    ----------
    objects
        :class:`ChangedObject` s (a comparison: properties include ``status``, ``before_date``, ``after_date`` and
        the ``evidence``) or :class:`Detection` s (a single date: no ``status``; ``date`` and ``features``).
        Geometries are in ``crs``. A stayed object's geometry is its BEFORE footprint (as match.py sets it).
    crs
        CRS of the geometries.
    before_date, after_date
        Dates of a comparison, written on every feature.
    date
        Date of a single-date inventory.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}`` with no ``crs`` member, exteriors
        counter-clockwise, coordinates rounded to 1e-7 degrees. Each feature has an ``id`` member and properties
        ``id, kind, [status], length_m, width_m, heading_deg, area_m2, confidence, centroid_lon, centroid_lat``
        plus dates. The centroid is the footprint centroid in the scene CRS, reprojected (not the centroid of
        the lon/lat polygon).
    """
    features: list[dict[str, Any]] = []
    for i, obj in enumerate(objects):
        poly = _lonlat_polygon(obj.geometry, crs)
        c = obj.geometry.centroid
        cll = to_lonlat(Point(c.x, c.y), crs)
        oid = _object_id(obj, i)
        props: dict[str, Any] = {"id": oid, "kind": obj.kind}
        if isinstance(obj, ChangedObject):
            props["status"] = obj.status
        props.update(_measures(obj))
        props["centroid_lon"] = round(float(cll.x), COORD_DECIMALS)
        props["centroid_lat"] = round(float(cll.y), COORD_DECIMALS)
        if isinstance(obj, ChangedObject):
            props["before_date"] = _iso(before_date)
            props["after_date"] = _iso(after_date)
            props["before_detection_id"] = obj.before.id if obj.before is not None and obj.before.id else None
            props["after_detection_id"] = obj.after.id if obj.after is not None and obj.after.id else None
            props["evidence"] = _extras(obj.evidence)
        else:
            props["date"] = _iso(date)
            props["features"] = _extras(obj.features)
        features.append(
            {
                "type": "Feature",
                "id": oid,
                "geometry": {"type": "Polygon", "coordinates": _round_coords(poly)},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _csv_rows(fc: dict[str, Any], columns: list[str], nested: str) -> tuple[list[str], list[dict[str, Any]]]:
    extra: list[str] = []
    rows: list[dict[str, Any]] = []
    for f in fc["features"]:
        p = f["properties"]
        row = {k: p.get(k) for k in columns if k not in ("lon", "lat")}
        row["lon"] = p["centroid_lon"]
        row["lat"] = p["centroid_lat"]
        for k, v in (p.get(nested) or {}).items():
            col = f"{nested if nested != 'features' else 'feature'}_{k}"
            if col not in extra:
                extra.append(col)
            row[col] = v
        rows.append(row)
    return columns + extra, rows


def _write_text(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path=path) from exc
    return path


def write_geojson(fc: dict[str, Any], path: Path) -> Path:
    """Write a FeatureCollection as UTF-8 JSON."""
    return _write_text(Path(path), json.dumps(fc, ensure_ascii=False, indent=1) + "\n")


def write_csv(fc: dict[str, Any], path: Path, *, columns: list[str]) -> Path:
    """Write one CSV row per feature: ``columns`` (``lon``/``lat`` = centroid) then flattened extras."""
    nested = "evidence" if "status" in columns else "features"
    header, rows = _csv_rows(fc, columns, nested)
    path = Path(path)
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path=path) from exc
    return path


# ================================================================================================ change map
def write_change_map(
    path: Path,
    change_class: np.ndarray,
    magnitude: np.ndarray,
    *,
    transform: Any,
    crs: CRS,
    blocksize: int = 256,
) -> Path:
    """Write the two-band change map as a Cloud-Optimized GeoTIFF (float32; see the module docstring).

    Parameters
    ----------
    path
        Output ``.tif``.
    change_class
        ``uint8`` codes (0, 1, 2, 3, 255) on the grid.
    magnitude
        ``float32`` change magnitude on the grid (NaN or class 255 pixels become nodata).
    transform, crs
        Georeferencing of the grid.
    blocksize
        COG tile size; overviews are built until the image fits one tile.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    if change_class.shape != magnitude.shape:
        raise ValueError(f"change_class shape {change_class.shape} != magnitude shape {magnitude.shape}")
    rows, cols = change_class.shape
    no_data = change_class == 255
    cls = change_class.astype(np.float32)
    mag = magnitude.astype(np.float32, copy=True)
    # a genuine magnitude that would round to the nodata value (10 mantissa bits: a step of 0.125 near 255)
    mag[np.abs(mag - NODATA) < 0.125] = NODATA - 0.125
    mag[no_data | ~np.isfinite(mag)] = NODATA
    tmp = path.with_name(f".{path.stem}.tmp.tif")
    profile = {
        "driver": "GTiff",
        "height": rows,
        "width": cols,
        "count": 2,
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": blocksize,
        "blockysize": blocksize,
        "compress": "deflate",
        # magnitude keeps 10 mantissa bits (relative precision ~5e-4): the file halves; class codes stay exact
        "discard_lsb": "0,13",
    }
    legend = {f"CHANGE_CLASS_{k}": v for k, v in CLASS_LEGEND.items()}
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(cls, 1)
            dst.write(mag, 2)
            dst.set_band_description(1, "change_class")
            dst.set_band_description(2, "change_magnitude")
            dst.update_tags(
                **legend,
                CHANGE_CLASS_NOTE="band 1 holds integer class codes stored as float32 (one sample type per GeoTIFF)",
                SOFTWARE=f"berthwatch {berthwatch.__version__}",
            )
            dst.update_tags(1, **legend)
            dst.update_tags(2, DESCRIPTION="change magnitude (see summary.json for the method)")
        rasterio.shutil.copy(
            tmp,
            path,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="YES",
            BLOCKSIZE=str(blocksize),
            OVERVIEW_RESAMPLING="NEAREST",
            RESAMPLING="NEAREST",
        )
    except (OSError, rasterio.errors.RasterioError) as exc:
        raise OutputError(f"cannot write change map ({exc})", path=path) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ================================================================================================ summaries
def _crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    try:
        from pyproj import CRS as PCRS

        return str(PCRS.from_wkt(crs.to_wkt()).name)
    except Exception:  # pragma: no cover - exotic CRS pyproj cannot parse
        return crs.to_string()


def scene_summary(scene: Scene) -> dict[str, Any]:
    """Description of one input scene for summary.json."""
    return {
        "path": str(scene.path) if scene.path is not None else None,
        "file": scene.name,
        "date": scene.date.isoformat(),
        "date_source": scene.date_source,
        "acquired": scene.acquired.isoformat() if scene.acquired is not None else None,
        "crs": _crs_label(scene.crs),
        "pixel_size_m": round(scene.pixel_size_m, 4),
        "bands": list(scene.bands),
        "layout": scene.layout,
        "sensor": scene.sensor,
        "shape": [scene.height, scene.width],
        "valid_fraction": round(float(scene.valid.mean()), 4),
    }


def _grid_info(scene: Scene) -> dict[str, Any]:
    c = to_lonlat(Point(*(scene.transform @ (scene.width / 2.0, scene.height / 2.0))), scene.crs)
    return {
        "crs": _crs_label(scene.crs),
        "transform": [float(v) for v in tuple(scene.transform)[:6]],
        "shape": [scene.height, scene.width],
        "pixel_size_m": round(scene.pixel_size_m, 4),
        "centre_lonlat": [round(float(c.x), 6), round(float(c.y), 6)],
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _lengths(objs: Sequence[ChangedObject | Detection], limit: int = 8) -> str:
    ls = sorted((o.length_m for o in objs), reverse=True)
    txt = ", ".join(f"{v:.0f} m" for v in ls[:limit])
    if len(ls) > limit:
        txt += f", … {len(ls) - limit} more"
    return f"{'length' if len(ls) == 1 else 'lengths'} {txt}"


def finding_sentence(objects: Sequence[ChangedObject]) -> str:
    """One plain sentence of what changed, e.g. ``"2 vessels departed (lengths 131 m, 124 m), ..."``."""
    by = {(k, s): [o for o in objects if o.kind == k and o.status == s] for k in KINDS for s in STATUSES}
    parts: list[str] = []
    for status in ("departed", "arrived"):
        v, e = by[("vessel", status)], by[("equipment", status)]
        if v:
            parts.append(f"{_plural(len(v), 'vessel')} {status} ({_lengths(v)})")
        if e:
            parts.append(f"{_plural(len(e), 'equipment item')} {status}")
    stayed = [by[("vessel", "stayed")], by[("equipment", "stayed")]]
    unknown = by[("vessel", "unknown")] + by[("equipment", "unknown")]
    tail: list[str] = []
    if stayed[0] or stayed[1]:
        bits = []
        if stayed[0]:
            bits.append(_plural(len(stayed[0]), "vessel"))
        if stayed[1]:
            bits.append(_plural(len(stayed[1]), "equipment item"))
        tail.append(f"{' and '.join(bits)} stayed")
    if unknown:
        tail.append(f"{_plural(len(unknown), 'object')} could not be checked on both dates (cloud or no data)")
    if not parts:
        head = "No vessel or equipment changes detected"
        return head + ("; " + "; ".join(tail) if tail else "") + "."
    return ", ".join(parts) + ("; " + "; ".join(tail) if tail else "") + "."


def detect_sentence(result: DetectionResult) -> str:
    """One sentence for a single-date inventory."""
    v = [d for d in result.detections if d.kind == "vessel"]
    e = [d for d in result.detections if d.kind == "equipment"]
    parts = [f"{_plural(len(v), 'vessel')}" + (f" ({_lengths(v)})" if v else "")]
    if result.equipment_searched:
        parts.append(_plural(len(e), "equipment item"))
    else:
        parts.append("equipment not searched")
    return f"{', '.join(parts)} on {result.scene.date.isoformat()}."


def _timings(timings: dict[str, float]) -> dict[str, float]:
    return {str(k): round(float(v), 3) for k, v in timings.items()}


def compare_summary(
    pair: AlignedPair,
    changes: ChangeSet,
    settings: Settings,
    timings: dict[str, float],
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """The content of ``summary.json`` for one comparison (batch reuses it).

    Keys: ``berthwatch_version``, ``command``, ``finding``, ``inputs`` (``before``/``after``: path, file, date,
    date_source, CRS, pixel size, bands, layout, ...), ``grid`` (the aligned grid; ``compared_bands``: the bands
    the dates are compared on, ``searched_bands``: each date's bands searched for objects), ``alignment``
    (:meth:`Alignment.to_dict`), ``counts`` (kind × status, :meth:`ChangeSet.counts`), ``totals``, ``settings``,
    ``timings_s``, ``notes``, ``outputs`` (empty here; :func:`write_compare_outputs` fills it).
    """
    counts = changes.counts()
    changed = sum(counts[k][s] for k in KINDS for s in ("departed", "arrived"))
    searched = pair.detection_scenes
    return {
        "berthwatch_version": berthwatch.__version__,
        "command": "compare",
        "finding": finding_sentence(changes.objects),
        "inputs": {"before": scene_summary(pair.before_source), "after": scene_summary(pair.after_source)},
        "grid": {
            **_grid_info(pair.before),
            # the dates are compared on the bands they share; each is searched with all of its own
            "compared_bands": list(pair.before.bands),
            "searched_bands": {"before": list(searched[0].bands), "after": list(searched[1].bands)},
        },
        "alignment": pair.alignment.to_dict(),
        "counts": counts,
        "totals": {"objects": len(changes.objects), "changed": changed},
        "settings": settings.to_dict(),
        "timings_s": _timings(timings),
        "notes": [str(n) for n in notes],
        "outputs": [],
    }


def detect_summary(result: DetectionResult, settings: Settings, timings: dict[str, float]) -> dict[str, Any]:
    """The content of ``summary.json`` for a single-date inventory (``counts`` per kind, no status)."""
    counts = dict.fromkeys(KINDS, 0)
    for d in result.detections:
        counts[d.kind] += 1
    return {
        "berthwatch_version": berthwatch.__version__,
        "command": "detect",
        "finding": detect_sentence(result),
        "input": scene_summary(result.scene),
        "grid": _grid_info(result.scene),
        "counts": counts,
        "equipment_searched": bool(result.equipment_searched),
        "settings": settings.to_dict(),
        "timings_s": _timings(timings),
        "notes": [str(n) for n in result.notes],
        "outputs": [],
    }


def _write_json(obj: dict[str, Any], path: Path) -> Path:
    return _write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


# ================================================================================================ chips
_STATUS_ORDER = {"departed": 0, "arrived": 1, "unknown": 2, "stayed": 3}


def _sorted_objects(objects: Sequence[ChangedObject]) -> list[ChangedObject]:
    return sorted(objects, key=lambda o: (o.kind != "vessel", _STATUS_ORDER[o.status], -o.length_m, o.id))


def _chip_objects(objects: Sequence[ChangedObject]) -> list[ChangedObject]:
    return [o for o in _sorted_objects(objects) if o.status != "stayed"]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80] or "object"


def _chip_pair(
    pair: AlignedPair, obj: ChangedObject, rgbs: tuple[np.ndarray, np.ndarray], size_px: int
) -> tuple[np.ndarray, np.ndarray]:
    colour = STATUS_COLOURS[obj.status]
    chips = []
    for scene, rgb, det in ((pair.before, rgbs[0], obj.before), (pair.after, rgbs[1], obj.after)):
        geom = det.geometry if det is not None else obj.geometry
        chips.append(render_chip(scene, geom, size_px=size_px, rgb=rgb, outline=colour, dashed=det is None))
    return chips[0], chips[1]


# ================================================================================================ reports
_CSS = """
:root{--ink:#1c2430;--muted:#5d6b7c;--line:#e3e8ee;--bg:#f6f8fa;--accent:#0b5cad}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--ink);background:#fff}
header{background:#101820;color:#fff;padding:28px 40px 24px}
header .kicker{text-transform:uppercase;letter-spacing:.12em;font-size:12px;color:#8fb3d9;margin:0 0 6px}
header h1{margin:0 0 6px;font-size:28px;font-weight:650}
header .meta{color:#c5d0dc;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:24px 40px 60px}
.finding{font-size:20px;line-height:1.45;border-left:5px solid var(--accent);background:var(--bg);
padding:16px 20px;margin:8px 0 24px;border-radius:0 6px 6px 0}
.flag{background:#fff4e5;border:1px solid #f0b35b;padding:10px 14px;border-radius:6px;margin:12px 0}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin:6px 0 10px}
th,td{padding:6px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;color:#34404f}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.overview img{width:100%;height:auto;border-radius:6px;border:1px solid var(--line)}
.chips{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff}
.card .imgs{display:flex;gap:6px}
.card figure{margin:0;flex:1;text-align:center;font-size:11.5px;color:var(--muted)}
.card img{width:100%;image-rendering:pixelated;border-radius:4px;display:block}
.card .t{font-weight:600;margin:0 0 6px;font-size:14px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#111}
.s-departed{background:#ffb3b3}.s-arrived{background:#aef3ff}.s-stayed{background:#ffeb8a}.s-unknown{background:#ddd}
.muted{color:var(--muted)}
details pre{background:var(--bg);padding:12px;border-radius:6px;overflow:auto;font-size:12px}
footer{color:var(--muted);font-size:12.5px;margin-top:40px;border-top:1px solid var(--line);padding-top:12px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _md(x: Any) -> str:
    """Text safe inside Markdown (including tables): HTML-escaped, pipes and emphasis markers neutralised."""
    s = html.escape("" if x is None else str(x), quote=False)
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", s)


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if math.isfinite(v) else "–"
    return str(v)


def _counts_rows(counts: dict[str, dict[str, int]]) -> list[list[str]]:
    return [[k, *[str(counts[k][s]) for s in STATUSES]] for k in KINDS]


def _table_rows(fc: dict[str, Any]) -> list[dict[str, Any]]:
    props = [f["properties"] for f in fc["features"]]
    order = {o: i for i, o in enumerate(("departed", "arrived", "unknown", "stayed"))}
    return sorted(
        props, key=lambda p: (p["kind"] != "vessel", order.get(p.get("status", ""), 9), -(p["length_m"] or 0))
    )


def _inputs_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    b, a = summary["inputs"]["before"], summary["inputs"]["after"]
    keys = [
        ("file", "File"),
        ("date", "Date"),
        ("date_source", "Date from"),
        ("crs", "CRS"),
        ("pixel_size_m", "Pixel size (m)"),
        ("bands", "Bands"),
        ("layout", "Layout"),
        ("shape", "Rows × cols"),
        ("valid_fraction", "Valid fraction"),
        ("path", "Path"),
    ]
    out = []
    for k, label in keys:
        bv, av = b.get(k), a.get(k)
        if k == "bands":
            bv, av = ", ".join(bv), ", ".join(av)
        if k == "shape":
            bv, av = f"{bv[0]} × {bv[1]}", f"{av[0]} × {av[1]}"
        out.append((label, "–" if bv is None else str(bv), "–" if av is None else str(av)))
    return out


def _alignment_rows(al: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("Method", str(al["method"])),
        ("Shift (rows, cols) px", f"{al['shift_px']['row']:+.2f}, {al['shift_px']['col']:+.2f}"),
        ("Residual px", f"{al['residual_px']:.2f}"),
        ("Quality (0–1)", f"{al['quality']:.2f}"),
        ("Applied", "yes" if al["applied"] else "no"),
        ("Flagged", "yes" if al["flagged"] else "no"),
        ("Message", str(al.get("message") or "–")),
        ("Radiometric", str(al.get("radiometric", {}).get("method") or "–")),
    ]


def _place(summary: dict[str, Any]) -> str:
    lon, lat = summary["grid"]["centre_lonlat"]
    return f"{abs(lat):.3f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.3f}° {'E' if lon >= 0 else 'W'}"


def _b64(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _overview_jpeg(path: Path, max_width: int = 1600) -> bytes:
    """A reduced JPEG of the overview PNG for inline embedding (keeps the HTML a few MB at most)."""
    from matplotlib import image as mimage
    from skimage import transform

    img = mimage.imread(path)[..., :3]
    if img.shape[1] > max_width:
        f = max_width / img.shape[1]
        img = transform.resize(img, (round(img.shape[0] * f), max_width), anti_aliasing=True)
    rgb = np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    mimage.imsave(buf, rgb, format="jpeg", pil_kwargs={"quality": 85})
    return buf.getvalue()


def render_html(
    summary: dict[str, Any],
    fc: dict[str, Any],
    *,
    chips: Sequence[tuple[ChangedObject, bytes, bytes]],
    n_chip_candidates: int,
    overview: bytes | None,
) -> str:
    """The self-contained HTML report (inline CSS and images; all external text escaped)."""
    b, a = summary["inputs"]["before"], summary["inputs"]["after"]
    al = summary["alignment"]
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w("<meta name='viewport' content='width=device-width,initial-scale=1'>")
    w(f"<title>berthwatch · {_e(b['date'])} → {_e(a['date'])} · {_e(b['file'])}</title>")
    w(f"<style>{_CSS}</style></head><body>")
    w("<header><p class='kicker'>berthwatch change report</p>")
    w(f"<h1>Port changes {_e(b['date'])} → {_e(a['date'])}</h1>")
    w(
        f"<div class='meta'>Area centred at {_e(_place(summary))} · before: {_e(b['file'])}"
        f" · after: {_e(a['file'])}</div>"
    )
    w("</header><main>")
    w(f"<p class='finding'>{_e(summary['finding'])}</p>")
    if al.get("flagged"):
        w(f"<div class='flag'><b>Alignment flagged:</b> {_e(al.get('message') or 'check the co-registration')}</div>")
    for note in summary.get("notes", []):
        w(f"<div class='flag'>{_e(note)}</div>")
    if overview is not None:
        w("<section class='overview'><h2>Overview</h2>")
        w(f"<img alt='before and after, annotated' src='{_b64(overview, 'image/jpeg')}'>")
        w(
            "<p class='muted'>Full-resolution pictures: <a href='before.png'>before.png</a>, <a href='after.png'>"
            "after.png</a>, <a href='overview.png'>overview.png</a>. Red departed, cyan arrived, yellow stayed, grey "
            "unknown; dashed outlines mark where an object is absent on that date.</p></section>"
        )
    w("<h2>Counts</h2><table><tr><th>kind</th>" + "".join(f"<th class='n'>{_e(s)}</th>" for s in STATUSES) + "</tr>")
    for row in _counts_rows(summary["counts"]):
        w(f"<tr><td>{_e(row[0])}</td>" + "".join(f"<td class='n'>{_e(v)}</td>" for v in row[1:]) + "</tr>")
    w("</table>")

    w("<h2>Changed objects</h2>")
    if not chips:
        w("<p class='muted'>No changed objects.</p>")
    else:
        w("<div class='chips'>")
        for obj, before_png, after_png in chips:
            w("<div class='card'>")
            w(
                f"<p class='t'>{_e(obj.id)} · {_e(obj.kind)} "
                f"<span class='pill s-{_e(obj.status)}'>{_e(obj.status)}</span></p>"
            )
            w(
                f"<p class='muted' style='margin:0 0 6px;font-size:12.5px'>{obj.length_m:.0f} × {obj.width_m:.0f} m, "
                f"heading {obj.heading_deg:.0f}°, confidence {obj.confidence:.2f}</p><div class='imgs'>"
            )
            w(
                f"<figure><img alt='{_e(obj.id)} before' src='{_b64(before_png, 'image/png')}'>"
                f"before {_e(b['date'])}</figure>"
            )
            w(
                f"<figure><img alt='{_e(obj.id)} after' src='{_b64(after_png, 'image/png')}'>"
                f"after {_e(a['date'])}</figure>"
            )
            w("</div></div>")
        w("</div>")
        if n_chip_candidates > len(chips):
            w(
                f"<p class='muted'>{n_chip_candidates - len(chips)} more changed objects are not shown as chips; "
                "see objects.geojson / objects.csv.</p>"
            )

    rows = _table_rows(fc)
    w(
        "<h2>All objects</h2><table><tr><th>id</th><th>kind</th><th>status</th><th class='n'>length m</th>"
        "<th class='n'>width m</th><th class='n'>heading °</th><th class='n'>confidence</th><th class='n'>lon</th>"
        "<th class='n'>lat</th></tr>"
    )
    for p in rows[:MAX_TABLE_ROWS]:
        w(
            f"<tr><td>{_e(p['id'])}</td><td>{_e(p['kind'])}</td><td><span class='pill s-{_e(p['status'])}'>"
            f"{_e(p['status'])}</span></td><td class='n'>{_fmt(p['length_m'])}</td>"
            f"<td class='n'>{_fmt(p['width_m'])}</td>"
            f"<td class='n'>{_fmt(p['heading_deg'], 0)}</td><td class='n'>{_fmt(p['confidence'], 2)}</td>"
            f"<td class='n'>{_fmt(p['centroid_lon'], 6)}</td><td class='n'>{_fmt(p['centroid_lat'], 6)}</td></tr>"
        )
    w("</table>")
    if len(rows) > MAX_TABLE_ROWS:
        w(f"<p class='muted'>{len(rows) - MAX_TABLE_ROWS} more objects in objects.csv.</p>")

    w("<h2>Inputs</h2><table><tr><th></th><th>before</th><th>after</th></tr>")
    for label, bv, av in _inputs_rows(summary):
        w(f"<tr><th>{_e(label)}</th><td>{_e(bv)}</td><td>{_e(av)}</td></tr>")
    w("</table>")
    w("<h2>Alignment</h2><table>")
    for label, v in _alignment_rows(al):
        w(f"<tr><th>{_e(label)}</th><td>{_e(v)}</td></tr>")
    w("</table>")
    w("<h2>Settings and timings</h2><details><summary>Effective settings</summary>")
    w(f"<pre>{_e(json.dumps(summary['settings'], indent=2, default=str))}</pre></details>")
    w("<details><summary>Timings (s)</summary>")
    w(f"<pre>{_e(json.dumps(summary['timings_s'], indent=2))}</pre></details>")
    w(
        f"<footer>Generated by berthwatch {_e(summary['berthwatch_version'])}. Outlines and measures are automatic "
        "detections; check them against the pictures before publishing.</footer>"
    )
    w("</main></body></html>\n")
    return "\n".join(out)


def render_markdown(
    summary: dict[str, Any],
    fc: dict[str, Any],
    *,
    chip_files: Sequence[tuple[ChangedObject, str]],
    n_chip_candidates: int,
) -> str:
    """The Markdown report; pictures are referenced by relative path (overview.png, chips/<id>.png)."""
    b, a = summary["inputs"]["before"], summary["inputs"]["after"]
    al = summary["alignment"]
    L: list[str] = []
    L.append(f"# Port changes {_md(b['date'])} → {_md(a['date'])}\n")
    L.append(f"Area centred at {_md(_place(summary))}. Before: {_md(b['file'])}; after: {_md(a['file'])}.\n")
    L.append(f"**{_md(summary['finding'])}**\n")
    if al.get("flagged"):
        L.append(f"> **Alignment flagged:** {_md(al.get('message') or 'check the co-registration')}\n")
    for note in summary.get("notes", []):
        L.append(f"> {_md(note)}\n")
    L.append("![before and after, annotated](overview.png)\n")
    L.append("## Counts\n")
    L.append("| kind | " + " | ".join(STATUSES) + " |")
    L.append("|---|" + "---:|" * len(STATUSES))
    for row in _counts_rows(summary["counts"]):
        L.append("| " + " | ".join(_md(v) for v in row) + " |")
    L.append("\n## Changed objects\n")
    if not chip_files:
        L.append("No changed objects.\n")
    for obj, rel in chip_files:
        L.append(f"### {_md(obj.id)} · {_md(obj.kind)} · {_md(obj.status)}\n")
        L.append(
            f"{obj.length_m:.0f} × {obj.width_m:.0f} m, heading {obj.heading_deg:.0f}°, "
            f"confidence {obj.confidence:.2f}. Left before ({_md(b['date'])}), right after ({_md(a['date'])}).\n"
        )
        L.append(f"![{_md(obj.id)}]({rel})\n")
    if n_chip_candidates > len(chip_files):
        L.append(f"{n_chip_candidates - len(chip_files)} more changed objects are not shown; see objects.csv.\n")
    L.append("## All objects\n")
    L.append("| id | kind | status | length m | width m | heading ° | confidence | lon | lat |")
    L.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rows = _table_rows(fc)
    for p in rows[:MAX_TABLE_ROWS]:
        L.append(
            f"| {_md(p['id'])} | {_md(p['kind'])} | {_md(p['status'])} | {_fmt(p['length_m'])} | "
            f"{_fmt(p['width_m'])} | {_fmt(p['heading_deg'], 0)} | {_fmt(p['confidence'], 2)} | "
            f"{_fmt(p['centroid_lon'], 6)} | {_fmt(p['centroid_lat'], 6)} |"
        )
    if len(rows) > MAX_TABLE_ROWS:
        L.append(f"\n{len(rows) - MAX_TABLE_ROWS} more objects in objects.csv.")
    L.append("\n## Inputs\n")
    L.append("| | before | after |")
    L.append("|---|---|---|")
    for label, bv, av in _inputs_rows(summary):
        L.append(f"| {_md(label)} | {_md(bv)} | {_md(av)} |")
    L.append("\n## Alignment\n")
    L.append("| | |")
    L.append("|---|---|")
    for label, v in _alignment_rows(al):
        L.append(f"| {_md(label)} | {_md(v)} |")
    L.append(
        f"\nGenerated by berthwatch {_md(summary['berthwatch_version'])}; effective settings and timings are in "
        "summary.json.\n"
    )
    return "\n".join(L)


# ================================================================================================ entry points
def _tick(progress: Progress, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


def write_compare_outputs(
    out_dir: Path,
    *,
    pair: AlignedPair,
    changes: ChangeSet,
    settings: Settings,
    timings: dict[str, float],
    notes: Iterable[str] = (),
    progress: Progress = None,
    chip_size_px: int = 160,
) -> list[Path]:
    """Write every output of ``berthwatch compare`` into an existing folder.

    Parameters
    ----------
    out_dir
        Existing (temporary) folder.
    pair
        The aligned pair; the change map and pictures use its grid.
    changes
        Objects with status and the per-pixel change layers on ``pair``'s grid.
    settings, timings, notes
        Recorded in summary.json.
    progress
        Optional ``progress(stage, fraction)`` callback.
    chip_size_px
        Side of each before/after chip.

    Returns
    -------
    list of pathlib.Path
        Every file written (summary.json last).
    """
    out = Path(out_dir)
    notes = list(notes)
    written: list[Path] = []
    crs = pair.before.crs
    bdate, adate = pair.before.date, pair.after.date

    _tick(progress, "report: vectors", 0.0)
    fc = objects_feature_collection(changes.objects, crs, before_date=bdate, after_date=adate)
    written.append(write_geojson(fc, out / "objects.geojson"))
    written.append(write_csv(fc, out / "objects.csv", columns=COMPARE_COLUMNS))

    _tick(progress, "report: change map", 0.1)
    if changes.change_class.shape != pair.before.shape:
        raise ValueError(f"change_class shape {changes.change_class.shape} != grid {pair.before.shape}")
    written.append(
        write_change_map(
            out / "change_map.tif", changes.change_class, changes.magnitude, transform=pair.before.transform, crs=crs
        )
    )

    _tick(progress, "report: pictures", 0.25)
    rgb_b, rgb_a = display_rgb(pair.before), display_rgb(pair.after)
    bsrc, asrc = pair.before_source, pair.after_source
    written.append(
        render_annotated(
            pair.before,
            changes.objects,
            out / "before.png",
            title=f"BEFORE · {bsrc.name}",
            date_label=f"{bdate.isoformat()}",
            which="before",
            rgb=rgb_b,
        )
    )
    written.append(
        render_annotated(
            pair.after,
            changes.objects,
            out / "after.png",
            title=f"AFTER · {asrc.name}",
            date_label=f"{adate.isoformat()}",
            which="after",
            rgb=rgb_a,
        )
    )
    _tick(progress, "report: overview", 0.45)
    overview = render_overview(pair, changes.objects, out / "overview.png", rgbs=(rgb_b, rgb_a))
    written.append(overview)

    _tick(progress, "report: chips", 0.6)
    candidates = _chip_objects(changes.objects)
    chosen = candidates[:MAX_CHIPS]
    chips: list[tuple[ChangedObject, bytes, bytes]] = []
    chip_files: list[tuple[ChangedObject, str]] = []
    if chosen:
        (out / "chips").mkdir(exist_ok=True)
    used: set[str] = set()
    for i, obj in enumerate(chosen):
        cb, ca = _chip_pair(pair, obj, (rgb_b, rgb_a), chip_size_px)
        chips.append((obj, encode_png(cb), encode_png(ca)))
        name = _safe_name(obj.id)
        while name in used:
            name += "_"
        used.add(name)
        gap = np.full((chip_size_px, 6, 3), 255, dtype=np.uint8)
        side = out / "chips" / f"{name}.png"
        try:
            side.write_bytes(encode_png(np.concatenate([cb, gap, ca], axis=1)))
        except OSError as exc:
            raise OutputError(f"cannot write chip ({exc.strerror or exc})", path=side) from exc
        written.append(side)
        chip_files.append((obj, f"chips/{name}.png"))
        _tick(progress, "report: chips", 0.6 + 0.3 * (i + 1) / len(chosen))

    summary = compare_summary(pair, changes, settings, timings, notes)
    names = ["report.md", "report.html", "summary.json"]
    summary["outputs"] = [p.relative_to(out).as_posix() for p in written] + names
    _tick(progress, "report: documents", 0.9)
    written.append(
        _write_text(
            out / "report.md",
            render_markdown(summary, fc, chip_files=chip_files, n_chip_candidates=len(candidates)),
        )
    )
    written.append(
        _write_text(
            out / "report.html",
            render_html(summary, fc, chips=chips, n_chip_candidates=len(candidates), overview=_overview_jpeg(overview)),
        )
    )
    written.append(_write_json(summary, out / "summary.json"))
    _tick(progress, "report: done", 1.0)
    logger.info("wrote %d files into %s", len(written), out)
    return written


def write_detect_outputs(
    out_dir: Path,
    *,
    result: DetectionResult,
    settings: Settings,
    timings: dict[str, float],
    progress: Progress = None,
) -> list[Path]:
    """Write every output of ``berthwatch detect`` (objects.geojson/csv without status, summary.json,
    annotated.png) into an existing folder. Returns the files written (summary.json last)."""
    out = Path(out_dir)
    scene = result.scene
    written: list[Path] = []
    _tick(progress, "report: vectors", 0.0)
    fc = objects_feature_collection(result.detections, scene.crs, date=scene.date)
    written.append(write_geojson(fc, out / "objects.geojson"))
    written.append(write_csv(fc, out / "objects.csv", columns=DETECT_COLUMNS))
    _tick(progress, "report: picture", 0.3)
    written.append(
        render_annotated(
            scene,
            result.detections,
            out / "annotated.png",
            title=f"DETECTIONS · {scene.name}",
            date_label=scene.date.isoformat(),
            which="detect",
        )
    )
    summary = detect_summary(result, settings, timings)
    summary["outputs"] = [p.relative_to(out).as_posix() for p in written] + ["summary.json"]
    written.append(_write_json(summary, out / "summary.json"))
    _tick(progress, "report: done", 1.0)
    return written
