"""The synthetic world: port geometry (land, quays, breakwaters, buildings, cranes) and objects, as shapely
geometries in a local metric frame (ground metres, x east / y north along the port's UTM grid, origin at the
scene centre). Deterministic by seed; no pixels here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.crs import CRS
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from berthwatch.models import _ground_scale
from berthwatch.synth._specs import HULLS, PORT_LAYOUTS, EquipmentSpec, PortSpec, VesselSpec

# length / beam ratio, freeboard height (m), bow length fraction, transom width fraction
VESSEL_TYPES: dict[str, tuple[float, float, float, float]] = {
    "cargo": (6.4, 7.0, 0.16, 0.86),
    "container": (7.2, 10.0, 0.18, 0.84),
    "tanker": (6.0, 6.0, 0.14, 0.88),
    "ferry": (5.6, 9.0, 0.20, 0.80),
    "tug": (3.0, 2.5, 0.34, 0.70),
    "patrol": (6.5, 3.5, 0.30, 0.78),
    "fishing": (3.8, 2.0, 0.34, 0.72),
    "yacht": (3.6, 1.5, 0.40, 0.70),
    "barge": (4.2, 2.0, 0.05, 1.00),
}
SMALL_BOAT_MAX_M = 8.0  # shorter boats are distractors, not truth


@dataclass
class Berth:
    """A straight quay edge where a vessel can moor.

    ``x, y``: middle of the edge (local metres); ``heading_deg``: azimuth along the edge; ``normal_deg``:
    azimuth pointing from the quay to the water; ``length_m``: usable edge length.
    """

    x: float
    y: float
    heading_deg: float
    normal_deg: float
    length_m: float
    quay: str = ""

    def point(self, along_m: float = 0.0, off_m: float = 0.0) -> tuple[float, float]:
        """Position ``along_m`` along the edge from its middle and ``off_m`` out over the water."""
        h, n = math.radians(self.heading_deg), math.radians(self.normal_deg)
        return (
            self.x + along_m * math.sin(h) + off_m * math.sin(n),
            self.y + along_m * math.cos(h) + off_m * math.cos(n),
        )

    def place(
        self,
        length_m: float,
        *,
        width_m: float | None = None,
        along_m: float = 0.0,
        gap_m: float = 0.6,
        reverse: bool = False,
        subtype: str = "cargo",
        **kw: Any,
    ) -> VesselSpec:
        """A vessel moored alongside this edge: its side lies ``gap_m`` (fenders) off the quay edge."""
        width = width_m if width_m is not None else default_beam(length_m, subtype)
        x, y = self.point(along_m, gap_m + width / 2.0)
        heading = (self.heading_deg + (180.0 if reverse else 0.0)) % 360.0
        return VesselSpec(
            x=x, y=y, length_m=length_m, width_m=width, heading_deg=heading, subtype=subtype, moored=True, **kw
        )

    def rafted_pair(
        self,
        length_m: tuple[float, float],
        *,
        width_m: tuple[float | None, float | None] = (None, None),
        along_m: float = 0.0,
        subtype: tuple[str, str] = ("cargo", "cargo"),
        **kw: Any,
    ) -> tuple[VesselSpec, VesselSpec]:
        """Two vessels rafted side by side: the inner one alongside the quay, the outer one touching it."""
        inner = self.place(length_m[0], width_m=width_m[0], along_m=along_m, subtype=subtype[0], rafted=True, **kw)
        outer = alongside(inner, length_m[1], width_m=width_m[1], normal_deg=self.normal_deg, subtype=subtype[1])
        outer.moored = True
        outer.present = inner.present
        return inner, outer


def alongside(
    vessel: VesselSpec,
    length_m: float,
    *,
    width_m: float | None = None,
    normal_deg: float | None = None,
    side: int = 1,
    along_m: float = 0.0,
    subtype: str = "cargo",
    hull: str = "bright",
) -> VesselSpec:
    """A vessel rafted against ``vessel``: parallel, hulls touching along the parallel midbody.

    ``normal_deg`` is the azimuth of the side to raft on (e.g. a berth's normal, away from the quay);
    without it ``side`` +1 is starboard, -1 port.
    """
    width = width_m if width_m is not None else default_beam(length_m, subtype)
    w0 = vessel.width_m if vessel.width_m is not None else default_beam(vessel.length_m, vessel.subtype)
    if normal_deg is None:
        normal_deg = vessel.heading_deg + 90.0 * side
    n = math.radians(normal_deg)
    h = math.radians(vessel.heading_deg)
    off = (w0 + width) / 2.0
    return VesselSpec(
        x=vessel.x + off * math.sin(n) + along_m * math.sin(h),
        y=vessel.y + off * math.cos(n) + along_m * math.cos(h),
        length_m=length_m,
        width_m=width,
        heading_deg=vessel.heading_deg,
        subtype=subtype,
        hull=hull,
        rafted=True,
        moored=vessel.moored,
        present=vessel.present,
    )


def default_beam(length_m: float, subtype: str) -> float:
    """Typical beam of a vessel of that length and type (length/beam ratios of real fleets)."""
    ratio = VESSEL_TYPES.get(subtype, VESSEL_TYPES["cargo"])[0]
    return float(max(1.5, length_m / ratio))


@dataclass(eq=False)
class Building:
    polygon: Polygon
    height_m: float
    roof: str
    gable: bool = False


@dataclass(eq=False)
class Crane:
    legs: list[Polygon]
    frame: BaseGeometry
    boom: Polygon
    height_m: float
    colour: str


@dataclass(eq=False)
class Distractor:
    kind: str  # "boat" | "buoy"
    polygon: Polygon
    colour: str
    present: tuple[bool, bool]
    height_m: float
    underway: bool = False
    heading_deg: float = 0.0
    length_m: float = 0.0


@dataclass(eq=False)
class Port:
    """The world of a synthetic port (see module docstring for the frame). Built by :func:`make_port`."""

    spec: PortSpec
    crs: CRS
    centre_xy: tuple[float, float]
    ground_scale: float
    transform: Affine
    shape: tuple[int, int]
    margin_m: float
    land: BaseGeometry
    quay_area: BaseGeometry
    breakwater: BaseGeometry
    breakwater_crown: BaseGeometry
    beach: BaseGeometry
    roads: BaseGeometry
    vegetation: BaseGeometry
    harbour: BaseGeometry
    buildings: list[Building]
    trees: list[tuple[Point, float, float]]
    cranes: list[Crane]
    berths: list[Berth]
    vessels: list[VesselSpec]
    equipment: list[EquipmentSpec]
    distractors: list[Distractor]
    wind_deg: float = 240.0
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def extent(self) -> Polygon:
        w, h = self.spec.width_m / 2.0, self.spec.height_m / 2.0
        return box(-w, -h, w, h)

    @property
    def world_extent(self) -> Polygon:
        w, h = self.spec.width_m / 2.0 + self.margin_m, self.spec.height_m / 2.0 + self.margin_m
        return box(-w, -h, w, h)

    @property
    def water(self) -> BaseGeometry:
        return self.world_extent.difference(self.land)

    def to_crs(self, geom: BaseGeometry) -> BaseGeometry:
        """Local metres -> port CRS coordinates."""
        k = self.ground_scale
        return affinity.affine_transform(geom, [1 / k, 0, 0, 1 / k, self.centre_xy[0], self.centre_xy[1]])

    def to_local(self, geom: BaseGeometry) -> BaseGeometry:
        """Port CRS coordinates -> local metres."""
        k = self.ground_scale
        cx, cy = self.centre_xy
        return affinity.affine_transform(geom, [k, 0, 0, k, -cx * k, -cy * k])

    def clear_cache(self) -> None:
        """Drop the rendered static ground kept between :func:`render` calls (it is as big as one scene)."""
        self.meta.pop("_base", None)

    def vessel_at(self, v: VesselSpec, which: int) -> tuple[float, float, float]:
        """(x, y, heading) of a vessel at date ``which`` (the after position includes the drift)."""
        if which == 1:
            return v.x + v.shift_m[0], v.y + v.shift_m[1], v.heading_deg + v.rotate_deg
        return v.x, v.y, v.heading_deg


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS containing (lon, lat)."""
    infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat), contains=True)
    infos = [i for i in infos if i.code.startswith(("326", "327"))] or infos
    if not infos:
        raise ValueError(f"no UTM zone found for lon={lon}, lat={lat}")
    want = "326" if lat >= 0 else "327"
    best = [i for i in infos if i.code.startswith(want)] or infos
    return CRS.from_epsg(int(best[0].code))


