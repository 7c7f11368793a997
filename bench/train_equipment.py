"""Build the equipment classifier's training table from synthetic ports, cross-validate it, score the bench.

The equipment detector (:mod:`berthwatch.equipment`) proposes item-sized pieces of anomalous pavement and keeps
those a gradient-boosted classifier accepts. The classifier is fitted at first use from the small table shipped
in ``src/berthwatch/data/equipment_training.npz`` (features, label, scene seed, weight); this script regenerates
that table.

Training scenes are :mod:`berthwatch.synth` ports with seeds >= 10000 only (the bench uses 101-112, 201-210,
301-303: never trained or tuned on), at pixel sizes 0.5-1.2 m, both band layouts ("visual" RGB uint8,
"analytic" BGRN uint16), varied sun, haze, cloud, glint and port layouts. A candidate is labelled 1 when it is
on a truth equipment footprint: IoU >= 0.3, or centroid inside it and within half the truth length (the evaluator's
rule, without the pieces beside an item, such as its cast shadow, that would be duplicates of it); candidates
admissible only to occluded truth are left out. Every scene is used twice, as rendered and as another delivery
(``_common.redelivered``: resampled by a random sub-pixel shift and softened by a random blur), so the classifier
does not learn the renderer's exact sharpness (``--no-redeliver``: rendered only).

Commands (from the repository root)::

    python bench/train_equipment.py table --scenes 40 --jobs 2   # rewrite the shipped table (~12 min)
    python bench/train_equipment.py cv                            # GroupKFold by scene: held-out scores
    python bench/train_equipment.py bench                         # detect_equipment on bench scenes 101-106
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import redelivered  # noqa: E402

TABLE = ROOT / "src" / "berthwatch" / "data" / "equipment_training.npz"
RAW = Path("equipment_candidates.csv")  # every candidate of every training scene (not shipped)
MAX_POSITIVE = 200  # per scene, in the shipped table (keeps it < 1 MB)
MAX_NEGATIVE = 300
FIRST_SEED = 10000


def training_case(i: int) -> dict[str, Any]:
    """Scene parameters of training scene ``i`` (seed FIRST_SEED + i), drawn from that seed."""
    seed = FIRST_SEED + i
    rng = np.random.default_rng(seed)
    return {
        "seed": seed,
        "pixel_size_m": float(np.round(rng.uniform(0.5, 1.2), 2)),
        "band_layout": "visual" if i % 2 else "analytic",
        "port_layout": str(rng.choice(["auto", "auto", "quay", "harbour"])),
        "glint": float(rng.uniform(0.0, 1.0)),
        "whitecaps": float(rng.uniform(0.0, 1.0)),
        "haze": float(rng.choice([0.0, 0.0, rng.uniform(0.05, 0.3)])),
        "cloud": bool(rng.uniform() < 0.2),
        "sun_azimuth_deg": float(rng.uniform(120.0, 200.0)),
        "sun_elevation_deg": float(rng.uniform(25.0, 60.0)),
        "dense": bool(rng.uniform() < 0.4),
    }


def render_case(c: dict[str, Any]) -> tuple[Any, Any]:
    """(port, SyntheticScene) of a training case (~1000 x 750 px, at least 800 x 600 m, like the bench)."""
    from berthwatch import synth

    w = float(np.clip(1000 * c["pixel_size_m"], 800.0, 6000.0))
    h = 0.75 * w
    spec = synth.PortSpec(
        seed=c["seed"],
        width_m=w,
        height_m=h,
        pixel_size_m=c["pixel_size_m"],
        glint=c["glint"],
        whitecaps=c["whitecaps"],
        layout=c["port_layout"],
        n_random_equipment=300 if c["dense"] else None,
    )
    port = synth.make_port(spec)
    ds = synth.DateSpec(
        date=dt.date(2025, 1, 18),
        layout=c["band_layout"],
        haze=c["haze"],
        cloud=(0.15 * w, -0.1 * h, 0.12 * min(w, h)) if c["cloud"] else None,
        sun_azimuth_deg=c["sun_azimuth_deg"],
        sun_elevation_deg=c["sun_elevation_deg"],
    )
    return port, synth.render(port, ds)


def label_candidates(cands: list[Any], truth: list[Any], truth_crs: Any, scene: Any) -> tuple[np.ndarray, float]:
    """Labels (1 item, 0 clutter, -1 on occluded truth: left out) and the share of visible truth reached."""
    from berthwatch.geo import reproject_geometry

    eq = [t for t in truth if t.kind == "equipment"]
    labels = np.zeros(len(cands), dtype=np.int64)
    if not eq or not cands:
        return labels, float("nan") if not eq else 0.0
    tg = np.array([reproject_geometry(t.polygon, truth_crs, scene.crs) for t in eq])
    tlen = np.array([t.length_m for t in eq]) / scene.ground_scale
    occl = np.array([bool(t.occluded) for t in eq])
    small = np.array([t.length_m < 3.0 for t in eq])
    pg = np.array([c.geometry for c in cands])
    inter = shapely.area(shapely.intersection(pg[:, None], tg[None, :]))
    union = shapely.area(shapely.union(pg[:, None], tg[None, :]))
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    dist = shapely.distance(shapely.centroid(pg)[:, None], shapely.centroid(tg)[None, :])
    adm = (iou >= 0.3) | (dist <= 0.5 * tlen[None, :])
    # an item's label goes to pieces ON it (overlapping it, or centred inside it): its cast shadow or a patch of
    # ground beside it is admissible to the evaluator's centroid rule but, kept next to the item, is a duplicate
    inside = shapely.contains(tg[None, :], shapely.centroid(pg)[:, None])
    on_item = (iou >= 0.3) | ((dist <= 0.5 * tlen[None, :]) & inside)
    for i in range(len(cands)):
        hit = adm[i]
        if (on_item[i] & ~occl).any():
            labels[i] = 1
        elif (hit & occl).any():
            labels[i] = -1
    vis = ~occl & ~small
    reached = float(adm[:, vis].any(axis=0).mean()) if vis.any() else float("nan")
    return labels, reached


def table_rows(i: int, redeliver: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from berthwatch import masks
    from berthwatch.equipment import FEATURE_NAMES, equipment_candidates

    c = training_case(i)
    t0 = time.perf_counter()
    port, ss = render_case(c)
    rendered = ss.to_scene()
    scenes = [rendered]
    if redeliver:  # the scene also as another delivery (resampled, softer optics): same group
        scenes.append(redelivered(rendered, np.random.default_rng(c["seed"] + 1)))
    rows = []
    reached = []
    for scene in scenes:
        land = ~masks.water_mask(scene) & scene.valid
        cands, x = equipment_candidates(scene, land)
        labels, share = label_candidates(cands, ss.truth, port.crs, scene)
        reached.append(share)
        for k in range(len(cands)):
            if labels[k] < 0:
                continue
            row: dict[str, Any] = {n: f"{x[k, j]:.5g}" for j, n in enumerate(FEATURE_NAMES)}
            row["label"] = int(labels[k])
            row["group"] = f"synth-{c['seed']}"
            rows.append(row)
    n_truth = sum(1 for t in ss.truth if t.kind == "equipment" and not t.occluded)
    info = {
        **c,
        "candidates": len(rows),  # labelled rows of every delivery
        "positives": sum(r["label"] for r in rows),
        "truth": n_truth * len(scenes),
        "reached": reached[0],  # as rendered
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return rows, info


def cmd_table(args: argparse.Namespace) -> int:
    from berthwatch.equipment import FEATURE_NAMES

    idx = list(range(args.first, args.first + args.scenes))
    all_rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        for rows, info in ex.map(partial(table_rows, redeliver=not args.no_redeliver), idx):
            all_rows.extend(rows)
            print(
                f"seed {info['seed']} {info['pixel_size_m']} m {info['band_layout']} {info['port_layout']}"
                f" truth {info['truth']} candidates {info['candidates']} positives {info['positives']}"
                f" truth reached {info['reached']:.2f} ({info['seconds']} s)",
                flush=True,
            )
    raw = Path(args.raw)
    with raw.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=[*FEATURE_NAMES, "label", "group"])
        w.writeheader()
        w.writerows(all_rows)
    print(f"{len(all_rows)} candidates ({sum(r['label'] for r in all_rows)} positive) -> {raw}")
    return pack(raw, Path(args.out))


def pack(raw: Path, out: Path) -> int:
    """Subsample the raw candidate table per scene (fixed seed) into the shipped NPZ, with weights that restore
    each scene's share of clutter and items."""
    from berthwatch.equipment import FEATURE_NAMES

    with raw.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[k]) for k in FEATURE_NAMES] for r in rows], dtype=np.float32)
    y = np.array([int(r["label"]) for r in rows], dtype=np.int8)
    seed = np.array([int(r["group"].removeprefix("synth-")) for r in rows], dtype=np.int32)
    rng = np.random.default_rng(0)
    keep, weight = [], []
    for s in np.unique(seed):
        for lab, cap in ((1, MAX_POSITIVE), (0, MAX_NEGATIVE)):
            idx = np.flatnonzero((seed == s) & (y == lab))
            if idx.size == 0:
                continue
            pick = np.sort(rng.choice(idx, size=min(cap, idx.size), replace=False))
            keep.append(pick)
            weight.append(np.full(pick.size, idx.size / pick.size, dtype=np.float32))
    k = np.concatenate(keep)
    np.savez_compressed(
        out,
        feature_names=np.array(FEATURE_NAMES),
        x=x[k].astype(np.float16),
        y=y[k],
        seed=seed[k],
        weight=np.concatenate(weight),
    )
    print(
        f"{k.size} rows ({int(y[k].sum())} positive) from {np.unique(seed).size} scenes -> {out}"
        f" ({out.stat().st_size / 1e6:.2f} MB)"
    )
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    return pack(Path(args.raw), Path(args.out))


