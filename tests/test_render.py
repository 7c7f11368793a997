"""Pictures: display stretch, annotated PNGs, overview, chips, scale bar and north arrow maths."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from affine import Affine
from matplotlib import image as mimage
from matplotlib.colors import to_rgb
from pyproj import Proj
from rasterio.crs import CRS
from shapely import affinity
from shapely.geometry import box
from skimage import draw

from berthwatch.geo import oriented_measures, pixel_to_crs, to_lonlat
from berthwatch.models import AlignedPair, Alignment, ChangedObject, Detection, Scene
from berthwatch.render import (
    KIND_COLOURS,
    MAX_SIDE_PX,
    STATUS_COLOURS,
    _nice_length,
    _north_vector,
    display_rgb,
    render_annotated,
    render_chip,
    render_overview,
)

UTM36 = CRS.from_epsg(32636)
T = Affine(1.0, 0.0, 600_000.0, 0.0, -1.0, 3_865_000.0)


def _scene(
    rows, cols, boxes_px=(), *, date=dt.date(2025, 1, 18), transform=T, crs=UTM36, bands=("red", "green", "blue")
):
    """Dark water left, grey land right, bright objects at the given pixel-space polygons."""
    rng = np.random.default_rng(1)
    data = np.empty((len(bands), rows, cols), np.float32)
    data[:] = 40.0
    data[:, :, cols // 2 :] = 120.0
    data += rng.normal(0, 3, data.shape)
    for p in boxes_px:
        xy = np.asarray(p.exterior.coords)
        rr, cc = draw.polygon(xy[:, 1], xy[:, 0], shape=(rows, cols))
        data[:, rr, cc] = 230.0
    valid = np.ones((rows, cols), bool)
    return Scene(
        data=np.clip(data, 0, 255).astype(np.uint8), transform=transform, crs=crs, date=date, bands=bands, valid=valid
    )


def _rect(cx, cy, length, width, angle=0.0):
    return affinity.rotate(
        box(cx - length / 2, cy - width / 2, cx + length / 2, cy + width / 2), angle, origin=(cx, cy)
    )


def _det(p_px, kind, transform=T):
    g = pixel_to_crs(p_px, transform)
    length, width, heading, rect = oriented_measures(g)
    return Detection(rect, kind, 0.9, length, width, heading, g.area)


def _changed(oid, status, before=None, after=None):
    d = before or after
    return ChangedObject(
        oid, d.kind, status, d.geometry, d.confidence, d.length_m, d.width_m, d.heading_deg, d.area_m2, before, after
    )


def _colour_pixels(img: np.ndarray, colour: str, tol: float = 0.08) -> int:
    rgb = np.asarray(to_rgb(colour))
    return int((np.abs(img[..., :3] - rgb).max(axis=-1) < tol).sum())


# ------------------------------------------------------------------------------------------------ stretch
def test_display_rgb_stretches_between_valid_percentiles():
    rows, cols = 50, 100
    ramp = np.tile(np.linspace(0, 100, cols, dtype=np.float32), (rows, 1))
    data = np.stack([ramp, ramp, ramp]).astype(np.uint16)
    data[:, :10, :] = 60000  # outliers, but invalid: must not influence the stretch
    valid = np.ones((rows, cols), bool)
    valid[:10, :] = False
    scene = Scene(
        data=data, transform=T, crs=UTM36, date=dt.date(2025, 1, 1), bands=("blue", "green", "red"), valid=valid
    )
    out = display_rgb(scene)
    assert out.shape == (rows, cols, 3)
    assert out.dtype == np.uint8
    assert (out[:10] == 0).all()
    vals = data[0][valid]
    lo, hi = np.percentile(vals, [2, 98])
    mid = data[0, 20, 50]
    expected = (mid - lo) / (hi - lo) * 255
    assert abs(int(out[20, 50, 0]) - expected) <= 1.0
    assert out[20, 0, 0] == 0 and out[20, -1, 0] == 255


def test_display_rgb_uses_band_roles_in_rgb_order():
    rows, cols = 20, 20
    data = np.zeros((4, rows, cols), np.uint8)
    data[2, :, :10] = 200  # red band (BGRN order) bright on the left half
    scene = Scene(
        data=data,
        transform=T,
        crs=UTM36,
        date=dt.date(2025, 1, 1),
        bands=("blue", "green", "red", "nir"),
        valid=np.ones((rows, cols), bool),
    )
    out = display_rgb(scene)
    assert out[5, 2, 0] == 255 and out[5, 15, 0] == 0  # red channel follows the red role
    assert (out[..., 1] == out[5, 5, 1]).all()  # green and blue flat


def test_display_rgb_gray_for_pan_and_black_when_nothing_valid():
    rows, cols = 10, 30
    pan = np.tile(np.arange(cols, dtype=np.uint16), (rows, 1))[None]
    scene = Scene(
        data=pan, transform=T, crs=UTM36, date=dt.date(2025, 1, 1), bands=("pan",), valid=np.ones((rows, cols), bool)
    )
    out = display_rgb(scene)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[0, -1, 0] > out[0, 0, 0]
    empty = scene.with_(valid=np.zeros((rows, cols), bool))
    assert not display_rgb(empty).any()


# ------------------------------------------------------------------------------------------------ helpers
@pytest.mark.parametrize(
    ("target", "expected"), [(120.0, 100.0), (2.3, 2.0), (7.9, 5.0), (0.42, 0.2), (5000.0, 5000.0)]
)
def test_nice_length(target, expected):
    assert _nice_length(target) == pytest.approx(expected)


def test_north_arrow_follows_meridian_convergence():
    # east of UTM 36N's central meridian (33 E) in the northern hemisphere, true north is west of grid north
    scene = _scene(100, 100)
    dx, dy = _north_vector(scene)
    angle = math.degrees(math.atan2(dx, dy))
    c = to_lonlat(pixel_to_crs(box(0, 0, 100, 100), T).centroid, UTM36)
    gamma = Proj(UTM36.to_wkt()).get_factors(c.x, c.y).meridian_convergence
    assert dx < 0
    assert abs(angle) == pytest.approx(abs(gamma), abs=0.05)


# ------------------------------------------------------------------------------------------------ pictures
@pytest.fixture(scope="module")
def pair_and_objects():
    v_dep = _rect(60, 60, 90, 14, 80)
    v_arr = _rect(140, 150, 70, 12, 90)
    e_dep = _rect(230, 60, 10, 3, 0)
    before = _scene(200, 300, [v_dep, e_dep])
    after = _scene(200, 300, [v_arr], date=dt.date(2025, 1, 27))
    objs = [
        _changed("V1", "departed", before=_det(v_dep, "vessel")),
        _changed("V2", "arrived", after=_det(v_arr, "vessel")),
        _changed("E1", "departed", before=_det(e_dep, "equipment")),
    ]
    al = Alignment(shift_px=(0.0, 0.0), residual_px=0.1, quality=0.9, method="test", applied=True)
    return AlignedPair(before, after, al, before, after), objs


def test_render_annotated_draws_status_colours(tmp_path, pair_and_objects):
    pair, objs = pair_and_objects
    p = render_annotated(pair.before, objs, tmp_path / "before.png", title="BEFORE", date_label="2025-01-18")
    img = mimage.imread(p)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert 1000 <= max(img.shape[:2]) <= MAX_SIDE_PX + 200
    red = _colour_pixels(img, STATUS_COLOURS["departed"])
    cyan = _colour_pixels(img, STATUS_COLOURS["arrived"])
    assert red > 200  # solid outline of the departed vessel (and legend)
    assert cyan > 20  # dashed outline of the not-yet-arrived vessel plus legend swatch
    assert _colour_pixels(img, STATUS_COLOURS["stayed"]) == 0


def test_render_detect_colours_by_kind(tmp_path, pair_and_objects):
    pair, objs = pair_and_objects
    dets = [o.before for o in objs if o.before is not None]
    p = render_annotated(pair.before, dets, tmp_path / "annotated.png", title="D", date_label="d", which="detect")
    img = mimage.imread(p)
    assert _colour_pixels(img, KIND_COLOURS["vessel"]) > 100
    assert _colour_pixels(img, STATUS_COLOURS["departed"]) == 0


def test_large_scene_is_decimated_but_outlines_stay(tmp_path):
    rows, cols = 3200, 160
    v = _rect(80, 1600, 120, 20, 90)
    scene = _scene(rows, cols, [v])
    obj = _changed("V1", "departed", before=_det(v, "vessel"))
    p = render_annotated(scene, [obj], tmp_path / "tall.png", title="t", date_label="d")
    img = mimage.imread(p)
    assert img.shape[0] <= MAX_SIDE_PX + 200
    assert _colour_pixels(img, STATUS_COLOURS["departed"]) > 50


def test_render_overview_side_by_side(tmp_path, pair_and_objects):
    pair, objs = pair_and_objects
    img = mimage.imread(render_overview(pair, objs, tmp_path / "overview.png"))
    assert img.shape[1] > 1.5 * img.shape[0]
    assert _colour_pixels(img, STATUS_COLOURS["departed"]) > 100
    assert _colour_pixels(img, STATUS_COLOURS["arrived"]) > 100


# ------------------------------------------------------------------------------------------------ chips
def test_chip_is_centred_on_the_object(pair_and_objects):
    pair, objs = pair_and_objects
    v = objs[0]
    chip = render_chip(pair.before, v.geometry, size_px=96)
    assert chip.shape == (96, 96, 3) and chip.dtype == np.uint8
    assert chip[48, 48].mean() > 200  # bright hull at the centre
    assert chip[2, 2].mean() < 120 or chip[2, 2].mean() == 0  # water (or outside the scene) in the corner


def test_chip_outside_scene_is_black_and_outline_drawn(pair_and_objects):
    pair, _ = pair_and_objects
    corner = pixel_to_crs(box(0, 0, 6, 6), T)
    chip = render_chip(pair.before, corner, size_px=80, outline=STATUS_COLOURS["departed"])
    assert (chip[0, 0] == 0).all()  # above-left of the scene
    red = np.all(chip == (np.array(to_rgb(STATUS_COLOURS["departed"])) * 255).astype(np.uint8), axis=-1)
    assert red.sum() > 20


def test_chip_shares_precomputed_stretch(pair_and_objects):
    pair, objs = pair_and_objects
    rgb = display_rgb(pair.before)
    a = render_chip(pair.before, objs[2].geometry, rgb=rgb)
    b = render_chip(pair.before, objs[2].geometry)
    assert np.array_equal(a, b)


def test_scale_bar_metres_per_pixel_in_a_geographic_crs():
    from berthwatch.render import _m_per_px

    lat = 34.9
    scene = _scene(50, 80, transform=Affine(1e-5, 0.0, 35.87, 0.0, -1e-5, lat + 25e-5), crs=CRS.from_epsg(4326))
    expected = (
        1e-5
        * math.radians(1.0)
        * 6_378_137.0
        * math.cos(math.radians(lat))
        / math.sqrt(1 - 0.00669438 * math.sin(math.radians(lat)) ** 2)
    )
    assert _m_per_px(scene) == pytest.approx(expected, rel=1e-3)
