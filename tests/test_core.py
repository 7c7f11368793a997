"""Settings, atomic outputs, geometry measures and model validation."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely import affinity
from shapely.geometry import box

from berthwatch.config import Settings, load_settings
from berthwatch.errors import BerthwatchError, ConfigError, OutputError
from berthwatch.fsutil import atomic_output_dir
from berthwatch.geo import from_lonlat, heading_difference, oriented_measures, to_lonlat
from berthwatch.models import Detection, Scene


def _scene(crs: str = "EPSG:32636", transform: Affine | None = None, shape=(3, 20, 30)) -> Scene:
    return Scene(
        data=np.zeros(shape, dtype=np.uint8),
        transform=transform or Affine(0.8, 0, 600000, 0, -0.8, 3860000),
        crs=CRS.from_string(crs),
        date=dt.date(2025, 1, 18),
        bands=("red", "green", "blue"),
        valid=np.ones(shape[1:], dtype=bool),
    )


# -- settings ------------------------------------------------------------------------------------
def test_settings_toml_then_set_overrides(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[vessel]\nmin_length_m = 12\n[align]\nmax_shift_m = 30\n")
    s = load_settings(cfg, ["vessel.min_length_m=15.5"])
    assert s.vessel.min_length_m == 15.5
    assert s.align.max_shift_m == 30.0
    assert s.equipment == Settings().equipment
    assert s.to_dict()["vessel"]["min_length_m"] == 15.5


@pytest.mark.parametrize(
    "override",
    ["vessel.no_such_key=1", "nosection.key=1", "vessel.min_length_m=abc", "vessel_min_length_m=3"],
)
def test_settings_bad_overrides_refused(override):
    with pytest.raises(ConfigError):
        load_settings(None, [override])


def test_settings_bad_toml_names_file(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[vessel\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")


# -- atomic output -------------------------------------------------------------------------------
def test_atomic_output_failure_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "objects.geojson").write_text("{}")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_replaces_previous_result(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_output_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_atomic_output_refuses_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError), atomic_output_dir(f):
        pass
    assert isinstance(OutputError("x"), BerthwatchError) and isinstance(OutputError("x"), OSError)


# -- geometry ------------------------------------------------------------------------------------
@pytest.mark.parametrize("azimuth", [0.0, 30.0, 60.0, 90.0, 135.0, 179.0])
def test_oriented_measures_recover_length_width_heading(azimuth):
    hull = box(-60, -10, 60, 10)  # 120 x 20 m, long axis east-west (azimuth 90)
    rotated = affinity.rotate(hull, 90.0 - azimuth, origin=(0, 0))  # shapely rotates counter-clockwise
    length, width, heading, rect = oriented_measures(rotated)
    assert length == pytest.approx(120.0, rel=1e-6)
    assert width == pytest.approx(20.0, rel=1e-6)
    assert heading_difference(heading, azimuth) < 1e-6
    assert rect.area == pytest.approx(2400.0, rel=1e-6)


def test_heading_is_true_north_in_utm_east_of_central_meridian():
    # A north-south hull at 600 km easting in zone 36N: grid north is ~0.6 deg east of true north.
    crs = CRS.from_epsg(32636)
    hull = box(600000 - 5, 3860000 - 50, 600000 + 5, 3860000 + 50)
    _, _, heading_grid, _ = oriented_measures(hull)
    _, _, heading_true, _ = oriented_measures(hull, crs=crs)
    assert heading_grid == 0.0
    assert 0.3 < heading_true < 1.0


def test_ground_scale_measures_web_mercator_in_metres():
    lat = 35.0
    x, y = from_lonlat(box(129.0, lat, 129.0, lat), "EPSG:3857").bounds[:2]
    scene = _scene("EPSG:3857", Affine(10.0, 0, x, 0, -10.0, y), shape=(3, 50, 50))
    assert scene.pixel_size_m == pytest.approx(10.0 * math.cos(math.radians(lat)), rel=0.01)
    ls, ws, _, _ = oriented_measures(box(x, y, x + 100, y + 10), ground_scale=scene.ground_scale)
    assert ls == pytest.approx(100 * math.cos(math.radians(lat)), rel=0.01)
    assert ws == pytest.approx(10 * math.cos(math.radians(lat)), rel=0.01)


def test_lonlat_round_trip():
    g = box(600000, 3860000, 600100, 3860020)
    back = from_lonlat(to_lonlat(g, "EPSG:32636"), "EPSG:32636")
    assert back.symmetric_difference(g).area < 1e-3


# -- model validation ----------------------------------------------------------------------------
def test_scene_validates_shapes_and_transform():
    good = _scene()
    assert good.pixel_size_m == pytest.approx(0.8, rel=0.01)
    with pytest.raises(ValueError, match="valid shape"):
        good.with_(valid=np.ones((5, 5), dtype=bool))
    with pytest.raises(ValueError, match="roles"):
        good.with_(bands=("red",))
    with pytest.raises(ValueError, match="north-up"):
        good.with_(transform=Affine(0.8, 0.1, 600000, 0, -0.8, 3860000))
    with pytest.raises(ValueError, match="bool"):
        good.with_(valid=np.ones((20, 30), dtype=np.uint8))


def test_detection_validates_values():
    poly = box(0, 0, 10, 2)
    Detection(poly, "vessel", 0.5, 10, 2, 90, 20)
    with pytest.raises(ValueError):
        Detection(poly, "ship", 0.5, 10, 2, 90, 20)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Detection(poly, "vessel", 1.5, 10, 2, 90, 20)
    with pytest.raises(ValueError):
        Detection(poly, "vessel", 0.5, 10, 2, 200, 20)


def test_geographic_crs_measured_in_metres():
    hull = box(600000, 3860000, 600120, 3860020)
    length, width, heading, _ = oriented_measures(to_lonlat(hull, "EPSG:32636"), crs="EPSG:4326")
    assert length == pytest.approx(120.0, rel=0.01)
    assert width == pytest.approx(20.0, rel=0.01)
    assert heading_difference(heading, 90.0) < 1.5


@pytest.mark.parametrize(("text", "expected"), [("false", False), ("0", False), ("True", True), ("on", True)])
def test_boolean_settings_parse_words(text, expected):
    assert load_settings(None, [f"match.berth={text}"]).match.berth is expected


def test_boolean_and_tuple_settings_refuse_garbage(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(None, ["match.berth=perhaps"])
    cfg = tmp_path / "s.toml"
    cfg.write_text("[equipment]\nlevels_z = [2.0, 4.0]\n[match]\nberth = false\n")
    s = load_settings(cfg)
    assert s.equipment.levels_z == (2.0, 4.0)
    assert s.match.berth is False
