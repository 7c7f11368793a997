"""Known-answer tests for the object-level diff (berthwatch.match)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio import features as rfeatures
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage as ndi
from shapely.geometry import Polygon, box

from berthwatch.align import align
from berthwatch.config import MatchConfig, Settings
from berthwatch.geo import oriented_measures
from berthwatch.match import change_layers, diff, match_detections
from berthwatch.models import AlignedPair, ChangeSet, Detection, Scene

UTM = CRS.from_epsg(32636)
X0, Y0 = 600_000.0, 3_860_000.0  # world top-left corner (UTM 36N, about 34.9 N)
WORLD_PX = 1.0
WORLD_SHAPE = (480, 640)  # 480 m x 640 m
WORLD_T = Affine(WORLD_PX, 0, X0, 0, -WORLD_PX, Y0)
QUAY_Y = Y0 - 160.0  # land north of this line, water south of it
GRID = Affine(2.0, 0, X0 + 10, 0, -2.0, Y0 - 10)  # 2 m pixels
GRID_SHAPE = (220, 300)


@dataclass(frozen=True)
class Ship:
    x: float  # centre, metres east of X0
    y: float  # centre, metres south of the quay line
    length: float
    width: float
    heading: float = 90.0  # degrees from north: 90 = lying east-west, along the quay
    hull: float = 175.0

    def polygon(self) -> Polygon:
        rect = box(-self.width / 2, -self.length / 2, self.width / 2, self.length / 2)
        rect = shapely.affinity.rotate(rect, -self.heading, origin=(0, 0))
        return shapely.affinity.translate(rect, X0 + self.x, QUAY_Y - self.y)

    def parts(self) -> list[tuple[Polygon, float]]:
        """Hull, a darker deck strip and a bright superstructure block near the stern."""
        deck = box(-self.width / 6, -self.length * 0.4, self.width / 6, self.length * 0.3)
        house = box(-self.width / 2.5, -self.length * 0.48, self.width / 2.5, -self.length * 0.3)
        out = [(self.polygon(), self.hull)]
        for g, v in ((deck, self.hull - 60.0), (house, 235.0)):
            g = shapely.affinity.rotate(g, -self.heading, origin=(0, 0))
            out.append((shapely.affinity.translate(g, X0 + self.x, QUAY_Y - self.y), v))
        return out


def alongside(x: float, length: float, width: float = 18.0, **kw: float) -> Ship:
    return Ship(x=x, y=width / 2 + 1.0, length=length, width=width, **kw)


_LAND_CACHE: dict[int, np.ndarray] = {}


def _land(seed: int = 0) -> np.ndarray:
    if seed not in _LAND_CACHE:
        rng = np.random.default_rng(seed)
        img = ndi.gaussian_filter(rng.normal(size=WORLD_SHAPE), 2) * 30 + 110
        for _ in range(60):
            r, c = rng.integers(0, 150, 1)[0], rng.integers(0, WORLD_SHAPE[1] - 30, 1)[0]
            h, w = rng.integers(5, 25, 2)
            img[r : r + h, c : c + w] = rng.uniform(70, 210)
        _LAND_CACHE[seed] = img.astype(np.float32)
    return _LAND_CACHE[seed]


def render(
    ships: list[Ship],
    *,
    seed: int,
    grid: Affine = GRID,
    shape: tuple[int, int] = GRID_SHAPE,
    crs: CRS = UTM,
    gain: float = 1.0,
    offset: float = 0.0,
    gamma: float = 1.0,
    invalid: Polygon | None = None,
    name: str = "scene.tif",
    date: dt.date = dt.date(2025, 1, 18),
) -> Scene:
    """A port on ``grid``: textured land north of the quay line, calm water south, ``ships`` moored."""
    world = _land().copy()
    rows = round((Y0 - QUAY_Y) / WORLD_PX)
    world[rows:, :] = 45.0
    for ship in ships:
        for geom, value in ship.parts():
            burn = rfeatures.rasterize([(geom, 1)], out_shape=WORLD_SHAPE, transform=WORLD_T, fill=0, dtype="uint8")
            world[burn == 1] = value
    out = np.zeros(shape, np.float32)
    reproject(
        world, out, src_transform=WORLD_T, src_crs=UTM, dst_transform=grid, dst_crs=crs, resampling=Resampling.average
    )
    rng = np.random.default_rng(seed)
    out = np.clip(out + rng.normal(size=shape) * 2.0, 0, 255) / 255.0
    out = (out**gamma) * 255.0 * gain + offset
    data = np.stack([out, 0.9 * out + 8.0, 0.8 * out + 15.0]).astype(np.float32)
    valid = np.ones(shape, bool)
    if invalid is not None:
        from berthwatch.geo import reproject_geometry

        g = reproject_geometry(invalid, UTM, crs)
        valid &= ~rfeatures.geometry_mask([g], out_shape=shape, transform=grid, invert=True, all_touched=True)
        data[:, ~valid] = 0
    return Scene(
        data=data, transform=grid, crs=crs, date=date, bands=("red", "green", "blue"), valid=valid, path=Path(name)
    )


def det(ship: Ship, confidence: float = 0.9) -> Detection:
    poly = ship.polygon()
    length, width, heading, _ = oriented_measures(poly, crs=UTM)
    return Detection(
        geometry=poly,
        kind="vessel",
        confidence=confidence,
        length_m=length,
        width_m=width,
        heading_deg=heading,
        area_m2=poly.area,
    )


A = alongside(120.0, 150.0, 24.0)
B = alongside(330.0, 90.0, 16.0, hull=150.0)
C = Ship(x=500.0, y=120.0, length=70.0, width=14.0, heading=30.0, hull=190.0)  # at anchor
FLEET = [A, B, C]


def statuses(changes: ChangeSet) -> list[tuple[str, float]]:
    """(status, centroid x in metres east of X0) of every object, sorted by x."""
    out = []
    for o in changes.objects:
        out.append((o.status, round(o.geometry.centroid.x - X0)))
    return sorted(out, key=lambda t: t[1])


def compare(
    before_ships: list[Ship],
    after_ships: list[Ship],
    *,
    dets_before: list[Ship] | None = None,
    dets_after: list[Ship] | None = None,
    **after_kw: object,
) -> tuple[AlignedPair, ChangeSet]:
    b = render(before_ships, seed=1, name="before.tif")
    a = render(after_ships, seed=2, name="after.tif", date=dt.date(2025, 1, 27), **after_kw)  # type: ignore[arg-type]
    pair = align(b, a)
    db = [det(s) for s in (before_ships if dets_before is None else dets_before)]
    da = [det(s) for s in (after_ships if dets_after is None else dets_after)]
    return pair, diff(db, da, pair)


@pytest.mark.parametrize(
    "radiometry",
    [{}, dict(gain=1.3, offset=12.0), dict(gamma=0.75), dict(gain=0.75, offset=45.0)],
    ids=["same", "gain-offset", "gamma", "haze"],
)
def test_no_change_gives_only_stayed(radiometry: dict[str, float]) -> None:
    _, changes = compare(FLEET, FLEET, **radiometry)
    assert [s for s, _ in statuses(changes)] == ["stayed"] * 3
    cls = changes.change_class
    assert not np.isin(cls, [1, 2]).any()
    # hardly any "other change" pixels: radiometry and registration were normalised away
    assert (cls == 3).mean() < 0.002


def test_one_vessel_removed_is_the_only_departure() -> None:
    _, changes = compare(FLEET, [A, C])
    assert statuses(changes) == [("stayed", 120), ("departed", 330), ("stayed", 500)]
    dep = next(o for o in changes.objects if o.status == "departed")
    assert dep.id == "V001"  # departed sorts first
    assert dep.length_m == pytest.approx(90.0, abs=1.0)
    assert dep.evidence["changed_fraction"] > 0.5
    cls = changes.change_class
    inside = rfeatures.geometry_mask([B.polygon().buffer(-3)], out_shape=GRID_SHAPE, transform=GRID, invert=True)
    assert (cls[inside] == 1).all()


def test_one_vessel_added_is_an_arrival() -> None:
    _, changes = compare([A, C], FLEET)
    assert statuses(changes) == [("stayed", 120), ("arrived", 330), ("stayed", 500)]


def test_vessel_shifted_two_metres_at_berth_stayed() -> None:
    b2 = Ship(x=B.x + 2.0, y=B.y, length=B.length, width=B.width, heading=B.heading + 2.0, hull=B.hull)
    _, changes = compare(FLEET, [A, b2, C])
    assert [s for s, _ in statuses(changes)] == ["stayed"] * 3


def test_berth_reoccupied_by_a_different_ship() -> None:
    other = alongside(310.0, 55.0, 12.0, hull=215.0)
    _, changes = compare(FLEET, [A, other, C])
    got = statuses(changes)
    assert sorted(s for s, _ in got) == ["arrived", "departed", "stayed", "stayed"]
    dep = next(o for o in changes.objects if o.status == "departed")
    arr = next(o for o in changes.objects if o.status == "arrived")
    assert dep.length_m == pytest.approx(90.0, abs=1.0) and arr.length_m == pytest.approx(55.0, abs=1.0)


def test_same_ship_cut_shorter_by_the_detector_at_one_date_stayed() -> None:
    """The berth is unchanged; AFTER's detector found only a 35 m piece of the 90 m hull (another pixel size, a
    boom's shadow): the lengths differ, the pixels do not. The ship stayed."""
    piece = Ship(x=B.x - 27.5, y=B.y, length=35.0, width=B.width, heading=B.heading, hull=B.hull)
    _, changes = compare(FLEET, FLEET, dets_after=[A, piece, C])
    assert [s for s, _ in statuses(changes)] == ["stayed"] * 3


