"""Reader tests on tiny generated GeoTIFFs: date sources, band layouts, mask sources, bad inputs, real files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp
from scipy import ndimage as ndi

import berthwatch.io as bio
from _rasters import SHAPE, bands, grid, write, write_udm2
from berthwatch.errors import (
    BerthwatchError,
    EmptyFileError,
    MissingCRSError,
    MissingDateError,
    NotARasterError,
    NoValidDataError,
    SidecarError,
    TruncatedRasterError,
    UnsupportedBandsError,
    UnsupportedTransformError,
)
from berthwatch.io import find_udm2, read_scene, scene_info

D18 = dt.date(2025, 1, 18)
RGB_CI = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
RGBA_CI = (*RGB_CI, ColorInterp.alpha)


def plain(path: Path, **kw: object) -> Path:
    """A 4-band uint16 raster with no date anywhere (unless kw adds one)."""
    return write(path, bands(4), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2025-01-18", D18, dt.datetime(2025, 1, 18, 8, 15)])
def test_date_argument(tmp_path: Path, value: object) -> None:
    s = read_scene(plain(tmp_path / "port.tif"), date=value)  # type: ignore[arg-type]
    assert (s.date, s.date_source) == (D18, "argument")


def test_bad_date_argument_is_a_missing_date_error(tmp_path: Path) -> None:
    with pytest.raises(MissingDateError, match="not a date"):
        read_scene(plain(tmp_path / "port.tif"), date="18/01/2025")


def test_tifftag_datetime(tmp_path: Path) -> None:
    s = read_scene(plain(tmp_path / "port.tif", tags={"TIFFTAG_DATETIME": "2025:01:18 08:15:23"}))
    assert (s.date, s.date_source) == (D18, "TIFFTAG_DATETIME")
    assert s.acquired == dt.datetime(2025, 1, 18, 8, 15, 23)


@pytest.mark.parametrize(
    ("domain", "key", "value", "acquired"),
    [
        ("", "ACQ_DATE", "2025-01-18", None),
        ("", "acquired", "2025-01-18T08:15:23.120000Z", dt.datetime(2025, 1, 18, 8, 15, 23, 120000, tzinfo=dt.UTC)),
        ("", "SENSING_TIME", "2025-01-18T08:15:23.0123456Z", dt.datetime(2025, 1, 18, 8, 15, 23, 12345, tzinfo=dt.UTC)),
        (
            "",
            "DATATAKE_1_DATATAKE_SENSING_START",
            "2025-01-18T08:15:23Z",
            dt.datetime(2025, 1, 18, 8, 15, 23, tzinfo=dt.UTC),
        ),
        ("IMAGERY", "ACQUISITIONDATETIME", "2025-01-18T08:15:23Z", dt.datetime(2025, 1, 18, 8, 15, 23, tzinfo=dt.UTC)),
    ],
)
def test_metadata_keys(tmp_path: Path, domain: str, key: str, value: str, acquired: dt.datetime | None) -> None:
    kw = {"tag_domains": {domain: {key: value}}} if domain else {"tags": {key: value}}
    s = read_scene(plain(tmp_path / "port.tif", **kw))
    assert (s.date, s.date_source, s.acquired) == (D18, f"metadata:{key}", acquired)


def test_unparseable_metadata_falls_through_to_next_source(tmp_path: Path) -> None:
    s = read_scene(plain(tmp_path / "tartus_2025-01-18.tif", tags={"ACQ_DATE": "unknown"}))
    assert (s.date, s.date_source) == (D18, "filename:iso")


@pytest.mark.parametrize(
    ("name", "source", "acquired"),
    [
        (
            "20250118_081523_12_2416_3B_AnalyticMS.tif",
            "filename:planetscope",
            dt.datetime(2025, 1, 18, 8, 15, 23, 120000),
        ),
        ("20250118_081523_2416_3B_Visual.tif", "filename:planetscope", dt.datetime(2025, 1, 18, 8, 15, 23)),
        ("20250118_081523_ssc7_u0001_visual.tif", "filename:skysat", dt.datetime(2025, 1, 18, 8, 15, 23)),
        ("20250118_081523_ssc7d3_0012_basic_analytic.tif", "filename:skysat", dt.datetime(2025, 1, 18, 8, 15, 23)),
        ("tartus_2025-01-18.tif", "filename:iso", None),
        ("tartus_20250118_clip.tif", "filename:iso", None),
    ],
)
def test_date_from_file_name(tmp_path: Path, name: str, source: str, acquired: dt.datetime | None) -> None:
    s = read_scene(plain(tmp_path / name))
    assert (s.date, s.date_source) == (D18, source)
    got = s.acquired.replace(tzinfo=None) if s.acquired else None
    assert got == acquired


@pytest.mark.parametrize(
    "name",
    [
        "tartus_2025-01-18_vs_2025-01-27.tif",  # two dates: ambiguous
        "tartus_20251340.tif",  # not a valid date
        "scan20250118.tif",  # compact digits glued to letters are not a date
        "tartus_v2.tif",
    ],
)
def test_no_usable_date_in_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(MissingDateError, match="--date YYYY-MM-DD"):
        read_scene(plain(tmp_path / name))


def test_json_sidecar(tmp_path: Path) -> None:
    img = plain(tmp_path / "tartus_a_3B_AnalyticMS.tif")
    doc = {"id": "tartus_a", "properties": {"acquired": "2025-01-18T08:15:23.5Z", "item_type": "PSScene"}}
    (tmp_path / "tartus_a_metadata.json").write_text(json.dumps(doc))
    s = read_scene(img)
    assert (s.date, s.date_source) == (D18, "sidecar:json")
    assert s.acquired == dt.datetime(2025, 1, 18, 8, 15, 23, 500000, tzinfo=dt.UTC)


XML_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<ps:EarthObservation xmlns:ps="http://schemas.planet.com/ps/v1/planet_product_metadata_geocorrected_level"
    xmlns:eop="http://earth.esa.int/eop" xmlns:gml="http://www.opengis.net/gml">
  <gml:using><eop:EarthObservationEquipment><eop:acquisitionParameters><ps:Acquisition>
    <ps:acquisitionDateTime>2025-01-18T08:15:23+00:00</ps:acquisitionDateTime>
  </ps:Acquisition></eop:acquisitionParameters></eop:EarthObservationEquipment></gml:using>
</ps:EarthObservation>
"""


