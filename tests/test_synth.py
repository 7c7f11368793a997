"""Known-answer tests of the synthetic scene generator (small scenes, fast)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize
from shapely import affinity
from shapely.geometry import shape
from skimage.registration import phase_cross_correlation

from berthwatch.geo import from_lonlat, reproject_geometry
from berthwatch.synth import (
    TRUTH_PROPERTIES,
    DateSpec,
    EquipmentSpec,
    PortSpec,
    VesselSpec,
    make_pair,
    make_port,
    quay_berths,
    render,
    truth_feature_collection,
    write_truth,
)

D0 = dt.date(2025, 1, 18)
D1 = dt.date(2025, 1, 27)


def _spec(**kw):
    base = dict(seed=3, width_m=240.0, height_m=240.0, pixel_size_m=0.8, distractors=False, equipment=[])
    base.update(kw)
    return PortSpec(**base)


def _gray(data: np.ndarray) -> np.ndarray:
    return data[:3].astype(np.float64).mean(axis=0)


def _rstd(a: np.ndarray) -> float:
    """Robust spread (scaled median absolute deviation): glints and whitecaps do not inflate it."""
    return float(1.4826 * np.median(np.abs(a - np.median(a))))


def _mask(poly, scene) -> np.ndarray:
    """Pixels of a truth polygon (port CRS) on a scene's rendered grid (its true transform)."""
    geom = reproject_geometry(poly, scene.port.crs, scene.crs) if scene.crs != scene.port.crs else poly
    return rasterize([(geom, 1)], out_shape=scene.valid.shape, transform=scene.true_transform, dtype="uint8") > 0


@pytest.fixture(scope="module")
def sea_port():
    vessels = [
        VesselSpec(-50.0, 30.0, 90.0, 15.0, 60.0, hull="bright", id="bright"),
        VesselSpec(40.0, -40.0, 80.0, 14.0, 120.0, hull="dark", id="dark", present=(True, False)),
    ]
    return make_port(_spec(layout="open_sea", vessels=vessels))


def test_same_seed_same_pixels_different_seed_differs():
    spec = _spec(layout="open_sea", vessels=None, width_m=160.0, height_m=160.0)
    d = DateSpec(D0)
    a = render(make_port(spec), d)
    b = render(make_port(spec), d)
    c = render(make_port(PortSpec(**{**spec.__dict__, "seed": 4})), d)
    assert np.array_equal(a.data, b.data)
    assert [t.id for t in a.truth] == [t.id for t in b.truth]
    assert not np.array_equal(a.data, c.data)


@pytest.mark.parametrize("layout,dtype,count", [("visual", np.uint8, 3), ("analytic", np.uint16, 4)])
def test_band_layouts(sea_port, layout, dtype, count):
    s = render(sea_port, DateSpec(D0, layout=layout))
    assert s.data.dtype == dtype and s.data.shape[0] == count
    scene = s.to_scene()
    assert scene.bands == (("red", "green", "blue") if layout == "visual" else ("blue", "green", "red", "nir"))
    assert scene.date == D0 and scene.date_source == "synthetic"
    assert abs(scene.pixel_size_m - 0.8) < 0.01


def test_hull_pixels_differ_from_water_and_dark_hull_is_darker(sea_port):
    s = render(sea_port, DateSpec(D0, layout="analytic"))
    g = _gray(s.data)
    truth = {t.id: t for t in s.truth}
    water = np.ones(g.shape, bool)
    for t in s.truth:
        water &= ~_mask(t.polygon.buffer(40), s)
    w = np.median(g[water])
    bright = np.median(g[_mask(truth["bright"].polygon.buffer(-2), s)])
    dark = np.median(g[_mask(truth["dark"].polygon.buffer(-2), s)])
    sd = _rstd(g[water])
    assert bright > w + 5 * sd
    assert dark < w
    # the hull has the truth length in pixels: bright hull pixels along the long axis span ~90 m
    assert truth["bright"].length_m == pytest.approx(90.0, abs=0.05)
    assert truth["bright"].width_m == pytest.approx(15.0, abs=0.05)