def test_no_data_over_an_object_at_the_other_date_is_unknown() -> None:
    cloud = B.polygon().buffer(15.0)
    _, changes = compare(FLEET, [A, C], invalid=cloud)
    assert statuses(changes) == [("stayed", 120), ("unknown", 330), ("stayed", 500)]
    cls = changes.change_class
    inside = rfeatures.geometry_mask([B.polygon()], out_shape=GRID_SHAPE, transform=GRID, invert=True)
    assert (cls[inside] == 255).all()


def test_other_crs_gives_the_same_statuses() -> None:
    merc = CRS.from_epsg(3857)
    left, bottom, right, top = transform_bounds(UTM, merc, X0, Y0 - 480, X0 + 640, Y0)
    px = 2.9  # about 2.4 m on the ground
    grid = Affine(px, 0, left, 0, -px, top)
    shape = (int((top - bottom) / px), int((right - left) / px))
    b = render(FLEET, seed=1, name="before.tif")
    a = render([A, C], seed=2, grid=grid, shape=shape, crs=merc, name="after_3857.tif")
    pair = align(b, a)
    assert pair.after.crs == UTM
    changes = diff([det(s) for s in FLEET], [det(s) for s in (A, C)], pair)
    assert statuses(changes) == [("stayed", 120), ("departed", 330), ("stayed", 500)]


