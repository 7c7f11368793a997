"""End to end through the CLI: ``berthwatch compare`` and ``berthwatch detect`` write the output contract."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from berthwatch.cli import main
from berthwatch.geo import heading_difference

CONTRACT = [
    "objects.geojson",
    "objects.csv",
    "summary.json",
    "change_map.tif",
    "before.png",
    "after.png",
    "overview.png",
    "report.md",
    "report.html",
]
PROPERTIES = {
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


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small port at 2 m: a 90 m ship leaves, a 60 m ship stays; AFTER is misregistered and hazier."""
    from berthwatch.synth import DateSpec, PortSpec, VesselSpec, make_port, render

    folder = tmp_path_factory.mktemp("pair")
    spec = PortSpec(
        seed=21,
        width_m=480.0,
        height_m=400.0,
        pixel_size_m=2.0,
        layout="quay",
        land_side=90.0,
        equipment=[],
        distractors=False,
        vessels=[
            VesselSpec(x=-120.0, y=80.0, length_m=90.0, heading_deg=60.0, id="LEAVES", present=(True, False)),
            VesselSpec(x=-100.0, y=-90.0, length_m=60.0, heading_deg=150.0, id="STAYS"),
        ],
    )
    port = make_port(spec)
    before = render(port, DateSpec(dt.date(2025, 1, 18), layout="analytic"), which=0)
    after = render(
        port, DateSpec(dt.date(2025, 1, 27), layout="analytic", shift_px=(1.5, -2.0), haze=0.15, gain=1.1), which=1
    )
    return before.write(folder / "port_2025-01-18.tif"), after.write(folder / "port_2025-01-27.tif")


def test_compare_writes_the_contract_and_finds_the_departure(pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["-q", "compare", str(pair[0]), str(pair[1]), "--out", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    for name in CONTRACT:
        assert (out / name).is_file(), name
    fc = json.loads((out / "objects.geojson").read_text())
    assert fc["type"] == "FeatureCollection"
    for f in fc["features"]:
        assert f["geometry"]["type"] == "Polygon"
        for key, typ in PROPERTIES.items():
            assert isinstance(f["properties"][key], typ), key
        assert f["properties"]["before_date"] == "2025-01-18"
    vessels = [f["properties"] for f in fc["features"] if f["properties"]["kind"] == "vessel"]
    departed = [v for v in vessels if v["status"] == "departed"]
    assert len(departed) == 1, vessels
    assert departed[0]["length_m"] == pytest.approx(90.0, rel=0.1)
    assert heading_difference(departed[0]["heading_deg"], 60.0) < 10.0
    assert any(v["status"] == "stayed" and v["length_m"] == pytest.approx(60.0, rel=0.15) for v in vessels)
    with (out / "objects.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(fc["features"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["vessel"]["departed"] == 1
    shift = summary["alignment"]["shift_px"]
    assert (shift["row"], shift["col"]) == (pytest.approx(1.5, abs=0.3), pytest.approx(-2.0, abs=0.3))
    with rasterio.open(out / "change_map.tif") as cm:
        assert cm.count == 2
        assert cm.crs is not None
        classes = cm.read(1)
        assert (classes == 1).sum() > 0  # the departed hull is painted as class 1


def test_compare_prints_departed_vessels(pair: tuple[Path, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["-q", "compare", str(pair[0]), str(pair[1]), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0
    assert "departed" in res.output
    assert "port_2025-01-18.tif (2025-01-18) -> port_2025-01-27.tif (2025-01-27)" in res.output


@pytest.mark.parametrize(
    ("make_bad", "needle"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"not a tiff at all" * 20), "not"),
    ],
)
def test_compare_bad_input_exits_2_and_writes_nothing(pair, tmp_path, make_bad, needle) -> None:
    bad = tmp_path / "bad_2025-01-20.tif"
    make_bad(bad)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["compare", str(pair[0]), str(bad), "--out", str(out)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad_2025-01-20.tif" in lines[0] and needle in lines[0].lower()
    assert "Traceback" not in res.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_compare_refuses_dates_in_the_wrong_order(pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["compare", str(pair[1]), str(pair[0]), "--out", str(out)])
    assert res.exit_code == 2
    assert "swap" in res.stderr
    assert not out.exists()


def test_compare_bad_setting_exits_2(pair: tuple[Path, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["compare", str(pair[0]), str(pair[1]), "--out", str(tmp_path / "o"), "--set", "vessel.nope=1"]
    )
    assert res.exit_code == 2
    assert "vessel.nope" in res.stderr


def test_detect_writes_inventory_without_status(pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "det"
    res = CliRunner().invoke(main, ["-q", "detect", str(pair[0]), "--out", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    for name in ("objects.geojson", "objects.csv", "summary.json", "annotated.png"):
        assert (out / name).is_file()
    fc = json.loads((out / "objects.geojson").read_text())
    assert all("status" not in f["properties"] for f in fc["features"])
    lengths = sorted(f["properties"]["length_m"] for f in fc["features"] if f["properties"]["kind"] == "vessel")
    assert any(v == pytest.approx(90.0, rel=0.1) for v in lengths), lengths
    assert "equipment not searched" in " ".join(json.loads((out / "summary.json").read_text())["notes"])


def test_help_has_examples() -> None:
    for cmd in (["--help"], ["compare", "--help"], ["detect", "--help"]):
        res = CliRunner().invoke(main, cmd)
        assert res.exit_code == 0
        assert "Examples" in res.output


def test_max_memory_sets_the_detection_tile_budget(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import berthwatch.tiling as tiling

    budgets: list[int | None] = []
    real = tiling.detect_windowed

    def spy(scene, **kw):  # type: ignore[no-untyped-def]
        budgets.append(kw.get("max_tile_pixels"))
        return real(scene, **kw)

    monkeypatch.setattr(tiling, "detect_windowed", spy)
    res = CliRunner().invoke(main, ["-q", "detect", str(pair[0]), "--out", str(tmp_path / "a"), "--max-memory", "2"])
    assert res.exit_code == 0, res.output + res.stderr
    assert budgets == [int(2 * 1024**3 / tiling.BYTES_PER_PIXEL)]
    # 1e-3 GiB (about 3 200 px) cannot hold a tile with its 600 m margin: refused in one line, nothing written
    res = CliRunner().invoke(main, ["detect", str(pair[0]), "--out", str(tmp_path / "b"), "--max-memory", "1e-3"])
    assert res.exit_code == 2
    assert res.stderr.startswith("berthwatch: error: memory budget too small") and res.stderr.count("\n") == 1
    assert not (tmp_path / "b").exists()
    res = CliRunner().invoke(main, ["compare", *map(str, pair), "--out", str(tmp_path / "c"), "--max-memory", "0"])
    assert res.exit_code == 2 and not (tmp_path / "c").exists()