def test_xml_sidecar(tmp_path: Path) -> None:
    img = plain(tmp_path / "tartus_a_3B_AnalyticMS_clip.tif")
    (tmp_path / "tartus_a_3B_AnalyticMS_metadata_clip.xml").write_text(XML_SIDECAR)
    s = read_scene(img)
    assert (s.date, s.date_source) == (D18, "sidecar:xml")
    assert s.acquired == dt.datetime(2025, 1, 18, 8, 15, 23, tzinfo=dt.UTC)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<metadata><acquired>&lol9;</acquired></metadata>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE m [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<metadata><acquired>&xxe;</acquired></metadata>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_unsafe_xml_sidecar_is_refused(tmp_path: Path, text: str) -> None:
    img = plain(tmp_path / "tartus_a_3B_AnalyticMS.tif")
    (tmp_path / "tartus_a_3B_AnalyticMS_metadata.xml").write_text(text)
    with pytest.raises(SidecarError, match="DTD or entities") as err:
        read_scene(img)
    assert err.value.path == str(tmp_path / "tartus_a_3B_AnalyticMS_metadata.xml")
    # a date given by the user is used without ever parsing the sidecar
    assert read_scene(img, date=D18).date_source == "argument"


def test_malformed_json_sidecar(tmp_path: Path) -> None:
    img = plain(tmp_path / "tartus_a_3B_AnalyticMS.tif")
    (tmp_path / "tartus_a_metadata.json").write_text("{not json")
    with pytest.raises(SidecarError, match="not valid JSON"):
        read_scene(img)


def test_precedence_argument_tag_metadata_filename(tmp_path: Path) -> None:
    img = plain(
        tmp_path / "20250127_081523_12_2416_3B_AnalyticMS.tif",
        tags={"TIFFTAG_DATETIME": "2025:01:18 08:15:23", "ACQ_DATE": "2025-01-20"},
    )
    assert read_scene(img, date="2025-02-01").date == dt.date(2025, 2, 1)
    s = read_scene(img)
    assert (s.date, s.date_source) == (D18, "TIFFTAG_DATETIME")
    img2 = plain(tmp_path / "20250127_081523_12_2416_3B_Visual.tif", tags={"ACQ_DATE": "2025-01-20"})
    assert read_scene(img2).date_source == "metadata:ACQ_DATE"
    img3 = plain(tmp_path / "20250127_081523_12_2416_3B_udm.tif")
    (tmp_path / "20250127_081523_12_2416_metadata.json").write_text('{"properties": {"acquired": "2025-01-18"}}')
    assert read_scene(img3).date_source == "filename:planetscope"


def test_missing_date_message_says_how_to_give_one(tmp_path: Path) -> None:
    img = plain(tmp_path / "port.tif")
    with pytest.raises(MissingDateError) as err:
        read_scene(img)
    msg = str(err.value)
    assert msg.startswith(str(img)) and "--date YYYY-MM-DD" in msg and "date=" in msg and "\n" not in msg


# ---------------------------------------------------------------------------------------------------------------
# band layouts
# ---------------------------------------------------------------------------------------------------------------

PLANET8 = ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir")


@pytest.mark.parametrize(
    ("count", "dtype", "kw", "roles", "layout"),
    [
        (3, "uint8", {"colorinterp": RGB_CI}, ("red", "green", "blue"), "visual"),
        (
            3,
            "uint8",
            {"colorinterp": (ColorInterp.blue, ColorInterp.green, ColorInterp.red)},
            ("blue", "green", "red"),
            "visual",
        ),
        (3, "uint16", {}, ("red", "green", "blue"), "multiband"),
        (4, "uint16", {}, ("blue", "green", "red", "nir"), "analytic"),
        (
            4,
            "uint8",
            {"colorinterp": (*RGB_CI, ColorInterp.undefined), "alpha": "unspecified"},
            ("red", "green", "blue", "nir"),
            "multiband",
        ),
        (
            8,
            "uint16",
            {"descriptions": PLANET8},
            ("coastal", "blue", "other", "green", "other", "red", "rededge", "nir"),
            "analytic8",
        ),
        (8, "uint16", {}, ("coastal", "blue", "other", "green", "other", "red", "rededge", "nir"), "analytic8"),
        (4, "uint16", {"descriptions": ("B02", "B03", "B04", "B08")}, ("blue", "green", "red", "nir"), "sentinel2"),
        (4, "uint16", {"descriptions": ("B2", "B3", "B4", "B8A")}, ("blue", "green", "red", "nir"), "sentinel2"),
        (
            5,
            "uint16",
            {"descriptions": ("B02", "B03", "B04", "B05", "B11")},
            ("blue", "green", "red", "rededge", "swir"),
            "sentinel2",
        ),
        (4, "float32", {"descriptions": ("Red", "green", "BLUE", "NIR")}, ("red", "green", "blue", "nir"), "multiband"),
        (4, "uint16", {"descriptions": ("blue", "green", "red", "nir")}, ("blue", "green", "red", "nir"), "analytic"),
        (1, "uint16", {}, ("pan",), "pan"),
    ],
)
def test_band_layouts(tmp_path: Path, count: int, dtype: str, kw: dict, roles: tuple, layout: str) -> None:
    data = bands(count, dtype)
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data, **kw))
    assert s.bands == roles
    assert s.layout == layout
    assert s.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(s.data, data)  # native values, never rescaled
    info = scene_info(tmp_path / "tartus_2025-01-18.tif")
    assert (info.bands, info.layout, info.count, info.dtype) == (roles, layout, count, dtype)