def test_missed_detection_verified_as_stayed() -> None:
    # B is in both images, but the AFTER detector missed it: the footprint looks the same -> stayed
    _, changes = compare(FLEET, FLEET, dets_after=[A, C])
    got = statuses(changes)
    assert got == [("stayed", 120), ("stayed", 330), ("stayed", 500)]
    b_obj = next(o for o in changes.objects if round(o.geometry.centroid.x - X0) == 330)
    assert b_obj.evidence["verified"] == 1.0 and b_obj.evidence["ncc"] > 0.6


@pytest.mark.parametrize("mechanism", ["water_change", "recovered"])
def test_missed_departure_recovered_from_the_difference(mechanism: str) -> None:
    # B left, but the BEFORE detector missed it. Two independent two-date evidences must each find it: the water
    # surface (open water after where a hull lay before: berthwatch.berths) and, with that switched off, the
    # hull-shaped region of the normalised difference image
    water = np.zeros(GRID_SHAPE, bool)
    water[int((Y0 - 10 - QUAY_Y) / 2.0) :, :] = True
    b = render(FLEET, seed=1, name="before.tif")
    a = render([A, C], seed=2, name="after.tif")
    pair = align(b, a)
    settings = Settings().updated(
        {"match": {"berth": mechanism == "water_change", "recover": mechanism == "recovered"}}
    )
    changes = diff([det(A), det(C)], [det(A), det(C)], pair, water=water, settings=settings)
    got = statuses(changes)
    assert [s for s, _ in got] == ["stayed", "departed", "stayed"]
    rec = next(o for o in changes.objects if o.status == "departed")
    assert abs(rec.geometry.centroid.x - (X0 + B.x)) < 4.0
    assert rec.length_m == pytest.approx(B.length, rel=0.1)
    assert rec.heading_deg == pytest.approx(B.heading, abs=5.0)
    assert rec.evidence[mechanism] == 1.0
    if mechanism == "recovered":
        assert rec.evidence["contrast_before"] > rec.evidence["contrast_after"]