def test_departed_absent_after_present_before(sea_port):
    pair = make_pair(sea_port, DateSpec(D0, noise=0.5), DateSpec(D1, noise=0.5))
    t = {o.id: o for o in pair.truth}
    assert t["dark"].status == "departed" and t["bright"].status == "stayed"
    m = _mask(t["dark"].polygon.buffer(-2), pair.before)
    ring = _mask(t["dark"].polygon.buffer(25), pair.before) & ~_mask(t["dark"].polygon.buffer(8), pair.before)
    gb, ga = _gray(pair.before.data), _gray(pair.after.data)
    assert np.median(gb[m]) < np.median(gb[ring]) - 3 * _rstd(gb[ring])
    # at the after date the footprint looks like the surrounding water
    assert abs(np.median(ga[m]) - np.median(ga[ring])) < 2 * _rstd(ga[ring])
    assert [o.id for o in pair.after.truth] == ["bright"]


@pytest.mark.parametrize("shift", [(0.0, 0.0), (1.5, -2.25), (-0.4, 0.7)])
def test_shift_px_is_recovered(shift):
    port = make_port(_spec(layout="quay", vessels=[], seed=5, width_m=200.0, height_m=200.0))
    ref = render(port, DateSpec(D0, noise=0.0), seed=1)
    mov = render(port, DateSpec(D0, noise=0.0, shift_px=shift), seed=1)
    assert ref.transform == mov.transform  # the georeferencing claims the same grid
    sl = np.s_[20:-20, 20:-20]
    est, _, _ = phase_cross_correlation(_gray(mov.data)[sl], _gray(ref.data)[sl], upsample_factor=50)
    assert est[0] == pytest.approx(shift[0], abs=0.2)
    assert est[1] == pytest.approx(shift[1], abs=0.2)


@pytest.mark.parametrize("crs,px", [("EPSG:3857", 0.8), ("EPSG:32637", 1.0), (None, 2.0)])
def test_other_crs_and_pixel_size_georeferenced(sea_port, crs, px):
    s = render(sea_port, DateSpec(D0, crs=crs, pixel_size_m=px))
    if crs:
        assert s.crs == rasterio.crs.CRS.from_user_input(crs)
    assert abs(s.to_scene().pixel_size_m - px) < 0.02 * px
    g = _gray(s.data)
    for t in s.truth:
        # through the written georeferencing (nominal transform), not the rendering one
        c = reproject_geometry(t.polygon.centroid, sea_port.crs, s.crs)
        col, row = ~s.transform @ (c.x, c.y)
        r, cc = int(row), int(col)
        win = g[r - 1 : r + 2, cc - 1 : cc + 2]
        ring_poly = reproject_geometry(t.polygon.buffer(30).difference(t.polygon.buffer(12)), sea_port.crs, s.crs)
        ring = rasterize([(ring_poly, 1)], out_shape=g.shape, transform=s.transform, dtype="uint8") > 0
        assert abs(np.median(win) - np.median(g[ring])) > 3 * _rstd(g[ring]), t.id


def test_geotiff_roundtrip(tmp_path, sea_port):
    for layout in ("visual", "analytic"):
        s = render(sea_port, DateSpec(D0, dt.time(8, 15, 23), layout=layout, nodata_border=True))
        p = s.write(tmp_path / f"{layout}.tif")
        with rasterio.open(p) as ds:
            assert ds.tags()["TIFFTAG_DATETIME"] == "2025:01:18 08:15:23"
            assert ds.nodata == 0
            assert ds.crs == sea_port.crs
            data = ds.read()
            assert np.array_equal(data, s.data)
            if layout == "analytic":
                assert ds.descriptions == ("blue", "green", "red", "nir")
            else:
                assert [c.name for c in ds.colorinterp] == ["red", "green", "blue"]
        assert not s.valid.all() and s.valid.mean() > 0.5
        assert (s.data[:, ~s.valid] == 0).all() and (s.data[:, s.valid] > 0).all()