# ----------------------------------------------------------------------------------------- object geometry --
def _place(geom: BaseGeometry, x: float, y: float, heading_deg: float) -> BaseGeometry:
    """Object frame (long axis along +y, bow up) -> local frame at (x, y) turned to azimuth ``heading_deg``."""
    t = math.radians(heading_deg)
    c, s = math.cos(t), math.sin(t)
    # azimuth rotation clockwise: (u, v) -> (u c + v s, -u s + v c)
    return affinity.affine_transform(geom, [c, s, -s, c, x, y])


def hull_outline(length: float, width: float, subtype: str) -> Polygon:
    """Hull footprint in the object frame: pointed bow at +y, transom stern at -y, exactly length x width."""
    _, _, bow_frac, stern_frac = VESSEL_TYPES.get(subtype, VESSEL_TYPES["cargo"])
    half, y0, y1 = width / 2.0, -length / 2.0, length / 2.0
    yb = y1 - bow_frac * length
    r = min(0.05 * length, 0.35 * width)
    right: list[tuple[float, float]] = [(half * stern_frac, y0)]
    for t in np.linspace(0.25, 1.0, 4):
        right.append((half * (stern_frac + (1 - stern_frac) * math.sin(t * math.pi / 2)), y0 + r * t))
    right.append((half, yb))
    if bow_frac < 0.08:  # barge: blunt, chamfered bow
        right.append((half * 0.8, y1))
    else:
        for t in np.linspace(0.0, 1.0, 10)[1:]:
            right.append((half * (1.0 - t**2) ** 0.62, yb + t * (y1 - yb)))
    left = [(-px, py) for px, py in reversed(right) if px > 1e-9]
    pts = right + left
    return Polygon(pts).buffer(0)


@dataclass(eq=False)
class VesselParts:
    """Geometries of one vessel at one date, in local metres."""

    hull: Polygon
    deck: BaseGeometry
    details: list[tuple[BaseGeometry, str]]  # (geometry, palette key) drawn on the deck
    houses: list[tuple[BaseGeometry, float, str]]  # (geometry, height above deck m, palette key)
    freeboard_m: float
    wake: list[tuple[BaseGeometry, float]]  # (geometry, foam strength 0-1)


