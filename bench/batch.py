"""Batch scale-out benchmark: wall time of ``berthwatch.batch.run`` with 1 and 2 local worker processes.

Run from the project root::

    python bench/batch.py                              # 8 pairs of 300x300 px synthetic scenes, 1 and 2 workers
    python bench/batch.py --pairs 12 --size 400 --workers 1 2
    python bench/batch.py --workdir /tmp/bw-batch      # keep the generated tiles and outputs

Inputs: ``--places`` synthetic ports (berthwatch.synth, different places on Earth and so different UTM zones),
each rendered on enough dates to give ``--pairs`` consecutive pairs in all; vessels come and go between dates.
Each worker count runs the same plan into a fresh output folder, ``--repeat`` times, alternating the order so
that load from other programs drifting over time hits every count alike; the best wall time of each count is
compared. The time includes starting the local dask cluster (worker processes import berthwatch), which is part
of what a user waits for. Also printed: the sums of the per-pair wall and CPU times measured inside the workers
(CPU well below wall means the cores were busy with other work), the load average, and whether the pair counts
of every run are identical. A calibration runs equal pure-Python CPU tasks on a process pool of each size: the
speed-up the machine gives that many processes at that moment is the ceiling for the batch (on a machine shared
with other work it can be far below the number of cores). Nothing is asserted on timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import print_table

PLACES = [(35.87, 34.89), (23.62, 37.94), (-7.62, 33.60), (129.04, 35.10)]


def render_place(
    folder: Path, *, seed: int, centre: tuple[float, float], n_dates: int, size: int, pixel: float
) -> None:
    """One port on ``n_dates`` dates, three vessels, each present on a seeded subset of dates."""
    import numpy as np

    from berthwatch.synth import DateSpec, PortSpec, VesselSpec, make_port, render

    w = size * pixel
    spec = PortSpec(
        seed=seed,
        width_m=w,
        height_m=w,
        pixel_size_m=pixel,
        centre_lonlat=centre,
        layout="quay",
        land_side=90.0,
        vessels=[],
        equipment=[],
    )
    vessels = [
        VesselSpec(x=-0.25 * w, y=0.25 * w, length_m=0.25 * w, heading_deg=30.0, id="V1"),
        VesselSpec(x=-0.3 * w, y=-0.2 * w, length_m=0.2 * w, heading_deg=100.0, id="V2"),
        VesselSpec(x=-0.1 * w, y=-0.02 * w, length_m=0.22 * w, heading_deg=170.0, id="V3"),
    ]
    rng = np.random.default_rng(seed)
    presence = rng.random((len(vessels), n_dates)) < 0.6
    d0 = dt.date(2025, 1, 5)
    for k in range(n_dates):
        on = [replace(v, present=(bool(p[k]), bool(p[k]))) for v, p in zip(vessels, presence, strict=True)]
        port = make_port(replace(spec, vessels=on))
        d = d0 + dt.timedelta(days=7 * k + int(rng.integers(0, 3)))
        date = DateSpec(d, dt.time(8, 10 + k), layout="visual", shift_px=(float(rng.uniform(-1, 1)), 0.5))
        render(port, date, which=0).write(folder / f"{d:%Y%m%d}_08{10 + k:02d}00_ssc1_u{k + 1:04d}_visual.tif")


def _spin(n: int) -> float:
    """Pure-Python CPU work (no I/O, no memory traffic); returns the CPU seconds it took."""
    t = time.process_time()
    s = 0
    for i in range(n):
        s += i
    return time.process_time() - t


def calibrate(workers: list[int], *, tasks: int = 8, n: int = 20_000_000) -> dict[int, float]:
    """Wall time of ``tasks`` equal CPU-bound tasks on a process pool of each size: the speed-up this machine
    gives that many processes right now (the ceiling for the batch, whatever else is running)."""
    from concurrent.futures import ProcessPoolExecutor

    out: dict[int, float] = {}
    for k in workers:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(k) as ex:
            list(ex.map(_spin, [n] * tasks))
        out[k] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=8, help="pairs in all (default 8)")
    ap.add_argument("--places", type=int, default=2, help="ports (default 2)")
    ap.add_argument("--size", type=int, default=300, help="scene side in pixels (default 300)")
    ap.add_argument("--pixel", type=float, default=2.0, help="pixel size in metres (default 2)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time (default 1 2)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per worker count, alternating (default 2)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep tiles and outputs here")
    args = ap.parse_args()

    from berthwatch import batch

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bw-batch-bench-"))
    tiles = work / "tiles"
    places = max(1, min(args.places, len(PLACES)))
    per_place = [args.pairs // places + (i < args.pairs % places) for i in range(places)]
    t0 = time.perf_counter()
    if not tiles.exists():
        for i, n in enumerate(per_place):
            render_place(tiles / f"port{i + 1}", seed=100 + i, centre=PLACES[i], n_dates=n + 1, size=args.size,
                         pixel=args.pixel)  # fmt: skip
    gen_s = time.perf_counter() - t0
    plan = batch.plan(tiles)
    print(f"{len(plan.pairs)} pairs over {len(plan.places)} places, {args.size}x{args.size} px at {args.pixel} m "
          f"(tiles generated in {gen_s:.1f} s, in {tiles})")  # fmt: skip

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work slows every run)")
    walls: dict[int, list[float]] = {n: [] for n in args.workers}
    serial: dict[int, list[float]] = {n: [] for n in args.workers}
    cpu: dict[int, list[float]] = {n: [] for n in args.workers}
    reference_counts = None
    same = True
    for r in range(args.repeat):
        order = args.workers if r % 2 == 0 else args.workers[::-1]  # alternate, so drifting load hits both
        for n in order:
            out = work / f"out_{n}w"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            result = batch.run(plan, out, workers=n)
            wall = time.perf_counter() - t0
            counts = {o.pair.name: o.counts for o in result.outcomes}
            same = same and (reference_counts is None or counts == reference_counts)
            reference_counts = reference_counts or counts
            walls[n].append(wall)
            serial[n].append(sum(o.seconds for o in result.outcomes))
            cpu[n].append(sum(o.cpu_seconds for o in result.outcomes))
            print(f"  run {r + 1}, {n} worker(s): {wall:.1f} s ({result.count('ok')}/{len(result.outcomes)} ok), "
                  f"load average now {os.getloadavg()[0]:.1f}")  # fmt: skip
    cal = calibrate(args.workers)
    cal_txt = ", ".join(f"{k} process(es) {w:.1f} s" for k, w in cal.items())
    print(f"calibration, {8} equal pure-Python CPU tasks on a process pool: {cal_txt}")
    base = min(walls[args.workers[0]])
    rows = [
        [n, f"{min(walls[n]):.1f}", " ".join(f"{w:.1f}" for w in walls[n]), f"{min(serial[n]):.1f}",
         f"{min(cpu[n]):.1f}", f"{base / min(walls[n]):.2f}"]
        for n in args.workers
    ]  # fmt: skip
    print_table(
        ["workers", "best wall s", "all runs s", "sum of pair wall s", "sum of pair CPU s", "speed-up"],
        rows,
        title="Batch wall time (includes starting the local cluster); best of the runs",
    )
    print(f"pair counts identical across all runs: {'yes' if same else 'NO'}")
    if len(args.workers) > 1:
        last = args.workers[-1]
        ceiling = cal[args.workers[0]] / cal[last]
        print(f"\nspeed-up {last} vs {args.workers[0]} worker(s): {base / min(walls[last]):.2f}x "
              f"(ideal {last / args.workers[0]:.0f}x on idle cores; this machine gave {last} plain CPU-bound processes "
              f"{ceiling:.2f}x just now)")  # fmt: skip
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