def test_match_detections_gates() -> None:
    cfg = MatchConfig()
    far = Ship(x=B.x + 60.0, y=B.y, length=B.length, width=B.width)
    turned = Ship(x=B.x, y=B.y + 30, length=B.length, width=B.width, heading=0.0)
    shorter = Ship(x=B.x, y=B.y, length=B.length * 0.6, width=B.width)
    near = Ship(x=B.x + 3.0, y=B.y, length=B.length, width=B.width)
    assert match_detections([det(B)], [det(near)], config=cfg, ground_scale=1.0) == [(0, 0)]
    for other in (far, turned, shorter):
        assert match_detections([det(B)], [det(other)], config=cfg, ground_scale=1.0) == [(0, None), (None, 0)]
    # assignment is one to one and prefers the better overlap
    pairs = match_detections([det(B), det(A)], [det(A), det(near)], config=cfg, ground_scale=1.0)
    assert sorted(pairs, key=str) == sorted([(0, 1), (1, 0)], key=str)


def test_change_layers_other_change_and_no_data() -> None:
    b = render(FLEET, seed=1)
    a = render(FLEET, seed=2, invalid=box(X0 + 20, Y0 - 60, X0 + 60, Y0 - 20))
    # a new 20 m x 20 m shed on land at the second date
    a.data[:, 30:40, 200:210] = 250.0
    pair = align(b, a)
    cls, mag = change_layers(pair, [], config=Settings().match)
    assert cls.dtype == np.uint8 and mag.dtype == np.float32
    assert (cls[31:39, 201:209] == 3).all()
    assert (cls[~pair.valid] == 255).all() and (~pair.valid).sum() > 300
    assert (cls == 3).sum() < 150  # only the shed


def test_unmasked_cloud_over_a_vessel_makes_it_unknown() -> None:
    # synthetic port (berthwatch.synth): a cloud at the second date over one of two moored vessels; the cloud
    # is not in the valid mask, so the evidence itself (the whole neighbourhood changed) must say "unknown"
    from berthwatch import synth

    spec = synth.PortSpec(
        seed=3, width_m=900, height_m=600, pixel_size_m=3.0, layout="quay", land_side=0.0, equipment=[],
        vessels=[synth.VesselSpec(x=-200, y=-150, length_m=120, heading_deg=80, hull="dark"),
                 synth.VesselSpec(x=150, y=-150, length_m=100, heading_deg=100, hull="bright")],
    )  # fmt: skip
    before = synth.DateSpec(dt.date(2025, 1, 18))
    after = synth.DateSpec(dt.date(2025, 1, 27), cloud=(150, -150, 90), gain=1.1, haze=0.1, shift_px=(1.0, -0.5))
    sp = synth.make_pair(spec, before, after)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = sorted((t for t in sp.truth if t.kind == "vessel"), key=lambda t: t.occluded)
    assert [t.occluded for t in truth] == [False, True]

    def as_detection(poly: Polygon) -> Detection:
        length, width, heading, _ = oriented_measures(poly, crs=pair.before.crs)
        return Detection(geometry=poly, kind="vessel", confidence=0.9, length_m=length, width_m=width,
                         heading_deg=heading, area_m2=poly.area)  # fmt: skip

    clear, clouded = (as_detection(t.polygon) for t in truth)
    # the AFTER detector sees only the clear vessel: the clouded one must not be called departed
    changes = diff([clear, clouded], [clear], pair)
    by_place = {round(o.geometry.centroid.x): o.status for o in changes.objects}
    assert by_place == {round(clear.centroid[0]): "stayed", round(clouded.centroid[0]): "unknown"}