def vessel_parts(v: VesselSpec, x: float, y: float, heading: float, rng: np.random.Generator) -> VesselParts:
    """Hull, deck, hatches, superstructure and wake of a vessel, placed at (x, y, heading)."""
    length = v.length_m
    width = v.width_m if v.width_m is not None else default_beam(length, v.subtype)
    sub = v.subtype if v.subtype in VESSEL_TYPES else "cargo"
    freeboard = VESSEL_TYPES[sub][1] * min(1.0, 0.4 + length / 150.0)
    hull = hull_outline(length, width, sub)
    edge = float(np.clip(0.06 * width, 0.3, 1.2)) if sub != "tug" else float(np.clip(0.12 * width, 0.4, 1.5))
    deck = hull.buffer(-edge, join_style="mitre")
    details: list[tuple[BaseGeometry, str]] = []
    houses: list[tuple[BaseGeometry, float, str]] = []
    y0 = -length / 2.0
    if sub in ("cargo", "container", "tanker"):
        h_house = float(np.clip(0.12 * length + 6, 8, 30))
        house = box(-0.45 * width, y0 + 0.05 * length, 0.45 * width, y0 + 0.15 * length)
        houses.append((house, h_house, "super"))
        funnel = box(-0.12 * width, y0 + 0.035 * length, 0.12 * width, y0 + 0.07 * length)
        houses.append((funnel, h_house + 3, "funnel"))
        fore = y1 = length / 2.0 - 0.19 * length
        aft = y0 + 0.18 * length
        if sub == "cargo":
            n = max(2, round((fore - aft) / 22.0))
            span = (fore - aft) / n
            for i in range(n):
                c = aft + (i + 0.5) * span
                details.append((box(-0.36 * width, c - 0.39 * span, 0.36 * width, c + 0.39 * span), "hatch"))
            if length > 90 and rng.random() < 0.5:  # deck cranes between hatches
                for i in range(1, n, 2):
                    c = aft + i * span
                    houses.append((box(-0.06 * width, c - 1.2, 0.06 * width, c + 1.2), 14.0, "deckcrane"))
        elif sub == "container":
            nb = max(2, int((fore - aft) / 13.5))
            span = (fore - aft) / nb
            nrow = max(2, int(0.85 * width / 2.5))
            for i in range(nb):
                c = aft + (i + 0.5) * span
                for j in range(nrow):
                    if rng.random() < 0.15:
                        continue
                    u = (j - (nrow - 1) / 2.0) * 2.5
                    details.append((box(u - 1.2, c - 6.0, u + 1.2, c + 6.0), f"box{int(rng.integers(0, 6))}"))
        else:  # tanker: pipe run and manifold
            details.append((box(-0.04 * width, aft, 0.04 * width, y1), "pipe"))
            mid = (aft + fore) / 2.0
            details.append((box(-0.4 * width, mid - 1.2, 0.4 * width, mid + 1.2), "pipe"))
    elif sub == "ferry":
        houses.append((box(-0.42 * width, -0.42 * length, 0.42 * width, 0.25 * length), 12.0, "super"))
        houses.append((box(-0.3 * width, -0.3 * length, 0.3 * width, 0.1 * length), 17.0, "super2"))
    elif sub == "tug":
        houses.append((box(-0.28 * width, -0.05 * length, 0.28 * width, 0.2 * length), 5.0, "super"))
        houses.append((box(-0.18 * width, 0.02 * length, 0.18 * width, 0.14 * length), 7.5, "super2"))
    elif sub == "patrol":
        houses.append((box(-0.3 * width, -0.12 * length, 0.3 * width, 0.18 * length), 5.0, "super"))
        houses.append((box(-0.15 * width, 0.0, 0.15 * width, 0.1 * length), 9.0, "super2"))
        details.append((Point(0, 0.3 * length).buffer(0.12 * width), "gun"))
    elif sub == "fishing":
        houses.append((box(-0.3 * width, 0.05 * length, 0.3 * width, 0.28 * length), 3.0, "super"))
        details.append((box(-0.3 * width, -0.4 * length, 0.3 * width, -0.15 * length), "net"))
    elif sub == "yacht":
        houses.append((box(-0.3 * width, -0.25 * length, 0.3 * width, 0.2 * length), 1.6, "super"))
        details.append((box(-0.22 * width, 0.05 * length, 0.22 * width, 0.12 * length), "window"))
    elif sub == "barge" and rng.random() < 0.7:
        details.append((box(-0.38 * width, -0.4 * length, 0.38 * width, 0.4 * length), "cargo_pile"))
    wake: list[tuple[BaseGeometry, float]] = []
    if v.underway:
        wl = min(3.0 * length, 500.0)
        nseg = 6
        for i in range(nseg):
            a, b = i / nseg, (i + 1) / nseg
            wa, wb = width * (0.7 + 2.0 * a), width * (0.7 + 2.0 * b)
            seg = Polygon(
                [(-wa / 2, y0 - a * wl), (wa / 2, y0 - a * wl), (wb / 2, y0 - b * wl), (-wb / 2, y0 - b * wl)]
            )
            wake.append((seg, 0.85 * (1.0 - a) ** 1.3))
        kl = min(4.0 * length, 650.0)
        ang = math.radians(19.47)
        for sgn in (-1, 1):
            for i in range(nseg):
                a, b = i / nseg, (i + 1) / nseg
                p0 = (sgn * (width / 2 + a * kl * math.tan(ang)), length * 0.3 - a * (kl + length * 0.3))
                p1 = (sgn * (width / 2 + b * kl * math.tan(ang)), length * 0.3 - b * (kl + length * 0.3))
                wake.append(
                    (
                        LineString([p0, p1]).buffer(max(1.0, 0.05 * length) * (1 + a), cap_style="flat"),
                        0.45 * (1.0 - a) ** 1.5,
                    )
                )
        bow = hull.buffer(0.12 * width + 0.5).difference(hull).intersection(box(-width, 0.15 * length, width, length))
        wake.append((bow, 0.6))
    place = _place
    return VesselParts(
        hull=place(hull, x, y, heading),
        deck=place(deck, x, y, heading),
        details=[(place(g, x, y, heading), c) for g, c in details],
        houses=[(place(g, x, y, heading), h, c) for g, h, c in houses],
        freeboard_m=freeboard,
        wake=[(place(g, x, y, heading), s) for g, s in wake],
    )


def vessel_footprint(v: VesselSpec, x: float, y: float, heading: float) -> Polygon:
    width = v.width_m if v.width_m is not None else default_beam(v.length_m, v.subtype)
    return _place(hull_outline(v.length_m, width, v.subtype), x, y, heading)


def equipment_footprint(e: EquipmentSpec) -> Polygon:
    r = box(-e.width_m / 2, -e.length_m / 2, e.width_m / 2, e.length_m / 2)
    return _place(r, e.x, e.y, e.heading_deg)


def equipment_model(e: EquipmentSpec) -> str:
    if e.subtype == "container":
        return "container"
    if e.model != "auto":
        return e.model
    if e.length_m < 5.5:
        return "car"
    if e.width_m >= 3.2:
        return "tank"
    return "truck"


def equipment_height(e: EquipmentSpec) -> float:
    return {"container": 2.6 * max(1, e.stack), "car": 1.5, "tank": 2.4, "apc": 2.6, "truck": 3.2}.get(
        equipment_model(e), 2.5
    )


def equipment_rows(
    x: float,
    y: float,
    heading_deg: float,
    *,
    n_rows: int,
    n_per_row: int,
    length_m: float,
    width_m: float,
    subtype: str = "vehicle",
    gap_along_m: float = 1.5,
    gap_across_m: float = 2.0,
    side_by_side: bool = True,
    id_prefix: str = "",
    **kw: Any,
) -> list[EquipmentSpec]:
    """A block of equipment in rows centred at (x, y); rows run along azimuth ``heading_deg``.

    With ``side_by_side`` the items stand parallel, perpendicular to the row (like parked trucks); otherwise
    nose to tail along the row (like containers in a stack row).
    """
    h = math.radians(heading_deg)
    ux, uy = math.sin(h), math.cos(h)  # along the row
    vx, vy = math.cos(h), -math.sin(h)  # across rows
    if side_by_side:
        step_a, step_c, item_heading = width_m + gap_along_m, length_m + gap_across_m, heading_deg + 90.0
    else:
        step_a, step_c, item_heading = length_m + gap_along_m, width_m + gap_across_m, heading_deg
    out: list[EquipmentSpec] = []
    for r in range(n_rows):
        for i in range(n_per_row):
            a = (i - (n_per_row - 1) / 2.0) * step_a
            c = (r - (n_rows - 1) / 2.0) * step_c
            out.append(
                EquipmentSpec(
                    x=x + a * ux + c * vx,
                    y=y + a * uy + c * vy,
                    length_m=length_m,
                    width_m=width_m,
                    heading_deg=item_heading % 360.0,
                    subtype=subtype,
                    id=f"{id_prefix}{r:02d}{i:02d}" if id_prefix else "",
                    **kw,
                )
            )
    return out