def test_band_role_lookup_returns_the_declared_band(tmp_path: Path) -> None:
    data = bands(4)
    s = read_scene(write(tmp_path / "s2_2025-01-18.tif", data, descriptions=("B08", "B04", "B03", "B02")))
    np.testing.assert_array_equal(s.band("nir"), data[0].astype(np.float32))
    np.testing.assert_array_equal(s.band("blue"), data[3].astype(np.float32))


def test_rgba_alpha_is_dropped_and_masks(tmp_path: Path) -> None:
    data = bands(4, "uint8")
    data[3] = 255
    data[3, :, :5] = 0
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data, colorinterp=RGBA_CI))
    assert (s.bands, s.layout, s.data.shape[0]) == (("red", "green", "blue"), "visual", 3)
    np.testing.assert_array_equal(s.valid, data[3] > 0)


@pytest.mark.parametrize(
    ("count", "kw"),
    [(2, {}), (5, {}), (7, {}), (4, {"descriptions": ("nir", "swir1", "foo", "bar")})],
)
def test_unsupported_band_layouts(tmp_path: Path, count: int, kw: dict) -> None:
    img = write(tmp_path / "tartus_2025-01-18.tif", bands(count), **kw)
    with pytest.raises(UnsupportedBandsError) as err:
        read_scene(img)
    assert err.value.path == str(img)


