"""Reading dated satellite rasters: :func:`read_scene` (pixels) and :func:`scene_info` (metadata only).

Both share one interpretation of the file, so ``berthwatch info`` shows exactly what the pipeline will use:

Band roles
    From band descriptions first (Sentinel-2 ``B02``/``B2``/``B8A``, Planet 8-band ``coastal_blue`` ...
    ``nir``, plain ``blue``/``Red``/``NIR``), then colour interpretation (``red``, ``green``, ``blue``,
    ``alpha``), then the band count: 1 band is panchromatic, 3 bands are red, green, blue (the order of every
    3-band Planet product, visual and the older 3-band analytic), 4 bands are Planet analytic
    blue, green, red, NIR, 8 bands are Planet 8-band analytic. Any other count without descriptions
    (2, 5, 6, 7, 9+ bands) raises :class:`~berthwatch.errors.UnsupportedBandsError`. An alpha band is dropped
    from the data and used as the valid mask. Pixel values are never rescaled.
Valid mask
    GDAL's dataset mask (nodata, alpha band or internal mask — a pixel is nodata when every band holds the
    nodata value, GDAL's convention), intersected with a Planet UDM2 lying next to the image
    (``X_3B_AnalyticMS.tif`` → ``X_3B_udm2.tif``). A UDM2 pixel is usable only when it is flagged clear and
    is neither snow, shadow, light haze, heavy haze nor cloud, and its "unusable" band (UDM1 bits) is 0. Snow
    counts as unusable because bright snow on quays would read as objects. A UDM2 on another grid is
    reprojected (nearest) onto the image grid; where it has no coverage it does not veto the image's own mask.
    An alpha band masks even where GDAL does not take it as one (beside a nodata value, or without its colour
    interpretation). A black collar (0 in every band, connected to the image edge) is masked too, with the
    pixels touching it: exports often pad an image with black and declare no nodata.
Grid
    The file's own grid, except in a geographic CRS (lon/lat degrees, whose pixels are not square on the
    ground): such a file is warped (cubic, the least blurring) to its local UTM zone on reading, and outputs are in
    that CRS.
Acquisition date (first source that gives one wins)
    ``date=`` argument; ``TIFFTAG_DATETIME``; GDAL metadata keys such as ``ACQUISITIONDATETIME`` or
    ``ACQ_DATE`` (default and ``IMAGERY`` domains); Planet file names (PlanetScope and SkySat); a Planet
    ``*_metadata.json`` sidecar (``properties.acquired``); a ``*_metadata.xml`` sidecar (any element named
    ``acquisitionDate``, ``acquisitionDateTime`` or ``acquired``); one unambiguous ISO date in the file name
    (``tartus_2025-01-18.tif`` or a delimited ``20250118``). XML sidecars with a DTD or entity declarations are
    refused (:class:`~berthwatch.errors.SidecarError`) before parsing, so entity bombs and external entities
    cannot be expanded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj.exceptions import ProjError
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import CRSError, NodataShadowWarning, NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, reproject
from rasterio.windows import Window
from scipy import ndimage as ndi
from shapely.geometry import Polygon, box, mapping

from berthwatch.errors import (
    EmptyFileError,
    MissingCRSError,
    MissingDateError,
    NotARasterError,
    NoValidDataError,
    SidecarError,
    TruncatedRasterError,
    UnsupportedBandsError,
    UnsupportedTransformError,
)
from berthwatch.geo import local_utm, to_lonlat
from berthwatch.models import BandRole, Scene, _ground_scale

__all__ = ["SceneInfo", "find_udm2", "read_scene", "scene_info"]

logger = logging.getLogger(__name__)

#: Longest side (pixels) of the decimated masks :func:`scene_info` reads to estimate the valid fraction.
INFO_MASK_SIZE = 1024
#: Sidecars larger than this are not metadata files; refuse them rather than parse them.
MAX_SIDECAR_BYTES = 16 * 1024 * 1024

# ---------------------------------------------------------------------------------------------------------------
# band roles
# ---------------------------------------------------------------------------------------------------------------

_PLANET8 = ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir")
_PLANET8_ROLES: tuple[BandRole, ...] = ("coastal", "blue", "other", "green", "other", "red", "rededge", "nir")
_PLANET4_ROLES: tuple[BandRole, ...] = ("blue", "green", "red", "nir")
_RGB_ROLES: tuple[BandRole, ...] = ("red", "green", "blue")

_S2_ROLES: dict[str, BandRole] = {
    "1": "coastal",
    "2": "blue",
    "3": "green",
    "4": "red",
    "5": "rededge",
    "6": "rededge",
    "7": "rededge",
    "8": "nir",
    "8A": "nir",
    "9": "other",
    "10": "swir",
    "11": "swir",
    "12": "swir",
}
_S2_NAME = re.compile(r"^B0?(1[0-2]|[1-9]|8A)$", re.IGNORECASE)

_NAMED_ROLES: dict[str, BandRole] = {
    "coastal": "coastal",
    "coastal_blue": "coastal",
    "coastalblue": "coastal",
    "blue": "blue",
    "green": "green",
    "green_i": "other",
    "yellow": "other",
    "red": "red",
    "rededge": "rededge",
    "red_edge": "rededge",
    "nir": "nir",
    "near_infrared": "nir",
    "nearinfrared": "nir",
    "pan": "pan",
    "panchromatic": "pan",
    "swir": "swir",
    "swir1": "swir",
    "swir2": "swir",
    "swir_1": "swir",
    "swir_2": "swir",
}

_COLORINTERP_ROLES: dict[ColorInterp, BandRole] = {
    ColorInterp.red: "red",
    ColorInterp.green: "green",
    ColorInterp.blue: "blue",
}


@dataclass(frozen=True)
class _Bands:
    """Which file bands hold data (1-based indexes), their roles, the alpha band if any, and the layout name."""

    indexes: tuple[int, ...]
    roles: tuple[BandRole, ...]
    alpha: int | None
    layout: str


def _role_from_description(desc: str | None) -> tuple[BandRole | None, str]:
    """(role, family) from one band description; family is "sentinel2", "planet8", "named" or ""."""
    if not desc:
        return None, ""
    text = desc.strip()
    m = _S2_NAME.match(text)
    if m:
        key = m.group(1).upper()
        return _S2_ROLES[key], "sentinel2"
    key = re.sub(r"[\s\-]+", "_", text.lower())
    if key in _NAMED_ROLES:
        return _NAMED_ROLES[key], ("planet8" if key in _PLANET8 else "named")
    return None, ""


def _band_roles(ds: DatasetReader, path: Path) -> _Bands:
    colorinterp = tuple(ds.colorinterp)
    descriptions = tuple(ds.descriptions)
    alpha: int | None = None
    for i, (ci, desc) in enumerate(zip(colorinterp, descriptions, strict=True), start=1):
        if ci == ColorInterp.alpha or (desc or "").strip().lower() == "alpha":
            alpha = i
    indexes = tuple(i for i in ds.indexes if i != alpha)
    n = len(indexes)
    dtype = np.dtype(ds.dtypes[indexes[0] - 1]) if n else np.dtype("uint8")
    descs = [descriptions[i - 1] for i in indexes]
    cis = [colorinterp[i - 1] for i in indexes]

    # 1. band descriptions
    parsed = [_role_from_description(d) for d in descs]
    known = [role for role, _ in parsed if role is not None]
    if known:
        families = {fam for role, fam in parsed if role is not None}
        roles = tuple(role if role is not None else "other" for role, _ in parsed)
        if not any(r in ("blue", "green", "red", "pan") for r in roles):
            raise UnsupportedBandsError(
                f"band descriptions {descs} name no visible or panchromatic band; berthwatch needs at least one",
                path=path,
            )
        if families == {"sentinel2"}:
            layout = "sentinel2"
        elif families <= {"planet8", "named"} and [d.strip().lower() for d in descs if d] == list(_PLANET8):
            layout = "analytic8"
        elif roles == _PLANET4_ROLES:
            layout = "analytic"
        elif roles == _RGB_ROLES and dtype == np.uint8:
            layout = "visual"
        elif roles == ("pan",):
            layout = "pan"
        else:
            layout = "multiband"
        return _Bands(indexes, roles, alpha, layout)

    # 2. colour interpretation (RGB in whatever order the file declares)
    # (a 4th band next to declared R, G, B is the NIR of a 4-band analytic product)
    ci_roles = [_COLORINTERP_ROLES.get(ci) for ci in cis]
    if n in (3, 4) and sorted(r for r in ci_roles if r) == ["blue", "green", "red"]:
        roles = tuple(r if r is not None else "nir" for r in ci_roles)
        if roles == _PLANET4_ROLES:
            layout = "analytic"
        elif n == 3 and dtype == np.uint8:
            layout = "visual"
        else:
            layout = "multiband"
        return _Bands(indexes, roles, alpha, layout)

    # 3. band count
    if n == 1:
        return _Bands(indexes, ("pan",), alpha, "pan")
    if n == 3:
        return _Bands(indexes, _RGB_ROLES, alpha, "visual" if dtype == np.uint8 else "multiband")
    if n == 4:
        return _Bands(indexes, _PLANET4_ROLES, alpha, "analytic")
    if n == 8:
        return _Bands(indexes, _PLANET8_ROLES, alpha, "analytic8")
    raise UnsupportedBandsError(
        f"cannot tell the band roles of {n} {dtype} band(s) without band descriptions "
        "(expected 1 pan, 3 RGB, 4 BGRN or 8 Planet bands, or descriptions such as B02/B03/B04/B08)",
        path=path,
    )


# ---------------------------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------------------------

_DATE_KEYS = (
    "ACQUISITIONDATETIME",
    "ACQUISITION_DATETIME",
    "ACQUISITION_DATE",
    "ACQ_DATE",
    "DATE_ACQUIRED",
    "SENSING_TIME",
    "SENSING_START",
    "DATATAKE_1_DATATAKE_SENSING_START",
    "PRODUCT_START_TIME",
    "ACQUIRED",
)
_DATE_DOMAINS = ("", "IMAGERY")

_PLANETSCOPE_NAME = re.compile(r"(?<![0-9A-Za-z])(\d{8})_(\d{6})(?:_(\d{2}))?_[0-9a-f]{4}(?=_|$)")
_SKYSAT_NAME = re.compile(r"(?<![0-9A-Za-z])(\d{8})_(\d{6})_ssc\d+(?:d\d+)?(?=_|$)", re.IGNORECASE)
_ISO_DASHED = re.compile(r"(?<![0-9])(\d{4})-(\d{2})-(\d{2})(?![0-9])")
_ISO_COMPACT = re.compile(r"(?<![0-9A-Za-z])(\d{4})(\d{2})(\d{2})(?![0-9A-Za-z])")
_XML_DATE_TAGS = {"acquisitiondate", "acquisitiondatetime", "acquired"}
# Earliest plausible image date (first satellite photographs, 1959) — rejects digit runs that are not dates.
_FIRST_IMAGE_YEAR = 1959


@dataclass(frozen=True)
class _DateFound:
    date: dt.date
    acquired: dt.datetime | None
    source: str


def _as_date(value: dt.date | str, *, what: str) -> tuple[dt.date, dt.datetime | None]:
    if isinstance(value, dt.datetime):
        return value.date(), value
    if isinstance(value, dt.date):
        return value, None
    parsed = _parse_datetime_text(str(value))
    if parsed is None:
        raise ValueError(f"{what} {value!r} is not a date; use YYYY-MM-DD")
    return parsed


def _parse_datetime_text(text: str) -> tuple[dt.date, dt.datetime | None] | None:
    """Parse an ISO-8601 / TIFF / compact date or datetime; None when it is not one."""
    s = text.strip()
    if not s:
        return None
    # TIFF style "YYYY:MM:DD HH:MM:SS"
    m = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", s)
    if m:
        s = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{8}", s):
            d = dt.date.fromisoformat(s)
            return (d, None) if _plausible(d) else None
        # fromisoformat (3.11) accepts "Z", offsets, fractions; trim fractions finer than microseconds.
        s = re.sub(r"(\.\d{6})\d+", r"\1", s)
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    return (t.date(), t) if _plausible(t.date()) else None


def _plausible(d: dt.date) -> bool:
    return d.year >= _FIRST_IMAGE_YEAR and d <= dt.date.today() + dt.timedelta(days=1)


def _date_from_tags(ds: DatasetReader) -> _DateFound | None:
    tags = ds.tags()
    if "TIFFTAG_DATETIME" in tags:
        parsed = _parse_datetime_text(tags["TIFFTAG_DATETIME"])
        if parsed:
            return _DateFound(parsed[0], parsed[1], "TIFFTAG_DATETIME")
        logger.debug("%s: ignoring unparseable TIFFTAG_DATETIME %r", ds.name, tags["TIFFTAG_DATETIME"])
    namespaces = set(ds.tag_namespaces() or ())
    for domain in _DATE_DOMAINS:
        if domain and domain not in namespaces:
            continue
        dtags = ds.tags(ns=domain) if domain else tags
        upper = {k.upper(): (k, v) for k, v in dtags.items()}
        for key in _DATE_KEYS:
            if key in upper:
                name, value = upper[key]
                parsed = _parse_datetime_text(value)
                if parsed:
                    return _DateFound(parsed[0], parsed[1], f"metadata:{name}")
                logger.debug("%s: ignoring unparseable metadata %s=%r", ds.name, name, value)
    return None


def _date_from_planet_name(stem: str) -> _DateFound | None:
    for pattern, source in ((_PLANETSCOPE_NAME, "filename:planetscope"), (_SKYSAT_NAME, "filename:skysat")):
        m = pattern.search(stem)
        if not m:
            continue
        d, t = m.group(1), m.group(2)
        frac = m.group(3) if pattern is _PLANETSCOPE_NAME else None
        try:
            acquired = dt.datetime.strptime(d + t, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if frac:
            acquired = acquired.replace(microsecond=int(frac) * 10_000)
        if _plausible(acquired.date()):
            return _DateFound(acquired.date(), acquired, source)
    return None


def _date_from_iso_name(stem: str) -> _DateFound | None:
    found: set[dt.date] = set()
    for pattern in (_ISO_DASHED, _ISO_COMPACT):
        for m in pattern.finditer(stem):
            try:
                d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                continue
            if _plausible(d):
                found.add(d)
    if len(found) == 1:
        return _DateFound(found.pop(), None, "filename:iso")
    if len(found) > 1:
        logger.info("file name %r holds several dates %s; not using any", stem, sorted(found))
    return None


def _name_prefixes(stem: str) -> list[str]:
    """The stem, then the stem with trailing product words removed, longest first.

    ``20250118_081523_12_2416_3B_AnalyticMS_SR`` gives itself, ``..._3B_AnalyticMS``, ``..._3B``, ``..._2416``.
    Only words holding a letter are removed (product names such as ``AnalyticMS``, ``3B``, ``8b``, ``visual``),
    never all-digit words or dates, so a sibling of another acquisition is never taken.
    """
    out = [stem]
    parts = stem.split("_")
    for k in range(len(parts) - 1, 0, -1):
        if not re.search(r"[A-Za-z]", parts[k]):
            break
        out.append("_".join(parts[:k]))
    return out


def _sibling_candidates(path: Path, word: str, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """Files next to ``path`` named like it with the product words replaced by ``word`` (e.g. ``udm2``)."""
    stem = path.stem
    clip = stem.lower().endswith("_clip")
    base = stem[: -len("_clip")] if clip else stem
    seen: set[Path] = set()
    for prefix in _name_prefixes(base):
        for w in (word, word.upper()):
            names = [f"{prefix}_{w}{suffix}" for suffix in suffixes]
            if clip:
                names = [f"{prefix}_{w}_clip{suffix}" for suffix in suffixes] + names
            for name in names:
                cand = path.with_name(name)
                if cand != path and cand not in seen:
                    seen.add(cand)
                    yield cand


def _date_from_json_sidecar(path: Path) -> _DateFound | None:
    for cand in _sibling_candidates(path, "metadata", (".json",)):
        if not cand.is_file():
            continue
        text = _read_sidecar_text(cand)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"metadata sidecar is not valid JSON ({exc.msg} at line {exc.lineno})"
            raise SidecarError(msg, path=cand) from None
        value: Any = None
        if isinstance(doc, dict):
            props = doc.get("properties")
            value = props.get("acquired") if isinstance(props, dict) else None
            value = value if value is not None else doc.get("acquired")
        if value is None:
            logger.debug("%s: JSON sidecar has no properties.acquired", cand)
            continue
        parsed = _parse_datetime_text(str(value))
        if parsed is None:
            raise SidecarError(f"'acquired' value {value!r} is not a date", path=cand)
        return _DateFound(parsed[0], parsed[1], "sidecar:json")
    return None


def _date_from_xml_sidecar(path: Path) -> _DateFound | None:
    for cand in _sibling_candidates(path, "metadata", (".xml",)):
        if not cand.is_file():
            continue
        root = _parse_xml_safely(cand)
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
            if tag.lower() in _XML_DATE_TAGS and el.text and el.text.strip():
                parsed = _parse_datetime_text(el.text)
                if parsed is None:
                    raise SidecarError(f"<{tag}> value {el.text.strip()!r} is not a date", path=cand)
                return _DateFound(parsed[0], parsed[1], "sidecar:xml")
        logger.debug("%s: XML sidecar has no acquisition date element", cand)
    return None


def _read_sidecar_text(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_SIDECAR_BYTES:
        raise SidecarError(f"metadata sidecar is {size} bytes, larger than any metadata file", path=path)
    return path.read_bytes()


def _parse_xml_safely(path: Path) -> ET.Element:
    """Parse a metadata XML, refusing DTDs and entity declarations (entity bombs, external entities)."""
    data = _read_sidecar_text(path)
    if re.search(rb"<!\s*(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise SidecarError("metadata XML declares a DTD or entities; refused for safety", path=path)
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise SidecarError(f"metadata XML is malformed ({exc})", path=path) from None


def _find_date(ds: DatasetReader, path: Path, date: dt.date | str | None) -> _DateFound:
    if date is not None:
        try:
            d, acquired = _as_date(date, what="date argument")
        except ValueError as exc:
            raise MissingDateError(str(exc), path=path) from None
        return _DateFound(d, acquired, "argument")
    stem = path.stem
    for finder in (
        lambda: _date_from_tags(ds),
        lambda: _date_from_planet_name(stem),
        lambda: _date_from_json_sidecar(path),
        lambda: _date_from_xml_sidecar(path),
        lambda: _date_from_iso_name(stem),
    ):
        found = finder()
        if found is not None:
            logger.debug("%s: date %s from %s", path, found.date, found.source)
            return found
    raise MissingDateError(
        "no acquisition date in the file, its name or a metadata sidecar; "
        "give one with --date YYYY-MM-DD (CLI) or date= (read_scene)",
        path=path,
    )


# ---------------------------------------------------------------------------------------------------------------
# UDM2
# ---------------------------------------------------------------------------------------------------------------

_UDM2_MIN_BANDS = 6  # clear, snow, shadow, light haze, heavy haze, cloud (7 confidence, 8 unusable are optional)


def find_udm2(path: str | Path) -> Path | None:
    """The Planet UDM2 file lying next to an image, or None.

    The UDM2 is named like the image with the product words replaced by ``udm2``: ``X_3B_AnalyticMS_SR.tif``
    → ``X_3B_udm2.tif``, ``X_visual.tif`` → ``X_udm2.tif``, ``X_3B_AnalyticMS_clip.tif`` → ``X_3B_udm2_clip.tif``.
    """
    path = Path(path)
    if "udm" in path.stem.lower():
        return None
    for cand in _sibling_candidates(path, "udm2", (".tif", ".tiff", ".TIF")):
        if cand.is_file():
            return cand
    return None


def _udm2_usable(udm: Path, *, shape: tuple[int, int], transform: Affine, crs: CRS) -> np.ndarray:
    """Boolean grid (``shape`` on ``transform``/``crs``): True where the UDM2 does not veto the pixel."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(udm)
        with src:
            if src.count < _UDM2_MIN_BANDS:
                raise SidecarError(f"UDM2 has {src.count} bands, expected 8 (clear ... unusable)", path=udm)
            if src.crs is None:
                raise SidecarError("UDM2 has no CRS", path=udm)
            # Read at about the destination resolution (no point reading finer than the grid we fill).
            step = max(1.0, min(src.width / max(shape[1], 1), src.height / max(shape[0], 1)) / 2.0)
            out_shape = (max(1, round(src.height / step)), max(1, round(src.width / step)))
            bands = min(src.count, 8)
            flags = src.read(list(range(1, bands + 1)), out_shape=(bands, *out_shape), resampling=Resampling.nearest)
            src_transform = src.transform @ Affine.scale(src.width / out_shape[1], src.height / out_shape[0])
            src_crs = src.crs
    except RasterioError as exc:
        raise SidecarError(f"UDM2 cannot be read ({_one_line(exc)})", path=udm) from None
    usable = (flags[0] == 1) & ~np.any(flags[1:6] != 0, axis=0)
    if bands >= 8:
        usable &= flags[7] == 0
    src_u8 = usable.astype(np.uint8)  # 1 usable, 0 not
    dst = np.full(shape, 255, dtype=np.uint8)  # 255: the UDM2 does not cover this pixel
    reproject(
        src_u8,
        dst,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=None,
        dst_transform=transform,
        dst_crs=crs,
        dst_nodata=255,
        resampling=Resampling.nearest,
    )
    return dst != 0


