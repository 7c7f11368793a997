"""``berthwatch info`` through click's CliRunner: text and JSON values, --date, bad files -> exit 2, one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rasterio.enums import ColorInterp

from _rasters import SHAPE, bands, write, write_udm2
from berthwatch.cli import main


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["info", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[Path, Path]:
    rgba = bands(4, "uint8")
    rgba[3] = 255
    rgba[3, :, :8] = 0  # a quarter of the columns transparent
    a = write(
        tmp_path / "tartus_2025-01-18.tif",
        rgba,
        colorinterp=(ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha),
    )
    b = write(tmp_path / "20250127_081523_12_2416_3B_AnalyticMS.tif", bands(4))
    cloud = np.zeros(SHAPE, bool)
    cloud[:12] = True  # half the rows under cloud
    write_udm2(tmp_path / "20250127_081523_12_2416_3B_udm2.tif", cloud=cloud)
    return a, b


def test_info_text(two_files: tuple[Path, Path]) -> None:
    a, b = two_files
    code, out, err = _run(str(a), str(b))
    assert code == 0, err
    first, second = out.split("\n\n")
    assert first.splitlines()[0] == str(a)
    assert "2025-01-18  from filename:iso" in first
    assert "EPSG:32636 (WGS 84 / UTM zone 36N)" in first
    assert "3 x 3 CRS units = 3.00 m" in first
    assert "32 x 24 px, 3 band(s) uint8" in first
    assert "1 red, 2 green, 3 blue" in first
    assert "layout:      visual" in first
    assert "valid:       75.0 % (alpha band 4; no UDM2)" in first
    assert "2025-01-27 (2025-01-27T08:15:23.120000+00:00)  from filename:planetscope" in second
    assert "1 blue, 2 green, 3 red, 4 nir" in second and "layout:      analytic" in second
    assert "valid:       50.0 % (UDM2 20250127_081523_12_2416_3B_udm2.tif)" in second


def test_info_json(two_files: tuple[Path, Path]) -> None:
    a, b = two_files
    code, out, err = _run("--json", str(a), str(b))
    assert code == 0, err
    rows = json.loads(out)
    assert [r["path"] for r in rows] == [str(a), str(b)]
    ra, rb = rows
    assert (ra["date"], ra["date_source"], ra["layout"], ra["bands"]) == (
        "2025-01-18",
        "filename:iso",
        "visual",
        ["red", "green", "blue"],
    )
    assert ra["valid_fraction"] == pytest.approx(0.75) and ra["alpha_band"] == 4 and ra["udm_path"] is None
    assert (
        ra["crs"] == "EPSG:32636"
        and ra["pixel_size"] == [3.0, 3.0]
        and ra["pixel_size_m"] == pytest.approx(3.0, rel=0.01)
    )
    assert (ra["width"], ra["height"], ra["count"], ra["dtype"]) == (32, 24, 3, "uint8")
    lon, lat = np.array(ra["footprint"]["coordinates"][0]).mean(axis=0)
    assert 35.8 < lon < 35.9 and 34.8 < lat < 34.95  # near Tartus
    assert rb["udm_path"].endswith("_3B_udm2.tif") and rb["valid_fraction"] == pytest.approx(0.5)
    assert rb["acquired"] == "2025-01-27T08:15:23.120000+00:00" and rb["layout"] == "analytic"


def test_info_date_option(tmp_path: Path) -> None:
    img = write(tmp_path / "port.tif", bands(1))
    code, _, err = _run(str(img))
    assert code == 2 and "--date YYYY-MM-DD" in err
    code, out, err = _run("--date", "2025-01-18", "--json", str(img))
    assert code == 0, err
    row = json.loads(out)[0]
    assert (row["date"], row["date_source"], row["layout"]) == ("2025-01-18", "argument", "pan")


def test_info_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    img = write(tmp_path / "port.tif", bands(1))
    code, out, err = _run("--date", "18.01.2025", str(img))
    assert code == 2 and out == "" and "--date" in err


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("missing", lambda p: p / "nope.tif"),
        ("empty", lambda p: _file(p / "e.tif", b"")),
        ("not_raster", lambda p: _file(p / "t.tif", b"plain text")),
        ("two_bands", lambda p: write(p / "a_2025-01-18.tif", bands(2))),
        ("no_crs", lambda p: write(p / "a_2025-01-18.tif", bands(3, "uint8"), crs=None)),
        ("no_valid", lambda p: write(p / "a_2025-01-18.tif", np.zeros((1, *SHAPE), np.uint8), nodata=0)),
        ("no_date", lambda p: write(p / "port.tif", bands(3, "uint8"))),
    ],
)
def test_info_bad_file_exit_2_one_line(tmp_path: Path, two_files: tuple[Path, Path], name: str, make) -> None:
    bad = make(tmp_path)
    good = two_files[0]
    code, out, err = _run(str(good), str(bad))
    assert code == 2
    assert out == ""  # nothing half printed
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"berthwatch: error: {bad}: ")


def test_info_help_has_example() -> None:
    result = CliRunner().invoke(main, ["info", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "berthwatch info" in result.stdout and "--json" in result.stdout


def test_python_dash_m_runs_the_same_command_line(tmp_path: Path) -> None:
    # ``python -m berthwatch`` where the console script is not on PATH: same program name, same exit codes
    import subprocess
    import sys

    bad = tmp_path / "missing_2025-01-18.tif"
    run = subprocess.run([sys.executable, "-m", "berthwatch", "info", str(bad)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().startswith(f"berthwatch: error: {bad}: ")
    version = subprocess.run([sys.executable, "-m", "berthwatch", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("berthwatch, version ")
