"""Known-answer tests for quay equipment detection (berthwatch.equipment) on small synthetic quays.

The scenes come from :mod:`berthwatch.synth` (a straight quay, land to the east, cranes on the quay edge and a
shed) with equipment placed explicitly, so every object's size, heading and position is known.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

import numpy as np
import pytest
import shapely
from threadpoolctl import threadpool_limits

from berthwatch import synth
from berthwatch.config import EquipmentConfig
from berthwatch.equipment import (
    FEATURE_NAMES,
    _filled_components,
    _Groups,
    _local_contrast,
    _shadow_mask,
    detect_equipment,
    equipment_candidates,
    equipment_supported,
    load_training_table,
    make_classifier,
)
from berthwatch.geo import heading_difference
from berthwatch.masks import water_mask

PX = 0.8
ROW_STEP = 12.19 + 0.4  # 40 ft containers end to end with a 0.4 m gap


def _spec(equipment: list[synth.EquipmentSpec], px: float = PX, seed: int = 20001) -> synth.PortSpec:
    return synth.PortSpec(
        seed=seed,
        width_m=320,
        height_m=240,
        pixel_size_m=px,
        layout="quay",
        land_side=90,
        vessels=[],
        equipment=equipment,
    )


@functools.lru_cache(maxsize=8)
def _render(key: str, px: float = PX) -> tuple[object, object, np.ndarray]:
    eq = _LAYOUTS[key]()
    port = synth.make_port(_spec(eq, px))
    ss = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18)))
    scene = ss.to_scene()
    land = ~water_mask(scene) & scene.valid
    return scene, ss, land


def _row(colour: str = "red", n: int = 5, length: float = 12.19) -> list[synth.EquipmentSpec]:
    step = length + 0.4
    return [
        synth.EquipmentSpec(
            x=125, y=-110 + k * step, length_m=length, width_m=2.44, heading_deg=0, subtype="container", colour=colour
        )
        for k in range(n)
    ]


def _vehicles() -> list[synth.EquipmentSpec]:
    return [
        synth.EquipmentSpec(x=120, y=60, length_m=9.0, width_m=2.5, heading_deg=30, model="truck", colour="olive"),
        synth.EquipmentSpec(x=140, y=-20, length_m=7.0, width_m=3.5, heading_deg=75, model="tank", colour="olive"),
        synth.EquipmentSpec(x=110, y=-60, length_m=4.6, width_m=1.8, heading_deg=140, model="car", colour="white"),
        synth.EquipmentSpec(x=150, y=90, length_m=4.6, width_m=1.8, heading_deg=10, model="car", colour="black"),
    ]


def _parking_block(rows: int = 4, per_row: int = 12) -> list[synth.EquipmentSpec]:
    """Olive trucks parked side by side 0.8 m apart, rows 1.2 m apart: more vehicle and shadow than pavement."""
    return [
        synth.EquipmentSpec(
            x=100 + k * 3.3, y=-40 + j * 10.2, length_m=9.0, width_m=2.5, heading_deg=0, model="truck", colour="olive"
        )
        for j in range(rows)
        for k in range(per_row)
    ]


_LAYOUTS = {
    "parking": _parking_block,
    "row40": lambda: _row("red", 5, 12.19),
    "row20": lambda: _row("blue", 6, 6.06),
    "vehicles": _vehicles,
    "empty": lambda: [],
}


def _truth_equipment(ss) -> list:
    return [t for t in ss.truth if t.kind == "equipment"]


def _matches(dets, truth, tol_m: float = 3.0):
    """For each truth object, the detection whose centroid is nearest (within ``tol_m``), or None."""
    out = []
    for t in truth:
        c = t.polygon.centroid
        best, bd = None, tol_m
        for d in dets:
            dd = d.geometry.centroid.distance(c)
            if dd < bd:
                best, bd = d, dd
        out.append(best)
    return out


def test_coarse_pixels_are_skipped_with_a_note():
    port = synth.make_port(_spec([], px=3.0))
    scene = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18))).to_scene()
    ok, why = equipment_supported(scene, EquipmentConfig())
    assert not ok
    assert "3.00 m" in why and "1.2" in why
    fine = synth.render(synth.make_port(_spec([], px=1.0)), synth.DateSpec(date=dt.date(2025, 1, 18))).to_scene()
    assert equipment_supported(fine, EquipmentConfig()) == (True, "")


def test_land_mask_of_wrong_shape_is_refused():
    scene, _ss, land = _render("empty")
    with pytest.raises(ValueError, match="land mask shape"):
        detect_equipment(scene, land[:-1])


def test_no_land_gives_no_equipment():
    scene, _ss, land = _render("row40")
    assert detect_equipment(scene, np.zeros_like(land)) == []


@pytest.mark.xfail(reason="touching rows are under-split at 0.8 m (weakness)", strict=False)
@pytest.mark.parametrize(("key", "length"), [("row40", 12.19), ("row20", 6.06)])
def test_row_of_touching_containers_gives_one_detection_each(key, length):
    scene, ss, land = _render(key)
    truth = _truth_equipment(ss)
    dets = detect_equipment(scene, land)
    found = _matches(dets, truth)
    assert all(d is not None for d in found), f"{sum(d is None for d in found)} of {len(truth)} containers missed"
    assert len({id(d) for d in found}) == len(truth), "two containers share one detection"
    for d in found:
        assert d.length_m == pytest.approx(length, rel=0.10)
        assert d.width_m == pytest.approx(2.44, abs=1.0)


@pytest.mark.xfail(reason="olive truck on concrete missed (weakness)", strict=False)
def test_scattered_vehicles_found_with_heading():
    """A truck, a tank, a white car on bright concrete and a black one: all found, heading within 10 degrees."""
    scene, ss, land = _render("vehicles")
    truth = _truth_equipment(ss)
    found = _matches(detect_equipment(scene, land), truth)
    for t, d in zip(truth, found, strict=True):
        assert d is not None, f"{t.extra.get('model')} {t.extra.get('colour')} missed"
        assert heading_difference(d.heading_deg, t.heading_deg) <= 10.0
        assert d.length_m == pytest.approx(t.length_m, rel=0.25)


def test_vehicles_parked_in_a_packed_block_are_found():
    """A block of 48 trucks where vehicles and their shadows outnumber the pavement within any background window:
    three in four found, and half of them measured within a quarter of their length (the rest are cut in pieces
    or joined end to end). (Contrast estimators that took the cells' most common surface for the pavement found
    18-35 of them: bench/README.)"""
    scene, ss, land = _render("parking")
    truth = _truth_equipment(ss)
    found = _matches(detect_equipment(scene, land), truth)
    n = sum(d is not None for d in found)
    assert n >= 0.75 * len(truth), f"{n} of {len(truth)} parked trucks found"
    whole = sum(
        d is not None and abs(d.length_m - t.length_m) <= 0.25 * t.length_m for t, d in zip(truth, found, strict=True)
    )
    assert whole >= 0.5 * len(truth), f"{whole} of {len(truth)} parked trucks measured whole"


def test_dark_and_bright_vehicles_have_their_polarity():
    scene, ss, land = _render("vehicles")
    truth = _truth_equipment(ss)
    found = _matches(detect_equipment(scene, land), truth)
    by_colour = {t.extra.get("colour"): d for t, d in zip(truth, found, strict=True)}
    assert by_colour["white"] is not None and by_colour["white"].features["bright"] == 1.0
    assert by_colour["black"] is not None and by_colour["black"].features["bright"] == 0.0


@pytest.mark.xfail(reason="shed eaves / crane shadow edges give false pieces (weakness)", strict=False)
def test_shed_and_cranes_give_no_equipment():
    """The quay holds cranes (legs, frames, long shadows) and a shed with rooftop clutter, but no equipment."""
    scene, ss, land = _render("empty")
    assert _truth_equipment(ss) == []
    dets = detect_equipment(scene, land)
    assert dets == [], [(round(d.length_m, 1), round(d.width_m, 1), d.confidence) for d in dets]


def test_confidence_ranks_true_detections_first():
    scene, ss, land = _render("vehicles")
    truth = _truth_equipment(ss)
    dets = detect_equipment(scene, land)
    true_ids = {id(d) for d in _matches(dets, truth) if d is not None}
    good = [d.confidence for d in dets if id(d) in true_ids]
    bad = [d.confidence for d in dets if id(d) not in true_ids]
    assert good
    assert all(0.0 <= d.confidence <= 1.0 for d in dets)
    assert [d.confidence for d in dets] == sorted((d.confidence for d in dets), reverse=True)
    if bad:
        assert np.mean(good) > np.mean(bad)


def test_objects_reaching_the_water_are_not_equipment():
    """Searching a mask that stops right at the row: pieces touching the excluded side are refused."""
    scene, ss, land = _render("row40")
    # the row runs north-south at x = 125 m east of the centre; cut the land just west of it
    cols = np.arange(scene.shape[1])
    x_cut = scene.transform.c + (cols + 0.5) * scene.transform.a
    centre_x = ss.truth[0].polygon.centroid.x
    cut = land & (x_cut[None, :] >= centre_x - 0.5)
    dets = detect_equipment(scene, cut)
    near = [d for d in dets if abs(d.geometry.centroid.x - centre_x) < 3.0]
    assert near == []


def test_training_table_loads_and_the_model_fits_deterministically():
    """The shipped table holds both classes from synthetic training seeds only (>= 10000, never bench seeds),
    and fitting the classifier twice gives the same probabilities."""
    x, y, groups, weight = load_training_table()
    assert x.shape == (y.size, len(FEATURE_NAMES))
    assert np.isfinite(x).all() and (weight > 0).all()
    assert set(np.unique(y)) == {0, 1}
    seeds = {int(g.removeprefix("synth-")) for g in groups}
    assert min(seeds) >= 10000 and len(seeds) >= 10
    sub = slice(0, None, 5)
    probe = slice(2, None, 37)
    with threadpool_limits(limits=1):
        p1 = make_classifier().fit(x[sub], y[sub], sample_weight=weight[sub]).predict_proba(x[probe])[:, 1]
        p2 = make_classifier().fit(x[sub], y[sub], sample_weight=weight[sub]).predict_proba(x[probe])[:, 1]
    np.testing.assert_array_equal(p1, p2)
    # the model separates the classes far better than chance
    assert p1[y[probe] == 1].mean() > p1[y[probe] == 0].mean() + 0.2


# ---------------------------------------------------------------------------------------------------------------
# vectorised piece evidence and the sky-lit shadow line
# ---------------------------------------------------------------------------------------------------------------
def test_grouped_reductions_match_numpy_per_piece():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 7, size=500)
    labels[:7] = np.arange(7)  # every piece non-empty
    v = rng.normal(size=500)
    g = _Groups(labels, 7)
    for k in range(7):
        x = v[labels == k]
        assert g.mean(v)[k] == pytest.approx(x.mean())
        assert g.min(v)[k] == x.min() and g.max(v)[k] == x.max()
        assert g.percentile(v, 90)[k] == pytest.approx(np.percentile(x, 90))


def test_holes_of_a_component_are_filled_but_open_bays_are_not():
    cand = np.zeros((20, 30), dtype=bool)
    cand[2:9, 2:9] = True
    cand[4:7, 4:7] = False  # enclosed hole: part of the component
    cand[12:18, 12:20] = True
    cand[14:18, 14:18] = False  # a bay open to the image's bottom side... and to the rest of the ground
    cand[17, 12:20] = False
    lab, n = _filled_components(cand)
    assert n == 2
    assert (lab[4:7, 4:7] == lab[2, 2]).all()
    assert (lab[14:17, 14:18] == 0).all()


def _painted(ratio_vec: np.ndarray, centre_xy: tuple[float, float], half_m: tuple[float, float]):
    """The empty quay with a rectangle painted at the local pavement level times ``ratio_vec`` per band."""
    scene, _ss, land = _render("empty")
    cfg = EquipmentConfig()
    _z, ratio, _t = _local_contrast(scene, land & scene.valid, config=cfg)
    data = scene.data.astype(np.float32)
    col, row = ~scene.transform @ centre_xy
    r, c = int(row), int(col)
    hr, hc = round(half_m[0] / PX), round(half_m[1] / PX)
    win = (slice(None), slice(r - hr, r + hr), slice(c - hc, c + hc))
    background = data[win] / np.maximum(ratio[win], 1e-6)
    data[win] = background * ratio_vec[:, None, None]
    return dataclasses.replace(scene, data=data.round().astype(scene.data.dtype)), land, (2 * hr * PX, 2 * hc * PX)


def _sky_lit_ratio() -> np.ndarray:
    scene, _ss, land = _render("empty")
    cfg = EquipmentConfig()
    _z, ratio, _t = _local_contrast(scene, land & scene.valid, config=cfg)
    _mask, ref = _shadow_mask(ratio, land & scene.valid, scene, config=cfg)
    assert ref is not None  # the shed and the cranes cast large shadows
    return ref


def _open_ground() -> tuple[float, float]:
    """A point of open pavement: where the first container of the row layouts stands (the same port)."""
    _scene, ss, _land = _render("row40")
    c = ss.truth[0].polygon.centroid
    return float(c.x), float(c.y)


@pytest.mark.parametrize("depth", [1.0, 0.5])
def test_cast_shadow_on_pavement_gives_no_equipment(depth):
    """An 8 x 3.2 m patch of pavement darkened with the scene's own sky-lit band ratios (a cast shadow, fully or
    half lit) is not proposed at all, so it is never equipment."""
    ref = _sky_lit_ratio()
    xy = _open_ground()
    scene, land, _size = _painted(1.0 + depth * (ref - 1.0), xy, (4.0, 1.6))
    cands, _x = equipment_candidates(scene, land)
    assert [c for c in cands if c.geometry.centroid.distance(shapely.Point(xy)) < 3.0] == []
    assert [d for d in detect_equipment(scene, land) if d.geometry.centroid.distance(shapely.Point(xy)) < 3.0] == []


def test_dark_item_is_measured_and_lies_off_the_sky_lit_shadow_line():
    """The same patch painted olive (darker, but not with the sky-lit ratios) is proposed with its size, and its
    mean band ratios lie far off the pavement-to-shadow line."""
    xy = _open_ground()
    scene, land, (length, width) = _painted(np.array([0.35, 0.55, 0.5, 0.9], dtype=np.float32), xy, (4.0, 1.6))
    cands, x = equipment_candidates(scene, land)
    assert x.shape == (len(cands), len(FEATURE_NAMES))
    near = [c for c in cands if c.geometry.centroid.distance(shapely.Point(xy)) < 1.5 and c.features["bright"] == 0]
    assert near, "the painted rectangle was not proposed"
    c = max(near, key=lambda c: c.features["stability"])
    assert c.length_m == pytest.approx(length, abs=1.5 * PX)
    assert c.width_m == pytest.approx(width, abs=1.5 * PX)
    assert c.features["rectangularity"] > 0.8
    assert c.features["shadow_line_resid"] > 0.1
