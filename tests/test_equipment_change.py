"""Known-answer tests for quay equipment in the two-date diff (berthwatch.match): small synthetic yards.

The detections handed to :func:`berthwatch.match.diff` are the synthetic truth footprints (or deliberately wrong
ones), so that these tests exercise the two-date evidence, not the single-date detector.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from berthwatch import synth
from berthwatch.align import align
from berthwatch.config import Settings
from berthwatch.geo import oriented_measures
from berthwatch.match import diff
from berthwatch.models import AlignedPair, ChangedObject, Detection

# seed 4, "quay" layout with the land to the north: open pavement left of and above one warehouse
SEED = 4
BEFORE = synth.DateSpec(dt.date(2025, 1, 18))
# the usual nuisances between the dates: gain, haze, a misregistration, the sun a little further round
AFTER = synth.DateSpec(dt.date(2025, 1, 27), gain=1.1, haze=0.1, shift_px=(1.0, -0.5), sun_azimuth_deg=155.0)


def _yard(equipment: list[synth.EquipmentSpec], after: synth.DateSpec = AFTER) -> synth.SyntheticPair:
    spec = synth.PortSpec(
        seed=SEED, width_m=200, height_m=160, pixel_size_m=0.8, layout="quay", land_side=0.0,
        vessels=[], equipment=equipment, distractors=False,
    )  # fmt: skip
    return synth.make_pair(spec, BEFORE, after)


def _det(poly: Polygon, pair: AlignedPair) -> Detection:
    length, width, heading, _ = oriented_measures(poly, crs=pair.before.crs)
    return Detection(
        geometry=poly, kind="equipment", confidence=0.9, length_m=length, width_m=width, heading_deg=heading,
        area_m2=poly.area,
    )  # fmt: skip


def _status_of(objects: Iterable[ChangedObject], poly: Polygon) -> list[str]:
    """Statuses of the reported objects lying mostly on ``poly``."""
    return [
        o.status
        for o in _equipment(objects)
        if shapely.area(shapely.intersection(o.geometry, poly)) > 0.5 * min(o.geometry.area, poly.area)
    ]


def _equipment(objects: Iterable[ChangedObject]) -> list[ChangedObject]:
    # (without a water mask the diff may also recover vessels from any strong change: not what is tested here)
    return [o for o in objects if o.kind == "equipment"]


@pytest.fixture(scope="module")
def block_pair() -> tuple[AlignedPair, list[synth.TruthObject]]:
    """A packed block of 3 x 6 olive trucks (1 m apart) that all leave, a row of grey cars that stays, and four
    sand-coloured vehicles (close to the pavement's colour) that leave one by one."""
    eq = [
        synth.EquipmentSpec(x=-85 + 3.5 * c, y=40 + 8.0 * r, length_m=7.0, width_m=2.5, colour="olive",
                            present=(True, False), id=f"G{r}{c}")
        for r in range(3)
        for c in range(6)
    ]  # fmt: skip
    eq += [
        synth.EquipmentSpec(x=-85 + 4.0 * c, y=10, length_m=4.5, width_m=2.0, colour="grey", id=f"S{c}")
        for c in range(5)
    ]
    eq += [
        synth.EquipmentSpec(x=10 + 9.0 * c, y=50, length_m=5.0, width_m=2.2, colour="sand", present=(True, False),
                            id=f"L{c}")
        for c in range(4)
    ]  # fmt: skip
    sp = _yard(eq)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = [t for t in sp.truth if t.kind == "equipment"]
    assert not any(t.occluded for t in truth)
    return pair, truth


def test_packed_block_that_left_is_departed_not_unknown(block_pair: tuple[AlignedPair, list]) -> None:
    # the ring around each truck of the block changed (its neighbours left too): that is no cloud
    pair, truth = block_pair
    dets_b = [_det(t.polygon, pair) for t in truth]
    dets_a = [_det(t.polygon_after, pair) for t in truth if t.status == "stayed"]
    changes = diff(dets_b, dets_a, pair)
    for t in truth:
        assert _status_of(changes.objects, t.polygon) == [t.status], t.id
    assert sum(t.status == "departed" for t in truth) == 22


def test_detection_on_a_vacated_spot_is_not_an_arrival(block_pair: tuple[AlignedPair, list]) -> None:
    # the AFTER detector fires on the bare spot a sand vehicle left (0.8 m off): that vehicle departed, and the
    # spurious detection is not an arrival; likewise a piece of pavement between the cars is no arrival
    pair, truth = block_pair
    gone = next(t for t in truth if t.id == "L1")
    ghost = shapely.affinity.translate(gone.polygon, 0.8 / pair.before.ground_scale, 0.0)
    cars = sorted((t for t in truth if t.id.startswith("S")), key=lambda t: t.id)
    between = shapely.affinity.translate(cars[0].polygon, 0.0, -6.0 / pair.before.ground_scale)
    dets_b = [_det(t.polygon, pair) for t in truth]
    dets_a = [_det(t.polygon_after, pair) for t in cars] + [_det(ghost, pair), _det(between, pair)]
    changes = diff(dets_b, dets_a, pair)
    assert _status_of(changes.objects, gone.polygon) == ["departed"]
    assert not [o for o in _equipment(changes.objects) if o.status == "arrived"]


def test_outline_split_differently_is_not_a_change() -> None:
    # a 12 m container seen whole at one date and as one 6 m module at the other (detectors cut packed rows
    # differently from date to date) is the same container: stayed, neither departed nor arrived
    eq = [synth.EquipmentSpec(x=-70, y=30, length_m=12.19, width_m=2.44, subtype="container", colour="blue", id="C")]
    sp = _yard(eq)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    (t,) = (t for t in sp.truth if t.kind == "equipment")
    # heading 0: the container lies north-south; keep its northern half at the second date
    c = t.polygon_after.centroid
    half = shapely.affinity.scale(t.polygon_after, xfact=1.0, yfact=0.5, origin=(c.x, t.polygon_after.bounds[3]))
    changes = diff([_det(t.polygon, pair)], [_det(half, pair)], pair)
    assert [o.status for o in _equipment(changes.objects)] == ["stayed"]


def test_items_under_a_cloud_are_unknown_and_clear_ones_stayed() -> None:
    # a thick cloud over part of the yard at the second date: the items it hides (not detected then) are
    # unknown, not departed; the items in the clear, detected at both dates, stayed
    hidden = [synth.EquipmentSpec(x=40 + 6.0 * c, y=50, length_m=5.0, width_m=2.2, colour="olive", id=f"H{c}")
              for c in range(3)]  # fmt: skip
    clear = [synth.EquipmentSpec(x=-80 + 6.0 * c, y=20, length_m=5.0, width_m=2.2, colour="olive", id=f"K{c}")
             for c in range(3)]  # fmt: skip
    after = synth.DateSpec(dt.date(2025, 1, 27), gain=1.1, shift_px=(1.0, -0.5), cloud=(46.0, 50.0, 30.0))
    sp = _yard(hidden + clear, after)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = {t.id: t for t in sp.truth if t.kind == "equipment"}
    assert all(truth[f"H{c}"].occluded for c in range(3)) and not any(truth[f"K{c}"].occluded for c in range(3))
    dets_b = [_det(t.polygon, pair) for t in truth.values()]
    dets_a = [_det(truth[f"K{c}"].polygon_after, pair) for c in range(3)]
    changes = diff(dets_b, dets_a, pair)
    for c in range(3):
        assert _status_of(changes.objects, truth[f"H{c}"].polygon) == ["unknown"]
        assert _status_of(changes.objects, truth[f"K{c}"].polygon) == ["stayed"]


def test_bare_ground_evidence_can_be_switched_off() -> None:
    # ground_radius_m = 0 turns the bare-ground evidence off: equipment is then judged like vessels (no
    # ground_* evidence at all), and the default settings do report it
    eq = [synth.EquipmentSpec(x=-70, y=30, length_m=6.0, width_m=2.4, colour="olive", present=(True, False))]
    sp = _yard(eq)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    (t,) = (t for t in sp.truth if t.kind == "equipment")
    (on,) = _equipment(diff([_det(t.polygon, pair)], [], pair).objects)
    settings = Settings().updated({"match": {"ground_radius_m": 0.0}})
    (off,) = _equipment(diff([_det(t.polygon, pair)], [], pair, settings=settings).objects)
    assert "ground_shift_z" in on.evidence and on.status == "departed"
    assert not any(k.startswith("ground_") for k in off.evidence)


# ----------------------------------------------------------------------------------------------------------------
# the sun moved round by 60 degrees between the dates: the shadows of the items moved, the items did not
SUN_AFTER = synth.DateSpec(dt.date(2025, 1, 27), gain=1.1, shift_px=(1.0, -0.5), sun_azimuth_deg=210.0)


def _new_shadow(poly: Polygon, height_m: float, elevation_deg: float) -> Polygon:
    """The part of ``poly``'s cast shadow at SUN_AFTER that was lit at BEFORE, as a detector outline would be."""
    from berthwatch.synth._render import _sweep

    after = _sweep([poly], [height_m], SUN_AFTER.sun_azimuth_deg, elevation_deg)[0]
    before = _sweep([poly], [height_m], BEFORE.sun_azimuth_deg, elevation_deg)[0]
    new = after.difference(before).difference(poly).buffer(-0.4)
    part = max(getattr(new, "geoms", [new]), key=lambda g: g.area)
    return shapely.minimum_rotated_rectangle(part)


@pytest.fixture(scope="module")
def sun_pair() -> tuple[AlignedPair, dict[str, synth.TruthObject]]:
    """Four white containers that stay, and a black truck that leaves 2 m east of the last one (not on its shadow
    side at either date); the sun 60 degrees further round at the second date."""
    eq = [
        synth.EquipmentSpec(x=-80 + 10.0 * c, y=30, length_m=6.06, width_m=2.44, subtype="container", colour="white",
                            id=f"W{c}")
        for c in range(4)
    ]  # fmt: skip
    eq.append(synth.EquipmentSpec(x=-45.5, y=30, length_m=7.0, width_m=2.5, colour="black", model="truck", id="K",
                                  present=(True, False)))  # fmt: skip
    sp = _yard(eq, SUN_AFTER)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    return pair, {t.id: t for t in sp.truth if t.kind == "equipment"}


def _bright_det(poly: Polygon, pair: AlignedPair) -> Detection:
    d = _det(poly, pair)
    d.features["bright"] = 1.0  # the detector's polarity: brighter than the pavement
    return d


def test_detection_on_a_shadow_the_sun_moved_is_not_an_arrival(sun_pair: tuple[AlignedPair, dict]) -> None:
    # the AFTER detector fires on the new shadow beside each white container (dark, item-sized): no arrival, and
    # the containers stayed; the black truck that left beside them (black paint darkens like a shadow) departed
    pair, truth = sun_pair
    whites = [truth[f"W{c}"] for c in range(4)]
    shadows = [_new_shadow(t.polygon, 2.6, BEFORE.sun_elevation_deg) for t in whites]
    assert all(s.area > 4.0 for s in shadows)
    dets_b = [_bright_det(t.polygon, pair) for t in whites] + [_det(truth["K"].polygon, pair)]
    dets_a = [_bright_det(t.polygon_after, pair) for t in whites] + [_det(s, pair) for s in shadows]
    changes = diff(dets_b, dets_a, pair)
    for t in whites:
        assert _status_of(changes.objects, t.polygon) == ["stayed"], t.id
    assert not [o for o in _equipment(changes.objects) if o.status == "arrived"]
    assert _status_of(changes.objects, truth["K"].polygon) == ["departed"]


def test_without_the_sky_lit_spectrum_a_shadow_piece_is_an_arrival(sun_pair: tuple[AlignedPair, dict]) -> None:
    # the same detections judged without band roles (no spectrum to tell a shadow by): the new shadows are
    # reported as arrivals — the rule above is what keeps them out
    from berthwatch import match

    pair, truth = sun_pair
    whites = [truth[f"W{c}"] for c in range(4)]
    shadows = [_new_shadow(t.polygon, 2.6, BEFORE.sun_elevation_deg) for t in whites]
    dets_b = [_bright_det(t.polygon, pair) for t in whites]
    dets_a = [_bright_det(t.polygon_after, pair) for t in whites] + [_det(s, pair) for s in shadows]
    grid = match._grid(pair, match.change_magnitude(pair))
    objects = match._classify(dets_b, dets_a, grid, Settings().match, 0.0, bands=None)
    assert [o.status for o in objects if o.status == "arrived"]


def _shadow_part(poly: Polygon, height_m: float, elevation_deg: float, at: str) -> Polygon:
    """The part of ``poly``'s cast shadow at date ``at`` (BEFORE or SUN_AFTER) that is lit at the other date."""
    from berthwatch.synth._render import _sweep

    after = _sweep([poly], [height_m], SUN_AFTER.sun_azimuth_deg, elevation_deg)[0]
    before = _sweep([poly], [height_m], BEFORE.sun_azimuth_deg, elevation_deg)[0]
    here, there = (before, after) if at == "before" else (after, before)
    part = here.difference(there).difference(poly).buffer(-0.4)
    return shapely.minimum_rotated_rectangle(max(getattr(part, "geoms", [part]), key=lambda g: g.area))


@pytest.mark.parametrize("reach_m", [10.0, 0.0])
def test_a_shadow_that_turned_with_the_sun_is_neither_departed_nor_arrived(
    sun_pair: tuple[AlignedPair, dict], reach_m: float
) -> None:
    # a 5 m structure on W0's outline that is not detected at either date (a crane leg, a mast: not equipment), so
    # nothing present at both dates casts the shadow; the detector fires on the stretch of its shadow that is lit
    # at the other date, at BEFORE and at AFTER: one shadow that turned with the sun, not an item gone and another
    # come. With the rule off (reach 0) the two halves are reported as a departure and an arrival
    pair, truth = sun_pair
    w0 = truth["W0"].polygon
    old, new = (_shadow_part(w0, 5.0, BEFORE.sun_elevation_deg, at) for at in ("before", "after"))
    assert old.area > 4.0 and new.area > 4.0 and old.distance(new) < 10.0
    settings = Settings().updated({"match": {"shadow_pair_m": reach_m}})
    changes = diff([_det(old, pair)], [_det(new, pair)], pair, settings=settings)
    statuses = sorted(o.status for o in _equipment(changes.objects) if o.status in ("departed", "arrived"))
    assert statuses == ([] if reach_m > 0 else ["arrived", "departed"])


def test_items_in_a_cloud_shadow_stayed_or_unknown() -> None:
    # at the second date a cloud's shadow darkens the whole neighbourhood of a row of cars (no bare ground around
    # them stays unchanged) and the detector misses them there. Cars that stand out from the shaded ground at
    # both dates stayed; the car that left is not vouched for either way: unknown
    cars = [synth.EquipmentSpec(x=-66 + 6.0 * c, y=20, length_m=4.6, width_m=2.0, colour="blue", id=f"D{c}",
                                present=(True, c != 1)) for c in range(3)]  # fmt: skip
    sp = _yard(cars)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = {t.id: t for t in sp.truth if t.kind == "equipment"}
    # the shadow: a 45 m disk around the cars lit by the sky only (darker, relatively bluer), soft-edged
    rows, cols = np.indices(pair.after.shape)
    x, y = pair.after.transform @ (cols + 0.5, rows + 0.5)
    c = truth["D1"].polygon.centroid
    shade = np.clip((45.0 - np.hypot(x - c.x, y - c.y) * pair.after.ground_scale) / 10.0, 0.0, 1.0)
    lit = {"blue": 0.5, "green": 0.42, "red": 0.36, "nir": 0.3}
    factor = np.stack([1.0 - shade * (1.0 - lit[b]) for b in pair.after.bands])
    shaded = dataclasses.replace(pair.after, data=(pair.after.data * factor).astype(pair.after.data.dtype))
    pair = dataclasses.replace(pair, after=shaded)
    changes = diff([_det(t.polygon, pair) for t in truth.values()], [], pair)
    quiet = Settings().match.min_quiet_ground
    assert all(o.evidence["ground_quiet"] < quiet for o in changes.objects)  # the whole neighbourhood changed
    assert {c: _status_of(changes.objects, truth[f"D{c}"].polygon) for c in range(3)} == {
        0: ["stayed"],
        1: ["unknown"],
        2: ["stayed"],
    }


def test_structure_shadow_at_one_date_hides_no_change_and_makes_none() -> None:
    # at the first date the shadow of a tall structure (a building, a crane: 14 x 10 m, sky-lit: darker, relatively
    # bluer) lies over two parked spots, its edge across each, and the detector finds nothing there. At the second
    # date the shadow has gone round with the sun and both spots show a red car. The car that was there all along
    # darkened as the shaded ground beside it did: it stayed (the shadow's edge across it breaks the correlation
    # of the two dates, which alone called it arrived). The one that came shows shaded bare ground there: arrived.
    # A detection on the shaded bare ground itself is no item: nothing departed there
    cars = [
        synth.EquipmentSpec(x=-66.0, y=20, length_m=4.6, width_m=2.0, colour="red", id="S"),
        synth.EquipmentSpec(x=-36.0, y=20, length_m=4.6, width_m=2.0, colour="red", id="A", present=(False, True)),
    ]
    sp = _yard(cars)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = {t.id: t for t in sp.truth if t.kind == "equipment"}
    rows, cols = np.indices(pair.before.shape)
    x, y = pair.before.transform @ (cols + 0.5, rows + 0.5)
    shade = np.zeros(pair.before.shape, bool)
    for t in truth.values():
        c = t.polygon.centroid
        dx, dy = (x - c.x) * pair.before.ground_scale, (y - c.y) * pair.before.ground_scale
        shade |= (np.abs(dx) <= 7.0) & (np.abs(dy - 4.5) <= 5.0)
    lit = {"blue": 0.5, "green": 0.42, "red": 0.36, "nir": 0.3}
    factor = np.stack([np.where(shade, lit[b], 1.0) for b in pair.before.bands])
    data = (pair.before.data * factor).astype(pair.before.data.dtype)
    pair = dataclasses.replace(pair, before=dataclasses.replace(pair.before, data=data))
    # and the first date's detector also fired on a car-sized patch of the shaded bare ground beside S
    patch = shapely.affinity.translate(truth["S"].polygon, 0.0, 6.0 / pair.before.ground_scale)
    changes = diff([_det(patch, pair)], [_det(t.polygon, pair) for t in truth.values()], pair)
    assert _status_of(changes.objects, truth["S"].polygon) == ["stayed"]
    assert _status_of(changes.objects, truth["A"].polygon) == ["arrived"]
    assert _status_of(changes.objects, patch) == []  # bare ground in a shadow: no item, nothing departed


@pytest.mark.parametrize("tolerance", [0.5, -1.0])
def test_item_changed_a_little_and_seen_at_one_date_only_stayed(tolerance: float) -> None:
    # a 20 m yellow structure (a crane's leg lying across the quay) stands at both dates; the detector finds an 8 m
    # piece of it at the second date only, when half of that piece is darker, not by the sky-lit spectrum of a
    # cast shadow (blue drops most: the blur of a thin yellow structure, a tinted shade). Its colour against the
    # ground moved by a fraction of itself: the same item, stayed; with the rule off (tolerance < 0) it is reported
    # as arrived. An olive truck that came onto bare pavement is arrived either way
    eq = [
        synth.EquipmentSpec(x=-66.0, y=20, length_m=20.0, width_m=2.5, colour="yellow", model="truck", id="Y"),
        synth.EquipmentSpec(x=-30.0, y=20, length_m=7.0, width_m=2.5, colour="olive", model="truck", id="N",
                            present=(False, True)),
    ]  # fmt: skip
    sp = _yard(eq)
    pair = align(sp.before.to_scene(), sp.after.to_scene())
    truth = {t.id: t for t in sp.truth if t.kind == "equipment"}
    x0, y0, x1, y1 = truth["Y"].polygon_after.bounds  # heading 0: the structure lies north-south
    piece = shapely.box(x0, y0, x1, y0 + 0.4 * (y1 - y0)).intersection(truth["Y"].polygon_after)
    darker = shapely.box(x0, y0, x1, y0 + 0.2 * (y1 - y0)).intersection(piece)
    rows, cols = np.indices(pair.after.shape)
    x, y = pair.after.transform @ (cols + 0.5, rows + 0.5)
    inside = shapely.contains_xy(darker, x, y)
    tint = {"blue": 0.6, "green": 0.8, "red": 0.85, "nir": 0.85}
    factor = np.stack([np.where(inside, tint[b], 1.0) for b in pair.after.bands])
    pair = dataclasses.replace(
        pair, after=dataclasses.replace(pair.after, data=(pair.after.data * factor).astype(pair.after.data.dtype))
    )
    settings = Settings().updated({"match": {"same_occupant_change": tolerance}})
    changes = diff([], [_det(piece, pair), _det(truth["N"].polygon, pair)], pair, settings=settings)
    assert _status_of(changes.objects, piece) == (["stayed"] if tolerance > 0 else ["arrived"])
    assert _status_of(changes.objects, truth["N"].polygon) == ["arrived"]