# ------------------------------------------------------------------------------------------------ layout --
def _wiggle(rng: np.random.Generator, n: int, amp: float, smooth: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    w = gaussian_filter1d(rng.standard_normal(n), smooth, mode="nearest")
    s = float(w.std()) or 1.0
    return np.asarray(w / s * amp)


def _empty() -> BaseGeometry:
    return Polygon()


@dataclass
class _Layout:
    land: BaseGeometry = field(default_factory=_empty)
    quay_area: BaseGeometry = field(default_factory=_empty)
    breakwater: BaseGeometry = field(default_factory=_empty)
    crown: BaseGeometry = field(default_factory=_empty)
    beach: BaseGeometry = field(default_factory=_empty)
    city: BaseGeometry = field(default_factory=_empty)
    harbour: BaseGeometry = field(default_factory=_empty)
    berths: list[Berth] = field(default_factory=list)
    sheds: list[Polygon] = field(default_factory=list)
    crane_edges: list[Berth] = field(default_factory=list)


def _canonical_layout(rng: np.random.Generator, kind: str, a: float, b: float, R: float) -> _Layout:
    """Harbour with land to the east (+u) in a canonical frame; ``a, b`` half sizes of the view."""
    lay = _Layout()
    if kind == "open_sea":
        return lay
    vs = np.linspace(-R, R, 80)
    uc = a * (rng.uniform(0.25, 0.5) if kind == "harbour" else rng.uniform(0.35, 0.6))
    coast = uc + _wiggle(rng, vs.size, 12.0, 3.0)
    land_nat = Polygon([(float(u), float(v)) for u, v in zip(coast, vs, strict=True)] + [(R, R), (R, -R)])
    beach_line = LineString([(float(u), float(v)) for u, v in zip(coast, vs, strict=True)])
    berths: list[Berth] = []
    if kind == "quay":
        uq = uc - rng.uniform(70, 140)
        port_land = box(uq, -R, uc + 70, R)
        berths.append(Berth(uq, 0.0, 0.0, 270.0, 2 * b, "quay-1"))
        lay.crane_edges.append(Berth(uq, rng.uniform(-0.3, 0.3) * b, 0.0, 270.0, min(2 * b, 250.0), "quay-1"))
        lay.sheds.append(box(uq + 60, -b * 0.6, uq + 60 + rng.uniform(30, 50), -b * 0.6 + rng.uniform(60, 140)))
        land = land_nat.union(port_land)
        lay.quay_area = port_land.difference(land_nat.difference(box(uq, -R, uc + 70, R)))
        lay.quay_area = port_land
        lay.harbour = box(uq - 250, -R, uq, R)
        lay.land = land
        lay.city = land_nat.difference(port_land)
        lay.beach = _empty()
        lay.berths = berths
        return lay
    pv0 = -b * rng.uniform(0.45, 0.8)
    pv1 = b * rng.uniform(0.35, 0.75)
    uq = uc - rng.uniform(50, 110)
    port_land = box(uq, pv0, uc + 80, pv1)
    piers: list[Polygon] = []
    v = pv0 + rng.uniform(110, 200)
    max_pl = 0.0
    wall_segments: list[tuple[float, float]] = []
    last = pv0
    while True:
        pw = rng.uniform(70, 150)
        if v + pw > pv1 - 90:
            break
        pl = float(np.clip(rng.uniform(0.3, 0.55) * (uq + a), 120.0, 450.0))
        max_pl = max(max_pl, pl)
        pier = box(uq - pl, v, uq + 1.0, v + pw)
        piers.append(pier)
        name = f"pier-{len(piers)}"
        berths.append(Berth(uq - pl / 2, v + pw, 270.0, 0.0, pl, name + "-north"))
        berths.append(Berth(uq - pl / 2, v, 90.0, 180.0, pl, name + "-south"))
        berths.append(Berth(uq - pl, v + pw / 2, 0.0, 270.0, pw, name + "-head"))
        wall_segments.append((last, v))
        if pw > 105:
            lay.sheds.append(box(uq - pl + 30, v + 42, uq - 25, v + pw - 42))
        lay.crane_edges.append(berths[-3 if rng.random() < 0.5 else -2])
        last = v + pw
        v = last + rng.uniform(130, 230)
    wall_segments.append((last, pv1))
    for i, (s0, s1) in enumerate(wall_segments):
        if s1 - s0 > 40:
            berths.append(Berth(uq, (s0 + s1) / 2, 0.0, 270.0, s1 - s0, f"wall-{i + 1}"))
    if not piers:
        lay.crane_edges.append(berths[-1])
    berths.append(Berth((uq + uc) / 2, pv1, 90.0, 0.0, uc - uq, "north-quay"))
    u_b = (uq - max_pl) - rng.uniform(110, 190)
    ys, yn = pv0 - rng.uniform(30, 70), pv1 + rng.uniform(40, 80)
    wb = rng.uniform(18, 28)
    entrance = rng.uniform(120, 190)
    main = LineString([(uc + 40, ys), (u_b, ys), (u_b, yn)])
    mole = LineString([(uc + 40, yn), (u_b + entrance, yn)])
    bw = main.buffer(wb / 2, cap_style="flat", join_style="mitre").union(
        mole.buffer(wb / 2, cap_style="flat", join_style="mitre")
    )
    bw = bw.union(Point(u_b, yn).buffer(wb * 0.75)).union(Point(u_b + entrance, yn).buffer(wb * 0.75))
    lay.crown = main.buffer(wb * 0.18, cap_style="flat").union(mole.buffer(wb * 0.18, cap_style="flat"))
    lay.breakwater = bw.difference(land_nat)
    quays = port_land.union(shapely.union_all(piers)) if piers else port_land
    lay.land = shapely.union_all([land_nat, quays, bw])
    lay.quay_area = quays.difference(land_nat.buffer(-60)).intersection(quays)
    lay.city = land_nat.difference(quays)
    lay.harbour = box(u_b, ys, uc + 60, yn).difference(lay.land)
    lay.beach = beach_line.buffer(rng.uniform(8, 18)).intersection(land_nat).difference(quays.buffer(30))
    lay.beach = lay.beach.difference(bw.buffer(20))
    lay.berths = berths
    return lay


def _city(
    rng: np.random.Generator, city: BaseGeometry, view: Polygon, blocked: BaseGeometry
) -> tuple[BaseGeometry, list[Building], BaseGeometry, list[tuple[Point, float, float]]]:
    """Roads, buildings, vegetation and trees on urban land (all local metres)."""
    if city.is_empty:
        return _empty(), [], _empty(), []
    area = city.intersection(view)
    if area.is_empty:
        return _empty(), [], _empty(), []
    ang = rng.uniform(-12, 12)
    minx, miny, maxx, maxy = view.bounds
    big = max(maxx - minx, maxy - miny)
    sx, sy = rng.uniform(80, 140), rng.uniform(70, 120)
    lines = []
    xs = np.arange(-big, big, sx) + rng.uniform(0, sx)
    ys = np.arange(-big, big, sy) + rng.uniform(0, sy)
    widths: list[float] = []
    for x in xs:
        lines.append(LineString([(x, -big), (x, big)]))
        widths.append(rng.uniform(7, 14))
    for y in ys:
        lines.append(LineString([(-big, y), (big, y)]))
        widths.append(rng.uniform(6, 12))
    road_polys = [
        affinity.rotate(ln.buffer(w / 2, cap_style="flat"), ang, origin=(0, 0))
        for ln, w in zip(lines, widths, strict=True)
    ]
    roads = shapely.union_all(road_polys).intersection(city)
    # lots: block grid cells shrunk, split along their long side
    buildings: list[Building] = []
    trees: list[tuple[Point, float, float]] = []
    veg_parts: list[BaseGeometry] = []
    roofs = ["concrete", "concrete", "light", "red", "dark", "metal", "concrete"]
    free = area.difference(roads.buffer(2.0)).difference(blocked)
    shapely.prepare(free)
    shapely.prepare(blocked)
    shapely.prepare(area)
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            cell = affinity.rotate(box(xs[i], ys[j], xs[i + 1], ys[j + 1]), ang, origin=(0, 0))
            if not area.intersects(cell):
                continue
            block = cell.intersection(free)
            if block.is_empty or block.area < 200:
                continue
            shapely.prepare(block)
            if rng.random() < 0.12:  # a park
                veg_parts.append(block.buffer(-2))
                for _ in range(int(block.area / 180)):
                    p = _random_point(rng, block)
                    if p is not None:
                        trees.append((p, rng.uniform(2.0, 4.5), rng.uniform(5, 12)))
                continue
            cx0, cy0 = (xs[i] + xs[i + 1]) / 2, (ys[j] + ys[j + 1]) / 2
            w_cell, h_cell = xs[i + 1] - xs[i], ys[j + 1] - ys[j]
            inner = h_cell - 18
            n_along = max(1, int(inner / rng.uniform(10, 22)))
            n_deep = 2 if w_cell > 100 else 1
            for side, row in [(sd, rw) for sd in (-1, 1) for rw in range(n_deep)]:
                depth = rng.uniform(10, max(11, min(26, w_cell / (2 * n_deep) - 10)))
                for k in range(n_along):
                    if rng.random() < 0.06:
                        continue
                    y_a = cy0 - inner / 2 + k * inner / n_along
                    y_b = y_a + inner / n_along - rng.uniform(0.8, 3)
                    x_a = cx0 + side * (w_cell / 2 - 9 - row * (w_cell / (2 * n_deep)))
                    x_b = x_a - side * depth
                    lot = box(min(x_a, x_b), y_a, max(x_a, x_b), y_b)
                    lot = affinity.rotate(lot, ang, origin=(0, 0))
                    if not block.contains(lot):
                        continue
                    roof = roofs[int(rng.integers(0, len(roofs)))]
                    h = float(rng.choice([4, 7, 10, 13, 18, 24], p=[0.15, 0.3, 0.25, 0.15, 0.1, 0.05]))
                    buildings.append(Building(lot, h + rng.uniform(-1, 1), roof, gable=roof == "red"))
            # trees in the courtyard
            for _ in range(int(rng.integers(0, 4))):
                p = _random_point(rng, affinity.scale(cell, 0.3, 0.6))
                if p is not None and block.contains(p):
                    trees.append((p, rng.uniform(2.0, 4.0), rng.uniform(5, 10)))
    # street trees
    for ln, w in zip(lines[: len(xs)], widths[: len(xs)], strict=True):
        line = affinity.rotate(ln, ang, origin=(0, 0))
        if rng.random() < 0.5:
            continue
        dist = np.arange(rng.uniform(0, 12), line.length, rng.uniform(9, 14))
        pts = shapely.get_coordinates(shapely.line_interpolate_point(line, dist))
        if pts.size == 0:
            continue
        qx = pts[:, 0] + (w / 2 + 1.5) * math.cos(math.radians(ang))
        qy = pts[:, 1] - (w / 2 + 1.5) * math.sin(math.radians(ang))
        ok = shapely.contains_xy(area, qx, qy) & ~shapely.contains_xy(blocked, qx, qy)
        for x, y in zip(qx[ok], qy[ok], strict=True):
            trees.append((Point(x, y), float(rng.uniform(1.8, 3.0)), float(rng.uniform(5, 9))))
    vegetation = shapely.union_all(veg_parts) if veg_parts else _empty()
    return roads, buildings, vegetation, trees


def _random_point(rng: np.random.Generator, geom: BaseGeometry, tries: int = 20) -> Point | None:
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(tries):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geom.contains(p):
            return p
    return None


def _rot_berth(b: Berth, phi: float) -> Berth:
    p = affinity.rotate(Point(b.x, b.y), phi, origin=(0, 0))
    return Berth(p.x, p.y, (b.heading_deg - phi) % 360.0, (b.normal_deg - phi) % 360.0, b.length_m, b.quay)


def _crane(rng: np.random.Generator, berth: Berth, along: float, colour: str) -> Crane:
    gauge = rng.uniform(16, 28)
    leg_sep = rng.uniform(14, 18)
    outreach, backreach = rng.uniform(32, 48), rng.uniform(10, 16)
    # crane frame: u across the edge (+ into the land), v along the edge
    h = math.radians(berth.heading_deg)
    n = math.radians(berth.normal_deg)

    def pt(u: float, v: float) -> tuple[float, float]:
        return (
            berth.x + v * math.sin(h) - u * math.sin(n) + along * math.sin(h),
            berth.y + v * math.cos(h) - u * math.cos(n) + along * math.cos(h),
        )

    def rect(u0: float, u1: float, v0: float, v1: float) -> Polygon:
        return Polygon([pt(u0, v0), pt(u1, v0), pt(u1, v1), pt(u0, v1)])

    legs = [rect(u - 0.9, u + 0.9, v - 0.9, v + 0.9) for u in (3.0, 3.0 + gauge) for v in (-leg_sep / 2, leg_sep / 2)]
    frame = shapely.union_all(
        [rect(2.2, 3.8 + gauge, v - 0.8, v + 0.8) for v in (-leg_sep / 2, leg_sep / 2)]
        + [rect(u - 0.7, u + 0.7, -leg_sep / 2, leg_sep / 2) for u in (3.0, 3.0 + gauge)]
    )
    boom = rect(-outreach, 3.0 + gauge + backreach, -1.6, 1.6)
    return Crane(legs=legs, frame=frame, boom=boom, height_m=float(rng.uniform(38, 52)), colour=colour)


# ------------------------------------------------------------------------------------------- make_port --
def make_port(spec: PortSpec) -> Port:
    """Build the world of a synthetic port (geometry and objects), deterministic by ``spec.seed``.

    Parameters
    ----------
    spec
        The port's specification.

    Returns
    -------
    Port
        Land, quays, breakwaters, buildings, cranes, berths, vessels, equipment and distractors in local metres,
        plus the port's UTM CRS and nominal pixel grid.
    """
    if spec.layout not in PORT_LAYOUTS:
        raise ValueError(f"PortSpec.layout must be one of {PORT_LAYOUTS}, got {spec.layout!r}")
    if not 0.3 <= spec.pixel_size_m <= 30:
        raise ValueError(f"PortSpec.pixel_size_m must be within 0.3-30 m, got {spec.pixel_size_m}")
    if spec.width_m <= 0 or spec.height_m <= 0:
        raise ValueError(f"PortSpec extent must be positive, got {spec.width_m} x {spec.height_m} m")
    lon, lat = spec.centre_lonlat
    crs = utm_crs(lon, lat)
    from pyproj import Transformer

    cx, cy = Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True).transform(lon, lat)
    rows = max(8, round(spec.height_m / spec.pixel_size_m))
    cols = max(8, round(spec.width_m / spec.pixel_size_m))
    k = _ground_scale(crs, Affine(1, 0, cx, 0, -1, cy), 100, 100)
    res = spec.pixel_size_m / k
    left = round((cx - cols * res / 2) / res) * res
    top = round((cy + rows * res / 2) / res) * res
    transform = Affine(res, 0, left, 0, -res, top)
    # the scene centre is the centre of the nominal grid (snapped)
    centre = (left + cols * res / 2, top - rows * res / 2)
    margin = max(60.0, 0.05 * max(spec.width_m, spec.height_m), 12 * spec.pixel_size_m)

    rng_layout = np.random.default_rng([spec.seed, 11])
    kind = "harbour" if spec.layout == "auto" else spec.layout
    land_side = spec.land_side
    if land_side is None:
        land_side = float(rng_layout.integers(0, 4) * 90 + rng_layout.uniform(-20, 20))
    phi = 90.0 - land_side  # rotate the canonical frame (land east) counter-clockwise by phi
    sideways = abs(math.sin(math.radians(land_side))) < abs(math.cos(math.radians(land_side)))
    a, b = (spec.height_m / 2, spec.width_m / 2) if sideways else (spec.width_m / 2, spec.height_m / 2)
    R = 0.5 * math.hypot(spec.width_m, spec.height_m) + margin + 60
    lay = _canonical_layout(rng_layout, kind, a, b, R)
    world = box(
        -spec.width_m / 2 - margin, -spec.height_m / 2 - margin, spec.width_m / 2 + margin, spec.height_m / 2 + margin
    )
    view = box(-spec.width_m / 2, -spec.height_m / 2, spec.width_m / 2, spec.height_m / 2)

    def rot(g: BaseGeometry) -> BaseGeometry:
        return affinity.rotate(g, phi, origin=(0, 0)).intersection(world)

    land = rot(lay.land)
    quay_area = rot(lay.quay_area)
    breakwater = rot(lay.breakwater)
    crown = rot(lay.crown)
    beach = rot(lay.beach)
    city = rot(lay.city)
    harbour = rot(lay.harbour)
    berths_all = [_rot_berth(bb, phi) for bb in lay.berths]
    berths = [bb for bb in berths_all if view.buffer(-20).contains(Point(bb.x, bb.y))]
    sheds = [rot(s) for s in lay.sheds]
    buildings = [
        Building(s, float(rng_layout.uniform(9, 15)), str(rng_layout.choice(["metal", "light", "blue", "metal"])))
        for s in sheds
        if not s.is_empty and isinstance(s, Polygon)
    ]
    cranes: list[Crane] = []
    for ce in lay.crane_edges:
        be = _rot_berth(ce, phi)
        if not view.contains(Point(be.x, be.y)):
            continue
        colour = str(rng_layout.choice(["red", "yellow", "blue", "white"]))
        n = int(rng_layout.integers(2, 5))
        span = min(be.length_m - 40, n * 40.0)
        for i in range(n):
            along = -span / 2 + (i + 0.5) * span / n
            cranes.append(_crane(rng_layout, be, along, colour))
    blocked = shapely.union_all([quay_area.buffer(5), breakwater.buffer(5), beach])
    roads, city_buildings, vegetation, trees = _city(rng_layout, city, world, blocked)
    buildings.extend(city_buildings)
    # extra vegetation: rough patches on open urban land
    veg_extra = []
    for _ in range(int(city.intersection(world).area / 60000) + 1):
        p = _random_point(rng_layout, city.intersection(world))
        if p is None:
            continue
        blob = affinity.scale(p.buffer(rng_layout.uniform(15, 45), quad_segs=6), rng_layout.uniform(0.6, 1.6), 1.0)
        veg_extra.append(blob)
    if veg_extra:
        vegetation = shapely.union_all([vegetation, *veg_extra]).intersection(city).difference(roads)
    wind = float(rng_layout.uniform(0, 360))
    port = Port(
        spec=spec, crs=crs, centre_xy=centre, ground_scale=k, transform=transform, shape=(rows, cols),
        margin_m=margin, land=land, quay_area=quay_area, breakwater=breakwater, breakwater_crown=crown,
        beach=beach, roads=roads, vegetation=vegetation, harbour=harbour, buildings=buildings, trees=trees,
        cranes=cranes, berths=berths, vessels=[], equipment=[], distractors=[], wind_deg=wind,
    )  # fmt: skip
    rng_obj = np.random.default_rng([spec.seed, 23])
    if spec.vessels is None:
        port.vessels = _random_vessels(rng_obj, port)
    else:
        port.vessels = [_resolve_vessel(v, i) for i, v in enumerate(spec.vessels)]
    if spec.equipment is None:
        port.equipment = _random_equipment(rng_obj, port) if spec.pixel_size_m <= 1.2 else []
    else:
        port.equipment = [_resolve_equipment(e, i, rng_obj) for i, e in enumerate(spec.equipment)]
    if spec.distractors:
        port.distractors = _random_distractors(np.random.default_rng([spec.seed, 37]), port)
    return port


