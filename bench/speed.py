"""Speed benchmark: berthwatch run time as a multiple of simply reading the input rasters with rasterio.

Run from the project root::

    python bench/speed.py                                   # 4000x4000 detect, 8000x8000 compare
    python bench/speed.py --size 2000 --pair-size 3000      # smaller
    python bench/speed.py --only detect --workdir /tmp/bw-speed   # cache generated inputs between runs

(i)  detect: a ``--size`` x ``--size`` 4-band uint16 analytic synthetic scene (berthwatch.synth) is written to a
     GeoTIFF; baseline = best of ``--repeat`` full reads with rasterio; job = ``detect_scene(read_scene(path))``
     (reading included) in a fresh subprocess. Prints job/baseline and the job's peak RSS.
(ii) compare: a ``--pair-size`` square 4-band uint16 pair (after date misregistered by a few pixels, different
     radiometry; above 2000 px a 2000 px pair repeated, mirrored, to the size); baseline = reading both files;
     job = ``compare_files`` with every output written. Same report.

Timings are wall-clock on whatever else the machine is doing; nothing is asserted. Peak RSS is the child's own
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (kilobytes on Linux).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_table, write_json

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------------------
# inputs


def _port_spec(size: int, pixel_size_m: float, seed: int) -> Any:
    from berthwatch import synth

    extent = size * pixel_size_m
    return synth.PortSpec(seed=seed, width_m=extent, height_m=extent, pixel_size_m=pixel_size_m)


def make_scene(workdir: Path, size: int, pixel_size_m: float, seed: int) -> tuple[Path, float]:
    """A synthetic analytic scene written to ``workdir`` (reused when already there); returns (path, seconds)."""
    from berthwatch import synth

    path = workdir / f"scene_{size}px_{pixel_size_m:g}m_seed{seed}.tif"
    if path.exists():
        return path, 0.0
    t0 = time.perf_counter()
    port = synth.make_port(_port_spec(size, pixel_size_m, seed))
    scene = synth.render(port, synth.DateSpec(date=dt.date(2025, 1, 18), layout="analytic"))
    tmp = path.with_suffix(".part.tif")
    scene.write(tmp)
    tmp.rename(path)
    return path, time.perf_counter() - t0


# Rendering a whole 8000 x 8000 port world costs ~10 minutes and ~8 GB; for timing, a pair rendered at most
# TILE_PX square is repeated to the requested size (same content statistics, same object density).
TILE_PX = 2000
#: Misregistration of AFTER (rows, cols) in every generated pair.
SHIFT_PX = (3.4, -2.2)


def _enlarge(small: Path, big: Path, size: int, *, shift_px: tuple[float, float] = (0.0, 0.0)) -> None:
    """Write ``small`` repeated (mirrored, so seams are continuous) to ``size`` x ``size`` pixels.

    ``shift_px`` (rows, cols) misregisters the result through its geotransform, the same everywhere: a shift
    rendered into the small image's content would flip its sign in every mirrored copy.
    """
    import numpy as np
    import rasterio
    from affine import Affine

    with rasterio.open(small) as src:
        data = src.read()
        profile = src.profile
        tags = src.tags()
        descriptions = src.descriptions
    reps = -(-size // data.shape[1]), -(-size // data.shape[2])
    tile = np.concatenate([data, data[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[:, :, ::-1]], axis=2)
    out = np.tile(tile, (1, reps[0], reps[1]))[:, :size, :size]
    # the content that the true grid puts at (r, c) is labelled as lying at (r + rows, c + cols)
    transform = profile["transform"] * Affine.translation(shift_px[1], shift_px[0])
    profile.update(
        width=size, height=size, transform=transform, tiled=True, blockxsize=512, blockysize=512, compress="deflate"
    )
    tmp = big.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(out)
        dst.update_tags(**tags)
        for i, d in enumerate(descriptions, 1):
            if d:
                dst.set_band_description(i, d)
    tmp.rename(big)


def make_pair(
    workdir: Path, size: int, pixel_size_m: float, seed: int, *, shift: bool = True
) -> tuple[Path, Path, float]:
    """A synthetic analytic pair (after: ``SHIFT_PX`` misregistration, gain 1.15, haze 0.2), cached in workdir.

    Sizes above ``TILE_PX`` repeat a ``TILE_PX`` pair rendered without shift and misregister the repeated AFTER
    through its geotransform (see ``_enlarge``).
    """
    from berthwatch import synth

    kind = "mosaic" if size > TILE_PX else ("noshift" if not shift else "pair")
    a = workdir / f"{kind}_{size}px_{pixel_size_m:g}m_seed{seed}_before.tif"
    b = workdir / f"{kind}_{size}px_{pixel_size_m:g}m_seed{seed}_after.tif"
    if a.exists() and b.exists():
        return a, b, 0.0
    t0 = time.perf_counter()
    if size > TILE_PX:
        sa, sb, _ = make_pair(workdir, TILE_PX, pixel_size_m, seed, shift=False)
        _enlarge(sa, a, size)
        _enlarge(sb, b, size, shift_px=SHIFT_PX)
        return a, b, time.perf_counter() - t0
    before = synth.DateSpec(date=dt.date(2025, 1, 18), layout="analytic")
    after = synth.DateSpec(
        date=dt.date(2025, 1, 27), layout="analytic", shift_px=SHIFT_PX if shift else (0.0, 0.0), gain=1.15, haze=0.2
    )
    pair = synth.make_pair(_port_spec(size, pixel_size_m, seed), before, after)
    for scene, path in ((pair.before, a), (pair.after, b)):
        tmp = path.with_suffix(".part.tif")
        scene.write(tmp)
        tmp.rename(path)
    return a, b, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------------------
# measurements


def read_baseline(paths: list[Path], repeat: int) -> float:
    """Best-of-``repeat`` seconds to read every band of every file with rasterio."""
    import rasterio

    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p in paths:
            with rasterio.open(p) as ds:
                ds.read()
        best = min(best, time.perf_counter() - t0)
    return best


def run_child(args: list[str]) -> dict[str, Any]:
    """Run this script in child mode; returns its JSON report plus the wall time seen from here."""
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_seconds_incl_startup"] = wall
    out["children_maxrss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dict(out)


class _RssSampler:
    """Peak resident memory (MiB) per pipeline stage, sampled from ``/proc/self/statm`` every 50 ms by a thread.

    ``stage`` is set from the pipeline's progress callback; memory is attributed to the stage running when
    sampled. Empty where ``/proc`` is missing (not Linux).
    """

    def __init__(self) -> None:
        import threading

        self.stage = "start"
        self.peaks: dict[str, float] = {}
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        if Path("/proc/self/statm").exists():
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            with open("/proc/self/statm", encoding="ascii") as f:
                rss = int(f.read().split()[1]) * self._page / 2**20
            if rss > self.peaks.get(self.stage, 0.0):
                self.peaks[self.stage] = rss
            time.sleep(0.05)

    def progress(self, stage: str, _fraction: float) -> None:
        self.stage = stage.split(":")[0]


def child_main(argv: list[str]) -> int:
    """Child mode: ``detect PATH`` or ``compare BEFORE AFTER OUT``; prints one JSON line."""
    t_imp = time.perf_counter()
    sampler = _RssSampler()
    from berthwatch.config import Settings

    job = argv[0]
    info: dict[str, Any] = {"job": job}
    if job == "detect":
        from berthwatch.io import read_scene
        from berthwatch.pipeline import detect_scene

        info["import_seconds"] = time.perf_counter() - t_imp
        t0 = time.perf_counter()
        sampler.progress("read", 0.0)
        scene = read_scene(argv[1])
        t_read = time.perf_counter() - t0
        sampler.progress("detect", 0.0)
        res = detect_scene(scene, settings=Settings())
        info["seconds"] = time.perf_counter() - t0
        info["read_scene_seconds"] = t_read
        info["detections"] = {k: sum(d.kind == k for d in res.detections) for k in ("vessel", "equipment")}
    elif job == "compare":
        from berthwatch.pipeline import compare_files

        info["import_seconds"] = time.perf_counter() - t_imp
        t0 = time.perf_counter()
        res = compare_files(argv[1], argv[2], argv[3], settings=Settings(), progress=sampler.progress)
        info["seconds"] = time.perf_counter() - t0
        info["stage_seconds"] = res.timings
        info["counts"] = res.changes.counts()
    else:
        raise SystemExit(f"unknown child job {job!r}")
    info["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info["stage_peak_rss_mib"] = {k: round(v) for k, v in sampler.peaks.items()}
    print(json.dumps(info))
    return 0


# ------------------------------------------------------------------------------------------------------------


def _mib(kb: float) -> str:
    return f"{kb / 1024:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=4000, help="detect scene side in pixels (default 4000)")
    ap.add_argument("--pair-size", type=int, default=8000, help="compare pair side in pixels (default 8000)")
    ap.add_argument("--pixel-size", type=float, default=0.8, help="ground pixel size in metres (default 0.8)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", choices=["detect", "compare"], default=None)
    ap.add_argument("--repeat", type=int, default=3, help="baseline reads: best of this many (default 3)")
    ap.add_argument("--workdir", type=Path, default=None, help="cache generated inputs here (default: temp, deleted)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="berthwatch-speed-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"pixel_size_m": args.pixel_size, "cpu_count": os.cpu_count()}
    rows = []
    try:
        if args.only in (None, "detect"):
            path, t_gen = make_scene(workdir, args.size, args.pixel_size, args.seed)
            print(f"detect input: {path} ({path.stat().st_size / 2**20:.0f} MiB; generated in {t_gen:.0f} s)")
            base = read_baseline([path], args.repeat)
            child = run_child(["detect", str(path)])
            ratio = child["seconds"] / base
            rows.append(
                [
                    f"detect {args.size}x{args.size}x4 uint16",
                    f"{base:.2f}",
                    f"{child['seconds']:.1f}",
                    f"{ratio:.0f}x",
                    _mib(child["maxrss_kb"]),
                ]
            )
            report["detect"] = {
                "input": str(path),
                "size": args.size,
                "baseline_read_seconds": base,
                "ratio": ratio,
                **child,
            }
            print(f"  detections: {child['detections']}; read_scene {child['read_scene_seconds']:.2f} s")
            print(f"  stage peak RSS (MiB): {child['stage_peak_rss_mib']}")
        if args.only in (None, "compare"):
            a, b, t_gen = make_pair(workdir, args.pair_size, args.pixel_size, args.seed + 1)
            mib = (a.stat().st_size + b.stat().st_size) / 2**20
            print(f"compare inputs: {a.name}, {b.name} ({mib:.0f} MiB; generated in {t_gen:.0f} s)")
            base = read_baseline([a, b], args.repeat)
            out = workdir / f"compare_out_{args.pair_size}"
            child = run_child(["compare", str(a), str(b), str(out)])
            ratio = child["seconds"] / base
            rows.append(
                [
                    f"compare {args.pair_size}x{args.pair_size}x4 uint16 pair",
                    f"{base:.2f}",
                    f"{child['seconds']:.1f}",
                    f"{ratio:.0f}x",
                    _mib(child["maxrss_kb"]),
                ]
            )
            report["compare"] = {
                "inputs": [str(a), str(b)],
                "size": args.pair_size,
                "baseline_read_seconds": base,
                "ratio": ratio,
                **child,
            }
            print(f"  stage seconds: {child['stage_seconds']}")
            print(f"  stage peak RSS (MiB): {child['stage_peak_rss_mib']}")
            print(f"  counts: {child['counts']}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    print_table(
        ["job", "rasterio read s", "berthwatch s", "ratio", "peak RSS"],
        rows,
        title=f"Speed at {args.pixel_size:g} m pixels on {os.cpu_count()} CPU(s) (read = best of {args.repeat})",
    )
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
