"""Known answers for vessels found from two-date water-surface change (berthwatch.berths, masks.water_extent)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from rasterio import features as rfeatures
from shapely.geometry import shape

from berthwatch import synth
from berthwatch.align import align
from berthwatch.berths import berth_changes
from berthwatch.geo import from_lonlat, heading_difference
from berthwatch.io import read_scene
from berthwatch.masks import water_extent, water_mask
from berthwatch.models import AlignedPair
from berthwatch.pipeline import compare_scenes

BEFORE = "20250118_081523_ssc7_u0001_visual.tif"
AFTER = "20250127_082011_ssc9_u0002_visual.tif"


def _quay_port(seed: int, pixel_size_m: float = 0.8) -> tuple[synth.PortSpec, synth.Berth]:
    spec = synth.PortSpec(
        seed=seed,
        width_m=520.0,
        height_m=400.0,
        pixel_size_m=pixel_size_m,
        layout="quay",
        land_side=0.0,
        equipment=[],
        vessels=[],
        distractors=False,
    )
    berth = max(synth.quay_berths(synth.make_port(spec)), key=lambda b: b.length_m)
    return spec, berth


def _pair(
    seed: int, vessels: list[synth.VesselSpec], *, pixel_size_m: float = 0.8, **after: object
) -> tuple[AlignedPair, synth.SyntheticPair]:
    spec, _berth = _quay_port(seed, pixel_size_m)
    spec = dataclasses.replace(spec, vessels=vessels)
    d0 = synth.DateSpec(dt.date(2025, 1, 18), layout="visual", sun_azimuth_deg=150.0, sea_state=0.3)
    d1 = synth.DateSpec(dt.date(2025, 1, 27), layout="visual", sea_state=0.3, **after)  # type: ignore[arg-type]
    sp = synth.make_pair(spec, d0, d1)
    return align(sp.before.to_scene(), sp.after.to_scene()), sp


def _found(pair: AlignedPair) -> list[tuple[str, float, float, float, float]]:
    """(status, centroid x, centroid y, length, heading) of every berth change, in the pair's CRS."""
    return [
        (o.status, o.geometry.centroid.x, o.geometry.centroid.y, o.length_m, o.heading_deg) for o in berth_changes(pair)
    ]


@pytest.mark.parametrize(("status", "pixel_size_m"), [("departed", 0.8), ("arrived", 0.8), ("departed", 3.0)], ids=str)
def test_ship_alongside_quay_that_left_is_found_from_the_water(status: str, pixel_size_m: float) -> None:
    """A 110 m hull flush against the quay leaves (or arrives); its neighbour stays."""
    _spec, berth = _quay_port(31, pixel_size_m)
    present = (True, False) if status == "departed" else (False, True)
    leaves = berth.place(110.0, along_m=-90.0, hull="dark", present=present, id="LEAVES")
    stays = berth.place(70.0, along_m=90.0, hull="bright", shift_m=(0.8, 0.4), rotate_deg=0.5, id="STAYS")
    pair, sp = _pair(
        31, [leaves, stays], pixel_size_m=pixel_size_m, sun_azimuth_deg=165.0, shift_px=(1.2, -0.7), gain=1.1
    )
    truth = next(t for t in sp.truth if t.id == "LEAVES")
    got = _found(pair)
    assert len(got) == 1, got
    _status, x, y, length, heading = got[0]
    assert got[0][0] == status
    c = truth.polygon.centroid
    assert np.hypot(x - c.x, y - c.y) < 0.25 * truth.length_m
    assert length == pytest.approx(truth.length_m, rel=0.1)
    assert heading_difference(heading, truth.heading_deg) < 10.0


def test_moving_shadows_and_a_ship_swinging_at_berth_are_not_changes() -> None:
    """Same ships on both dates; the sun turns 25 degrees, one ship shifts 3 m along the quay: nothing left."""
    _spec, berth = _quay_port(32)
    ships = [
        berth.place(120.0, along_m=-80.0, hull="grey", shift_m=(3.0, 0.0), rotate_deg=1.0),
        berth.place(60.0, along_m=80.0, hull="dark"),
    ]
    pair, _sp = _pair(32, ships, sun_azimuth_deg=175.0, sun_elevation_deg=28.0, shift_px=(-0.6, 1.4))
    assert _found(pair) == []


