"""Specifications of synthetic ports, objects and acquisition dates (plain dataclasses, no behaviour)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from shapely.geometry import Polygon

HULLS = ("bright", "dark", "grey")
PORT_LAYOUTS = ("auto", "harbour", "quay", "open_sea")
BAND_LAYOUTS = ("visual", "analytic")


@dataclass
class VesselSpec:
    """One vessel placed explicitly.

    Positions are ground metres relative to the scene centre (``x`` east, ``y`` north along the port's UTM grid
    axes). ``heading_deg`` is the azimuth the bow points to (0-360, clockwise from grid north). ``width_m`` None
    takes a beam typical of the ``subtype``. ``present`` says whether the vessel is there at (before, after);
    a vessel present at both dates is drawn at the after date moved by ``shift_m`` and turned by ``rotate_deg``.
    """

    x: float
    y: float
    length_m: float
    width_m: float | None = None
    heading_deg: float = 0.0
    hull: str = "bright"  # "bright" | "dark" | "grey"
    subtype: str = "cargo"  # cargo, container, tanker, ferry, tug, patrol, fishing, yacht, barge
    moored: bool = False
    rafted: bool = False
    underway: bool = False
    present: tuple[bool, bool] = (True, True)
    shift_m: tuple[float, float] = (0.0, 0.0)
    rotate_deg: float = 0.0
    id: str = ""
    name: str = ""


@dataclass
class EquipmentSpec:
    """One piece of quay equipment: a vehicle or a shipping container (footprint ``length_m`` x ``width_m``).

    ``model`` refines vehicles ("truck", "tank", "apc", "car"; "auto" picks from the size); ``stack`` is the
    number of containers stacked (it only changes the height, hence the shadow). ``colour`` is a name from the
    palette ("olive", "sand", "grey", "white", "red", "blue", "green", "orange", "brown", "black") or "auto".
    """

    x: float
    y: float
    length_m: float
    width_m: float
    heading_deg: float = 0.0
    subtype: str = "vehicle"  # "vehicle" | "container"
    colour: str = "auto"
    present: tuple[bool, bool] = (True, True)
    id: str = ""
    model: str = "auto"
    stack: int = 1


@dataclass
class DateSpec:
    """How one date is acquired: time, radiometry, sun, cloud, grid (CRS, pixel size, misregistration), layout.

    ``gain``, ``offset`` and ``gamma`` act on reflectance (``gain * r**gamma + offset``); ``haze`` (0-1) adds a
    bluish path radiance and lowers contrast. ``cloud`` is ``(x_m, y_m, radius_m)`` relative to the scene centre.
    ``shift_px`` is the misregistration of this date's grid in its own pixels ``(rows, cols)``: an object at the
    georeferenced position of pixel ``p`` is imaged at pixel ``p + shift_px``. ``crs`` None is the port's UTM
    zone, ``pixel_size_m`` None the port's pixel size. ``noise`` scales the sensor noise (0 = none).
    """

    date: dt.date
    time: dt.time = dt.time(8, 15)
    gain: float = 1.0
    offset: float = 0.0
    gamma: float = 1.0
    haze: float = 0.0
    sun_azimuth_deg: float = 150.0
    sun_elevation_deg: float = 35.0
    cloud: tuple[float, float, float] | None = None
    shift_px: tuple[float, float] = (0.0, 0.0)
    crs: str | None = None
    pixel_size_m: float | None = None
    layout: str = "analytic"  # "visual" (RGB uint8) | "analytic" (BGRN uint16)
    nodata_border: bool = False
    noise: float = 1.0
    psf_sigma_px: float = 0.55
    sea_state: float | None = None  # None: drawn from the seed; 0 glassy .. 1 rough

    @property
    def acquired(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.time)


@dataclass
class PortSpec:
    """A synthetic port. ``layout``: "auto" (a harbour with piers and breakwater), "harbour" (same), "quay"
    (one straight quay along a side), "open_sea" (no land).

    ``vessels``/``equipment`` None draw random objects from the seed (equipment only when ``pixel_size_m`` <=
    1.2 m); a list (possibly empty) places exactly those. ``land_side`` (azimuth of the land seen from the
    centre, degrees) None draws it from the seed. ``oversample`` is the world grid's fineness relative to the
    pixel size (None: 2 for scenes up to ~9 Mpx, else 1).
    """

    seed: int = 0
    width_m: float = 800.0
    height_m: float = 600.0
    pixel_size_m: float = 0.8
    centre_lonlat: tuple[float, float] = (35.87, 34.89)
    vessels: list[VesselSpec] | None = None
    equipment: list[EquipmentSpec] | None = None
    distractors: bool = True
    glint: float = 0.5
    whitecaps: float = 0.5
    layout: str = "auto"
    n_random_vessels: int | None = None
    n_random_equipment: int | None = None
    land_side: float | None = None
    oversample: int | None = None


@dataclass(eq=False)
class TruthObject:
    """One object of the ground truth. ``polygon`` is the oriented footprint in the port's UTM CRS: at the date
    of a single-date truth, or for pair truth the before footprint (after footprint for arrivals);
    ``polygon_after`` is the after footprint of a stayed object. ``occluded`` is the flag that applies to the
    truth it belongs to (this date, or either date for pair truth)."""

    id: str
    kind: str
    subtype: str
    polygon: Polygon
    length_m: float
    width_m: float
    heading_deg: float
    status: str = "stayed"
    occluded_before: bool = False
    occluded_after: bool = False
    occluded: bool = False
    moored: bool = False
    rafted: bool = False
    underway: bool = False
    hull: str = ""
    polygon_after: Polygon | None = None
    name: str = ""
    extra: dict[str, object] = field(default_factory=dict)
