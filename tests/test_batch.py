"""Batch runs: planning (discovery, grouping by place, pairing modes, failures), running (outputs, resume,
failures carried on), the CLI, and scale-out on a dask LocalCluster.

Planning and the run bookkeeping are tested on tiny rasters with a stand-in for ``compare_files`` that writes a
``summary.json`` with known counts (objects present per file are declared below), on an in-process dask
cluster so the stand-in is seen by the worker threads. The end-to-end tests run the real pipeline on small
synthetic ports, on worker processes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from pyproj import Transformer

from berthwatch import batch
from berthwatch.errors import AlignmentError, InputError
from berthwatch.fsutil import atomic_output_dir

TARTUS = (35.8700, 34.8900)
PIRAEUS = (23.6200, 37.9400)


def write_tile(
    path: Path,
    centre: tuple[float, float],
    *,
    crs: str = "EPSG:32636",
    size: int = 32,
    pixel: float = 2.0,
    offset_px: tuple[float, float] = (0.0, 0.0),
    seed: int = 0,
    nodata_rows: int = 0,
) -> Path:
    """A small 3-band uint8 GeoTIFF centred (plus ``offset_px``) on ``centre`` (lon, lat) in ``crs``; the first
    ``nodata_rows`` rows are nodata (0)."""
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*centre)
    left = x - size / 2 * pixel + offset_px[1] * pixel
    top = y + size / 2 * pixel - offset_px[0] * pixel
    data = np.random.default_rng(seed).integers(1, 255, size=(3, size, size), dtype=np.uint8)
    data[:, :nodata_rows] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs=crs,
        transform=Affine(pixel, 0.0, left, 0.0, -pixel, top),
        nodata=0,
    ) as ds:
        ds.write(data)
    return path


# Objects present in each file of the fixture folder (what the stand-in compare "detects").
PRESENT: dict[str, set[tuple[str, str]]] = {
    "tartus_2025-01-18.tif": {("vessel", "sparta"), ("vessel", "sparta2"), ("vessel", "tug"), ("equipment", "t1")},
    "tartus_2025-01-27.tif": {("vessel", "tug"), ("equipment", "t2")},
    "tartus_2025-02-03.tif": {("vessel", "tug"), ("vessel", "ferry"), ("equipment", "t2"), ("equipment", "t3")},
    "piraeus_2025-01-20.tif": {("vessel", "a"), ("vessel", "b")},
    "piraeus_2025-01-25.tif": {("vessel", "b")},
}


@pytest.fixture
def tile_folder(tmp_path: Path) -> Path:
    """Tartus on 3 dates (UTM 36N twice, Web Mercator once, shifted a little), Piraeus on 2 dates (UTM 34N) in a
    sub-folder, plus a corrupt file, an undated file, a UDM2 mask, a sidecar and an earlier output folder."""
    root = tmp_path / "tiles"
    write_tile(root / "tartus_2025-01-18.tif", TARTUS, seed=1)
    write_tile(root / "tartus_2025-01-27.tif", TARTUS, offset_px=(3, -4), seed=2)
    write_tile(root / "tartus_2025-02-03.tif", TARTUS, crs="EPSG:3857", pixel=2.4, offset_px=(-2, 2), seed=3)
    write_tile(root / "piraeus" / "piraeus_2025-01-20.tif", PIRAEUS, crs="EPSG:32634", seed=4)
    write_tile(root / "piraeus" / "piraeus_2025-01-25.tif", PIRAEUS, crs="EPSG:32634", seed=5)
    write_tile(root / "piraeus" / "20250125_101010_ssc1_u0001_udm2.tif", PIRAEUS, crs="EPSG:32634", seed=6)
    (root / "piraeus" / "piraeus_2025-01-25_metadata.json").write_text("{}", encoding="utf-8")
    write_tile(root / "undated_scene.tif", TARTUS, seed=7)
    (root / "broken_2025-01-22.tif").write_bytes(b"this is not a TIFF\n" * 50)
    old = root / "old_results" / "place01_2025-01-18_2025-01-27"
    write_tile(old / "change_map.tif", TARTUS, seed=8)
    (old / "summary.json").write_text("{}", encoding="utf-8")
    return root


# ---------------------------------------------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------------------------------------------
def _names(pairs: Any) -> list[str]:
    return [p.name for p in pairs]


def test_plan_groups_by_place_across_crs_and_orders_by_date(tile_folder: Path) -> None:
    p = batch.plan(tile_folder)
    assert [pl.name for pl in p.places] == ["piraeus", "place01"]
    tartus = p.place("place01")
    assert [t.path.name for t in tartus.tiles] == [
        "tartus_2025-01-18.tif",
        "tartus_2025-01-27.tif",
        "tartus_2025-02-03.tif",
    ]
    assert tartus.dates == (dt.date(2025, 1, 18), dt.date(2025, 1, 27), dt.date(2025, 2, 3))
    assert {t.crs for t in tartus.tiles} == {"EPSG:32636", "EPSG:3857"}
    assert [t.path.name for t in p.place("piraeus").tiles] == ["piraeus_2025-01-20.tif", "piraeus_2025-01-25.tif"]
    assert _names(p.pairs) == [
        "piraeus_2025-01-20_2025-01-25",
        "place01_2025-01-18_2025-01-27",
        "place01_2025-01-27_2025-02-03",
    ]
    # the UDM2 mask is left out on purpose, the old output folder (with its change_map.tif) is not searched
    assert [s.path for s in p.skipped] == ["piraeus/20250125_101010_ssc1_u0001_udm2.tif"]
    every = [t.path.name for pl in p.places for t in pl.tiles] + [f.path for f in p.failures]
    assert "change_map.tif" not in " ".join(every)


def test_plan_records_unreadable_and_undated_tiles(tile_folder: Path) -> None:
    p = batch.plan(tile_folder)
    by_path = {f.path: f for f in p.failures}
    assert set(by_path) == {"broken_2025-01-22.tif", "undated_scene.tif"}
    assert by_path["broken_2025-01-22.tif"].stage == "read"
    assert by_path["broken_2025-01-22.tif"].error == "NotARasterError"
    assert by_path["undated_scene.tif"].stage == "date"
    assert by_path["undated_scene.tif"].error == "MissingDateError"
    assert "undated_scene.tif" in by_path["undated_scene.tif"].reason


def test_plan_dates_mapping_dates_an_undated_tile(tile_folder: Path) -> None:
    p = batch.plan(tile_folder, dates={"undated_scene.tif": "2025-01-30"})
    assert [f.path for f in p.failures] == ["broken_2025-01-22.tif"]
    tartus = p.place("place01")
    assert tartus.dates[2] == dt.date(2025, 1, 30)
    assert tartus.tiles[2].date_override == dt.date(2025, 1, 30)
    assert "place01_2025-01-27_2025-01-30" in _names(p.pairs)


def test_plan_modes_first_and_reference(tile_folder: Path) -> None:
    first = batch.plan(tile_folder, mode="first")
    assert _names(first.pairs) == [
        "piraeus_2025-01-20_2025-01-25",
        "place01_2025-01-18_2025-01-27",
        "place01_2025-01-18_2025-02-03",
    ]
    ref = batch.plan(tile_folder, reference="2025-01-27")
    assert ref.mode == "reference"
    # the earlier date of a pair is always BEFORE; Piraeus has no tile on the reference date
    assert _names(ref.pairs) == ["place01_2025-01-18_2025-01-27", "place01_2025-01-27_2025-02-03"]
    assert [s.path for s in ref.skipped if s.path == "piraeus"] == ["piraeus"]
    with pytest.raises(InputError):
        batch.plan(tile_folder, mode="reference")
    with pytest.raises(InputError):
        batch.plan(tile_folder, mode="weekly")
    with pytest.raises(InputError):
        batch.plan(tile_folder, reference="27/01/2025")


def test_plan_keeps_one_tile_per_date_and_far_tiles_apart(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write_tile(root / "a_2025-03-01.tif", TARTUS)
    write_tile(root / "b_2025-03-01.tif", TARTUS, offset_px=(0, 20), nodata_rows=8)  # overlaps 12/32 of a
    write_tile(root / "c_2025-03-05.tif", TARTUS, offset_px=(0, 28))  # 4/32 with a, 24/32 with b
    write_tile(root / "d_2025-03-05.tif", (TARTUS[0] + 0.01, TARTUS[1]))  # ~900 m east: disjoint
    p = batch.plan(root)
    names = [[t.path.name for t in pl.tiles] for pl in p.places]
    # a-b overlap 37.5% >= 30% of the smaller, b-c 75%: one place by chaining; a and b share a date and a shows
    # more valid ground (b has a quarter nodata), so b is left out (listed with the reason)
    assert names == [["a_2025-03-01.tif", "c_2025-03-05.tif"], ["d_2025-03-05.tif"]]
    assert [s.path for s in p.skipped] == ["b_2025-03-01.tif"]
    assert _names(p.pairs) == ["place01_2025-03-01_2025-03-05"]
    stricter = batch.plan(root, min_overlap=0.5)
    assert [[t.path.name for t in pl.tiles] for pl in stricter.places] == [
        ["a_2025-03-01.tif"],
        ["b_2025-03-01.tif", "c_2025-03-05.tif"],
        ["d_2025-03-05.tif"],
    ]


def test_plan_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        batch.plan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InputError):
        batch.plan(tmp_path / "empty")


def test_plan_excludes_output_folder_inside_input(tile_folder: Path) -> None:
    out = tile_folder / "results"
    write_tile(out / "stray_2025-01-18.tif", TARTUS)  # a raster in the output folder (no marker file)
    assert "results/stray_2025-01-18.tif" in [
        t.path.relative_to(tile_folder).as_posix() for pl in batch.plan(tile_folder).places for t in pl.tiles
    ]
    p = batch.plan(tile_folder, exclude=(out, "*broken*"))
    paths = [t.path.name for pl in p.places for t in pl.tiles] + [f.path for f in p.failures]
    assert "stray_2025-01-18.tif" not in paths
    assert "broken_2025-01-22.tif" not in paths


# ---------------------------------------------------------------------------------------------------------------
# run (stand-in compare on an in-process cluster)
# ---------------------------------------------------------------------------------------------------------------
class FakeCompare:
    """Stands in for pipeline.compare_files: counts from PRESENT, written atomically like the real one."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: dict[str, Exception] = {}
        self.stop = threading.Event()
        self.hold_after: int | None = None
        self._lock = threading.Lock()

    def __call__(self, before: str, after: str, out: str, **kwargs: Any) -> SimpleNamespace:
        name = Path(out).name
        with self._lock:
            self.calls.append(name)
            n = len(self.calls)
        if name in self.fail:
            raise self.fail[name]
        if self.hold_after is not None and n > self.hold_after:
            # work in flight when the run is "killed" never reaches its folder
            self.stop.wait(timeout=60)
            raise RuntimeError("killed")
        b, a = PRESENT[Path(before).name], PRESENT[Path(after).name]
        counts = {
            kind: {
                "departed": sum(k == kind for k, _ in b - a),
                "arrived": sum(k == kind for k, _ in a - b),
                "stayed": sum(k == kind for k, _ in a & b),
                "unknown": 0,
            }
            for kind in ("vessel", "equipment")
        }
        summary = {"counts": counts, "inputs": {"before": before, "after": after}, "timings": {"total": 0.0}}
        with atomic_output_dir(out) as tmp:
            (tmp / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
            (tmp / "report.html").write_text("<html></html>", encoding="utf-8")
        return SimpleNamespace(summary=summary, out_dir=Path(out), timings={})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCompare:
    f = FakeCompare()
    monkeypatch.setattr("berthwatch.pipeline.compare_files", f)
    return f


@pytest.fixture(scope="module")
def inproc_client() -> Iterator[Any]:
    """A dask cluster of worker threads in this process (so the stand-in compare is used); one task at a time."""
    from distributed import Client

    with batch.local_cluster(1, processes=False) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _expected_timeseries(p: batch.BatchPlan) -> dict[tuple[str, str, str], int]:
    out = {}
    for place in p.places:
        for t in place.tiles:
            for kind in ("vessel", "equipment"):
                out[(place.name, t.date.isoformat(), kind)] = sum(k == kind for k, _ in PRESENT[t.path.name])
    return out


def test_run_writes_pairs_timeseries_batch_json_and_index(
    tile_folder: Path, tmp_path: Path, fake: FakeCompare, inproc_client: Any
) -> None:
    p = batch.plan(tile_folder)
    out = tmp_path / "out"
    seen: list[tuple[str, float]] = []
    result = batch.run(p, out, scheduler=inproc_client, progress=lambda m, f: seen.append((m, f)))
    assert sorted(fake.calls) == sorted(_names(p.pairs))
    assert [o.status for o in result.outcomes] == ["ok", "ok", "ok"]
    assert seen[-1][1] == pytest.approx(1.0)
    assert sorted(m for m, _ in seen) == sorted(f"ok {n}" for n in _names(p.pairs))
    for name in _names(p.pairs):
        assert (out / name / "summary.json").is_file()
    # the tiles that failed make the batch not ok
    assert not result.ok
    assert {f.path for f in result.failures} == {"broken_2025-01-22.tif", "undated_scene.tif"}

    # time series: objects present per place, date and kind, as declared; changes since the previous date
    rows = batch.read_timeseries_csv(out / "timeseries.csv")
    assert {(r["place"], r["date"], r["kind"]): r["present"] for r in rows} == _expected_timeseries(p)
    by = {(r["place"], r["date"], r["kind"]): r for r in rows}
    r = by[("place01", "2025-01-27", "vessel")]
    assert (r["departed"], r["arrived"], r["before_date"]) == (2, 0, "2025-01-18")
    r = by[("place01", "2025-02-03", "equipment")]
    assert (r["departed"], r["arrived"], r["before_date"]) == (0, 1, "2025-01-27")
    r = by[("place01", "2025-01-18", "vessel")]
    assert (r["departed"], r["arrived"], r["before_date"]) == (None, None, "")

    doc = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert doc["status"] == "complete"
    assert [x["status"] for x in doc["pairs"]] == ["ok", "ok", "ok"]
    assert doc["pairs"][1]["counts"]["vessel"] == {"departed": 2, "arrived": 0, "stayed": 1, "unknown": 0}
    assert {(f["path"], f["stage"]) for f in doc["failures"]} == {
        ("broken_2025-01-22.tif", "read"),
        ("undated_scene.tif", "date"),
    }
    assert doc["totals"]["tile_failures"] == 2 and doc["totals"]["ok"] == 3
    index = (out / "index.html").read_text(encoding="utf-8")
    for name in _names(p.pairs):
        assert f'href="{name}/report.html"' in index
    assert "broken_2025-01-22.tif" in index and "timeseries.png" in index
    assert (out / "timeseries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_records_a_failed_pair_and_carries_on(
    tile_folder: Path, tmp_path: Path, fake: FakeCompare, inproc_client: Any
) -> None:
    p = batch.plan(tile_folder)
    bad = "place01_2025-01-18_2025-01-27"
    fake.fail[bad] = AlignmentError("shift of <b>95 m</b> exceeds 60 m", path="x.tif")
    out = tmp_path / "out"
    result = batch.run(p, out, scheduler=inproc_client)
    status = {o.pair.name: o.status for o in result.outcomes}
    assert status == {"piraeus_2025-01-20_2025-01-25": "ok", bad: "failed", "place01_2025-01-27_2025-02-03": "ok"}
    assert not (out / bad).exists()
    failed = next(f for f in result.failures if f.pair == bad)
    assert (failed.stage, failed.error, failed.path) == ("align", "AlignmentError", "x.tif")
    doc = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    entry = next(x for x in doc["pairs"] if x["name"] == bad)
    assert (entry["status"], entry["stage"]) == ("failed", "align")
    assert "95 m" in entry["reason"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;95 m&lt;/b&gt;" in index and "<b>95 m</b>" not in index
    # 2025-01-27 still has counts, from the pair in which it is BEFORE (no change columns then)
    rows = {(r["place"], r["date"], r["kind"]): r for r in batch.read_timeseries_csv(out / "timeseries.csv")}
    assert rows[("place01", "2025-01-27", "vessel")]["present"] == 1
    assert rows[("place01", "2025-01-27", "vessel")]["departed"] is None
    assert ("place01", "2025-01-18", "vessel") not in rows


def test_rerun_skips_complete_pairs_and_resumes_after_a_kill(
    tile_folder: Path, tmp_path: Path, fake: FakeCompare, inproc_client: Any
) -> None:
    p = batch.plan(tile_folder)
    out = tmp_path / "out"
    first_done: list[str] = []
    on_disk: dict[str, Any] = {}

    def kill_after_first(outcome: batch.PairOutcome) -> None:
        first_done.append(outcome.pair.name)
        on_disk.update(json.loads((out / "batch.json").read_text(encoding="utf-8")))
        fake.stop.set()
        raise KeyboardInterrupt  # the process dies here

    from distributed import Client

    fake.hold_after = 1
    # a cluster of its own: closing it waits for the task in flight, so nothing of the killed run lingers
    with (
        batch.local_cluster(1, processes=False) as cluster,
        Client(cluster, set_as_default=False) as client,
        pytest.raises(KeyboardInterrupt),
    ):
        batch.run(p, out, scheduler=client, on_pair=kill_after_first)
    # what was on disk when it died: batch.json already listed the finished pair; nothing half-written
    assert on_disk["status"] == "running"
    assert {x["name"]: x["status"] for x in on_disk["pairs"]}[first_done[0]] == "ok"
    assert sorted(x["status"] for x in on_disk["pairs"]) == ["ok", "pending", "pending"]
    visible = [d.name for d in out.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert visible == first_done
    assert (out / first_done[0] / "summary.json").is_file()

    fake.hold_after = None
    fake.calls.clear()
    # what a compare killed while writing leaves: a hidden temporary folder, never under the pair's name
    pending = sorted(set(_names(p.pairs)) - set(first_done))
    stale = out / f".{pending[0]}.partial-x1y2"
    stale.mkdir()
    (stale / "objects.csv").write_text("id\n", encoding="utf-8")
    outcomes: list[batch.PairOutcome] = []
    result = batch.run(p, out, scheduler=inproc_client, on_pair=outcomes.append)
    assert not stale.exists()
    assert sorted(fake.calls) == sorted(set(_names(p.pairs)) - set(first_done))
    assert {o.pair.name: o.status for o in outcomes} == {
        n: ("skipped" if n in first_done else "ok") for n in _names(p.pairs)
    }
    # counts of the skipped pair are read back from its summary.json, so the time series is whole
    rows = batch.read_timeseries_csv(out / "timeseries.csv")
    assert {(r["place"], r["date"], r["kind"]): r["present"] for r in rows} == _expected_timeseries(p)

    # a pair folder deleted by hand is done again, the others are skipped
    import shutil

    shutil.rmtree(out / "place01_2025-01-27_2025-02-03")
    fake.calls.clear()
    result = batch.run(p, out, scheduler=inproc_client)
    assert fake.calls == ["place01_2025-01-27_2025-02-03"]
    assert [o.status for o in result.outcomes] == ["skipped", "skipped", "ok"]
    doc = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert [x["status"] for x in doc["pairs"]] == ["skipped", "skipped", "ok"]
    assert (doc["totals"]["ok"], doc["totals"]["skipped"]) == (1, 2)

    # overwrite compares everything again
    fake.calls.clear()
    result = batch.run(p, out, scheduler=inproc_client, overwrite=True)
    assert sorted(fake.calls) == sorted(_names(p.pairs))


def test_timeseries_rows_for_reference_mode(
    tile_folder: Path, tmp_path: Path, fake: FakeCompare, inproc_client: Any
) -> None:
    p = batch.plan(tile_folder, reference="2025-01-27")
    result = batch.run(p, tmp_path / "out", scheduler=inproc_client)
    rows = {(r["place"], r["date"], r["kind"]): r for r in result.timeseries}
    assert {k: r["present"] for k, r in rows.items()} == {
        k: v for k, v in _expected_timeseries(p).items() if k[0] == "place01"
    }
    # 2025-02-03 compared against the reference 2025-01-27: one vessel and one equipment item arrived
    assert (
        rows[("place01", "2025-02-03", "vessel")]["arrived"],
        rows[("place01", "2025-02-03", "vessel")]["before_date"],
    ) == (
        1,
        "2025-01-27",
    )


# ---------------------------------------------------------------------------------------------------------------
# end to end: real pipeline on small synthetic ports, worker processes
# ---------------------------------------------------------------------------------------------------------------
def render_series(
    folder: Path,
    *,
    seed: int,
    centre: tuple[float, float],
    dates: list[dt.date],
    presence: list[tuple[bool, ...]],
    pixel_m: float = 2.0,
    size_px: int = 160,
    bands: str = "visual",
) -> list[Path]:
    """One small synthetic port (land to the east) on several dates; vessel i is there on date k when
    ``presence[i][k]``. Files are named like SkySat scenes, so their date comes from the name and the tags."""
    from dataclasses import replace

    from berthwatch.synth import DateSpec, PortSpec, VesselSpec, make_port, render

    w = size_px * pixel_m
    spec = PortSpec(
        seed=seed,
        width_m=w,
        height_m=w,
        pixel_size_m=pixel_m,
        centre_lonlat=centre,
        layout="quay",
        land_side=90.0,
        vessels=[],
        equipment=[],
        distractors=False,
    )
    vessels = [
        VesselSpec(x=-0.25 * w, y=0.25 * w, length_m=0.25 * w, heading_deg=30.0, id="V1"),
        VesselSpec(x=-0.3 * w, y=-0.2 * w, length_m=0.2 * w, heading_deg=100.0, id="V2"),
        VesselSpec(x=-0.1 * w, y=-0.02 * w, length_m=0.22 * w, heading_deg=170.0, id="V3"),
    ]
    paths = []
    for k, d in enumerate(dates):
        on = [replace(v, present=(bool(p[k]), bool(p[k]))) for v, p in zip(vessels, presence, strict=True)]
        port = make_port(replace(spec, vessels=on))
        date = DateSpec(d, dt.time(8, 15, 10 + k), layout=bands, shift_px=(0.4 * k, -0.3 * k))
        scene = render(port, date, which=0)
        paths.append(scene.write(folder / f"{d:%Y%m%d}_0815{10 + k:02d}_ssc1_u{k + 1:04d}_{bands}.tif"))
    return paths


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tartus on 3 dates (UTM 36N), Piraeus on 2 dates (UTM 34N, analytic bands), a corrupt and an undated file."""
    root = tmp_path_factory.mktemp("synth") / "tiles"
    d = [dt.date(2025, 1, 18), dt.date(2025, 1, 27), dt.date(2025, 2, 5)]
    render_series(root / "tartus", seed=5, centre=TARTUS, dates=d, presence=[(1, 1, 1), (1, 0, 0), (0, 1, 1)])
    render_series(
        root / "piraeus", seed=9, centre=PIRAEUS, dates=d[:2], presence=[(1, 1), (0, 1), (1, 0)], bands="analytic"
    )
    (root / "20250120_081500_ssc2_u0001_visual.tif").write_bytes(b"truncated download\n" * 40)
    write_tile(root / "scan.tif", TARTUS)
    return root


def _pair_counts(out: Path) -> dict[str, dict[str, dict[str, int]]]:
    doc = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    return {p["name"]: p["counts"] for p in doc["pairs"]}


@pytest.fixture(scope="module")
def cli_run(synth_folder: Path) -> tuple[Any, Path]:
    """``berthwatch batch`` with its default local cluster (2 worker processes), output inside the tile folder."""
    from berthwatch.cli import main

    out = synth_folder / "results"
    res = CliRunner().invoke(main, ["-q", "batch", str(synth_folder), "--out", str(out), "--workers", "2"])
    return res, out


@pytest.mark.slow
def test_cli_batch_end_to_end(cli_run: tuple[Any, Path], synth_folder: Path) -> None:
    res, out = cli_run
    assert res.exit_code == 1, res.output  # the corrupt and the undated file failed; every pair was compared
    assert "3 pair(s): 3 compared, 0 already complete, 0 failed" in res.output
    doc = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert doc["status"] == "complete"
    assert [p["name"] for p in doc["places"]] == ["piraeus", "tartus"]
    assert {p["name"]: p["status"] for p in doc["pairs"]} == {
        "piraeus_2025-01-18_2025-01-27": "ok",
        "tartus_2025-01-18_2025-01-27": "ok",
        "tartus_2025-01-27_2025-02-05": "ok",
    }
    assert {(f["path"], f["stage"], f["error"]) for f in doc["failures"]} == {
        ("20250120_081500_ssc2_u0001_visual.tif", "read", "NotARasterError"),
        ("scan.tif", "date", "MissingDateError"),
    }
    for name in _pair_counts(out):
        for f in ("summary.json", "objects.geojson", "report.html", "overview.png", "change_map.tif"):
            assert (out / name / f).is_file(), f"{name}/{f}"
    # the time series says what the pair summaries say
    rows = batch.read_timeseries_csv(out / "timeseries.csv")
    assert {(r["place"], r["date"]) for r in rows} == {
        ("piraeus", "2025-01-18"),
        ("piraeus", "2025-01-27"),
        ("tartus", "2025-01-18"),
        ("tartus", "2025-01-27"),
        ("tartus", "2025-02-05"),
    }
    for r in rows:
        summary = json.loads((out / r["pair"] / "summary.json").read_text(encoding="utf-8"))
        c = summary["counts"][r["kind"]]
        side = "arrived" if r["pair"].endswith(r["date"]) else "departed"
        assert r["present"] == c["stayed"] + c[side]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count("/overview.png") >= 3 and "scan.tif" in index

    # the same command again: nothing to do, same exit code (the bad tiles are still there)
    from berthwatch.cli import main

    again = CliRunner().invoke(main, ["-q", "batch", str(synth_folder), "--out", str(out)])
    assert again.exit_code == 1
    assert "3 pair(s): 0 compared, 3 already complete, 0 failed" in again.output


def test_cli_batch_bad_usage(tmp_path: Path) -> None:
    from berthwatch.cli import main

    res = CliRunner().invoke(main, ["batch", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no rasters" in res.output
    res = CliRunner().invoke(main, ["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--mode", "reference"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_batch_on_a_dask_cluster_matches_the_local_run(
    cli_run: tuple[Any, Path], synth_folder: Path, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    _, local_out = cli_run
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # dask's HTTP API too on a free loopback port
    ) as cluster:
        p = batch.plan(synth_folder, exclude=(local_out,))
        result = batch.run(p, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert [o.status for o in result.outcomes] == ["ok", "ok", "ok"]
    doc = json.loads((tmp_path / "dask" / "batch.json").read_text(encoding="utf-8"))
    assert doc["scheduler"] == cluster.scheduler_address
    assert _pair_counts(tmp_path / "dask") == _pair_counts(local_out)
    workers = {o.worker for o in result.outcomes}
    assert all(w.rsplit(":", 1)[1].isdigit() for w in workers)


def test_read_dates_csv(tmp_path: Path) -> None:
    good = tmp_path / "dates.csv"
    good.write_text("path,date\nundated_scene.tif,2025-01-30\nsub/a.tif, 2025-02-01 \n", encoding="utf-8")
    assert batch.read_dates_csv(good) == {"undated_scene.tif": dt.date(2025, 1, 30), "sub/a.tif": dt.date(2025, 2, 1)}
    bad = tmp_path / "bad.csv"
    bad.write_text("path,date\nx.tif,30/01/2025\n", encoding="utf-8")
    with pytest.raises(InputError):
        batch.read_dates_csv(bad)
    with pytest.raises(InputError):
        batch.read_dates_csv(tmp_path / "missing.csv")


def test_unreachable_scheduler_is_a_clear_error(tile_folder: Path, tmp_path: Path) -> None:
    import dask

    from berthwatch.cli import main

    p = batch.plan(tile_folder)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(batch.SchedulerError):
            batch.run(p, tmp_path / "out", scheduler="tcp://127.0.0.1:1")  # nothing listens on port 1
        assert not (tmp_path / "out").exists()  # nothing written
        res = CliRunner().invoke(
            main, ["batch", str(tile_folder), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:1"]
        )
    assert res.exit_code == 2
    assert "cannot use dask scheduler 'tcp://127.0.0.1:1'" in res.output
