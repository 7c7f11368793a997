"""Tiny GeoTIFF writers for reader tests (rasterio only; every file a few kilobytes)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning

# A 3 m UTM 36N grid near Tartus (35.88 E, 34.89 N).
UTM = "EPSG:32636"
ORIGIN = (763_700.0, 3_865_200.0)
RES = 3.0
SHAPE = (24, 32)  # rows, cols

_UNSET: Any = object()


def grid(res: float = RES, origin: tuple[float, float] = ORIGIN) -> Affine:
    return Affine(res, 0.0, origin[0], 0.0, -res, origin[1])


def bands(count: int, dtype: str = "uint16", shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Distinct known values per band: band i (0-based) holds 100*(i+1) + a column ramp."""
    ramp = np.arange(shape[1], dtype=np.int64)[None, :].repeat(shape[0], axis=0) % 50
    data = np.stack([100 * (i + 1) + ramp for i in range(count)])
    if np.dtype(dtype) == np.uint8:
        data = (data % 200) + 20
    return data.astype(dtype)


def write(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM,
    transform: Affine | None = _UNSET,
    nodata: float | None = None,
    descriptions: tuple[str, ...] | None = None,
    colorinterp: tuple[ColorInterp, ...] | None = None,
    tags: dict[str, str] | None = None,
    tag_domains: dict[str, dict[str, str]] | None = None,
    internal_mask: np.ndarray | None = None,
    gcps: Any = None,
    **profile: Any,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a GeoTIFF with the given georeferencing and metadata."""
    if transform is _UNSET:
        transform = grid()
    kw: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        **profile,
    }
    if crs is not None:
        kw["crs"] = crs
    if transform is not None:
        kw["transform"] = transform
    if nodata is not None:
        kw["nodata"] = nodata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # writing deliberately non-georeferenced files
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **kw) as ds:
            ds.write(data)
            if descriptions is not None:
                for i, d in enumerate(descriptions, start=1):
                    ds.set_band_description(i, d)
            if colorinterp is not None:
                ds.colorinterp = colorinterp
            if tags:
                ds.update_tags(**tags)
            for ns, values in (tag_domains or {}).items():
                ds.update_tags(ns=ns, **values)
            if internal_mask is not None:
                ds.write_mask(np.where(internal_mask, 255, 0).astype(np.uint8))
            if gcps is not None:
                ds.gcps = gcps
    return path


def write_udm2(
    path: Path,
    *,
    cloud: np.ndarray | None = None,
    flag_band: int = 6,
    shape: tuple[int, int] = SHAPE,
    transform: Affine | None = None,
    crs: str = UTM,
) -> Path:
    """A Planet UDM2 (8 bands uint8): clear everywhere except where ``cloud`` is True, flagged in ``flag_band``."""
    udm = np.zeros((8, *shape), dtype=np.uint8)
    udm[0] = 1
    udm[6] = 90  # confidence
    if cloud is not None:
        udm[0][cloud] = 0
        udm[flag_band - 1][cloud] = 1
    return write(path, udm, crs=crs, transform=transform or grid())
