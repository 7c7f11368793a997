"""Windowed (tile-by-tile) detection gives the whole-scene answer: same vessels, each reported once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from rasterio.transform import xy
from rasterio.windows import Window

from berthwatch import synth
from berthwatch.config import Settings
from berthwatch.detect import detect
from berthwatch.tiling import detect_windowed, tile_grid, tile_margin_m

PX = 5.0  # coarse pixels keep a scene several margins (600 m) wide small in memory and time
SIZE_M = (4000.0, 1000.0)  # 800 x 200 pixels


def _vessels(result):
    return [d for d in result.detections if d.kind == "vessel"]


@pytest.fixture(scope="module")
def sea_scene():
    # core boundaries of a 3-tile cut of 800 columns: columns 267 and 533, x = -665 m and +665 m from the centre
    vessels = [
        synth.VesselSpec(-635.0, 120.0, 220.0, heading_deg=90.0, hull="bright"),  # straddles x = -665 m
        synth.VesselSpec(640.0, -150.0, 180.0, heading_deg=75.0, hull="bright", subtype="tanker"),  # x = +665 m
        synth.VesselSpec(0.0, 200.0, 160.0, heading_deg=20.0, hull="dark", subtype="tanker"),
        synth.VesselSpec(-1500.0, -200.0, 140.0, heading_deg=140.0, hull="bright"),
        synth.VesselSpec(1450.0, 250.0, 120.0, heading_deg=50.0, hull="grey"),
    ]
    spec = synth.PortSpec(
        seed=11,
        width_m=SIZE_M[0],
        height_m=SIZE_M[1],
        pixel_size_m=PX,
        layout="open_sea",
        vessels=vessels,
        equipment=[],
        distractors=False,
        glint=0.1,
        whitecaps=0.1,
    )
    port = synth.make_port(spec)
    s = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18), layout="analytic", sea_state=0.1))
    return s.to_scene()


def _three_tile_budget(scene) -> int:
    """The smallest budget that cuts the scene into 3 tiles along its columns (asserted, so the test cuts)."""
    margin = math.ceil(tile_margin_m(Settings()) / scene.pixel_size_m)
    budget = scene.height * (math.ceil(scene.width / 3) + 2 * margin)
    tiles = tile_grid(scene.shape, margin_px=margin, max_tile_pixels=budget)
    assert len(tiles) == 3
    return budget


def test_windowed_detection_finds_the_whole_scene_vessels(sea_scene):
    whole = _vessels(detect(sea_scene))
    assert len(whole) >= 4  # the scene holds five hulls; the comparison needs something to compare
    tiled_result = detect_windowed(sea_scene, max_tile_pixels=_three_tile_budget(sea_scene))
    tiled = _vessels(tiled_result)
    assert len(tiled) == len(whole)
    inv = ~sea_scene.transform
    for d in whole:
        c = np.array(inv @ d.centroid)
        dist = [float(np.hypot(*(np.array(inv @ t.centroid) - c))) for t in tiled]
        k = int(np.argmin(dist))
        assert dist[k] <= 1.0
        assert tiled[k].length_m == pytest.approx(d.length_m, rel=0.05)
    # ids numbered over the whole scene by decreasing confidence, as detect() does
    assert [d.id for d in tiled] == [f"v{i:03d}" for i in range(1, len(tiled) + 1)]
    conf = [d.confidence for d in tiled]
    assert conf == sorted(conf, reverse=True)
    assert tiled_result.water.shape == sea_scene.shape
    assert tiled_result.scene is sea_scene


def test_object_straddling_a_tile_boundary_is_reported_once(sea_scene, monkeypatch):
    budget = _three_tile_budget(sea_scene)
    calls: list[tuple[int, int]] = []
    seen: list[list] = []

    def spy(scene, **kw):
        res = detect(scene, **kw)
        calls.append((round(scene.transform.c), scene.width))
        seen.append(_vessels(res))
        return res

    monkeypatch.setattr("berthwatch.detect.detect", spy)
    tiled = _vessels(detect_windowed(sea_scene, max_tile_pixels=budget))
    assert len(calls) == 3
    # the hull across the first core boundary (column 267) is seen by the two tiles beside it ...
    rows, cols = sea_scene.shape
    x, y = xy(sea_scene.transform, rows / 2 - 120.0 / PX, cols / 2 - 635.0 / PX, offset="ul")

    def near(dets):
        return [d for d in dets if math.dist(d.centroid, (x, y)) < 60.0]

    assert sum(len(near(s)) for s in seen) >= 2
    # ... and reported once
    assert len(near(tiled)) == 1


def test_scene_smaller_than_a_tile_goes_through_in_one_piece(sea_scene, monkeypatch):
    calls: list[tuple[int, int]] = []

    def spy(scene, **kw):
        calls.append(scene.shape)
        return detect(scene, **kw)

    monkeypatch.setattr("berthwatch.detect.detect", spy)
    res = detect_windowed(sea_scene, max_tile_pixels=sea_scene.height * sea_scene.width)
    assert calls == [sea_scene.shape]
    n_px = sea_scene.height * sea_scene.width
    assert len(tile_grid(sea_scene.shape, margin_px=120, max_tile_pixels=n_px)) == 1
    whole = detect(sea_scene)
    assert [(d.id, d.geometry.wkt) for d in res.detections] == [(d.id, d.geometry.wkt) for d in whole.detections]


def test_tile_cores_partition_the_grid_and_windows_add_the_margin():
    shape, margin, budget = (1000, 2300), 50, 600 * 700
    tiles = tile_grid(shape, margin_px=margin, max_tile_pixels=budget)
    assert len(tiles) > 1
    count = np.zeros(shape, dtype=int)
    for t in tiles:
        count[t.core.toslices()] += 1
        w, c = t.window, t.core
        assert w.width * w.height <= budget
        assert w.col_off == max(0, c.col_off - margin) and w.row_off == max(0, c.row_off - margin)
        assert w.col_off + w.width == min(shape[1], c.col_off + c.width + margin)
        assert w.row_off + w.height == min(shape[0], c.row_off + c.height + margin)
    assert (count == 1).all()
    with pytest.raises(ValueError, match="cannot hold"):
        tile_grid(shape, margin_px=400, max_tile_pixels=budget)


def test_margin_is_physical_and_follows_the_settings():
    s = Settings()
    base = tile_margin_m(s)
    assert base >= s.vessel.background_window_m  # at least the widest neighbourhood of the detectors
    wider = dataclasses.replace(s, vessel=dataclasses.replace(s.vessel, background_window_m=1000.0))
    assert tile_margin_m(wider) >= 1000.0 > base
    longer = dataclasses.replace(s, vessel=dataclasses.replace(s.vessel, max_length_m=1500.0))
    assert tile_margin_m(longer) >= 750.0 + s.vessel.background_window_m / 2


def test_scene_window_is_a_view_with_its_own_transform(sea_scene):
    win = Window(30, 20, 100, 50)
    sub = sea_scene.window(win)
    assert sub.shape == (50, 100)
    assert np.shares_memory(sub.data, sea_scene.data)
    assert sub.transform @ (0, 0) == pytest.approx(sea_scene.transform @ (30, 20))
    assert sub.ground_scale == sea_scene.ground_scale
    assert (sub.valid == sea_scene.valid[20:70, 30:130]).all()
    with pytest.raises(ValueError, match="not inside"):
        sea_scene.window(Window(750, 0, 100, 10))
