"""Output contract: objects.geojson (RFC 7946), objects.csv, summary.json, change_map.tif (COG), PNGs, reports."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from matplotlib import image as mimage
from rasterio.crs import CRS
from shapely import affinity
from shapely.geometry import Point, Polygon, box, shape
from shapely.geometry.polygon import orient
from skimage import draw

import berthwatch
from berthwatch.config import Settings
from berthwatch.errors import OutputError
from berthwatch.geo import from_lonlat, oriented_measures, pixel_to_crs
from berthwatch.models import (
    STATUSES,
    AlignedPair,
    Alignment,
    ChangedObject,
    ChangeSet,
    Detection,
    DetectionResult,
    Scene,
)
from berthwatch.report import (
    CLASS_LEGEND,
    finding_sentence,
    objects_feature_collection,
    render_html,
    write_change_map,
    write_compare_outputs,
    write_detect_outputs,
    write_geojson,
)

UTM36 = CRS.from_epsg(32636)
T = Affine(1.0, 0.0, 600_000.0, 0.0, -1.0, 3_865_000.0)
EVIL = "<img src=x onerror=alert(1)>&co.tif"  # a legal file name that is also HTML
REQUIRED = {
    "id": str,
    "kind": str,
    "status": str,
    "length_m": float,
    "width_m": float,
    "heading_deg": float,
    "area_m2": float,
    "confidence": float,
    "before_date": str,
    "after_date": str,
}


def _rect(cx, cy, length, width, angle=0.0):
    return affinity.rotate(
        box(cx - length / 2, cy - width / 2, cx + length / 2, cy + width / 2), angle, origin=(cx, cy)
    )


def _scene(rows, cols, boxes_px, *, date, path=None, transform=T, crs=UTM36):
    rng = np.random.default_rng(2)
    data = np.full((3, rows, cols), 40.0, np.float32)
    data[:, :, cols // 2 :] = 120.0
    data += rng.normal(0, 3, data.shape)
    for p in boxes_px:
        xy = np.asarray(p.exterior.coords)
        rr, cc = draw.polygon(xy[:, 1], xy[:, 0], shape=(rows, cols))
        data[:, rr, cc] = 230.0
    valid = np.ones((rows, cols), bool)
    valid[:4] = False
    return Scene(
        data=np.clip(data, 0, 255).astype(np.uint8),
        transform=transform,
        crs=crs,
        date=date,
        bands=("blue", "green", "red"),
        valid=valid,
        path=path,
        date_source="argument",
        layout="test-rgb",
    )


def _det(p_px, kind, *, transform=T, crs=UTM36, conf=0.8, oid=""):
    g = pixel_to_crs(p_px, transform)
    scale = 1.0 if not crs.is_geographic else 111_000.0
    length, width, heading, rect = oriented_measures(g, ground_scale=scale)
    return Detection(rect, kind, conf, length, width, heading, g.area * scale**2, id=oid, features={"contrast": 0.5})


def _changed(oid, status, before=None, after=None):
    d = before or after
    return ChangedObject(
        oid,
        d.kind,
        status,
        d.geometry,
        d.confidence,
        d.length_m,
        d.width_m,
        d.heading_deg,
        d.area_m2,
        before,
        after,
        evidence={"ncc": 0.123456, "dark_fraction": 0.9},
    )


@pytest.fixture(scope="module")
def compare_case(tmp_path_factory):
    rows, cols = 300, 520  # > 256 px tiles, so the COG gets overviews
    v1, v2, v3 = _rect(120, 90, 131, 18, 80), _rect(130, 220, 124, 17, 95), _rect(200, 230, 90, 14, 90)
    e1, e2, e3 = _rect(350, 80, 12, 3), _rect(380, 120, 6, 2.5, 30), _rect(420, 250, 12, 2.5, 90)
    bdate, adate = dt.date(2025, 1, 18), dt.date(2025, 1, 27)
    before = _scene(rows, cols, [v1, v2, e1, e2, e3], date=bdate, path=Path("/data") / EVIL)
    after = _scene(rows, cols, [v2, v3, e3], date=adate, path=Path("/data/after.tif"))
    objects = [
        _changed("V1", "departed", before=_det(v1, "vessel")),
        _changed("V2", "stayed", before=_det(v2, "vessel"), after=_det(v2, "vessel")),
        _changed("V3", "arrived", after=_det(v3, "vessel")),
        _changed("E1", "departed", before=_det(e1, "equipment")),
        _changed("E2", "departed", before=_det(e2, "equipment")),
        _changed("E3", "unknown", before=_det(e3, "equipment")),
    ]
    cls = np.zeros((rows, cols), np.uint8)
    cls[:4] = 255
    cls[40:140, 100:140] = 1
    cls[200:260, 190:210] = 2
    cls[150:160, 400:410] = 3
    mag = np.random.default_rng(3).random((rows, cols)).astype(np.float32)
    mag[100, 100] = 255.0  # must not become nodata
    mag[50, 50] = np.nan  # becomes nodata
    changes = ChangeSet(objects=objects, change_class=cls, magnitude=mag)
    al = Alignment(shift_px=(0.4, -1.2), residual_px=0.15, quality=0.93, method="phase_cross_correlation", applied=True)
    pair = AlignedPair(before, after, al, before, after)
    out = tmp_path_factory.mktemp("compare")
    files = write_compare_outputs(
        out, pair=pair, changes=changes, settings=Settings(), timings={"align": 1.5}, notes=[f"note about {EVIL}"]
    )
    return out, files, pair, changes


# ------------------------------------------------------------------------------------------------ GeoJSON
def test_geojson_is_rfc7946(compare_case):
    out, _, _, changes = compare_case
    fc = json.loads((out / "objects.geojson").read_text(encoding="utf-8"))
    assert fc["type"] == "FeatureCollection"
    assert "crs" not in fc
    assert len(fc["features"]) == len(changes.objects)
    for f in fc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 4
        lons, lats = zip(*ring, strict=True)
        assert all(-180 <= x <= 180 for x in lons) and all(-90 <= y <= 90 for y in lats)
        poly = shape(f["geometry"])
        assert poly.is_valid and poly.exterior.is_ccw  # right-hand rule
        props = f["properties"]
        for key, typ in REQUIRED.items():
            assert isinstance(props[key], typ), (key, props[key])
        assert props["kind"] in ("vessel", "equipment") and props["status"] in STATUSES
        assert 0.0 <= props["heading_deg"] < 180.0 and 0.0 <= props["confidence"] <= 1.0
        assert props["before_date"] == "2025-01-18" and props["after_date"] == "2025-01-27"


def test_geojson_round_trips_onto_the_objects(compare_case):
    out, _, pair, changes = compare_case
    fc = json.loads((out / "objects.geojson").read_text(encoding="utf-8"))
    by_id = {o.id: o for o in changes.objects}
    for f in fc["features"]:
        obj = by_id[f["properties"]["id"]]
        p = f["properties"]
        back = from_lonlat(Point(p["centroid_lon"], p["centroid_lat"]), pair.before.crs)
        assert back.distance(obj.geometry.centroid) < 0.1  # metres = 0.1 px
        poly = from_lonlat(shape(f["geometry"]), pair.before.crs)
        assert poly.symmetric_difference(obj.geometry).area < 0.01 * obj.geometry.area
        assert p["length_m"] == pytest.approx(obj.length_m, abs=0.01)


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        (CRS.from_epsg(32636), T),
        (CRS.from_epsg(3857), Affine(1.2, 0.0, 3_990_000.0, 0.0, -1.2, 4_150_000.0)),
        (CRS.from_epsg(4326), Affine(1e-5, 0.0, 35.87, 0.0, -1e-5, 34.91)),
    ],
)
def test_feature_collection_any_crs_and_clockwise_input(crs, transform):
    p = _rect(50, 40, 60, 10, 30)
    det = _det(p, "vessel", transform=transform, crs=crs, oid="V9")
    det.geometry = orient(det.geometry, sign=-1.0)  # clockwise on purpose
    fc = objects_feature_collection([det], crs, date=dt.date(2025, 1, 1))
    f = fc["features"][0]
    poly = shape(f["geometry"])
    assert poly.exterior.is_ccw
    assert "status" not in f["properties"] and f["properties"]["date"] == "2025-01-01"
    back = from_lonlat(Point(f["properties"]["centroid_lon"], f["properties"]["centroid_lat"]), crs)
    px = transform.a
    assert back.distance(det.geometry.centroid) < 0.05 * px
    # coordinates are rounded to 1e-7 degrees
    for x, y in f["geometry"]["coordinates"][0]:
        assert round(x, 7) == x and round(y, 7) == y


def test_write_geojson_into_missing_folder_raises_output_error(tmp_path):
    with pytest.raises(OutputError):
        write_geojson({"type": "FeatureCollection", "features": []}, tmp_path / "missing" / "objects.geojson")


# ------------------------------------------------------------------------------------------------ CSV
def test_csv_rows_match_features(compare_case):
    out, _, _, _ = compare_case
    fc = json.loads((out / "objects.geojson").read_text(encoding="utf-8"))
    with (out / "objects.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(fc["features"])
    for row, f in zip(rows, fc["features"], strict=True):
        p = f["properties"]
        assert row["id"] == p["id"] and row["status"] == p["status"] and row["kind"] == p["kind"]
        assert float(row["lon"]) == pytest.approx(p["centroid_lon"]) and float(row["lat"]) == pytest.approx(
            p["centroid_lat"]
        )
        assert float(row["length_m"]) == pytest.approx(p["length_m"])
        assert row["before_date"] == "2025-01-18"
        assert float(row["evidence_ncc"]) == pytest.approx(0.1235)


# ------------------------------------------------------------------------------------------------ summary
def test_summary_json(compare_case):
    out, files, pair, changes = compare_case
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["berthwatch_version"] == berthwatch.__version__
    assert s["counts"] == changes.counts()
    assert s["counts"]["vessel"]["departed"] == 1 and s["counts"]["equipment"]["departed"] == 2
    assert s["alignment"] == json.loads(json.dumps(pair.alignment.to_dict()))
    assert s["settings"] == json.loads(json.dumps(Settings().to_dict()))
    assert s["timings_s"] == {"align": 1.5}
    b = s["inputs"]["before"]
    assert b["file"] == EVIL and b["date"] == "2025-01-18" and b["crs"] == "EPSG:32636"
    assert b["bands"] == ["blue", "green", "red"] and b["layout"] == "test-rgb"
    assert b["pixel_size_m"] == pytest.approx(pair.before.pixel_size_m, rel=1e-3)
    assert s["notes"] == [f"note about {EVIL}"]
    assert s["finding"].startswith("1 vessel departed (length 131 m), 2 equipment items departed, 1 vessel arrived")
    for name in ("objects.geojson", "objects.csv", "change_map.tif", "before.png", "after.png", "overview.png"):
        assert name in s["outputs"]
    assert sorted(s["outputs"]) == sorted(p.relative_to(out).as_posix() for p in files)
    assert all((out / name).is_file() for name in s["outputs"])


def test_finding_sentence_lists_vessel_lengths():
    def obj(kind, status, length):
        return ChangedObject("x", kind, status, box(0, 0, 1, 1), 0.9, length, 10.0, 0.0, 1.0)

    objs = [obj("vessel", "departed", 124.4), obj("vessel", "departed", 131.2)]
    objs += [obj("equipment", "departed", 6.0) for _ in range(37)] + [obj("vessel", "stayed", 80.0)]
    text = finding_sentence(objs)
    assert text.startswith("2 vessels departed (lengths 131 m, 124 m), 37 equipment items departed; 1 vessel stayed")
    assert finding_sentence([]).startswith("No vessel or equipment changes")


# ------------------------------------------------------------------------------------------------ change map
def test_change_map_is_a_cog_on_the_pair_grid(compare_case):
    out, _, pair, changes = compare_case
    with rasterio.open(out / "change_map.tif") as src:
        assert src.count == 2
        assert src.crs == pair.before.crs and src.transform == pair.before.transform
        assert src.shape == pair.before.shape
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1), "overviews expected for a grid larger than one tile"
        assert src.descriptions == ("change_class", "change_magnitude")
        assert src.nodata == 255
        assert src.tags()["CHANGE_CLASS_1"] == CLASS_LEGEND[1]
        cls = src.read(1)
        mag = src.read(2)
    assert np.array_equal(cls.astype(np.uint8), changes.change_class)
    valid = (changes.change_class != 255) & np.isfinite(changes.magnitude)
    np.testing.assert_allclose(mag[valid], changes.magnitude[valid], rtol=1e-3)  # 10 mantissa bits kept
    assert (mag[~valid] == 255).all()
    assert mag[100, 100] == pytest.approx(255.0, abs=0.2) and mag[100, 100] != 255.0


def test_change_map_shape_mismatch(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_change_map(
            tmp_path / "c.tif", np.zeros((5, 5), np.uint8), np.zeros((5, 6), np.float32), transform=T, crs=UTM36
        )


# ------------------------------------------------------------------------------------------------ pictures and reports
def test_pictures_exist_and_are_images(compare_case):
    out, _, _, _ = compare_case
    for name in ("before.png", "after.png", "overview.png"):
        img = mimage.imread(out / name)
        assert img.ndim == 3 and min(img.shape[:2]) >= 300 and max(img.shape[:2]) <= 3300
    n_changed = sum(o.status != "stayed" for o in compare_case[3].objects)
    chips = sorted((out / "chips").glob("*.png"))
    assert len(chips) == n_changed
    assert mimage.imread(chips[0]).shape[0] == 160


def test_html_escapes_external_text_and_has_chips(compare_case):
    out, _, _, changes = compare_case
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<img src=x onerror" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;co.tif" in text
    assert "<script" not in text.lower()
    changed = [o for o in changes.objects if o.status != "stayed"]
    assert text.count("<div class='card'>") == len(changed)
    assert len(re.findall(r"src='data:image/png;base64,", text)) == 2 * len(changed)
    assert "data:image/jpeg;base64," in text  # inline overview: the page stands alone
    assert "1 vessel departed (length 131 m)" in text
    for o in changes.objects:
        assert f"<td>{o.id}</td>" in text
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "<img src=x" not in md and "](chips/V1.png)" in md


def test_html_limits_chips(compare_case):
    out, _, _, changes = compare_case
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    fc = json.loads((out / "objects.geojson").read_text(encoding="utf-8"))
    chips = [(changes.objects[0], b"png", b"png")]
    text = render_html(summary, fc, chips=chips, n_chip_candidates=250, overview=None)
    assert text.count("<div class='card'>") == 1
    assert "249 more changed objects" in text


# ------------------------------------------------------------------------------------------------ detect
def test_detect_outputs_have_no_status(tmp_path):
    v, e = _rect(60, 50, 80, 12, 45), _rect(150, 40, 10, 3)
    scene = _scene(100, 200, [v, e], date=dt.date(2025, 1, 18), path=Path("/x") / EVIL)
    dets = [_det(v, "vessel", oid="V1"), _det(e, "equipment", oid="E1")]
    note = "equipment not searched: pixel size 3.0 m > 1.2 m"
    result = DetectionResult(scene, dets, np.zeros(scene.shape, bool), equipment_searched=True, notes=[note])
    files = write_detect_outputs(tmp_path, result=result, settings=Settings(), timings={"detect": 0.5})
    assert {p.name for p in files} == {"objects.geojson", "objects.csv", "annotated.png", "summary.json"}
    fc = json.loads((tmp_path / "objects.geojson").read_text(encoding="utf-8"))
    assert [f["properties"]["id"] for f in fc["features"]] == ["V1", "E1"]
    assert all("status" not in f["properties"] for f in fc["features"])
    assert all(f["properties"]["date"] == "2025-01-18" for f in fc["features"])
    with (tmp_path / "objects.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert "status" not in (reader.fieldnames or []) and len(rows) == 2
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert s["counts"] == {"vessel": 1, "equipment": 1}
    assert s["notes"] == [note] and s["input"]["file"] == EVIL
    assert mimage.imread(tmp_path / "annotated.png").ndim == 3


def test_polygon_type_is_kept_for_degenerate_footprint():
    det = Detection(Polygon([(0, 0), (10, 0), (10, 1), (0, 1)]), "equipment", 0.5, 10.0, 1.0, 90.0, 10.0, id="E")
    det.geometry = affinity.translate(det.geometry, 600_000, 3_864_000)
    fc = objects_feature_collection([det], UTM36)
    assert fc["features"][0]["geometry"]["type"] == "Polygon"


def test_compare_outputs_without_objects(tmp_path):
    rows, cols = 60, 90
    before = _scene(rows, cols, [], date=dt.date(2025, 1, 18))
    after = _scene(rows, cols, [], date=dt.date(2025, 1, 27))
    al = Alignment(shift_px=(0.0, 0.0), residual_px=0.0, quality=1.0, method="test", applied=False, flagged=True)
    pair = AlignedPair(before, after, al, before, after)
    cls = np.where(before.valid, 0, 255).astype(np.uint8)
    changes = ChangeSet(objects=[], change_class=cls, magnitude=np.zeros((rows, cols), np.float32))
    files = write_compare_outputs(tmp_path, pair=pair, changes=changes, settings=Settings(), timings={})
    names = {p.relative_to(tmp_path).as_posix() for p in files}
    assert {"objects.geojson", "objects.csv", "summary.json", "change_map.tif", "report.html", "report.md"} <= names
    assert json.loads((tmp_path / "objects.geojson").read_text(encoding="utf-8"))["features"] == []
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert s["finding"] == "No vessel or equipment changes detected."
    assert s["totals"] == {"objects": 0, "changed": 0}
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No changed objects." in text and "Alignment flagged" in text
