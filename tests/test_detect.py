"""Known-answer tests for single-date vessel and equipment detection on small hand-built scenes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
from rasterio import features as rfeatures
from shapely.geometry import Point, Polygon

from _scenes import BRIGHT, LAND, Canvas, rect
from berthwatch import classify, synth
from berthwatch.config import EquipmentConfig
from berthwatch.detect import FEATURE_NAMES, _footprint, detect, vessel_candidates
from berthwatch.equipment import detect_equipment, equipment_supported
from berthwatch.geo import heading_difference
from berthwatch.masks import water_mask


def _harbour(px: float, *, rgb: bool = False, seed: int = 0) -> Canvas:
    c = Canvas((1200.0, 900.0), px, seed=seed, rgb=rgb)
    c.box(0, 0, 300, 900, LAND)  # land on the west, straight quay at x = 300 m
    return c


def _vessels(result):
    return [d for d in result.detections if d.kind == "vessel"]


def _near(dets, canvas: Canvas, x: float, y: float, tol: float = 25.0):
    p = Point(*canvas.to_crs(x, y))
    return [d for d in dets if d.geometry.distance(p) <= tol]


# -------------------------------------------------------------------------------------------------------------
# synthetic scenes (berthwatch.synth: realistic hulls, superstructure, shadows, wakes, sea state) with explicit
# placement; truth comes from the generator


def _synth_scene(vessels, *, px=2.0, layout="open_sea", seed=5, sea=0.2, size_m=(700.0, 500.0), bands="analytic"):
    spec = synth.PortSpec(
        seed=seed,
        width_m=size_m[0],
        height_m=size_m[1],
        pixel_size_m=px,
        layout=layout,
        vessels=vessels,
        equipment=[],
        distractors=False,
        glint=sea,
        whitecaps=sea,
    )
    port = synth.make_port(spec)
    s = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18), layout=bands, sea_state=sea))
    truth = [o for o in s.truth if o.kind == "vessel" and not o.occluded]
    return port, s.to_scene(), truth


def _berth(seed: int, px: float):
    spec = synth.PortSpec(seed=seed, width_m=700.0, height_m=500.0, pixel_size_m=px, layout="quay", vessels=[])
    return max(synth.quay_berths(synth.make_port(spec)), key=lambda b: b.length_m)


def _match(dets, truth_obj):
    """The detections whose centroid lies within half the truth length of the truth centroid."""
    c = truth_obj.polygon.centroid
    return [d for d in dets if d.geometry.centroid.distance(c) <= truth_obj.length_m / 2.0]


def _check_measures(d, t) -> None:
    assert d.length_m == pytest.approx(t.length_m, rel=0.1)
    assert heading_difference(d.heading_deg, t.heading_deg) < 10


@pytest.mark.parametrize(
    "px",
    [
        1.0,
        pytest.param(
            3.0,
            marks=pytest.mark.xfail(
                reason="at 3 m the dark hull is outweighed by its bright superstructure", strict=False
            ),
        ),
    ],
)
def test_anchored_bright_and_dark_hulls_measured_whole(px):
    vs = [
        synth.VesselSpec(-150.0, 80.0, 150.0, heading_deg=60.0, hull="bright"),
        synth.VesselSpec(150.0, -80.0, 120.0, heading_deg=50.0, hull="dark", subtype="tanker"),
    ]
    _port, scene, truth = _synth_scene(vs, px=px)
    v = _vessels(detect(scene))
    assert len(v) == 2
    for t in truth:
        (d,) = _match(v, t)
        _check_measures(d, t)  # a dark hull is measured whole, not by its bright superstructure
        assert d.features["dark"] == float(t.hull == "dark")
        assert 0 < d.confidence <= 1


@pytest.mark.parametrize("px", [2.0, 10.0])
@pytest.mark.parametrize("paint", ["hull", "vegetation"])
def test_a_vegetated_object_is_not_a_vessel(paint, px):
    # the same 150 m object on the water, its NIR that of its paint or four times its red (NDVI 0.6: a mangrove
    # bank, a reed island): only the painted one is a vessel
    vs = [synth.VesselSpec(0.0, 0.0, 150.0, heading_deg=60.0, hull="bright")]
    _port, scene, (t,) = _synth_scene(vs, px=px, size_m=(1500.0, 1200.0) if px > 2 else (700.0, 500.0))
    if paint == "vegetation":
        inside = rfeatures.geometry_mask([t.polygon], out_shape=scene.shape, transform=scene.transform, invert=True)
        data = scene.data.copy()
        red, nir = scene.bands.index("red"), scene.bands.index("nir")
        data[nir][inside] = np.clip(data[red][inside] * 4.0, 0, np.iinfo(data.dtype).max).astype(data.dtype)
        scene = dataclasses.replace(scene, data=data)
    found = _match(_vessels(detect(scene)), t)
    assert len(found) == (1 if paint == "hull" else 0)


@pytest.mark.xfail(reason="the superstructure's shadow on the water, cast along the axis, lengthens a dark hull")
def test_dark_hull_with_shadow_along_its_axis():
    vs = [synth.VesselSpec(0.0, 0.0, 120.0, heading_deg=135.0, hull="dark", subtype="tanker")]
    _port, scene, (t,) = _synth_scene(vs, px=1.0)
    (d,) = _match(_vessels(detect(scene)), t)
    _check_measures(d, t)


@pytest.mark.parametrize(
    "px",
    [
        pytest.param(
            1.0,
            marks=pytest.mark.xfail(
                reason="unsolved at 1 m: the hull is a shore-region candidate but the classifier rejects it",
                strict=False,
            ),
        ),
        pytest.param(
            3.0,
            marks=pytest.mark.xfail(
                reason="fragile: the crane standing over the hull's end can join the hull candidate (too long, "
                "turned); passes or fails with each regeneration of the classifier table",
                strict=False,
            ),
        ),
    ],
)
def test_quay_moored_vessel_found_with_its_length(px):
    berth = _berth(11, px)
    _port, scene, (t,) = _synth_scene([berth.place(140.0, subtype="cargo")], px=px, layout="quay", seed=11)
    v = _vessels(detect(scene))
    (d,) = _match(v, t)
    _check_measures(d, t)
    assert d.features["ring_land"] > 0  # it lies against the quay


@pytest.mark.xfail(reason="unsolved: rafted pairs against a quay are merged or rejected", strict=False)
@pytest.mark.parametrize("px", [1.0, 3.0])
def test_rafted_pair_gives_two_detections(px):
    berth = _berth(12, px)
    inner, outer = berth.rafted_pair((150.0, 130.0))
    _port, scene, truth = _synth_scene([inner, outer], px=px, layout="quay", seed=12)
    v = _vessels(detect(scene))
    assert len(truth) == 2
    for t in truth:
        (d,) = _match(v, t)
        _check_measures(d, t)


@pytest.mark.parametrize(("px", "heading"), [(1.0, 30.0), (1.0, 120.0), (2.0, 30.0)])
def test_visual_only_v_wake_is_replaced_by_the_hull_at_its_apex(px, heading):
    # without NIR a dark tug, its Kelvin arms and its turbulent trail form one hollow V ~110 m x 80 m; the
    # geometric rule keeps the hull at the V's apex
    vs = [synth.VesselSpec(0.0, 40.0, 30.0, heading_deg=heading, subtype="tug", hull="dark", underway=True)]
    _port, scene, (t,) = _synth_scene(vs, px=px, size_m=(360.0, 360.0), bands="visual")
    cands = vessel_candidates(scene, water_mask(scene) & scene.valid, valid=scene.valid)
    g = t.polygon
    k = max(cands, key=lambda k: _footprint(k.mask, k.r0, k.c0, scene).intersection(g).area)
    f = _footprint(k.mask, k.r0, k.c0, scene)
    assert f.intersection(g).area / f.union(g).area > 0.5
    assert k.features["length_m"] == pytest.approx(t.length_m, rel=0.25)


def test_v_wake_rule_leaves_convex_hulls_alone():
    # a moored hull (a rectangle) and a hull with its shadow beside it (an L / parallelogram) are not V's
    from berthwatch.config import VesselConfig
    from berthwatch.detect import _cut_v_wake

    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.0, (120, 120)) + 6.0
    rectangle = np.zeros((120, 120), bool)
    rectangle[50:62, 10:110] = True
    with_shadow = rectangle.copy()
    with_shadow[62:68, 14:112] = True  # shadow cast on the water along one side, slightly offset
    for m in (rectangle, with_shadow):
        assert _cut_v_wake(m, z, px_m=1.0, config=VesselConfig()) is m


@pytest.mark.parametrize("px", [0.5, 3.0, 10.0])
@pytest.mark.parametrize("heading", [0.0, 30.0, 90.0])
def test_end_contrast_tells_a_finite_hull_from_a_piece_of_a_longer_structure(px, heading):
    # a bright 120 m x 20 m hull alone on the water, and the outer 120 m of a 600 m breakwater as bright: past one
    # end of that piece lies water, past the other more breakwater
    from berthwatch.config import VesselConfig
    from berthwatch.detect import _end_contrast

    n = round(900 / px)
    rr, cc = np.indices((n, n)) + 0.5
    a = np.radians(heading)
    u = (cc - n / 2) * np.sin(a) - (rr - n / 2) * np.cos(a)  # along the heading (clockwise from north), pixels
    t = (cc - n / 2) * np.cos(a) + (rr - n / 2) * np.sin(a)
    rng = np.random.default_rng(1)
    values = []
    for structure_m in (120.0, 600.0):
        z = rng.normal(0.0, 1.0, (3, n, n))
        body = (u * px >= -60.0) & (u * px <= structure_m - 60.0) & (np.abs(t) * px <= 10.0)
        z[:, body] += np.array([8.0, 9.0, 6.0])[:, None]
        piece = (np.abs(u) * px <= 60.0) & (np.abs(t) * px <= 10.0)
        r0, c0 = (int(v.min()) for v in np.nonzero(piece))
        sl = np.s_[r0 : r0 + 600, c0 : c0 + 600]
        values.append(_end_contrast(piece[sl], r0, c0, z, px_m=px, config=VesselConfig()))
    hull, breakwater = values
    assert hull > 0.7
    assert breakwater < 0.5 * hull


@pytest.mark.xfail(reason="unsolved: a small fast ferry with a long wake is rejected or lengthened", strict=False)
def test_vessel_under_way_is_not_lengthened_by_its_wake():
    vs = [synth.VesselSpec(0.0, 0.0, 60.0, heading_deg=30.0, subtype="ferry", underway=True)]
    _port, scene, (t,) = _synth_scene(vs, px=2.0)
    v = _vessels(detect(scene))
    (d,) = _match(v, t)
    _check_measures(d, t)


@pytest.mark.parametrize(
    ("subtype", "hull", "length_m", "px", "size_m"),
    [
        ("tug", "dark", 30.0, 1.0, 300.0),  # a dark hull with a bright wake: the old fade rule never trimmed it
        # a wake brighter than the hull: the old rule took it for the hull at some headings (321 m at 120 deg)
        ("cargo", "bright", 80.0, 3.0, 800.0),
    ],
)
@pytest.mark.parametrize("heading", [30.0, 120.0])
def test_under_way_hull_is_cut_from_its_foam_wake(subtype, hull, length_m, px, size_m, heading):
    # the turbulent wake (foam, 3 hull lengths, widening) joins the hull into one blob 4-5x too long; the foam's
    # low NIR/visible ratio separates them (analytic bands)
    vs = [synth.VesselSpec(0.0, 40.0, length_m, heading_deg=heading, subtype=subtype, hull=hull, underway=True)]
    _port, scene, (t,) = _synth_scene(vs, px=px, size_m=(size_m, size_m))
    water = water_mask(scene)
    cands = vessel_candidates(scene, water & scene.valid, valid=scene.valid)
    c = t.polygon.centroid
    (k,) = [k for k in cands if _footprint(k.mask, k.r0, k.c0, scene).distance(c) < px]
    assert k.features["length_m"] == pytest.approx(t.length_m, rel=0.2)
    assert k.features["wake_cut"] > 0.5  # most of the blob was wake
    if hull == "dark":
        # a bright hull keeps the start of its Kelvin arms beside it, which can turn its box (see report)
        (d,) = _match(_vessels(detect(scene)), t)
        _check_measures(d, t)


@pytest.mark.xfail(
    reason="unsolved: on a very rough sea (0.95) the water mask has holes, and bright specks at their edges pass",
    strict=False,
)
def test_rough_sea_with_glint_and_whitecaps_gives_no_vessel():
    _port, scene, truth = _synth_scene([], px=2.0, sea=0.95, seed=8)
    assert truth == []
    assert _vessels(detect(scene)) == []


def test_whitecap_field_gives_no_vessel():
    c = _harbour(1.0)
    rng = np.random.default_rng(1)
    foam = (2000.0, 2100.0, 2100.0, 900.0)  # bright in the visible, weak in NIR
    for _ in range(150):
        x, y = rng.uniform(350, 1150), rng.uniform(50, 850)
        c.paint(rect(x, y, rng.uniform(1, 4), rng.uniform(0.5, 1.5), rng.uniform(0, 180)), foam)
    assert _vessels(detect(c.scene())) == []


def test_small_boat_below_minimum_is_not_reported():
    vs = [synth.VesselSpec(0.0, 0.0, 6.0, heading_deg=30.0, subtype="yacht", hull="bright")]
    _port, scene, _truth = _synth_scene(vs, px=0.5, size_m=(300.0, 200.0))
    assert _vessels(detect(scene)) == []


def test_anchored_ship_on_a_hand_built_scene():
    c = _harbour(3.0)
    c.paint(rect(700, 600, 150, 24, 60), BRIGHT)
    (d,) = _vessels(detect(c.scene()))
    assert d.length_m == pytest.approx(150, rel=0.1)
    assert heading_difference(d.heading_deg, 60) < 10


@pytest.mark.parametrize("width_m, kept", [(24.0, True), (12.0, True), (6.0, False)])
def test_object_thinner_than_any_hull_is_not_a_vessel(width_m, kept):
    """A confident 120 m candidate is a vessel at 24 or 12 m beam (5 and 10 beams long) but not at 6 m (20 beams:
    a quay edge, a boom's shadow, a wake trail), whatever its probability."""
    from berthwatch.config import VesselConfig
    from berthwatch.detect import VesselCandidate, _vessel_detection

    scene = _harbour(1.0).scene()
    mask = np.zeros((40, 140), bool)
    mask[5 : 5 + round(width_m) + 1, 10:131] = True  # measured with one pixel of blur taken off
    feats = dict.fromkeys(FEATURE_NAMES, 0.0) | {"zvis_median": 1.0, "ring_land": 0.0}
    det = _vessel_detection(VesselCandidate(mask, 300, 600, feats), 0.99, scene, config=VesselConfig())
    assert (det is not None) is kept
    if det is not None:
        assert det.length_m == pytest.approx(120.0, abs=2.0) and det.width_m == pytest.approx(width_m, abs=1.5)


def test_shore_pieces_of_one_hull_are_joined_end_to_end_but_not_with_the_quay_or_a_rafted_neighbour():
    from berthwatch.config import VesselConfig
    from berthwatch.detect import _merge_regions

    seg = np.zeros((60, 200), dtype=np.int64)
    seg[0:30, :] = 1  # the quay apron, 30 m wide
    seg[30:46, 10:50] = 2  # one 140 m hull, 16 m beam, cut in three by deck shadows of another brightness
    seg[30:46, 50:100] = 3
    seg[30:46, 100:150] = 4
    seg[46:56, 10:150] = 5  # a rafted hull alongside it, 10 m beam
    level = np.array([0.0, 8.0, 5.0, 12.0, 5.0, 20.0])
    zb = np.stack([level[seg]] * 3)
    out = _merge_regions(seg, zb, np.abs(level[seg]), px=1.0, config=VesselConfig())
    hull = out[seg == 2]
    assert (hull == hull[0]).all() and (out[seg == 3] == hull[0]).all() and (out[seg == 4] == hull[0]).all()
    assert len({hull[0], out[0, 0], out[50, 20]}) == 3  # quay and rafted neighbour stay apart
    assert (out[seg == 0] == 0).all()
    # with the shape rule off, pieces of different brightness stay apart
    out = _merge_regions(seg, zb, np.abs(level[seg]), px=1.0, config=VesselConfig(shore_merge_fill=0.0))
    assert out[35, 20] != out[35, 70]


def test_scene_weights_balance_classes_within_each_scene():
    groups = np.array(["a"] * 10 + ["b"] * 4)
    y = np.array([1] * 2 + [0] * 8 + [1] * 2 + [0] * 2)
    w = classify.scene_weights(groups, y)
    assert w.mean() == pytest.approx(1.0)
    for g in ("a", "b"):
        assert w[(groups == g) & (y == 1)].sum() == pytest.approx(w[(groups == g) & (y == 0)].sum())
    assert w[groups == "a"].sum() == pytest.approx(w[groups == "b"].sum())


# -------------------------------------------------------------------------------------------------------------
# the classifier


def test_training_table_loads_and_holdout_refits_without_the_group():
    t = classify.load_table()
    assert t.X.shape == (t.y.size, len(FEATURE_NAMES))
    assert set(np.unique(t.y)) == {0, 1}
    groups = set(t.groups)
    assert {"busan", "durban"} <= groups and any(g.startswith("synth-") for g in groups)
    assert not any(g in {f"synth-{s}" for s in range(101, 113)} for g in groups)  # bench seeds never trained on
    x = t.X[t.groups == "busan"]
    full = classify.vessel_probability(x)
    with classify.holdout({"busan"}):
        assert classify.excluded_groups() == frozenset({"busan"})
        held = classify.vessel_probability(x)
    assert classify.excluded_groups() == frozenset()
    assert not np.allclose(full, held)
    # the model is deterministic: refitting gives the same probabilities
    classify.fit_model.cache_clear()
    assert np.allclose(classify.vessel_probability(x), full)


def test_invalid_pixels_are_never_detected():
    c = _harbour(3.0)
    c.paint(rect(700, 600, 150, 24, 60), BRIGHT)
    scene = c.scene()
    valid = scene.valid.copy()
    valid[:, round(500 / 3.0) :] = False
    res = detect(scene.with_(valid=valid))
    assert _vessels(res) == []


def test_equipment_skipped_with_note_on_coarse_pixels():
    c = _harbour(3.0)
    for k in range(6):
        c.paint(rect(100, 200 + k * 8, 12.19, 2.44, 90), BRIGHT)
    res = detect(c.scene())
    assert not res.equipment_searched
    assert [d for d in res.detections if d.kind == "equipment"] == []
    assert any("equipment not searched" in n and "3.00 m" in n for n in res.notes)
    ok, why = equipment_supported(c.scene(), EquipmentConfig())
    assert not ok and "1.2" in why


@pytest.mark.xfail(reason="equipment rows at 0.8 m are under-counted (known weakness, see report)", strict=False)
def test_equipment_rows_counted_at_fine_pixels():
    c = _harbour(0.8)
    for k in range(6):
        c.paint(rect(100, 200 + k * 8, 12.19, 2.44, 90), BRIGHT)
    scene = c.scene()
    land = np.zeros(scene.shape, dtype=bool)
    land[:, : round(300 / 0.8)] = True
    eq = detect_equipment(scene, land)
    assert len(eq) == 6
    assert all(d.length_m == pytest.approx(12.19, rel=0.15) for d in eq)


@pytest.mark.real
def test_real_busan_recall_floor(real_data):
    from berthwatch.io import read_scene

    port = real_data / "sen2ships" / "busan"
    tif = next(port.glob("*.tif"))
    scene = read_scene(tif, date="2022-05-14")
    with classify.holdout({"busan"}):  # never score a port with a model that saw its rows
        res = detect(scene)
    from berthwatch.geo import pixel_to_crs

    labels = json.loads((port / "busan_vessels_pixel.geojson").read_text())
    from shapely.geometry import shape

    truth = [pixel_to_crs(shape(f["geometry"]), scene.transform) for f in labels["features"]]
    dets = _vessels(res)
    found = sum(any(d.geometry.intersects(t.buffer(15.0)) for d in dets) for t in truth)
    assert found / len(truth) >= 0.15  # leave-one-port-out recall (see the report for the measured figures)


def test_pieces_of_one_ship_give_one_detection_but_rafted_hulls_two():
    """A ship's hull and its shadow (or its superstructure, or the shore-band half of a moored hull) can come out
    as two candidates whose footprints overlap: only the more confident is reported. Hulls rafted side by side
    touch along their length, and both stay."""
    from berthwatch.detect import _suppress_overlaps
    from berthwatch.models import Detection

    def det(corners, conf):
        geom = Polygon(corners)
        return Detection(geom, "vessel", conf, 100.0, 16.0, 90.0, geom.area)

    hull = rect(500, 500, 100, 16, 90)
    hull_and_shadow = rect(500, 506, 100, 28, 90)  # the hull and its shadow beside it
    superstructure = rect(540, 500, 12, 14, 90)
    rafted = rect(500, 485, 100, 16, 90)  # alongside the first hull (outlines overlap by a metre)
    kept = _suppress_overlaps(
        [det(hull_and_shadow, 0.95), det(hull, 0.9), det(superstructure, 0.85), det(rafted, 0.8)], 0.5
    )
    assert [d.confidence for d in kept] == [0.95, 0.8]
    hull_first = _suppress_overlaps([det(hull, 0.95), det(hull_and_shadow, 0.9), det(rafted, 0.8)], 0.5)
    assert [d.confidence for d in hull_first] == [0.95, 0.8]
