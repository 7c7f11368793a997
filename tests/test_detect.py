"""Known-answer tests for single-date vessel and equipment detection on small hand-built scenes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from shapely.geometry import Point

from _scenes import BRIGHT, DARK, LAND, Canvas, rect
from berthwatch.config import EquipmentConfig, Settings, VesselConfig
from berthwatch.detect import detect
from berthwatch.equipment import detect_equipment, equipment_supported
from berthwatch.geo import heading_difference


def _harbour(px: float, *, rgb: bool = False, seed: int = 0) -> Canvas:
    c = Canvas((1200.0, 900.0), px, seed=seed, rgb=rgb)
    c.box(0, 0, 300, 900, LAND)  # land on the west, straight quay at x = 300 m
    return c


def _vessels(result):
    return [d for d in result.detections if d.kind == "vessel"]


def _near(dets, canvas: Canvas, x: float, y: float, tol: float = 25.0):
    p = Point(*canvas.to_crs(x, y))
    return [d for d in dets if d.geometry.distance(p) <= tol]


@pytest.mark.parametrize("px", [0.8, 3.0])
def test_ship_at_anchor_and_dark_hull_measured(px):
    c = _harbour(px)
    c.paint(rect(700, 600, 150, 24, 60), BRIGHT)
    c.paint(rect(800, 250, 120, 20, 135), DARK)
    res = detect(c.scene())
    v = _vessels(res)
    assert len(v) == 2
    (a,) = _near(v, c, 700, 600)
    (b,) = _near(v, c, 800, 250)
    assert a.length_m == pytest.approx(150, rel=0.1)
    assert heading_difference(a.heading_deg, 60) < 10
    assert b.length_m == pytest.approx(120, rel=0.1)
    assert heading_difference(b.heading_deg, 135) < 10
    assert b.features["dark"] == 1.0 and a.features["dark"] == 0.0
    assert all(0 < d.confidence <= 1 for d in v)


@pytest.mark.parametrize("px", [0.8, 3.0])
def test_quay_moored_vessel_is_found_and_touches_shore(px):
    c = _harbour(px)
    c.paint(rect(313, 450, 160, 24, 0), BRIGHT)  # alongside the quay at x = 300 m
    res = detect(c.scene())
    (d,) = _vessels(res)
    assert d.length_m == pytest.approx(160, rel=0.1)
    assert heading_difference(d.heading_deg, 0) < 10
    assert d.features["touches_shore"] == 1.0
    # the water mask is not swallowing the hull: its centre pixel is in the search domain
    r, col = round(c.rows - 450 / px), round(313 / px)
    assert res.water[r, col]


@pytest.mark.parametrize("px", [0.8, 3.0])
def test_rafted_pair_gives_two_detections(px):
    c = _harbour(px)
    c.paint(rect(700, 450, 150, 22, 90), BRIGHT)
    c.paint(rect(700, 427, 140, 22, 90), (1800.0, 1900.0, 1900.0, 2000.0))
    v = _vessels(detect(c.scene()))
    assert len(v) == 2
    lengths = sorted(d.length_m for d in v)
    assert lengths[0] == pytest.approx(140, rel=0.1) and lengths[1] == pytest.approx(150, rel=0.1)
    assert all(heading_difference(d.heading_deg, 90) < 10 for d in v)


def test_whitecap_field_gives_no_vessel():
    c = _harbour(1.0)
    rng = np.random.default_rng(1)
    foam = (2000.0, 2100.0, 2100.0, 900.0)  # bright in the visible, weak in NIR
    for _ in range(150):
        x, y = rng.uniform(350, 1150), rng.uniform(50, 850)
        c.paint(rect(x, y, rng.uniform(1, 4), rng.uniform(0.5, 1.5), rng.uniform(0, 180)), foam)
    assert _vessels(detect(c.scene())) == []


def test_small_boat_below_minimum_only_when_allowed():
    c = _harbour(1.0)
    c.paint(rect(700, 450, 6.0, 2.5, 30), BRIGHT)
    scene = c.scene()
    assert _vessels(detect(scene)) == []
    lowered = Settings(vessel=dataclasses.replace(VesselConfig(), min_length_m=4.0))
    (d,) = _vessels(detect(scene, settings=lowered))
    assert 4.0 <= d.length_m <= 8.0


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
    res = detect(scene)
    from berthwatch.geo import pixel_to_crs

    labels = json.loads((port / "busan_vessels_pixel.geojson").read_text())
    from shapely.geometry import shape

    truth = [pixel_to_crs(shape(f["geometry"]), scene.transform) for f in labels["features"]]
    dets = _vessels(res)
    found = sum(any(d.geometry.intersects(t.buffer(15.0)) for d in dets) for t in truth)
    assert found / len(truth) >= 0.35