# ---------------------------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------------------------


def _block() -> np.ndarray:
    m = np.zeros(SHAPE, dtype=bool)
    m[4:12, 10:20] = True
    return m


def test_nodata_mask_is_where_every_band_is_nodata(tmp_path: Path) -> None:
    data = bands(4)
    data[:, _block()] = 0
    data[2, 0, 0] = 0  # one band at nodata alone: GDAL's dataset mask keeps the pixel
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data, nodata=0))
    np.testing.assert_array_equal(s.valid, ~_block())


def test_internal_mask(tmp_path: Path) -> None:
    img = write(tmp_path / "tartus_2025-01-18.tif", bands(3, "uint8"), internal_mask=~_block())
    assert not (tmp_path / "tartus_2025-01-18.tif.msk").exists()
    np.testing.assert_array_equal(read_scene(img).valid, ~_block())


@pytest.mark.parametrize("flag_band", [2, 3, 4, 5, 6])  # snow, shadow, light haze, heavy haze, cloud
def test_udm2_sibling_masks_flagged_pixels(tmp_path: Path, flag_band: int) -> None:
    img = plain(tmp_path / "20250118_081523_12_2416_3B_AnalyticMS_SR.tif")
    udm = write_udm2(tmp_path / "20250118_081523_12_2416_3B_udm2.tif", cloud=_block(), flag_band=flag_band)
    s = read_scene(img)
    assert s.udm_path == udm
    np.testing.assert_array_equal(s.valid, ~_block())
    assert scene_info(img).udm_path == udm