# ---------------------------------------------------------------------------------------------------------------
# opening and checking
# ---------------------------------------------------------------------------------------------------------------

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _check_file(path: Path) -> None:
    if not path.exists():
        raise NotARasterError("no such file", path=path)
    if path.is_dir():
        raise NotARasterError("is a directory, not a raster file", path=path)
    if path.stat().st_size == 0:
        raise EmptyFileError("file is empty (0 bytes)", path=path)


@contextmanager
def _open(path: Path) -> Iterator[DatasetReader]:
    """Open a raster and check it is north-up georeferenced; convert rasterio errors and warnings."""
    _check_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotGeoreferencedWarning)
        try:
            ds = rasterio.open(path)
        except RasterioError as exc:
            with path.open("rb") as fh:
                head = fh.read(4)
            if head in _TIFF_MAGIC:
                raise TruncatedRasterError(
                    f"TIFF file cannot be opened, truncated or corrupt ({_one_line(exc)})", path=path
                ) from None
            raise NotARasterError("not a raster GDAL can read", path=path) from None
    not_georef = any(issubclass(w.category, NotGeoreferencedWarning) for w in caught)
    for w in caught:
        if not issubclass(w.category, NotGeoreferencedWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    with ds:
        if ds.transform.is_identity and (ds.gcps[0] or ds.rpcs):
            raise UnsupportedTransformError(
                "raster is georeferenced by GCPs/RPCs only, not a geotransform; warp it with gdalwarp first", path=path
            )
        if ds.crs is None:
            extra = " and no geotransform" if not_georef else ""
            raise MissingCRSError(f"raster has no coordinate reference system{extra}", path=path)
        if not_georef or ds.transform.is_identity:
            raise UnsupportedTransformError("raster has no geotransform", path=path)
        t = ds.transform
        if t.b != 0 or t.d != 0:
            raise UnsupportedTransformError(
                f"geotransform is rotated or sheared (b={t.b:g}, d={t.d:g}); warp it north-up first", path=path
            )
        if ds.width == 0 or ds.height == 0 or ds.count == 0:
            raise NotARasterError(f"raster has size {ds.width}x{ds.height}x{ds.count}", path=path)
        yield ds


@dataclass(frozen=True)
class _Interpretation:
    bands: _Bands
    date: _DateFound
    udm_path: Path | None


def _interpret(ds: DatasetReader, path: Path, date: dt.date | str | None) -> _Interpretation:
    bands = _band_roles(ds, path)
    found = _find_date(ds, path, date)
    udm = find_udm2(path)
    if udm is not None:
        logger.info("%s: using UDM2 %s", path, udm.name)
    return _Interpretation(bands, found, udm)


def _valid_mask(
    ds: DatasetReader | WarpedVRT, interp: _Interpretation, path: Path, out_shape: tuple[int, int]
) -> np.ndarray:
    """Valid mask at ``out_shape`` (the full grid or a decimated one).

    GDAL's dataset mask, and the alpha band's whenever the reader found one (GDAL's mask takes the nodata value
    alone when there is one, and ignores an alpha band without its colour interpretation).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NodataShadowWarning)
            valid = ds.dataset_mask(out_shape=out_shape, resampling=Resampling.nearest) > 0
        if interp.bands.alpha is not None:  # (GDAL's mask ignores an alpha band it does not recognise)
            valid &= ds.read(interp.bands.alpha, out_shape=out_shape, resampling=Resampling.nearest) > 0
    except RasterioError as exc:
        raise TruncatedRasterError(f"mask cannot be read, truncated or corrupt ({_one_line(exc)})", path=path) from None
    if interp.udm_path is not None:
        transform = ds.transform @ Affine.scale(ds.width / out_shape[1], ds.height / out_shape[0])
        valid &= _udm2_usable(interp.udm_path, shape=out_shape, transform=transform, crs=ds.crs)
    return valid


def _metric_grid(ds: DatasetReader, path: Path) -> tuple[CRS, Affine, int, int] | None:
    """The UTM grid a geographic (lon/lat) raster is warped to on reading: CRS, transform, width, height.

    The zone holds the raster's centre (converted to WGS84 lon/lat whatever the datum or angular unit); the square
    pixels have the source's mean ground size (the geometric mean of its east-west and north-south extents, the
    figure :func:`scene_info` reports). None for a projected raster.
    """
    if ds.crs is None or not ds.crs.is_geographic:
        return None
    left, bottom, right, top = ds.bounds
    try:
        centre = to_lonlat(shapely.Point(0.5 * (left + right), 0.5 * (bottom + top)), ds.crs)
        utm = CRS.from_user_input(local_utm(float(centre.x), float(centre.y)))
        res = math.sqrt(abs(ds.transform.a * ds.transform.e)) * _ground_scale(ds.crs, ds.transform, ds.width, ds.height)
        with warnings.catch_warnings():  # rasterio's resolution= path multiplies Affines with * (affine 3 warns)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            transform, width, height = calculate_default_transform(
                ds.crs, utm, ds.width, ds.height, left, bottom, right, top, resolution=res
            )
    except (RasterioError, CRSError, CPLE_BaseError, ProjError) as exc:
        raise _unwarpable(exc, path) from None
    return utm, transform, int(width), int(height)


def _unwarpable(exc: BaseException, path: Path) -> UnsupportedTransformError:
    return UnsupportedTransformError(
        f"cannot warp its geographic CRS to UTM ({_one_line(exc)}); reproject it first", path=path
    )


@contextmanager
def _metric_view(ds: DatasetReader, path: Path, alpha: int | None) -> Iterator[DatasetReader | WarpedVRT]:
    """The dataset itself, or - in a geographic CRS (degrees) - a cubic warp of it to its local UTM zone.

    Every size in berthwatch is in metres and every window and disk is square in pixels, so pixels must be
    square on the ground: a degree of longitude is cos(latitude) times a degree of latitude. Pixels outside the
    source are masked (the source's alpha band ``alpha``, its nodata value, or an added alpha band).
    """
    grid = _metric_grid(ds, path)
    if grid is None:
        yield ds
        return
    utm, transform, width, height = grid
    try:
        vrt = WarpedVRT(
            ds, crs=utm, transform=transform, width=width, height=height, resampling=Resampling.cubic,
            add_alpha=ds.nodata is None and alpha is None, src_alpha=alpha or 0,
        )  # fmt: skip
    except (RasterioError, CRSError, CPLE_BaseError) as exc:
        raise _unwarpable(exc, path) from None
    logger.info("%s: geographic CRS, warped to %s (cubic) for square metric pixels", path.name, utm.to_string())
    with vrt:
        yield vrt


def _to_path(path: str | Path) -> Path:
    return Path(path).expanduser()


# ---------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------


def read_scene(path: str | Path, *, date: dt.date | str | None = None) -> Scene:
    """Read a dated raster into a :class:`~berthwatch.models.Scene`.

    Parameters
    ----------
    path
        Any raster GDAL opens (GeoTIFF, COG, JP2, VRT ...), north-up with a CRS.
    date
        Acquisition date (``datetime.date``/``datetime`` or ISO ``YYYY-MM-DD`` text); overrides every date
        found in the file. Needed when the file, its name and its sidecars carry none.

    Returns
    -------
    Scene
        Data in native dtype ``(bands, rows, cols)`` without an alpha band, band roles, valid mask, date and
        where it came from (``date_source``), layout, UDM2 path when one was used.

    Raises
    ------
    NotARasterError, EmptyFileError, TruncatedRasterError
        Missing, empty, unreadable or cut-short file (or a directory).
    MissingCRSError, UnsupportedTransformError
        No CRS; no geotransform, or a rotated/sheared one.
    UnsupportedBandsError
        Band roles cannot be told (e.g. 2 bands without descriptions).
    MissingDateError
        No date anywhere and no ``date=``.
    SidecarError
        A UDM2 or metadata sidecar that is needed is malformed or unsafe.
    NoValidDataError
        Every pixel is masked.
    """
    p = _to_path(path)
    with _open(p) as ds:
        interp = _interpret(ds, p, date)
        with _metric_view(ds, p, interp.bands.alpha) as src:
            data = _read(src, interp, p)
            valid = _valid_mask(src, interp, p, (src.height, src.width))
            transform, crs = src.transform, src.crs
        collar = _black_collar(data, valid)
        if collar.any():
            logger.info("%s: black collar (0 in every band) masked: %.1f%% of the pixels", p.name, 100 * collar.mean())
            valid &= ~collar
        if not valid.any():
            raise NoValidDataError(_no_valid_message(ds, interp, collar=bool(collar.any())), path=p)
    logger.info(
        "%s: %s %s %dx%d, date %s (%s), %.1f%% valid",
        p.name,
        interp.bands.layout,
        ",".join(interp.bands.roles),
        data.shape[2],
        data.shape[1],
        interp.date.date,
        interp.date.source,
        100.0 * valid.mean(),
    )
    return Scene(
        data=data,
        transform=transform,
        crs=crs,
        date=interp.date.date,
        bands=interp.bands.roles,
        valid=valid,
        path=p,
        date_source=interp.date.source,
        acquired=interp.date.acquired,
        layout=interp.bands.layout,
        udm_path=interp.udm_path,
    )


def _read(ds: DatasetReader | WarpedVRT, interp: _Interpretation, path: Path, **kw: Any) -> np.ndarray:
    """The data bands (``kw``: rasterio ``read`` options such as ``window`` or ``out_shape``)."""
    try:
        return ds.read(list(interp.bands.indexes), **kw)
    except RasterioError as exc:
        raise TruncatedRasterError(
            f"pixel data cannot be read, truncated or corrupt ({_one_line(exc)})", path=path
        ) from None


def _black_edge(ds: DatasetReader, interp: _Interpretation, path: Path) -> bool:
    """Whether a pixel of the image's outermost rows and columns is 0 in every band (a collar may exist)."""
    h, w = ds.height, ds.width
    edges = (Window(0, 0, w, 1), Window(0, h - 1, w, 1), Window(0, 0, 1, h), Window(w - 1, 0, 1, h))
    return any(bool((~np.any(_read(ds, interp, path, window=e) != 0, axis=0)).any()) for e in edges)


def _black_collar(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Valid pixels holding 0 in every band that are connected to the image edge: fill around the image.

    Exports and mosaics often surround the image with black and set no nodata value (GDAL's ``nearblack``
    exists for this). No sensor records an exact 0 in every band over open water or shadow (path radiance,
    sensor offset), while a collar is 0 exactly; taken as data it reads as a vast calm water body and skews
    the water statistics of the whole scene.
    """
    zero = valid & ~np.any(data != 0, axis=0)
    if not zero.any():
        return zero
    lab, _n = ndi.label(zero)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    collar = np.isin(lab, edge[edge > 0])
    # and the pixels touching it: a resampled (or warped) image blends the black into them
    return ndi.binary_dilation(collar) & valid if collar.any() else collar


def _no_valid_message(ds: DatasetReader, interp: _Interpretation, *, collar: bool = False) -> str:
    sources = []
    if ds.nodata is not None:
        sources.append(f"nodata={ds.nodata:g}")
    if interp.bands.alpha is not None:
        sources.append(f"alpha band {interp.bands.alpha}")
    if interp.udm_path is not None:
        sources.append(f"UDM2 {interp.udm_path.name}")
    if collar:
        sources.append("0 in every band")
    if not sources:
        sources.append("internal mask")
    return "no valid pixels (masked by " + ", ".join(sources) + ")"


@dataclass(frozen=True)
class SceneInfo:
    """What the reader understood of a raster, without its pixels (see :func:`scene_info`)."""

    path: Path
    date: dt.date
    date_source: str
    acquired: dt.datetime | None
    crs: CRS
    crs_name: str
    pixel_size: tuple[float, float]
    pixel_size_m: float
    width: int
    height: int
    count: int
    dtype: str
    bands: tuple[BandRole, ...]
    layout: str
    valid_fraction: float
    udm_path: Path | None
    footprint: Polygon
    bounds: tuple[float, float, float, float]
    descriptions: tuple[str | None, ...] = ()
    alpha_band: int | None = None
    nodata: float | None = None
    warped_to: CRS | None = None  # a geographic raster is read warped to this UTM zone

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (footprint as a GeoJSON geometry in lon/lat)."""
        epsg = self.crs.to_epsg()
        return {
            "path": str(self.path),
            "date": self.date.isoformat(),
            "date_source": self.date_source,
            "acquired": self.acquired.isoformat() if self.acquired else None,
            "crs": f"EPSG:{epsg}" if epsg else self.crs.to_wkt(),
            "crs_name": self.crs_name,
            "pixel_size": [self.pixel_size[0], self.pixel_size[1]],
            "pixel_size_m": round(self.pixel_size_m, 4),
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "dtype": self.dtype,
            "bands": list(self.bands),
            "descriptions": list(self.descriptions),
            "alpha_band": self.alpha_band,
            "nodata": self.nodata,
            "layout": self.layout,
            "valid_fraction": round(self.valid_fraction, 6),
            "udm_path": str(self.udm_path) if self.udm_path else None,
            "bounds": list(self.bounds),
            "footprint": mapping(shapely.transform(self.footprint, lambda xy: np.round(xy, 7))),
            "warped_to": self.warped_to.to_string() if self.warped_to else None,
        }


def scene_info(path: str | Path, *, date: dt.date | str | None = None) -> SceneInfo:
    """Describe a raster as :func:`read_scene` would read it, without reading its pixels.

    The valid fraction comes from the masks (nodata, alpha, internal mask, UDM2) read at a decimated resolution
    (longest side :data:`INFO_MASK_SIZE`), so this is fast enough for hundreds of files. The pixel data is read
    only along the image's edges, and decimated when an edge holds black pixels (a black collar is masked as in
    :func:`read_scene`), so a file truncated in its pixel blocks may pass here and fail in :func:`read_scene`.

    Parameters
    ----------
    path, date
        As for :func:`read_scene`.

    Returns
    -------
    SceneInfo

    Raises
    ------
    BerthwatchError
        The same subclasses as :func:`read_scene`.
    """
    p = _to_path(path)
    with _open(p) as ds:
        interp = _interpret(ds, p, date)
        grid = _metric_grid(ds, p)
        scale = max(1.0, max(ds.width, ds.height) / INFO_MASK_SIZE)
        out_shape = (max(1, math.ceil(ds.height / scale)), max(1, math.ceil(ds.width / scale)))
        valid = _valid_mask(ds, interp, p, out_shape)
        if not valid.any() and out_shape != (ds.height, ds.width):
            valid = _valid_mask(ds, interp, p, (ds.height, ds.width))  # a few valid pixels may hide between samples
        collar = False
        # pixels are read (decimated) only when a collar may exist (with nodata 0, GDAL already masks all-0 pixels)
        if valid.any() and ds.nodata != 0 and _black_edge(ds, interp, p):
            shape = (len(interp.bands.indexes), *valid.shape)
            data = _read(ds, interp, p, out_shape=shape, resampling=Resampling.nearest)
            mask = _black_collar(data, valid)
            collar = bool(mask.any())
            valid &= ~mask
        if not valid.any():
            raise NoValidDataError(_no_valid_message(ds, interp, collar=collar), path=p)
        bounds = tuple(float(v) for v in ds.bounds)
        footprint = box(*bounds)
        edge = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 16  # densify so a reprojected edge can curve
        lonlat = to_lonlat(shapely.segmentize(footprint, edge), ds.crs)
        res = (abs(ds.transform.a), abs(ds.transform.e))
        info = SceneInfo(
            path=p,
            date=interp.date.date,
            date_source=interp.date.source,
            acquired=interp.date.acquired,
            crs=ds.crs,
            crs_name=_crs_name(ds.crs),
            pixel_size=(float(res[0]), float(res[1])),
            pixel_size_m=float(math.sqrt(res[0] * res[1]) * _ground_scale(ds.crs, ds.transform, ds.width, ds.height)),
            width=ds.width,
            height=ds.height,
            count=len(interp.bands.indexes),
            dtype=str(ds.dtypes[interp.bands.indexes[0] - 1]),
            bands=interp.bands.roles,
            layout=interp.bands.layout,
            valid_fraction=float(valid.mean()),
            udm_path=interp.udm_path,
            footprint=Polygon(lonlat.exterior.coords),
            bounds=(bounds[0], bounds[1], bounds[2], bounds[3]),
            descriptions=tuple(ds.descriptions[i - 1] for i in interp.bands.indexes),
            alpha_band=interp.bands.alpha,
            nodata=None if ds.nodata is None else float(ds.nodata),
            warped_to=grid[0] if grid else None,
        )
    return info


def _crs_name(crs: CRS) -> str:
    from pyproj import CRS as PCRS

    try:
        return str(PCRS.from_user_input(crs.to_wkt()).name)
    except Exception:  # pyproj cannot name every WKT; the CRS itself is still usable
        return crs.to_string()