def test_matching_thousands_of_items_is_one_to_one_and_local() -> None:
    """A yard of 40 x 50 containers 3 m apart, shifted 0.8 m: each matches its own twin, none a neighbour."""
    rng = np.random.default_rng(3)

    def item(x: float, y: float) -> Detection:
        g = box(x - 3.03, y - 1.22, x + 3.03, y + 1.22)
        return Detection(g, "equipment", 0.9, 6.06, 2.44, 90.0, g.area)

    xs, ys = np.meshgrid(np.arange(40) * 8.0, np.arange(50) * 3.0)
    before = [item(x, y) for x, y in zip(xs.ravel(), ys.ravel(), strict=True)]
    dx, dy = rng.uniform(-0.4, 0.4, size=(2, len(before)))
    after = [item(x + 0.8 + ex, y + ey) for x, y, ex, ey in zip(xs.ravel(), ys.ravel(), dx, dy, strict=True)]
    order = rng.permutation(len(after))
    shuffled = [after[k] for k in order]
    pairs = match_detections(before, shuffled, config=MatchConfig(), ground_scale=1.0)
    matched = {i: order[j] for i, j in pairs if i is not None and j is not None}
    assert len(matched) == len(before)
    assert all(i == j for i, j in matched.items())


def test_hull_water_like_at_the_other_date_changed_though_few_pixels_changed() -> None:
    """At coarse pixels a hull is two or three pixels wide and the ±1 px minimum of the change magnitude leaves
    few changed pixels (bench pair 3 m -> 5 m: departed boats with 21-24 % changed). Clear contrast at its date
    and none at the other is a change for a hull; an item on land also needs its pixels changed."""
    from berthwatch.match import _changed

    cfg = MatchConfig()
    ev = {"ncc": 0.1, "changed_fraction": 0.2, "contrast_before": 0.3, "contrast_after": 6.0}
    assert _changed(ev, cfg, "after")  # arrived
    assert not _changed(ev, cfg, "before")  # seen before, not water-like after: no
    assert not _changed({**ev, "contrast_before": 2.0}, cfg, "after")  # the other date shows something there
    assert not _changed({**ev, "contrast_after": 1.5}, cfg, "after")  # too faint to tell
    land = {**ev, "ground_contrast_before": 0.5, "ground_contrast_after": 6.0, "ground_shift_z": 0.0}
    assert not _changed(land, cfg, "after")  # equipment: too few changed pixels


@pytest.mark.parametrize(("heading", "layouts"), [(30.0, ("visual", "analytic")), (120.0, ("visual", "analytic")),
                                                  (120.0, ("analytic", "visual"))])  # fmt: skip
def test_vessel_under_way_at_the_date_with_nir_is_cut_from_its_wake(heading: float, layouts: tuple[str, str]) -> None:
    """A visual product against an analytic one (3 m): the dates are compared on their common RGB bands, but the
    analytic date is searched with its NIR band too, where foam is dark and a hull is not. A dark tug under way
    (30 m, with a wake three hull lengths long) present only at that date is one change, measured on its hull;
    searched on RGB alone it was its hull and wake (about 90 m, centred 40 m astern) or not a change at all."""
    from berthwatch import synth
    from berthwatch.pipeline import compare_scenes

    arrives = layouts[1] == "analytic"
    tug = synth.VesselSpec(x=0.0, y=0.0, length_m=30.0, heading_deg=heading, subtype="tug", hull="dark",
                           underway=True, present=(False, True) if arrives else (True, False))  # fmt: skip
    spec = synth.PortSpec(seed=7, width_m=900, height_m=700, pixel_size_m=3.0, layout="open_sea", equipment=[],
                          distractors=False, vessels=[tug])  # fmt: skip
    sp = synth.make_pair(
        spec,
        synth.DateSpec(dt.date(2025, 1, 18), layout=layouts[0]),
        synth.DateSpec(dt.date(2025, 1, 27), layout=layouts[1], shift_px=(1.5, -2.0)),
    )
    pair, changes = compare_scenes(sp.before.to_scene(), sp.after.to_scene(), settings=Settings())
    assert "nir" not in pair.before.bands and "nir" in pair.detection_scenes[1 if arrives else 0].bands
    (t,) = [o for o in sp.truth if o.kind == "vessel"]
    near = [o for o in changes.objects if o.kind == "vessel" and o.geometry.centroid.distance(t.polygon.centroid) < 60]
    assert [o.status for o in near] == ["arrived" if arrives else "departed"]
    assert near[0].geometry.centroid.distance(t.polygon.centroid) <= t.length_m / 2
    assert near[0].length_m == pytest.approx(t.length_m, rel=0.25)
    # summary.json says which bands were compared and which searched at each date
    from berthwatch.report import compare_summary

    grid = compare_summary(pair, changes, Settings(), {})["grid"]
    assert sorted(grid["compared_bands"]) == ["blue", "green", "red"]
    assert "nir" in grid["searched_bands"]["after" if arrives else "before"]
    assert "nir" not in grid["searched_bands"]["before" if arrives else "after"]


