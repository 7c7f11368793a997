"""Typed data passed between pipeline stages.

Modules import these types, not each other (as rio-tiler keeps its types in one ``models.py``). Every container
checks itself in ``__post_init__`` and says what it got and what it expected.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS
from shapely.geometry import Polygon

if TYPE_CHECKING:
    from rasterio.windows import Window

BandRole = Literal["blue", "green", "red", "nir", "pan", "coastal", "rededge", "swir", "other"]
Kind = Literal["vessel", "equipment"]
Status = Literal["departed", "arrived", "stayed", "unknown"]

KINDS: tuple[Kind, ...] = ("vessel", "equipment")
STATUSES: tuple[Status, ...] = ("departed", "arrived", "stayed", "unknown")

_GEOD = Geod(ellps="WGS84")


def band_mean(data: np.ndarray) -> np.ndarray:
    """Mean over the bands of a ``(bands, rows, cols)`` stack as float32, one band at a time (no float copy)."""
    acc = np.zeros(data.shape[1:], dtype=np.float32)
    for band in data:
        acc += band
    acc /= np.float32(data.shape[0])
    return acc


@dataclass(frozen=True, eq=False)
class Scene:
    """One dated raster of a port.

    Attributes
    ----------
    data
        Pixel values, shape ``(bands, rows, cols)`` as rasterio reads them, native dtype (not rescaled).
    transform, crs
        Georeferencing. The transform is north-up (no rotation or shear).
    date
        Acquisition date; ``date_source`` says where it came from (``"argument"``, ``"TIFFTAG_DATETIME"``,
        ``"metadata:ACQUISITIONDATETIME"``, ``"filename:planetscope"``, ``"sidecar:json"``, ...).
    bands
        Role of each band, same length as ``data``.
    valid
        Boolean ``(rows, cols)``: True where every band holds usable data (nodata, alpha, GDAL mask, UDM2 applied).
    """

    data: np.ndarray
    transform: Affine
    crs: CRS
    date: dt.date
    bands: tuple[BandRole, ...]
    valid: np.ndarray
    path: Path | None = None
    date_source: str = "argument"
    acquired: dt.datetime | None = None
    layout: str = "unknown"
    udm_path: Path | None = None
    sensor: str = ""

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"Scene.data must be (bands, rows, cols), got shape {self.data.shape}")
        if len(self.bands) != self.data.shape[0]:
            raise ValueError(f"Scene.bands has {len(self.bands)} roles for {self.data.shape[0]} bands")
        if self.valid.shape != self.data.shape[1:]:
            raise ValueError(f"Scene.valid shape {self.valid.shape} != raster shape {self.data.shape[1:]}")
        if self.valid.dtype != np.bool_:
            raise ValueError(f"Scene.valid must be bool, got {self.valid.dtype}")
        if self.transform.b != 0 or self.transform.d != 0:
            raise ValueError(f"Scene.transform must be north-up, got {tuple(self.transform)[:6]}")
        if self.crs is None:
            raise ValueError("Scene.crs is required")

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size in CRS units (x, y), positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform.c, self.transform.f
        right = left + self.transform.a * self.width
        bottom = top + self.transform.e * self.height
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))

    @cached_property
    def ground_scale(self) -> float:
        """Metres on the ground per CRS unit, measured geodesically at the scene centre.

        1.0 for UTM-like CRSs (to within the projection's scale factor), ~cos(lat) for Web Mercator and about
        111 km for geographic CRSs. Every physical size is converted through this, never assumed.
        """
        return _ground_scale(self.crs, self.transform, self.width, self.height)

    @property
    def pixel_size_m(self) -> float:
        """Mean ground pixel size in metres."""
        return float(math.sqrt(self.res[0] * self.res[1]) * self.ground_scale)

    # -- bands --------------------------------------------------------------------------------------
    def has(self, role: BandRole) -> bool:
        return role in self.bands

    def band(self, role: BandRole) -> np.ndarray:
        """The band with that role as float32. Raises KeyError if absent."""
        if role not in self.bands:
            raise KeyError(f"scene {self.path} has no {role!r} band (bands: {self.bands})")
        return self.data[self.bands.index(role)].astype(np.float32)

    def gray(self) -> np.ndarray:
        """Panchromatic-like brightness as float32: mean of the visible bands (or the pan band)."""
        vis = [i for i, r in enumerate(self.bands) if r in ("blue", "green", "red", "pan")]
        if not vis:
            vis = list(range(len(self.bands)))
        out = np.zeros(self.shape, dtype=np.float32)
        for i in vis:
            out += self.data[i].astype(np.float32)
        out /= len(vis)
        return out

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else f"scene-{self.date.isoformat()}"

    def with_(self, **changes: object) -> Scene:
        """A copy with some fields replaced (validated again)."""
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]

    def window(self, window: Window) -> Scene:
        """The part of the scene inside a pixel window, as a view (no copy) with its own transform.

        ``window`` is a :class:`rasterio.windows.Window` with integer offsets and sizes inside the scene. The
        sub-scene keeps the whole scene's ground scale (so every metre-to-pixel conversion is the same in every
        window), date, band roles and source; its ``valid`` mask is the matching view of the scene's.
        """
        if (
            window.col_off < 0
            or window.row_off < 0
            or window.col_off + window.width > self.width
            or window.row_off + window.height > self.height
            or window.width < 1
            or window.height < 1
        ):
            raise ValueError(f"window {window} is not inside the scene ({self.height} rows x {self.width} cols)")
        rows, cols = window.toslices()
        sub = self.with_(
            data=self.data[:, rows, cols],
            valid=self.valid[rows, cols],
            # as rasterio.windows.transform, without affine's deprecated ``*`` (a warning under pytest)
            transform=self.transform @ Affine.translation(window.col_off, window.row_off),
        )
        sub.__dict__["ground_scale"] = self.ground_scale  # cached_property: one scale for the whole scene
        return sub


def _ground_scale(crs: CRS, transform: Affine, width: int, height: int) -> float:
    """Metres per CRS unit at the grid centre: geometric mean of the east-west and north-south scales."""
    from pyproj import Transformer

    cx, cy = transform @ (width / 2.0, height / 2.0)
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(cx, cy)
    scales = []
    for ddx, ddy in ((abs(transform.a), 0.0), (0.0, abs(transform.e))):
        step_x, step_y = ddx * max(1, min(width, 100)), ddy * max(1, min(height, 100))
        lon1, lat1 = tr.transform(cx + step_x, cy + step_y)
        _, _, dist = _GEOD.inv(lon0, lat0, lon1, lat1)
        if math.isfinite(dist) and dist > 0:
            scales.append(dist / (step_x + step_y))
    if not scales:
        return 1.0
    return float(math.sqrt(math.prod(scales))) if len(scales) == 2 else float(scales[0])


@dataclass(eq=False)
class Detection:
    """One object found on one date. ``geometry`` is its oriented footprint in the scene CRS."""

    geometry: Polygon
    kind: Kind
    confidence: float
    length_m: float
    width_m: float
    heading_deg: float
    area_m2: float
    id: str = ""
    features: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Detection.kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"Detection.confidence must be in [0, 1], got {self.confidence}")
        if not 0.0 <= self.heading_deg < 180.0 + 1e-9:
            raise ValueError(f"Detection.heading_deg must be in [0, 180), got {self.heading_deg}")

    @property
    def centroid(self) -> tuple[float, float]:
        c = self.geometry.centroid
        return (float(c.x), float(c.y))


@dataclass(frozen=True)
class Alignment:
    """How AFTER was brought onto BEFORE's grid. Shifts are in BEFORE pixels (rows, cols)."""

    shift_px: tuple[float, float]
    residual_px: float
    quality: float
    method: str
    applied: bool
    flagged: bool = False
    message: str = ""
    gain: tuple[float, ...] = ()
    offset: tuple[float, ...] = ()
    radiometric_method: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "shift_px": {"row": round(self.shift_px[0], 3), "col": round(self.shift_px[1], 3)},
            "residual_px": round(self.residual_px, 3),
            "quality": round(self.quality, 3),
            "method": self.method,
            "applied": self.applied,
            "flagged": self.flagged,
            "message": self.message,
            "radiometric": {
                "method": self.radiometric_method,
                "gain": [round(g, 5) for g in self.gain],
                "offset": [round(o, 5) for o in self.offset],
            },
        }