def _resolve_vessel(v: VesselSpec, i: int) -> VesselSpec:
    if v.hull not in HULLS:
        raise ValueError(f"VesselSpec.hull must be one of {HULLS}, got {v.hull!r}")
    if v.length_m <= 0:
        raise ValueError(f"VesselSpec.length_m must be positive, got {v.length_m}")
    return replace(
        v,
        id=v.id or f"V{i + 1:03d}",
        width_m=v.width_m if v.width_m is not None else default_beam(v.length_m, v.subtype),
        present=(bool(v.present[0]), bool(v.present[1])),
    )


_COLOURS_VEHICLE = ["olive", "olive", "olive", "sand", "grey", "brown"]
_COLOURS_CAR = ["white", "white", "grey", "black", "red", "blue", "silver"]
_COLOURS_CONTAINER = ["red", "blue", "green", "white", "orange", "grey", "brown", "blue", "red"]


def _resolve_equipment(e: EquipmentSpec, i: int, rng: np.random.Generator) -> EquipmentSpec:
    if e.subtype not in ("vehicle", "container"):
        raise ValueError(f"EquipmentSpec.subtype must be 'vehicle' or 'container', got {e.subtype!r}")
    colour = e.colour
    if colour == "auto":
        model = equipment_model(e)
        pal = _COLOURS_CONTAINER if model == "container" else _COLOURS_CAR if model == "car" else _COLOURS_VEHICLE
        colour = pal[int(rng.integers(0, len(pal)))]
    return replace(e, id=e.id or f"E{i + 1:04d}", colour=colour, present=(bool(e.present[0]), bool(e.present[1])))