def test_generated_port_with_only_radiometry_and_registration_changed_has_no_vessel_change() -> None:
    """A generated 3 m port seen again at 5 m, 2 px off, with another gain and offset, every ship where it was.

    The detector outlines some hulls at other lengths at the two dates (an 18 m and a 48 m piece of one hull):
    another length is another ship only where the berth changed, not where the footprint merely correlates
    poorly (a faint hull at coarse pixels has no pattern to correlate). No vessel departed or arrived."""
    from berthwatch import synth
    from berthwatch.pipeline import compare_scenes

    port = synth.make_port(synth.PortSpec(seed=303, width_m=3000.0, height_m=2250.0, pixel_size_m=3.0))
    before = synth.DateSpec(date=dt.date(2025, 1, 18), layout="analytic", sun_azimuth_deg=150.0)
    after = synth.DateSpec(
        date=dt.date(2025, 1, 27), layout="analytic", shift_px=(2.0, 2.0), pixel_size_m=5.0, gain=0.8, offset=0.01,
        sun_azimuth_deg=150.0,
    )  # fmt: skip
    b, a = synth.render(port, before, which=0), synth.render(port, after, which=0)
    _, changes = compare_scenes(b.to_scene(), a.to_scene())
    vessels = [o for o in changes.objects if o.kind == "vessel"]
    assert len(vessels) > 20
    assert [o.status for o in vessels if o.status in ("departed", "arrived")] == []


def test_hull_that_stands_out_in_one_band_only_departed() -> None:
    """A hull with the water's mean brightness (darker in red, brighter in blue by three noise sigmas: too little
    for its pixels to pass ``change_sigma``) stands out from the water ring at its date in one band and not at the
    other: departed. On the band mean it looks like water at both dates, which used to make it "stayed"."""
    ship = Ship(x=300.0, y=110.0, length=60.0, width=12.0, heading=60.0)
    b = render([], seed=1, name="before.tif")
    hull = rfeatures.rasterize([(ship.polygon(), 1)], out_shape=GRID_SHAPE, transform=GRID, dtype="uint8") == 1
    b.data[0][hull] -= 6.0
    b.data[2][hull] += 6.0
    a = render([], seed=2, name="after.tif", date=dt.date(2025, 1, 27))
    changes = diff([det(ship)], [], align(b, a))
    assert statuses(changes) == [("departed", 300)]


def test_a_berth_change_inside_a_reported_departure_is_a_piece_of_it() -> None:
    """The water opened under only part of a departed hull (its superstructure, say): that berth region lies inside
    the detector's departure and is not reported again as a second, shorter departure."""
    from berthwatch.match import _changed, _grid, _merge_berth_changes, _object, change_magnitude, footprint_evidence

    pair = align(render(FLEET, seed=1, name="before.tif"), render([B, C], seed=2, name="after.tif"))
    grid = _grid(pair, change_magnitude(pair))
    whole = _object("departed", det(A), before=det(A), after=None, confidence=0.9, evidence={})
    piece = det(dataclasses.replace(A, x=A.x - 0.375 * A.length, length=A.length / 4))
    region = _object("departed", piece, before=piece, after=None, confidence=0.9, evidence={"water_change": 1.0})
    ev = footprint_evidence(piece.geometry, grid, change_sigma=MatchConfig().change_sigma, hull=True)
    assert _changed(ev, MatchConfig(), "before")  # the piece itself is a clear change: only the rule drops it
    merged = _merge_berth_changes([whole], [region], grid, MatchConfig())
    assert [(o.status, round(o.length_m)) for o in merged] == [("departed", 150)]