@dataclass(frozen=True, eq=False)
class AlignedPair:
    """BEFORE and AFTER on one common grid (BEFORE's, cropped to the overlap).

    ``after`` is co-registered and radiometrically normalised to ``before``; both share transform and CRS and
    hold only the bands the two dates have in common (what the dates are compared on). ``valid`` is the joint
    valid mask. ``before_source``/``after_source`` are the scenes as read. ``before_own``/``after_own``: a date
    on the same grid with all of its own bands, as read (AFTER co-registered, not normalised), when it has
    bands the other date lacks (a NIR band beside a visual product); None otherwise. See
    :attr:`detection_scenes`.
    """

    before: Scene
    after: Scene
    alignment: Alignment
    before_source: Scene
    after_source: Scene
    before_own: Scene | None = None
    after_own: Scene | None = None

    def __post_init__(self) -> None:
        if self.before.shape != self.after.shape:
            raise ValueError(f"AlignedPair grids differ: {self.before.shape} vs {self.after.shape}")
        if self.before.transform != self.after.transform:
            raise ValueError("AlignedPair scenes must share one transform")
        for own in (self.before_own, self.after_own):
            if own is not None and (own.shape != self.before.shape or own.transform != self.before.transform):
                raise ValueError("AlignedPair: a date's own-band scene must lie on the common grid")

    @property
    def detection_scenes(self) -> tuple[Scene, Scene]:
        """(BEFORE, AFTER) on the common grid with every band each date has: what single-date detection and
        the water mask look at. A date's NIR band is evidence for its water and its hulls (foam is dark in
        NIR, a hull is not) even when the other date has none; only the comparison needs common bands."""
        before = self.before if self.before_own is None else self.before_own
        after = self.after if self.after_own is None else self.after_own
        return before, after

    @property
    def valid(self) -> np.ndarray:
        return self.before.valid & self.after.valid