def test_truth_geojson_properties(tmp_path, sea_port):
    pair = make_pair(sea_port, DateSpec(D0), DateSpec(D1))
    p = write_truth(pair.truth, sea_port.crs, tmp_path / "t.geojson", before_date=D0, after_date=D1)
    fc = json.loads(p.read_text())
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    for f in fc["features"]:
        assert set(TRUTH_PROPERTIES) <= set(f["properties"])
        assert f["properties"]["before_date"] == "2025-01-18"
        lon, lat = shape(f["geometry"]).centroid.coords[0]
        assert abs(lon - 35.87) < 0.01 and abs(lat - 34.89) < 0.01
    single = truth_feature_collection(pair.after.truth, sea_port.crs, with_status=False)
    assert "status" not in single["features"][0]["properties"]
    # the lon/lat polygon maps back onto the UTM footprint
    back = from_lonlat(shape(fc["features"][0]["geometry"]), sea_port.crs)
    assert back.symmetric_difference(pair.truth[0].polygon).area < 1e-4 * pair.truth[0].polygon.area


def test_cloud_marks_occluded(sea_port):
    cloud = (-50.0, 30.0, 70.0)  # over the bright vessel
    pair = make_pair(sea_port, DateSpec(D0), DateSpec(D1, cloud=cloud))
    t = {o.id: o for o in pair.truth}
    assert t["bright"].occluded and t["bright"].occluded_after and not t["bright"].occluded_before
    assert not t["dark"].occluded
    assert pair.after.cloud_opacity is not None
    assert {o.id: o.occluded for o in pair.before.truth} == {"bright": False, "dark": False}


def test_quay_moored_and_rafted_pair_touch():
    port0 = make_port(_spec(layout="quay", vessels=[], seed=2))
    berth = max(quay_berths(port0), key=lambda b: b.length_m)
    inner, outer = berth.rafted_pair((70.0, 60.0), subtype=("cargo", "tanker"))
    moored = berth.place(40.0, along_m=-70.0, subtype="patrol", hull="grey")
    port = make_port(_spec(layout="quay", seed=2, vessels=[inner, outer, moored]))
    s = render(port, DateSpec(D0))
    t = {o.id: o for o in s.truth}
    hi, ho, hm = (port.to_local(t[i].polygon) for i in ("V001", "V002", "V003"))
    assert hi.distance(ho) < 0.05 and hi.intersection(ho).area < 1.0
    assert t["V001"].rafted and t["V002"].rafted and t["V003"].moored
    assert hm.distance(port.land) < 1.0 and hm.intersection(port.land).area < 1.0
    assert hi.distance(port.land) < 1.0


def test_equipment_rendered_and_in_truth():
    eq = [EquipmentSpec(0.0, 0.0, 12.19, 2.44, 30.0, "container", colour="white"),
          EquipmentSpec(10.0, 10.0, 9.0, 2.5, 0.0, "vehicle", colour="olive", present=(False, True))]  # fmt: skip
    port = make_port(_spec(layout="open_sea", vessels=[], equipment=eq, width_m=100.0, height_m=100.0))
    pair = make_pair(port, DateSpec(D0), DateSpec(D1))
    t = {o.id: o for o in pair.truth}
    assert t["E0001"].status == "stayed" and t["E0002"].status == "arrived"
    assert t["E0001"].length_m == pytest.approx(12.19, abs=0.01)
    assert t["E0001"].heading_deg == pytest.approx(30.0, abs=3.0)  # true north differs from grid north slightly
    g = _gray(pair.before.data)
    m = _mask(t["E0001"].polygon.buffer(-0.5), pair.before)
    assert np.median(g[m]) > np.median(g) + 20