def test_udm2_on_a_coarser_grid_is_reprojected(tmp_path: Path) -> None:
    img = plain(tmp_path / "20250118_081523_ssc7_u0001_visual.tif")
    coarse = np.zeros((SHAPE[0] // 2, SHAPE[1] // 2), dtype=bool)
    coarse[2:6, 5:10] = True  # = rows 4:12, cols 10:20 on the 3 m grid
    write_udm2(
        tmp_path / "20250118_081523_ssc7_u0001_udm2.tif", cloud=coarse, shape=coarse.shape, transform=grid(res=6.0)
    )
    np.testing.assert_array_equal(read_scene(img).valid, ~_block())


def test_udm2_unusable_band_and_missing_clear_flag(tmp_path: Path) -> None:
    img = plain(tmp_path / "x_3B_AnalyticMS.tif", tags={"ACQ_DATE": "2025-01-18"})
    udm_path = write_udm2(tmp_path / "x_3B_udm2.tif")
    import rasterio

    with rasterio.open(udm_path, "r+") as ds:
        b8 = np.zeros(SHAPE, np.uint8)
        b8[0, :] = 1  # UDM1 blackfill bit
        ds.write(b8, 8)
        clear = np.ones(SHAPE, np.uint8)
        clear[-1, :] = 0
        ds.write(clear, 1)
    valid = read_scene(img).valid
    assert not valid[0].any() and not valid[-1].any() and valid[1:-1].all()


@pytest.mark.parametrize(
    ("image", "udm"),
    [
        ("20250118_081523_12_2416_3B_AnalyticMS.tif", "20250118_081523_12_2416_3B_udm2.tif"),
        ("20250118_081523_12_2416_3B_AnalyticMS_SR_8b_clip.tif", "20250118_081523_12_2416_3B_udm2_clip.tif"),
        ("20250118_081523_ssc7_u0001_visual.tif", "20250118_081523_ssc7_u0001_udm2.tif"),
        ("tartus_2025-01-18.tif", "tartus_2025-01-18_udm2.tif"),
    ],
)
def test_find_udm2_names(tmp_path: Path, image: str, udm: str) -> None:
    (tmp_path / image).touch()
    assert find_udm2(tmp_path / image) is None
    (tmp_path / udm).touch()
    assert find_udm2(tmp_path / image) == tmp_path / udm


def test_udm2_of_another_acquisition_is_not_taken(tmp_path: Path) -> None:
    (tmp_path / "tartus_2025-01-18.tif").touch()
    (tmp_path / "tartus_udm2.tif").touch()
    (tmp_path / "tartus_2025-01-27_udm2.tif").touch()
    assert find_udm2(tmp_path / "tartus_2025-01-18.tif") is None


def test_broken_udm2_is_a_sidecar_error(tmp_path: Path) -> None:
    img = plain(tmp_path / "x_3B_AnalyticMS.tif", tags={"ACQ_DATE": "2025-01-18"})
    write(tmp_path / "x_3B_udm2.tif", bands(2, "uint8"))
    with pytest.raises(SidecarError, match="expected 8"):
        read_scene(img)


@pytest.mark.parametrize("how", ["nodata", "udm2"])
def test_no_valid_pixels(tmp_path: Path, how: str) -> None:
    name = "20250118_081523_12_2416_3B_AnalyticMS.tif"
    if how == "nodata":
        img = write(tmp_path / name, np.zeros((4, *SHAPE), np.uint16), nodata=0)
    else:
        img = plain(tmp_path / name)
        write_udm2(tmp_path / "20250118_081523_12_2416_3B_udm2.tif", cloud=np.ones(SHAPE, bool))
    with pytest.raises(NoValidDataError):
        read_scene(img)
    with pytest.raises(NoValidDataError):
        scene_info(img)


def test_black_collar_without_nodata_is_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bands(3, "uint8")
    data[:, :3, :] = 0  # a collar along the top and the left edge, no nodata value declared
    data[:, :, :4] = 0
    data[:, 12, 20] = 0  # a black pixel inside the image is data
    data[1, 20, 0] = 7  # a collar pixel with one band not 0 is data
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data))
    collar = np.zeros(SHAPE, bool)
    collar[:3, :] = collar[:, :4] = True
    collar[20, 0] = False
    # the collar and the pixels touching it (a resampled image blends the black into them)
    np.testing.assert_array_equal(s.valid, ~ndi.binary_dilation(collar))
    assert s.valid[12, 20]
    info = scene_info(tmp_path / "tartus_2025-01-18.tif")
    assert info.valid_fraction == pytest.approx(s.valid.mean())  # (the mask is read at full size here)
    monkeypatch.setattr(bio, "INFO_MASK_SIZE", 16)  # decimated by 2
    assert scene_info(tmp_path / "tartus_2025-01-18.tif").valid_fraction == pytest.approx(s.valid.mean(), abs=0.1)
    data[:] = 0
    black = write(tmp_path / "black_2025-01-18.tif", data)
    for reader in (read_scene, scene_info):
        with pytest.raises(NoValidDataError, match="0 in every band"):
            reader(black)


def test_alpha_band_masks_even_with_a_nodata_value(tmp_path: Path) -> None:
    data = bands(4, "uint8")
    data[3] = 255
    data[3, _block()] = 0  # transparent, though the colour bands hold data
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data, colorinterp=RGBA_CI, nodata=0))
    np.testing.assert_array_equal(s.valid, ~_block())  # (and no NodataShadowWarning: warnings are errors)