def test_water_extent_keeps_the_berth_edge_that_the_search_domain_blurs() -> None:
    """RGB 0.8 m: water_extent follows the true shoreline to a few metres and leaves the moored hull out; the
    vessel search domain reaches the quay as closely and takes the moored hull in (a berth to search)."""
    _spec, berth = _quay_port(33)
    ship = berth.place(100.0, along_m=0.0, hull="dark")
    pair, sp = _pair(33, [ship])
    scene = pair.before
    land = rfeatures.rasterize(
        [(sp.port.to_crs(sp.port.land), 1)], out_shape=scene.shape, transform=scene.transform, fill=0, dtype="uint8"
    ).astype(bool)
    hull = rfeatures.rasterize(
        [(next(t for t in sp.truth if t.kind == "vessel").polygon, 1)],
        out_shape=scene.shape,
        transform=scene.transform,
        fill=0,
        dtype="uint8",
    ).astype(bool)
    open_water = ~land & ~hull & scene.valid
    extent = water_extent(scene)
    assert (extent & hull).mean() < 0.05 * hull.mean()  # the hull is not water
    assert (extent & land).sum() < 0.01 * land.sum()  # nor is the land
    assert (extent & open_water).sum() > 0.95 * open_water.sum()  # the open water is
    domain = water_mask(scene)
    assert not (extent & open_water & ~domain).any()
    assert (domain & hull).sum() > 0.8 * hull.sum()
    assert (domain & land).sum() < 0.01 * land.sum()


def test_sample_tartus_cargo_ships_and_most_quay_equipment_departed(sample_tiles: Path) -> None:
    """The bundled Tartus pair, whole compare: Sparta and Sparta II, moored flush at the long pier, departed with
    their length and heading; most of the equipment that left the quays is reported departed (issue #4)."""
    pair, changes = compare_scenes(read_scene(sample_tiles / BEFORE), read_scene(sample_tiles / AFTER))
    truth = json.loads((sample_tiles / "tartus_truth.geojson").read_text())
    departed = [o for o in changes.objects if o.status == "departed"]
    for tid in ("V-SPARTA", "V-SPARTA-II"):
        f = next(f for f in truth["features"] if f["properties"]["id"] == tid)
        p = f["properties"]
        poly = from_lonlat(shape(f["geometry"]), pair.before.crs)
        near = [o for o in departed if o.kind == "vessel" and o.geometry.centroid.distance(poly.centroid) < 20.0]
        assert len(near) == 1, (tid, [(o.length_m, o.geometry.centroid) for o in departed if o.kind == "vessel"])
        assert near[0].length_m == pytest.approx(p["length_m"], rel=0.1)
        assert heading_difference(near[0].heading_deg, p["heading_deg"]) < 10.0
    # and nothing else left: the crane shadows that turned with the sun on the water are not departures
    assert sum(o.kind == "vessel" for o in departed) == 2
    gone = [
        from_lonlat(shape(f["geometry"]), pair.before.crs)
        for f in truth["features"]
        if f["properties"]["kind"] == "equipment" and f["properties"]["status"] == "departed"
    ]
    found = [o.geometry for o in departed if o.kind == "equipment"]
    hit = sum(any(g.intersects(d) for d in found) for g in gone)
    assert hit > len(gone) / 2, f"{hit} of {len(gone)} departed equipment items reported departed"
    # and the breakwater rocks, quay edges and sea do not fill the report with vessels
    n_truth = sum(f["properties"]["kind"] == "vessel" for f in truth["features"])
    n_vessels = sum(o.kind == "vessel" for o in changes.objects)
    assert n_vessels <= 2 * n_truth, f"{n_vessels} vessel objects for {n_truth} vessels in the truth"


@pytest.mark.parametrize("paint", ["shadow", "dark hull"])
def test_a_shadow_cast_on_the_water_at_a_berth_is_not_a_departure(paint: str) -> None:
    """AFTER shows an empty berth; BEFORE is the same image with a 70 m x 14 m patch at the berth darkened either
    like a cast shadow (sky light only: each band kept in proportion, the blue most) or painted a neutral dark grey
    (a hull). Both are not water at BEFORE and water at AFTER; only the painted one left."""
    _spec, berth = _quay_port(33)
    ship = berth.place(70.0, along_m=0.0, hull="dark", present=(True, False), id="S")
    pair, sp = _pair(33, [ship], shift_px=(0.5, -0.3))
    patch = next(t for t in sp.truth if t.id == "S").polygon
    inside = rfeatures.geometry_mask([patch], out_shape=pair.after.shape, transform=pair.after.transform, invert=True)
    sky_lit = {"red": 0.3, "green": 0.35, "blue": 0.45}
    data = pair.after.data.copy()
    for i, band in enumerate(pair.after.bands):
        data[i][inside] = data[i][inside] * sky_lit[band] if paint == "shadow" else 12.0
    painted = dataclasses.replace(pair, before=dataclasses.replace(pair.after, data=data))
    got = _found(painted)
    if paint == "shadow":
        assert got == []
    else:
        assert got and {s for s, *_ in got} == {"departed"}