def test_analytic_band_physics():
    port = make_port(_spec(layout="auto", seed=4, width_m=400.0, height_m=300.0, land_side=90.0, vessels=[]))
    s = render(port, DateSpec(D0, layout="analytic", noise=0.5))
    _, g, r, n = (s.data[i].astype(np.float64) for i in range(4))
    water = rasterize([(port.to_crs(port.water.buffer(-15)), 1)], out_shape=s.valid.shape, transform=s.transform) > 0
    ndwi = (g - n) / (g + n)
    assert np.median(ndwi[water]) > 0.5  # water is dark in the NIR
    if not port.vegetation.is_empty:
        veg = rasterize([(port.to_crs(port.vegetation.buffer(-3)), 1)], out_shape=s.valid.shape,
                        transform=s.transform) > 0  # fmt: skip
        if veg.sum() > 20:
            assert np.median(((n - r) / (n + r))[veg]) > 0.4  # vegetation is bright in the NIR


def test_stayed_vessel_drift_and_sun_turns_shadow():
    v = VesselSpec(0.0, 0.0, 60.0, 10.0, 0.0, hull="bright", shift_m=(1.5, -1.0), rotate_deg=1.5, id="s")
    port = make_port(_spec(layout="open_sea", vessels=[v], width_m=160.0, height_m=160.0))
    pair = make_pair(port, DateSpec(D0, sun_azimuth_deg=120.0), DateSpec(D1, sun_azimuth_deg=240.0))
    t = pair.truth[0]
    assert t.status == "stayed" and t.polygon_after is not None
    after, before = port.to_local(t.polygon_after).centroid, port.to_local(t.polygon).centroid
    assert after.x - before.x == pytest.approx(1.5, abs=0.05) and after.y - before.y == pytest.approx(-1.0, abs=0.05)
    # shadows fall away from the sun: west of the hull in the morning (sun 120), east in the afternoon (sun 240)
    gb, ga = _gray(pair.before.data), _gray(pair.after.data)
    west, east = _beside(port, t.polygon, 300.0), _beside(port, t.polygon, 60.0)
    assert np.median(gb[_mask(west, pair.before)]) < 0.7 * np.median(gb[_mask(east, pair.before)])
    west, east = _beside(port, t.polygon_after, 300.0), _beside(port, t.polygon_after, 60.0)
    assert np.median(ga[_mask(east, pair.after)]) < 0.7 * np.median(ga[_mask(west, pair.after)])


def _beside(port, polygon, azimuth):
    """A strip of water 4 m beside a hull towards ``azimuth`` (port CRS)."""
    hull = port.to_local(polygon)
    a = math.radians(azimuth)
    moved = affinity.translate(hull, 4 * math.sin(a), 4 * math.cos(a))
    return port.to_crs(moved.difference(hull.buffer(1.0)))


def test_random_pair_is_consistent():
    pair = make_pair(PortSpec(seed=9, width_m=320.0, height_m=240.0), DateSpec(D0), DateSpec(D1, cloud=(0, 0, 40)))
    ids = [t.id for t in pair.truth]
    assert len(ids) == len(set(ids)) and ids
    assert {t.status for t in pair.truth} <= {"departed", "arrived", "stayed"}
    vessels = [t for t in pair.truth if t.kind == "vessel"]
    assert all(t.length_m >= 8.0 for t in vessels)
    for which, scene in ((0, pair.before), (1, pair.after)):
        polys = [t.polygon for t in scene.truth if t.kind == "vessel"]
        for i, p in enumerate(polys):
            for q in polys[i + 1 :]:
                assert p.intersection(q).area < 1.0, which


def test_bad_specs_raise():
    with pytest.raises(ValueError):
        make_port(PortSpec(layout="lagoon"))
    with pytest.raises(ValueError):
        make_port(_spec(vessels=[VesselSpec(0, 0, 50, hull="purple")]))
    with pytest.raises(ValueError):
        render(make_port(_spec(layout="open_sea", vessels=[])), DateSpec(D0, layout="pan"))
    with pytest.raises(ValueError):
        render(make_port(_spec(layout="open_sea", vessels=[])), DateSpec(D0), which=2)