@pytest.mark.parametrize("lonlat", [False, True])
def test_alpha_band_named_only_by_its_description_masks(tmp_path: Path, lonlat: bool) -> None:
    """GDAL takes no band for alpha without its colour interpretation: the reader still does."""
    data = bands(5)
    data[4] = 255
    data[4, _block()] = 0
    kw: dict = {"descriptions": ("blue", "green", "red", "nir", "alpha")}
    if lonlat:
        kw.update(crs="EPSG:4326", transform=Affine(3e-5, 0.0, 35.87, 0.0, -3e-5, 34.9))
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data, **kw))
    assert s.bands == ("blue", "green", "red", "nir")
    if not lonlat:
        np.testing.assert_array_equal(s.valid, ~_block())
    else:  # the transparent block, now on the UTM grid: its centre is invalid, the image's centre valid
        x, y = 35.87 + 15 * 3e-5, 34.9 - 8 * 3e-5  # block centre (row 8, col 15)
        from pyproj import Transformer

        col, row = ~s.transform @ Transformer.from_crs("EPSG:4326", s.crs, always_xy=True).transform(x, y)
        assert not s.valid[int(row), int(col)]
        assert s.valid.mean() > 0.5


def test_geographic_crs_that_cannot_be_warped_is_refused(tmp_path: Path) -> None:
    mars = (
        'GEOGCS["Mars 2000",DATUM["D_Mars_2000",SPHEROID["Mars_2000_IAU_IAG",3396190.0,169.894447223612]],'
        'PRIMEM["Greenwich",0],UNIT["Degree",0.0174532925199433]]'
    )
    img = write(
        tmp_path / "mars_2025-01-18.tif", bands(3, "uint8"), crs=mars, transform=Affine(1e-4, 0, 10, 0, -1e-4, 5)
    )
    with pytest.raises(UnsupportedTransformError, match="cannot warp"):
        read_scene(img)
    with pytest.raises(UnsupportedTransformError, match="cannot warp"):
        scene_info(img)