def test_a_departure_at_a_crowded_quay_is_not_taken_for_sea_clutter() -> None:
    """A 90 m hull leaves a quay where four ships stay; AFTER is delivered at 5 m and resampled onto BEFORE's 3 m
    grid, so the mixed pixels along the quay and the staying hulls flip between water and not-water. Those flips
    are not sea clutter: the departure is found, alone, with its length."""
    spec, berth = _quay_port(31, 3.0)
    ships = [berth.place(90.0, along_m=150.0, hull="dark", present=(True, False), id="LEAVES")]
    for k, (along, hull) in enumerate([(-170.0, "bright"), (-100.0, "grey"), (-30.0, "bright"), (60.0, "grey")]):
        ships.append(berth.place(60.0, along_m=along, hull=hull, id=f"STAYS{k}"))
    spec = dataclasses.replace(spec, vessels=ships)
    d0 = synth.DateSpec(dt.date(2025, 1, 18), layout="analytic", sea_state=0.3)
    d1 = synth.DateSpec(dt.date(2025, 1, 27), layout="analytic", sea_state=0.3, shift_px=(0.4, -0.3), pixel_size_m=5.0)
    sp = synth.make_pair(spec, d0, d1)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = next(t for t in sp.truth if t.id == "LEAVES")
    got = _found(pair)
    assert [s for s, *_ in got] == ["departed"], got
    _status, x, y, length, _heading = got[0]
    c = truth.polygon.centroid
    assert np.hypot(x - c.x, y - c.y) < 0.25 * truth.length_m
    assert length == pytest.approx(truth.length_m, rel=0.1)


def _dark_hull_leaves_between_sensors(pixel_size_m: float) -> synth.SyntheticPair:
    """An analytic product (with NIR, hazy) before, a visual one after: a dark 110 m hull leaves its berth."""
    spec, berth = _quay_port(3, pixel_size_m)
    leaves = berth.place(110.0, along_m=-60.0, hull="dark", present=(True, False), id="LEAVES")
    spec = dataclasses.replace(spec, vessels=[leaves])
    d0 = synth.DateSpec(dt.date(2025, 1, 18), layout="analytic", haze=0.2, sea_state=0.3)
    d1 = synth.DateSpec(dt.date(2025, 1, 27), layout="visual", sea_state=0.3, shift_px=(1.0, -1.5))
    return synth.make_pair(spec, d0, d1)


@pytest.mark.parametrize("pixel_size_m", [0.8, 3.0])
def test_departure_seen_on_the_water_of_the_date_with_nir(pixel_size_m: float) -> None:
    # Where the hull lay the first date's water is NDWI water (the hull is not water, the sea is), not the colour
    # model of the common RGB bands, in which a dark hull has the water's colour: the departure is one 110 m hull,
    # not missed or a fragment
    sp = _dark_hull_leaves_between_sensors(pixel_size_m)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    assert "nir" not in pair.before.bands and "nir" in pair.detection_scenes[0].bands
    (t,) = [o for o in sp.truth if o.kind == "vessel"]
    near = [o for o in berth_changes(pair) if o.geometry.centroid.distance(t.polygon.centroid) < t.length_m / 2]
    assert [o.status for o in near] == ["departed"]
    assert near[0].length_m == pytest.approx(t.length_m, rel=0.15)


@pytest.mark.parametrize("pixel_size_m", [0.8, 3.0])
def test_dark_hull_that_left_between_sensors_is_one_departure_in_the_compare(pixel_size_m: float) -> None:
    # the whole compare on the same pair: the before date's detection of the hull is judged against the water
    # around it in every band (the band mean of the RGB the dates share hardly tells a dark hull from the water,
    # and the quay beside it swamps its contrast), so it is not "verified" as stayed at the after date
    sp = _dark_hull_leaves_between_sensors(pixel_size_m)
    _pair, changes = compare_scenes(sp.before.to_scene(), sp.after.to_scene())
    (t,) = [o for o in sp.truth if o.kind == "vessel"]
    near = [o for o in changes.objects if o.kind == "vessel" and o.geometry.distance(t.polygon) < t.length_m / 4]
    assert [o.status for o in near] == ["departed"]
    assert near[0].length_m == pytest.approx(t.length_m, rel=0.15)