def cmd_cv(args: argparse.Namespace) -> int:
    from sklearn.model_selection import GroupKFold
    from threadpoolctl import threadpool_limits

    from berthwatch.equipment import load_training_table, make_classifier

    x, y, g, wt = load_training_table()
    prob = np.zeros(len(y))
    with threadpool_limits(limits=1):
        for tr, te in GroupKFold(n_splits=args.folds).split(x, y, g):
            m = make_classifier().fit(x[tr], y[tr], sample_weight=wt[tr])
            prob[te] = m.predict_proba(x[te])[:, 1]
    print(f"{len(y)} candidates, {y.sum()} positive, {len(set(g))} scenes; GroupKFold({args.folds}) by scene")
    print("  (candidate level, weighted to each scene's full candidate counts; before overlap suppression)")
    for thr in (0.3, 0.4, 0.5, 0.6, 0.7):
        k = prob >= thr
        tp = float(wt[k & (y == 1)].sum())
        p = tp / max(float(wt[k].sum()), 1e-9)
        r = tp / max(float(wt[y == 1].sum()), 1e-9)
        print(f"  p >= {thr:.1f}: candidate precision {p:.3f} recall {r:.3f} F1 {2 * p * r / max(p + r, 1e-9):.3f}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    import accuracy as acc  # type: ignore[import-not-found]
    from berthwatch import masks, synth
    from berthwatch.config import Settings
    from berthwatch.equipment import detect_equipment
    from berthwatch.evaluate import combine, evaluate
    from berthwatch.report import objects_feature_collection

    cases = [c for c in acc.DETECT_CASES if c.pixel_size_m <= 1.2]
    results = []
    for case in cases:
        port, ss = acc._synth_scene(case)
        scene = ss.to_scene()
        land = ~masks.water_mask(scene) & scene.valid
        t0 = time.perf_counter()
        dets = detect_equipment(scene, land)
        t_det = time.perf_counter() - t0
        pred = objects_feature_collection(dets, scene.crs)
        truth = synth.truth_feature_collection(ss.truth, port.crs, with_status=False)
        acc.mark_unresolvable(truth, case.pixel_size_m, Settings())
        r = evaluate(pred, truth, kinds=("equipment",))
        results.append(r)
        e = r["equipment"]
        print(
            f"{case.name:42s} truth {e.n_truth - e.n_occluded:4d} pred {e.n_pred:4d} P {e.precision:.2f}"
            f" R {e.recall:.2f} F1 {e.f1:.2f} ({t_det:.1f} s)",
            flush=True,
        )
    e = combine(results)["equipment"]
    print(f"overall equipment P {e.precision:.3f} R {e.recall:.3f} F1 {e.f1:.3f} (TP {e.tp} FP {e.fp} FN {e.fn})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="render training scenes and write the candidate table")
    t.add_argument("--scenes", type=int, default=40)
    t.add_argument("--first", type=int, default=0, help="first scene index (seed = 10000 + index)")
    t.add_argument("--jobs", type=int, default=1)
    t.add_argument("--no-redeliver", action="store_true", help="only the rendered scenes (no resampled copies)")
    t.add_argument("--out", default=str(TABLE))
    t.add_argument("--raw", default=str(RAW), help="where every candidate is written before subsampling")
    pk = sub.add_parser("pack", help="subsample a raw candidate table into the shipped NPZ")
    pk.add_argument("--raw", default=str(RAW))
    pk.add_argument("--out", default=str(TABLE))
    c = sub.add_parser("cv", help="GroupKFold by scene on the shipped table")
    c.add_argument("--folds", type=int, default=5)
    sub.add_parser("bench", help="detect_equipment on the bench's equipment scenes (seeds 101-106)")
    args = ap.parse_args(argv)
    return {"table": cmd_table, "pack": cmd_pack, "cv": cmd_cv, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