def _presence(rng: np.random.Generator, p_stay: float = 0.55, p_dep: float = 0.25) -> tuple[bool, bool]:
    r = rng.random()
    if r < p_stay:
        return (True, True)
    if r < p_stay + p_dep:
        return (True, False)
    return (False, True)


class _Occupancy:
    """Footprints already placed, per date, to keep objects from overlapping (spatial hash, 50 m cells)."""

    CELL = 50.0

    def __init__(self) -> None:
        self.items: list[tuple[BaseGeometry, tuple[bool, bool]]] = []
        self.grid: dict[tuple[int, int], list[int]] = {}

    def _cells(self, geom: BaseGeometry) -> list[tuple[int, int]]:
        minx, miny, maxx, maxy = geom.bounds
        c = self.CELL
        return [
            (i, j)
            for i in range(math.floor(minx / c), math.floor(maxx / c) + 1)
            for j in range(math.floor(miny / c), math.floor(maxy / c) + 1)
        ]

    def free(self, geom: BaseGeometry, present: tuple[bool, bool], clearance: float = 0.0) -> bool:
        g = geom.buffer(clearance) if clearance > 0 else geom
        seen: set[int] = set()
        for cell in self._cells(g):
            for k in self.grid.get(cell, ()):
                if k in seen:
                    continue
                seen.add(k)
                other, pres = self.items[k]
                same_date = (pres[0] and present[0]) or (pres[1] and present[1])
                if same_date and g.intersects(other) and g.intersection(other).area > 0.05:
                    return False
        return True

    def add(self, geom: BaseGeometry, present: tuple[bool, bool]) -> None:
        self.items.append((geom, present))
        for cell in self._cells(geom):
            self.grid.setdefault(cell, []).append(len(self.items) - 1)


