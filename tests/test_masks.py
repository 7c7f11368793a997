"""Water mask, union of dates and AOI tests on small hand-built scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import box

from _scenes import BRIGHT, LAND, WATER, Canvas, rect
from berthwatch.errors import VectorInputError
from berthwatch.geo import to_lonlat
from berthwatch.masks import aoi_mask, read_aoi, union_water, water_mask


def _harbour(px: float, *, rgb: bool = False) -> Canvas:
    c = Canvas((1200.0, 900.0), px, rgb=rgb)
    c.box(0, 0, 300, 900, LAND)
    return c


def _truth_water(c: Canvas) -> np.ndarray:
    t = np.ones((c.rows, c.cols), dtype=bool)
    t[:, : round(300 / c.px)] = False
    return t


@pytest.mark.parametrize("px", [1.0, 5.0])
def test_ndwi_water_agrees_with_truth(px):
    c = _harbour(px)
    w = water_mask(c.scene())
    assert (w == _truth_water(c)).mean() > 0.97


def test_rgb_water_agrees_with_truth():
    # flat land without texture is as smooth as water but much brighter: it stays land (it was all water before)
    c = _harbour(3.0, rgb=True)
    w = water_mask(c.scene())
    assert (w == _truth_water(c)).mean() > 0.95


def test_occupied_berth_is_water():
    c = _harbour(3.0)
    c.paint(rect(313, 450, 160, 24, 0), BRIGHT)
    w = water_mask(c.scene())
    r, col = round(c.rows - 450 / 3.0), round(313 / 3.0)
    assert w[r, col]
    # the quay behind stays land
    assert not w[r, round(250 / 3.0)]


@pytest.mark.parametrize("px", [1.0, 3.0])
def test_quay_corner_cut_off_by_the_straightened_quay_line_stays_land(px):
    # the quay line bends by 50 m (less than the straightening tolerance): the straight quay line cuts a long land
    # triangle off the bend. A triangle is not a hull (hulls are rectangles): it stays land, where equipment is
    # searched (test_occupied_berth_is_water: a rectangular hull alongside the quay is still water)
    c = _harbour(px)
    c.paint(np.array([[300.0, 450.0], [300.0, 900.0], [200.0, 900.0]]), WATER)
    w = water_mask(c.scene())

    def at(x: float, y: float) -> bool:
        return bool(w[round(c.rows - y / px), round(x / px)])

    assert not at(288, 450) and not at(285, 400)  # inside the cut-off triangle
    assert at(800, 450)  # open water


def test_union_makes_berth_water_from_other_date():
    empty = _harbour(3.0)
    full = _harbour(3.0)
    full.paint(rect(320, 450, 160, 40, 0), LAND)  # berth occupied by something land-like on one date
    u = union_water(full.scene(), empty.scene())
    r, col = round(full.rows - 450 / 3.0), round(320 / 3.0)
    assert u[r, col]


def test_aoi_restricts(tmp_path):
    c = _harbour(5.0)
    scene = c.scene()
    x0, y0 = c.to_crs(600, 300)
    x1, y1 = c.to_crs(900, 600)
    ll = to_lonlat(box(x0, y0, x1, y1), scene.crs)
    path = tmp_path / "aoi.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": ll.__geo_interface__}],
            }
        )
    )
    geoms = read_aoi(path)
    m = aoi_mask(geoms, scene)
    assert m.sum() == pytest.approx((300 / 5.0) ** 2, rel=0.1)
    w = water_mask(scene, aoi=m)
    assert w.sum() <= m.sum() and not (w & ~m).any()


def test_read_aoi_errors(tmp_path):
    with pytest.raises(VectorInputError, match=r"nope\.geojson"):
        read_aoi(tmp_path / "nope.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(VectorInputError, match=r"bad\.geojson"):
        read_aoi(bad)
    pt = tmp_path / "pt.geojson"
    pt.write_text(json.dumps({"type": "Point", "coordinates": [35.0, 34.0]}))
    with pytest.raises(VectorInputError):
        read_aoi(pt)


@pytest.mark.parametrize("px", [1.0, 3.0])
def test_hull_alongside_quay_is_searched_but_the_quay_is_not(px):
    c = _harbour(px)
    c.paint(rect(313, 450, 160, 24, 0), BRIGHT)  # alongside the straight quay at x = 300 m (land in NDWI)
    w = water_mask(c.scene())
    r, col = round(c.rows - 450 / px), round(313 / px)
    assert w[r, col]  # the hull is in the vessel search domain
    assert not w[r, round(150 / px)]  # the 300 m wide quay stays land
    assert not w[round(c.rows - 100 / px), round(290 / px)]  # so does the quay edge away from the hull


@pytest.mark.parametrize("px", [1.0, 3.0])
def test_narrow_hulls_alongside_quay_are_searched(px):
    # a tug and a patrol boat of 10 m beam alongside the straight quay: narrower than a cargo ship, wider than the
    # slivers of a jagged quay outline (``min_moored_beam_m``): in the vessel search domain at fine pixels too
    c = _harbour(px)
    c.paint(rect(305.5, 450, 40, 10, 0), BRIGHT)
    c.paint(rect(305.5, 650, 60, 10, 0), BRIGHT)
    w = water_mask(c.scene())
    col = round(305 / px)
    assert w[round(c.rows - 450 / px), col] and w[round(c.rows - 650 / px), col]
    assert not w[round(c.rows - 100 / px), round(290 / px)]  # the quay edge away from them stays land


@pytest.mark.parametrize("seed", [5, 6])
def test_rgb_glint_fields_on_the_open_water_are_water(seed):
    """Visual RGB at 10 m with strong sun glint: the texture index takes the glint fields for land, holes of
    hectares in the water; their typical pixel has the water's colour, so they are water again (away from the
    shore, where mixed pixels are another matter)."""
    import datetime as dt

    from rasterio.features import rasterize

    from berthwatch import synth

    spec = synth.PortSpec(seed=seed, width_m=6000, height_m=4500, pixel_size_m=10.0, layout="auto", glint=0.8)
    port = synth.make_port(spec)
    scene = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18), layout="visual")).to_scene()
    water = port.to_crs(port.water)
    open_water = rasterize(
        [(water, 1), (water.boundary.buffer(60.0), 0)], out_shape=scene.shape, transform=scene.transform
    ).astype(bool)
    assert water_mask(scene)[open_water].mean() > 0.95


@pytest.mark.parametrize(("seed", "px"), [(7, 1.0), (8, 3.0)])
def test_rgb_water_reaches_the_quays(seed, px):
    """Visual RGB: the texture index is blurred at tens of metres and keeps off the quays by as much; the water
    colour model brings the search domain to the quay edge, where ships moor (they are water-side objects, not
    pieces of the land band). Measured on the strip of true water 3 to 30 m from the shore, away from objects."""
    import datetime as dt

    from rasterio.features import rasterize

    from berthwatch import synth

    spec = synth.PortSpec(seed=seed, width_m=1000 * px, height_m=750 * px, pixel_size_m=px, layout="quay")
    port = synth.make_port(spec)
    rendered = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18), layout="visual"))
    scene = rendered.to_scene()
    water = port.to_crs(port.water)
    objects = [o.polygon.buffer(10.0) for o in rendered.truth if o.kind == "vessel"]
    strip = water.intersection(water.boundary.buffer(30.0)).difference(water.boundary.buffer(3.0))
    near_quay = rasterize(
        [(strip, 1)] + [(g, 0) for g in objects], out_shape=scene.shape, transform=scene.transform
    ).astype(bool)
    assert near_quay.sum() > 1000
    assert water_mask(scene)[near_quay].mean() > 0.8
