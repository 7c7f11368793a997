"""Known-answer tests for berthwatch.evaluate and the ``berthwatch evaluate`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Polygon, mapping

from berthwatch.errors import VectorInputError
from berthwatch.evaluate import combine, evaluate, load_feature_collection
from berthwatch.geo import to_lonlat

UTM = "EPSG:32636"  # Tartus, Syria
X0, Y0 = 600_000.0, 3_860_000.0


def rect(cx: float, cy: float, length: float, width: float, heading: float) -> Polygon:
    """Oriented rectangle in UTM metres, long axis ``heading`` degrees clockwise from grid north."""
    h = math.radians(heading)
    ax = (math.sin(h) * length / 2, math.cos(h) * length / 2)  # along the long axis
    bx = (math.cos(h) * width / 2, -math.sin(h) * width / 2)  # across
    pts = [
        (cx + sa * ax[0] + sb * bx[0], cy + sa * ax[1] + sb * bx[1]) for sa, sb in ((1, 1), (1, -1), (-1, -1), (-1, 1))
    ]
    return Polygon(pts)


def feat(
    id_: str, kind: str, dx: float, dy: float, length: float, width: float, heading: float, **props: Any
) -> dict[str, Any]:
    geom = to_lonlat(rect(X0 + dx, Y0 + dy, length, width, heading), UTM)
    return {
        "type": "Feature",
        "properties": {"id": id_, "kind": kind, **props},
        "geometry": mapping(geom),
    }


def fc(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def three_truth_vessels() -> dict[str, Any]:
    return fc(
        feat("t1", "vessel", 0, 0, 100, 20, 0),
        feat("t2", "vessel", 500, 0, 150, 25, 90),
        feat("t3", "vessel", 0, 800, 60, 12, 45),
    )


def test_precision_recall_two_of_three() -> None:
    truth = three_truth_vessels()
    pred = fc(
        feat("p1", "vessel", 2, -3, 98, 19, 1),
        feat("p2", "vessel", 505, 2, 148, 24, 89),
        feat("p3", "vessel", -900, -900, 80, 15, 30),  # nothing there
    )
    r = evaluate(pred, truth, kinds=("vessel",))
    s = r["vessel"]
    assert (s.tp, s.fp, s.fn) == (2, 1, 1)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.unmatched_truth == ["t3"] and s.unmatched_pred == ["p3"]
    assert {(m.pred_id, m.truth_id) for m in s.matches} == {("p1", "t1"), ("p2", "t2")}
    assert not r.two_date


def test_length_error_from_properties_and_polygons() -> None:
    truth = fc(feat("t1", "vessel", 0, 0, 100, 20, 30))
    # measured from polygons (no length_m property): 110 vs 100 m
    r = evaluate(fc(feat("p1", "vessel", 0, 0, 110, 20, 30)), truth)
    assert r["vessel"].length_error_m == pytest.approx(10.0, abs=0.05)
    assert r["vessel"].length_error_pct == pytest.approx(10.0, abs=0.05)
    # properties win over the polygon
    pred = fc(feat("p1", "vessel", 0, 0, 100, 20, 30, length_m=90.0))
    r = evaluate(pred, truth)
    assert r["vessel"].length_error_m == pytest.approx(10.0, abs=0.05)


def test_heading_error_is_axial() -> None:
    truth = fc(feat("t1", "vessel", 0, 0, 100, 20, 5, heading_deg=5.0))
    pred = fc(feat("p1", "vessel", 0, 0, 100, 20, 170, heading_deg=170.0))
    r = evaluate(pred, truth, distance_factor=0.5)
    assert r["vessel"].tp == 1
    assert r["vessel"].heading_error_deg == pytest.approx(15.0)


def test_heading_from_polygon_is_true_north() -> None:
    # polygons drawn at 60 deg from UTM grid north; measured in the same zone the heading should be close to it
    # (grid convergence near the central meridian is well under a degree)
    truth = fc(feat("t1", "vessel", 0, 0, 120, 20, 60))
    pred = fc(feat("p1", "vessel", 0, 0, 120, 20, 64))
    r = evaluate(pred, truth)
    assert r["vessel"].heading_error_deg == pytest.approx(4.0, abs=0.1)


def test_occluded_truth_not_counted() -> None:
    truth = fc(
        feat("t1", "vessel", 0, 0, 100, 20, 0),
        feat("t2", "vessel", 500, 0, 100, 20, 0, occluded=True),  # predicted: dropped, not TP/FP
        feat("t3", "vessel", 0, 800, 100, 20, 0, occluded=True),  # missed: not a FN
    )
    pred = fc(feat("p1", "vessel", 0, 0, 100, 20, 0), feat("p2", "vessel", 500, 0, 100, 20, 0))
    s = evaluate(pred, truth)["vessel"]
    assert (s.tp, s.fp, s.fn, s.ignored) == (1, 0, 0, 1)
    assert s.precision == 1.0 and s.recall == 1.0
    assert s.n_occluded == 2


def test_iou_or_distance_admissibility() -> None:
    # small 10 x 4 m object, prediction offset 4 m along its axis: IoU = 6/14 = 0.43
    truth = fc(feat("t", "equipment", 0, 0, 10, 4, 0))
    near = fc(feat("p", "equipment", 0, 4, 10, 4, 0))
    assert evaluate(near, truth, iou_threshold=0.3, distance_factor=0.0)["equipment"].tp == 1
    assert evaluate(near, truth, iou_threshold=0.5, distance_factor=0.0)["equipment"].tp == 0
    # the distance rule rescues it: 4 m <= 0.5 x 10 m
    assert evaluate(near, truth, iou_threshold=0.5, distance_factor=0.5)["equipment"].tp == 1
    # a loosely outlined small object: no overlap at all, centroid 4.5 m away
    far = fc(feat("p", "equipment", 4.5, 0, 3, 3, 0))
    assert evaluate(far, truth, distance_factor=0.5)["equipment"].tp == 1
    assert evaluate(far, truth, distance_factor=0.4)["equipment"].tp == 0


def test_kinds_are_matched_separately() -> None:
    truth = fc(feat("t", "vessel", 0, 0, 20, 6, 0))
    pred = fc(feat("p", "equipment", 0, 0, 20, 6, 0))
    r = evaluate(pred, truth)
    assert (r["vessel"].tp, r["vessel"].fn) == (0, 1)
    assert (r["equipment"].tp, r["equipment"].fp) == (0, 1)
    assert r["vessel"].precision is None  # nothing predicted: undefined, not 0 or 1
    assert evaluate(pred, truth, kinds=("vessel",)).kinds.keys() == {"vessel"}


def test_one_to_one_assignment_maximises_pairs() -> None:
    # one prediction between two truths; the second prediction can only match t2: both must match
    truth = fc(feat("t1", "vessel", 0, 0, 100, 20, 90), feat("t2", "vessel", 0, 30, 100, 20, 90))
    pred = fc(feat("pa", "vessel", 0, 14, 100, 20, 90), feat("pb", "vessel", 0, 40, 100, 20, 90))
    s = evaluate(pred, truth)["vessel"]
    assert s.tp == 2 and s.fp == 0 and s.fn == 0
    assert {(m.pred_id, m.truth_id) for m in s.matches} == {("pa", "t1"), ("pb", "t2")}


def two_date_case() -> tuple[dict[str, Any], dict[str, Any]]:
    truth = fc(
        feat("a", "vessel", 0, 0, 100, 20, 0, status="departed"),
        feat("b", "vessel", 300, 0, 100, 20, 0, status="arrived"),
        feat("c", "vessel", 600, 0, 100, 20, 0, status="stayed"),
        feat("d", "vessel", 900, 0, 100, 20, 0, status="stayed"),
        feat("e", "vessel", 1200, 0, 100, 20, 0, status="departed", occluded=True),
        feat("f", "vessel", 1500, 0, 100, 20, 0, status="arrived"),
    )
    pred = fc(
        feat("1", "vessel", 0, 0, 100, 20, 0, status="departed"),  # change TP
        feat("2", "vessel", 300, 0, 100, 20, 0, status="arrived"),  # change TP
        feat("3", "vessel", 600, 0, 100, 20, 0, status="departed"),  # false change (truth stayed)
        feat("4", "vessel", 900, 0, 100, 20, 0, status="unknown"),  # status error
        feat("5", "vessel", 1200, 0, 100, 20, 0, status="unknown"),  # on occluded truth: ignored
        feat("6", "vessel", 2500, 0, 100, 20, 0, status="arrived"),  # unmatched: false change + FP
        # truth f (arrived) is missed
    )
    return pred, truth


def test_status_accuracy_and_change_f1() -> None:
    pred, truth = two_date_case()
    r = evaluate(pred, truth)
    s = r["vessel"]
    assert r.two_date
    assert (s.tp, s.fp, s.fn, s.ignored) == (4, 1, 1, 1)
    assert s.status_total == 4 and s.status_correct == 2
    assert s.status_accuracy == pytest.approx(0.5)
    assert (s.change_tp, s.change_pred, s.change_truth) == (2, 4, 3)
    assert s.change_precision == pytest.approx(2 / 4)
    assert s.change_recall == pytest.approx(2 / 3)
    assert s.change_f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s.false_changes == 2 and s.missed_changes == 1
    d = r.to_dict()
    assert d["kinds"]["vessel"]["false_changes"] == 2
    assert "chg F1" in r.table() and "status acc" in r.table()


def test_replacement_at_one_berth_is_not_cross_assigned() -> None:
    # a ship left and another, slightly offset, arrived at the same berth; geometry alone would prefer the cross
    truth = fc(
        feat("old", "vessel", 0, 0, 100, 20, 0, status="departed"),
        feat("new", "vessel", 0, 8, 100, 20, 0, status="arrived"),
    )
    pred = fc(
        feat("p_dep", "vessel", 0, 7, 100, 20, 0, status="departed"),
        feat("p_arr", "vessel", 0, 1, 100, 20, 0, status="arrived"),
    )
    s = evaluate(pred, truth)["vessel"]
    assert s.change_tp == 2 and s.status_accuracy == 1.0


def test_combine_pools_counts() -> None:
    truth = three_truth_vessels()
    pred = fc(feat("p1", "vessel", 0, 0, 100, 20, 0))
    r1 = evaluate(pred, truth)
    r2 = evaluate(truth, truth)
    c = combine([r1, r2])["vessel"]
    assert (c.tp, c.fp, c.fn) == (4, 0, 2)
    assert c.recall == pytest.approx(4 / 6)
    with pytest.raises(ValueError):
        combine([])


def test_empty_collections() -> None:
    r = evaluate(fc(), fc())
    assert r["vessel"].f1 is None and r["vessel"].tp == 0
    r = evaluate(fc(), three_truth_vessels())
    assert r["vessel"].recall == 0.0 and r["vessel"].fn == 3


# --- bad inputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"type": "Feature", "geometry": None, "properties": {}}),
        json.dumps(
            fc({"type": "Feature", "properties": {"id": 1}, "geometry": {"type": "Point", "coordinates": [0, 0]}})
        ),
        json.dumps(fc({"type": "Feature", "properties": {"kind": "vessel"}, "geometry": None})),
    ],
    ids=["bad-json", "not-collection", "no-kind", "no-geometry"],
)
def test_bad_files_raise_vector_input_error(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text(content)
    with pytest.raises(VectorInputError) as info:
        load_feature_collection(bad)
    assert info.value.path == str(bad)
    with pytest.raises(VectorInputError):
        evaluate(bad, three_truth_vessels())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VectorInputError):
        load_feature_collection(tmp_path / "nope.geojson")


def test_bad_thresholds() -> None:
    with pytest.raises(ValueError):
        evaluate(fc(), fc(), iou_threshold=0.0)


# --- CLI ----------------------------------------------------------------------------------------------------


def _run_evaluate(tmp_path: Path, pred: dict[str, Any], truth: dict[str, Any], *args: str, truth_name: str = "truth"):
    """``berthwatch evaluate`` on the two collections written to ``tmp_path``; the click result."""
    from click.testing import CliRunner

    from berthwatch.cli import main

    pp, tp = tmp_path / "pred.geojson", tmp_path / f"{truth_name}.geojson"
    pp.write_text(json.dumps(pred))
    tp.write_text(json.dumps(truth))
    return CliRunner().invoke(main, ["evaluate", str(pp), str(tp), *args])


def test_cli_table_and_json(tmp_path: Path) -> None:
    pred, truth = two_date_case()
    res = _run_evaluate(tmp_path, pred, truth, "--json", "--kind", "vessel")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert list(d["kinds"]) == ["vessel"]
    assert d["kinds"]["vessel"]["tp"] == 4 and d["kinds"]["vessel"]["status_accuracy"] == 0.5
    res = _run_evaluate(tmp_path, pred, truth, "--iou", "0.5")
    assert res.exit_code == 0, res.output
    assert "vessel" in res.output and "equipment" in res.output and "IoU >= 0.5" in res.output


def test_cli_bad_file_exits_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from berthwatch.cli import main

    bad = tmp_path / "bad.geojson"
    bad.write_text("[1, 2, 3]")
    good = tmp_path / "truth.geojson"
    good.write_text(json.dumps(three_truth_vessels()))
    res = CliRunner().invoke(main, ["evaluate", str(bad), str(good)])
    assert res.exit_code == 2
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and "bad.geojson" in lines[0]


def test_cli_truth_without_kind_takes_the_one_kind_asked(tmp_path: Path) -> None:
    """A plain file of hand-drawn ship outlines (no `kind`) is scored as vessels with --kind vessel, refused
    without it (exit 2, naming the file)."""
    truth = three_truth_vessels()
    for f in truth["features"]:
        del f["properties"]["kind"]
    pred = fc(feat("p1", "vessel", 2, -3, 98, 19, 1), feat("p2", "vessel", 505, 2, 148, 24, 89))
    res = _run_evaluate(tmp_path, pred, truth, "--json", "--kind", "vessel", truth_name="ships")
    assert res.exit_code == 0, res.output
    v = json.loads(res.output)["kinds"]["vessel"]
    assert (v["tp"], v["fp"], v["fn"]) == (2, 0, 1)
    res = _run_evaluate(tmp_path, pred, truth, truth_name="ships")
    assert res.exit_code == 2 and "ships.geojson" in res.output and "kind" in res.output