def _hull_for(rng: np.random.Generator, subtype: str) -> str:
    if subtype == "patrol":
        return "grey"
    if subtype in ("yacht", "ferry", "fishing"):
        return "bright" if rng.random() < 0.8 else "dark"
    if subtype == "tug":
        return "dark" if rng.random() < 0.7 else "bright"
    return str(rng.choice(["bright", "dark", "grey"], p=[0.35, 0.4, 0.25]))


def _pick_subtype(
    rng: np.random.Generator, max_len: float, kinds: Sequence[tuple[str, float, float, float]]
) -> tuple[str, float]:
    ok = [(s, lo, min(hi, max_len), w) for s, lo, hi, w in kinds if lo <= max_len]
    if not ok:
        return "fishing", max(8.5, min(max_len, 12.0))
    w = np.array([k[3] for k in ok], dtype=float)
    s, lo, hi, _ = ok[int(rng.choice(len(ok), p=w / w.sum()))]
    return s, float(rng.uniform(lo, hi))


_MOORED_KINDS = [("cargo", 70, 200, 3.0), ("container", 120, 200, 1.0), ("tanker", 80, 190, 1.0),
                 ("ferry", 60, 150, 0.6), ("tug", 20, 34, 1.2), ("patrol", 25, 60, 1.0), ("fishing", 10, 30, 1.5),
                 ("barge", 30, 70, 0.6), ("yacht", 10, 28, 0.6)]  # fmt: skip
_ANCHOR_KINDS = [("cargo", 80, 200, 3.0), ("tanker", 90, 200, 1.5), ("container", 120, 200, 0.7)]
_UNDERWAY_KINDS = [("tug", 20, 34, 1.5), ("patrol", 25, 60, 1.0), ("fishing", 10, 30, 1.5), ("cargo", 80, 180, 0.7),
                   ("yacht", 10, 25, 1.0)]  # fmt: skip


def _random_vessels(rng: np.random.Generator, port: Port) -> list[VesselSpec]:
    spec = port.spec
    area_km2 = spec.width_m * spec.height_m / 1e6
    n_total = spec.n_random_vessels
    if n_total is None:
        n_total = int(np.clip(round(5 + 12 * area_km2), 3, 150))
    view = port.extent
    land = port.land
    occ = _Occupancy()
    out: list[VesselSpec] = []
    berths = [b for b in port.berths if b.length_m >= 25]
    n_moored = round(n_total * 0.6) if berths else 0
    n_under = max(1, round(n_total * 0.2)) if n_total >= 3 else 0
    n_anchor = n_total - n_moored - n_under

    def ok(fp: BaseGeometry, pres: tuple[bool, bool], clearance: float, land_clear: float) -> bool:
        if not view.buffer(-5).contains(fp):
            return False
        if land_clear > 0 and fp.buffer(land_clear).intersects(land):
            return False
        if land_clear <= 0 and fp.buffer(-0.25).intersects(land):
            return False
        return occ.free(fp, pres, clearance)

    def add(v: VesselSpec) -> None:
        v.id = f"V{len(out) + 1:03d}"
        out.append(v)
        occ.add(vessel_footprint(v, v.x, v.y, v.heading_deg), v.present)
        if v.present == (True, True):
            x, y, h = port.vessel_at(v, 1)
            occ.add(vessel_footprint(v, x, y, h), (False, True))

    def drift(v: VesselSpec) -> None:
        if v.present == (True, True):
            v.shift_m = (float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.5, 1.5)))
            v.rotate_deg = float(rng.uniform(-1.5, 1.5))

    tries = 0
    placed = 0
    weights = np.array([b.length_m for b in berths], dtype=float)
    while placed < n_moored and tries < 40 * n_total and berths:
        tries += 1
        b = berths[int(rng.choice(len(berths), p=weights / weights.sum()))]
        sub, length = _pick_subtype(rng, 0.95 * b.length_m, _MOORED_KINDS)
        along = rng.uniform(-(b.length_m - length) / 2, (b.length_m - length) / 2)
        pres = _presence(rng)
        v = b.place(length, along_m=along, reverse=bool(rng.random() < 0.5), subtype=sub,
                    hull=_hull_for(rng, sub), present=pres)  # fmt: skip
        drift(v)
        fp = vessel_footprint(v, v.x, v.y, v.heading_deg)
        if not ok(fp, pres, 4.0, 0.0):
            continue
        add(v)
        placed += 1
        if rng.random() < 0.25 and placed < n_moored:
            sub2, len2 = _pick_subtype(rng, min(1.1 * length, 200.0), _MOORED_KINDS)
            pres2 = (pres[0] and rng.random() < 0.85, pres[1] and rng.random() < 0.85)
            if not any(pres2):
                continue
            w = alongside(v, len2, normal_deg=b.normal_deg, subtype=sub2, hull=_hull_for(rng, sub2),
                          along_m=float(rng.uniform(-0.15, 0.15) * min(length, len2)))  # fmt: skip
            w.present = pres2
            w.moored = True
            drift(w)
            fp2 = vessel_footprint(w, w.x, w.y, w.heading_deg)
            if ok(fp2, pres2, 0.0, 0.0) and occ.free(fp2.buffer(-0.3), pres2):
                v.rafted = True
                add(w)
                placed += 1
    # at anchor: open water, all swung to the wind
    water = port.water.intersection(view)
    tries = 0
    for _ in range(n_anchor):
        while tries < 60 * n_total:
            tries += 1
            sub, length = _pick_subtype(rng, 200.0, _ANCHOR_KINDS)
            p = _random_point(rng, water.buffer(-length / 2 - 20))
            if p is None:
                break
            pres = _presence(rng, 0.6, 0.2)
            v = VesselSpec(p.x, p.y, length, default_beam(length, sub), (port.wind_deg + rng.uniform(-15, 15)) % 360,
                           hull=_hull_for(rng, sub), subtype=sub, present=pres)  # fmt: skip
            drift(v)
            if ok(vessel_footprint(v, v.x, v.y, v.heading_deg), pres, 40.0, 30.0):
                add(v)
                break
    tries = 0
    for _ in range(n_under):
        while tries < 60 * n_total:
            tries += 1
            sub, length = _pick_subtype(rng, 180.0, _UNDERWAY_KINDS)
            p = _random_point(rng, water.buffer(-length - 15))
            if p is None:
                break
            pres = (True, False) if rng.random() < 0.5 else (False, True)
            v = VesselSpec(p.x, p.y, length, default_beam(length, sub), float(rng.uniform(0, 360)),
                           hull=_hull_for(rng, sub), subtype=sub, present=pres, underway=True)  # fmt: skip
            fp = vessel_footprint(v, v.x, v.y, v.heading_deg)
            wake_zone = _place(box(-length, -3.5 * length, length, length / 2), v.x, v.y, v.heading_deg)
            if ok(fp, pres, 25.0, 15.0) and not wake_zone.intersects(land) and occ.free(wake_zone, pres):
                add(v)
                break
    return out