@pytest.mark.parametrize("nodata", [None, 0])
def test_geographic_crs_is_warped_to_square_metres_in_local_utm(tmp_path: Path, nodata: int | None) -> None:
    """A lon/lat raster: its pixels are 0.82 times as wide as tall at 34.9 N; the scene's are square metres."""
    from pyproj import Transformer

    shape = (200, 240)
    step = 2e-5  # degrees: 2.2 m north-south, 1.8 m east-west
    lon0, lat0 = 35.870, 34.900
    data = np.full((3, *shape), 60, np.uint8)
    # a 100 m x 20 m bright hull, east-west, centred in the image
    lat_half, lon_half = 10.0 / 111_000, 50.0 / (111_000 * np.cos(np.radians(lat0 - 100 * step)))
    lon_c, lat_c = lon0 + 120 * step, lat0 - 100 * step
    cols = np.arange(shape[1]) * step + lon0 + step / 2
    rows = lat0 - np.arange(shape[0]) * step - step / 2
    inside = (np.abs(rows - lat_c)[:, None] <= lat_half) & (np.abs(cols - lon_c)[None, :] <= lon_half)
    data[:, inside] = 220
    t = Affine(step, 0.0, lon0, 0.0, -step, lat0)
    s = read_scene(write(tmp_path / "tartus_2025-01-18.tif", data, crs="EPSG:4326", transform=t, nodata=nodata))
    assert s.crs.to_epsg() == 32636
    assert s.transform.a == pytest.approx(-s.transform.e)  # square pixels
    assert 1.8 < s.pixel_size_m < 2.2
    hull = s.data[0] > 140
    rr, cc = np.nonzero(hull)
    px = s.pixel_size_m
    # the rectangle with the same second moments (the hull is turned 1.6 degrees on the UTM grid)
    width_px, length_px = np.sqrt(12.0 * np.linalg.eigvalsh(np.cov(np.vstack([rr, cc]).astype(float))))
    assert length_px * px == pytest.approx(100.0, abs=1.5 * px)
    assert width_px * px == pytest.approx(20.0, abs=1.5 * px)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32636", always_xy=True).transform(lon_c, lat_c)
    col, row = ~s.transform @ (x, y)
    assert (row, col) == pytest.approx((rr.mean() + 0.5, cc.mean() + 0.5), abs=1.0)
    # the UTM grid is turned 1.6 degrees from the lon/lat one: its corners lie outside the source, invalid
    assert not s.valid[0, 0] and not s.valid[-1, -1] and s.valid[s.height // 2, s.width // 2]


# ---------------------------------------------------------------------------------------------------------------
# scene_info
# ---------------------------------------------------------------------------------------------------------------


def test_scene_info_matches_read_scene_and_decimates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shape = (120, 160)
    data = bands(4, shape=shape)
    data[:, :, :40] = 0  # a quarter of the columns is nodata
    img = write(tmp_path / "tartus_2025-01-18.tif", data, nodata=0, tags={"TIFFTAG_DATETIME": "2025:01:18 08:15:23"})
    s = read_scene(img)
    monkeypatch.setattr(bio, "INFO_MASK_SIZE", 16)  # masks read at 1/10 resolution
    info = scene_info(img)
    assert info.valid_fraction == pytest.approx(s.valid.mean(), abs=0.05)
    assert s.valid.mean() == pytest.approx(0.75)
    assert (info.date, info.date_source, info.acquired) == (s.date, s.date_source, s.acquired)
    assert info.pixel_size == (3.0, 3.0)
    assert info.pixel_size_m == pytest.approx(s.pixel_size_m)
    assert info.pixel_size_m == pytest.approx(3.0, rel=0.01)  # UTM: grid scale within 1 %
    assert (info.width, info.height, info.crs.to_epsg()) == (160, 120, 32636)
    assert info.bounds == pytest.approx(s.bounds)
    assert "UTM zone 36N" in info.crs_name


def test_scene_info_footprint_in_lonlat(tmp_path: Path) -> None:
    t = Affine(0.001, 0.0, 35.85, 0.0, -0.001, 34.92)
    img = write(tmp_path / "tartus_2025-01-18.tif", bands(3, "uint8"), crs="EPSG:4326", transform=t)
    info = scene_info(img)
    assert info.footprint.bounds == pytest.approx((35.85, 34.92 - 0.024, 35.85 + 0.032, 34.92))
    # 0.001 deg is ~91 m east-west and ~111 m north-south at 34.9 N; the pixel size is the Scene's figure
    assert 0.001 * 111_000 * np.cos(np.radians(34.92)) * 0.98 < info.pixel_size_m < 0.001 * 111_000 * 1.02
    assert info.pixel_size_m == pytest.approx(read_scene(img).pixel_size_m, rel=0.05)
    d = json.loads(json.dumps(info.to_dict()))
    assert d["crs"] == "EPSG:4326" and d["date"] == "2025-01-18" and d["date_source"] == "filename:iso"
    assert d["bands"] == ["red", "green", "blue"] and d["layout"] == "visual" and d["udm_path"] is None
    assert d["footprint"]["type"] == "Polygon" and d["valid_fraction"] == 1.0
    assert d["warped_to"] == "EPSG:32636" == read_scene(img).crs.to_string()


# ---------------------------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------------------------


def _truncated(tmp_path: Path, keep: float) -> Path:
    rng = np.random.default_rng(0)
    full = write(tmp_path / "full_2025-01-18.tif", rng.integers(0, 255, (3, 128, 128), dtype=np.uint8))
    raw = full.read_bytes()
    out = tmp_path / "cut_2025-01-18.tif"
    out.write_bytes(raw[: int(len(raw) * keep)] if keep < 1 else raw[:100])
    return out


def _dir(p: Path) -> Path:
    (p / "dir.tif").mkdir()
    return p / "dir.tif"


def _file(p: Path, content: bytes) -> Path:
    (p / "f.tif").write_bytes(content)
    return p / "f.tif"


def _rgb(p: Path, **kw: object) -> Path:
    return write(p / "a_2025-01-18.tif", bands(3, "uint8"), **kw)  # type: ignore[arg-type]


_GCPS = (
    [
        GroundControlPoint(0, 0, 5e5, 4e6),
        GroundControlPoint(24, 32, 5e5 + 96, 4e6 - 72),
        GroundControlPoint(0, 32, 5e5 + 96, 4e6),
    ],
    "EPSG:32636",
)

BAD_INPUTS = {
    "missing": (NotARasterError, lambda p: p / "nope.tif"),
    "directory": (NotARasterError, _dir),
    "empty": (EmptyFileError, lambda p: _file(p, b"")),
    "text": (NotARasterError, lambda p: _file(p, b"hello, not a raster\n")),
    "truncated_pixels": (TruncatedRasterError, lambda p: _truncated(p, 0.5)),
    "truncated_header": (TruncatedRasterError, lambda p: _truncated(p, 2.0)),
    "no_crs": (MissingCRSError, lambda p: _rgb(p, crs=None)),
    "no_georef": (MissingCRSError, lambda p: _rgb(p, crs=None, transform=None)),
    "no_transform": (UnsupportedTransformError, lambda p: _rgb(p, transform=None)),
    "rotated": (UnsupportedTransformError, lambda p: _rgb(p, transform=Affine(3, 0.5, 5e5, 0.5, -3, 4e6))),
    "gcps_only": (UnsupportedTransformError, lambda p: _rgb(p, crs=None, transform=None, gcps=_GCPS)),
    "two_bands": (UnsupportedBandsError, lambda p: write(p / "a_2025-01-18.tif", bands(2))),
    "no_valid": (NoValidDataError, lambda p: write(p / "a_2025-01-18.tif", np.zeros((1, *SHAPE), np.uint8), nodata=0)),
    "no_date": (MissingDateError, lambda p: plain(p / "port.tif")),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_raise_their_error(tmp_path: Path, case: str) -> None:
    cls, make = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(cls) as err:
        read_scene(path)
    assert isinstance(err.value, BerthwatchError)
    assert err.value.path == str(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and "Traceback" not in msg
    if case != "truncated_pixels":  # scene_info does not read pixel blocks, only masks
        with pytest.raises(cls):
            scene_info(path)


# ---------------------------------------------------------------------------------------------------------------
# real files (skipped when ../shared/data/real is absent)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.real
def test_real_sentinel2_busan(real_data: Path) -> None:
    files = sorted((real_data / "sen2ships" / "busan").glob("*.tif"))
    assert files
    info = scene_info(files[0])
    assert info.date_source == "metadata:ACQ_DATE" and info.date == dt.date(2022, 5, 14)
    assert info.layout == "sentinel2" and info.bands == ("blue", "green", "red", "nir")
    assert info.crs.to_epsg() == 3857
    # 10 m Web Mercator pixels at 35.1 N are 10 cos(35.1) = 8.2 m on the ground
    assert info.pixel_size_m == pytest.approx(10.005 * np.cos(np.radians(35.106)), rel=0.01)
    s = read_scene(files[0])
    assert s.data.dtype == np.uint16 and s.valid.all() and s.pixel_size_m == pytest.approx(info.pixel_size_m)


@pytest.mark.real
def test_real_planetscope_without_date(real_data: Path) -> None:
    path = real_data / "planetscope_pairs" / "sf_pier80_strip_A_scene_1.tif"
    with pytest.raises(MissingDateError):
        read_scene(path)
    s = read_scene(path, date="2020-06-01")
    assert (s.date, s.date_source, s.layout) == (dt.date(2020, 6, 1), "argument", "visual")
    assert s.bands == ("red", "green", "blue")


@pytest.mark.real
def test_real_rapideye_alpha(real_data: Path) -> None:
    path = next((real_data / "planet_rapideye_sf").glob("*.tif"))
    s = read_scene(path)
    assert (s.date, s.layout, s.data.shape[0]) == (dt.date(2017, 3, 8), "visual", 3)
    assert 0.5 < s.valid.mean() < 1.0  # alpha masks the clip's no-data corners, not the sea