@dataclass(eq=False)
class ChangedObject:
    """One physical object across two dates."""

    id: str
    kind: Kind
    status: Status
    geometry: Polygon
    confidence: float
    length_m: float
    width_m: float
    heading_deg: float
    area_m2: float
    before: Detection | None = None
    after: Detection | None = None
    evidence: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"ChangedObject.status must be one of {STATUSES}, got {self.status!r}")
        if self.kind not in KINDS:
            raise ValueError(f"ChangedObject.kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(eq=False)
class ChangeSet:
    """Result of comparing two dates: objects with status, plus per-pixel change layers on the common grid.

    ``change_class`` uint8 (0 no change, 1 departed object, 2 arrived object, 3 other surface change,
    255 no valid data); ``magnitude`` float32.
    """

    objects: list[ChangedObject]
    change_class: np.ndarray
    magnitude: np.ndarray
    water: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {k: dict.fromkeys(STATUSES, 0) for k in KINDS}
        for o in self.objects:
            out[o.kind][o.status] += 1
        return out


@dataclass(eq=False)
class DetectionResult:
    """Single-date inventory: detections on one scene plus the masks and notes that explain them.

    ``equipment_searched`` is False when the pixels are too coarse for vehicles/containers; ``notes`` carries
    such human-readable remarks into the summary.
    """

    scene: Scene
    detections: list[Detection]
    water: np.ndarray
    equipment_searched: bool
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.water.shape != self.scene.shape:
            raise ValueError(f"DetectionResult.water shape {self.water.shape} != scene {self.scene.shape}")