def _random_equipment(rng: np.random.Generator, port: Port) -> list[EquipmentSpec]:
    spec = port.spec
    if port.quay_area.is_empty:
        return []
    area_km2 = spec.width_m * spec.height_m / 1e6
    n_target = spec.n_random_equipment
    if n_target is None:
        n_target = int(np.clip(round(60 + 200 * area_km2), 20, 20000))
    view = port.extent.buffer(-5)
    usable = port.quay_area.intersection(view)
    blocked = shapely.union_all(
        [b.polygon for b in port.buildings] + [leg for c in port.cranes for leg in c.legs] + [Polygon()]
    ).buffer(2.0)
    usable = usable.buffer(-2.0).difference(blocked)
    shapely.prepare(usable)
    out: list[EquipmentSpec] = []
    occ = _Occupancy()
    edges = [b for b in port.berths if b.length_m > 30]
    tries = 0
    while len(out) < n_target and tries < 4 * n_target + 50:
        tries += 1
        if edges and rng.random() < 0.8:
            b = edges[int(rng.integers(0, len(edges)))]
            x, y = b.point(rng.uniform(-0.45, 0.45) * b.length_m, -rng.uniform(12, 55))
            heading = b.heading_deg
        else:
            p = _random_point(rng, usable)
            if p is None:
                break
            x, y, heading = p.x, p.y, float(rng.choice([0, 90]) + (port.berths[0].heading_deg if port.berths else 0))
        block_pres = _presence(rng, 0.65, 0.2)
        if rng.random() < 0.45:  # container block
            size = float(rng.choice([6.06, 12.19], p=[0.4, 0.6]))
            items = equipment_rows(x, y, heading, n_rows=int(rng.integers(1, 5)), n_per_row=int(rng.integers(2, 9)),
                                   length_m=size, width_m=2.44, subtype="container", gap_along_m=0.4,
                                   gap_across_m=float(rng.uniform(0.3, 1.5)), side_by_side=False)  # fmt: skip
            colours = _COLOURS_CONTAINER
        else:
            model = str(rng.choice(["truck", "tank", "apc", "car"], p=[0.4, 0.2, 0.15, 0.25]))
            dims = {"truck": (rng.uniform(7, 11), rng.uniform(2.4, 2.6)), "tank": (rng.uniform(6.5, 9.5),
                    rng.uniform(3.3, 3.7)), "apc": (rng.uniform(6.5, 8), rng.uniform(2.8, 3.1)),
                    "car": (rng.uniform(4.2, 5.0), rng.uniform(1.75, 1.9))}[model]  # fmt: skip
            items = equipment_rows(x, y, heading, n_rows=int(rng.integers(1, 4)), n_per_row=int(rng.integers(3, 10)),
                                   length_m=float(dims[0]), width_m=float(dims[1]), subtype="vehicle", model=model,
                                   gap_along_m=float(rng.uniform(0.8, 2.5)), gap_across_m=float(rng.uniform(2, 5)),
                                   side_by_side=bool(rng.random() < 0.7))  # fmt: skip
            colours = _COLOURS_CAR if model == "car" else _COLOURS_VEHICLE
        block_colour = colours[int(rng.integers(0, len(colours)))]
        for it in items:
            if len(out) >= n_target:
                break
            fp = equipment_footprint(it)
            pres = block_pres if rng.random() < 0.85 else (True, True)
            if not usable.contains(fp) or not occ.free(fp, pres, 0.2):
                continue
            it.present = pres
            it.colour = (
                block_colour
                if (it.subtype == "vehicle" or rng.random() < 0.4)
                else colours[int(rng.integers(0, len(colours)))]
            )
            if it.subtype == "container":
                it.stack = int(rng.choice([1, 1, 2, 3]))
            it.id = f"E{len(out) + 1:04d}"
            occ.add(fp, pres)
            out.append(it)
    return out


def _random_distractors(rng: np.random.Generator, port: Port) -> list[Distractor]:
    spec = port.spec
    area_km2 = spec.width_m * spec.height_m / 1e6
    view = port.extent.buffer(-10)
    water = port.water.intersection(view)
    avoid = shapely.union_all(
        [vessel_footprint(v, *port.vessel_at(v, w)).buffer(6) for v in port.vessels for w in (0, 1)] + [Polygon()]
    )
    out: list[Distractor] = []
    for _ in range(round(3 + 10 * area_km2)):
        p = _random_point(rng, water.buffer(-8))
        if p is None or p.intersects(avoid):
            continue
        length = float(rng.uniform(3.0, 7.5))
        heading = float(rng.uniform(0, 360))
        poly = _place(hull_outline(length, length / 2.8, "yacht"), p.x, p.y, heading)
        pres = (bool(rng.random() < 0.7), bool(rng.random() < 0.7))
        colour = str(rng.choice(["white", "white", "blue", "red", "grey"]))
        out.append(Distractor("boat", poly, colour, pres, 1.0, bool(rng.random() < 0.4), heading, length))
    harbour = port.harbour.intersection(view)
    zone = harbour if not harbour.is_empty else water
    for _ in range(round(2 + 5 * area_km2)):
        p = _random_point(rng, zone.buffer(-10))
        if p is None or p.intersects(avoid):
            continue
        d = float(rng.uniform(1.2, 2.5))
        colour = str(rng.choice(["red", "yellow", "green"]))
        out.append(Distractor("buoy", p.buffer(d / 2, quad_segs=4), colour, (True, True), 1.5, False, 0.0, d))
    return out


def quay_berths(port: Port) -> list[Berth]:
    """Straight quay edges inside the view where a vessel can moor (see :meth:`Berth.place`)."""
    return list(port.berths)
