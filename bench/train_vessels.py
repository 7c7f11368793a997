"""Regenerate the vessel classifier's training table, and measure it honestly (leave-one-port-out).

Run from the project root::

    python bench/train_vessels.py --real ../shared/data/real             # rewrite data/vessel_candidates.csv
    python bench/train_vessels.py --real ../shared/data/real --evaluate # + LOPO scores on the 6 ports, bench seeds

Rows are the candidates of :func:`berthwatch.detect.vessel_candidates` with their features, a label (1 = the
candidate is matched one-to-one to a truth vessel by :func:`berthwatch.evaluate.evaluate`, the bench's own
matching) and a group: the port name for the Sentinel-2 sen2ships ports, ``synth-<seed>`` for synthetic scenes.
Synthetic training scenes use seeds >= 10000 only: the accuracy bench's seeds (101-112, 201-210, 301-303) never
enter the table. ``--synth`` scenes (seeds 10000, 10002...) cycle through 0.5-10 m pixels; ``--fine`` extra scenes
(seeds 20000, 20002...) are at 0.5-1 m, where a scene holds only a handful of vessels. Candidates matched to an
occluded or below-resolution truth object are left out (the bench neither rewards nor punishes them), and so are
unmatched candidates lying at least ``PIECE_SHARE`` inside truth vessels: a hull's shore-band half beside its
water-side half, a superstructure cut from its hull. They are pieces of real vessels, not non-vessels; as
negatives they taught the classifier to refuse hull-like candidates at quays. Each
synthetic training scene also gives the rows of another delivery of it, in the same group
(``_common.redelivered``: resampled by a random sub-pixel shift, softened by a random blur), so the classifier
does not learn the renderer's exact sharpness (``--no-redeliver``: rendered only). The real imagery stays outside
the repository: only derived feature rows are written.

``--evaluate`` scores (i) every sen2ships port with a model fitted WITHOUT that port's rows (leave-one-port-out),
(ii) the accuracy bench's synthetic detection scenes (seeds 101-112, never trained on), and prints the ROC AUC of
the held-out probabilities. Candidates are computed once per scene and cached in ``--cache``.

Time (shared 2-core machine): about 8 minutes with rendered scenes cached (``--cache``), plus about 20 minutes of
rendering the first time (50 + 30 scenes).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from _common import DEFAULT_REAL, ROOT, fmt, redelivered
from accuracy import DETECT_CASES, SceneCase, _synth_scene, load_sen2ships_truth, mark_unresolvable, shore_touching
from berthwatch.config import Settings
from berthwatch.detect import FEATURE_NAMES, _suppress_overlaps, _vessel_detection, vessel_candidates
from berthwatch.evaluate import combine, evaluate
from berthwatch.geo import reproject_geometry
from berthwatch.masks import water_mask
from berthwatch.models import Detection

TABLE = ROOT / "src" / "berthwatch" / "data" / "vessel_candidates.csv"
PIXEL_SIZES = (0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)
#: extra scenes at fine pixels: a fine scene holds 4-10 vessels where a coarse one holds 50-100, so without them
#: the classifier sees few fine-pixel hulls (deck detail, hatches, resolved wakes)
FINE_PIXEL_SIZES = (0.5, 0.8, 1.0)
LAYOUTS = ("auto", "auto", "harbour", "quay", "open_sea")
#: an unmatched candidate this much inside truth vessels (share of its footprint) is a piece of one: no row.
#: Over four negative-sampling seeds (bench/README): bench vessel F1 0.649 -> 0.667, sen2ships LOPO 0.304 -> 0.305
PIECE_SHARE = 0.5


@dataclass
class SceneRows:
    """Candidates of one scene: features, labels (1/0/-1 ignored), candidate detections, truth, extra."""

    name: str
    group: str
    source: str
    X: np.ndarray
    y: np.ndarray
    dets: list[Detection]
    truth: dict[str, Any]
    crs: str
    shore: set[str]


def training_cases(n: int, first_seed: int = 10000, pixel_sizes: tuple[float, ...] = PIXEL_SIZES) -> list[SceneCase]:
    """Synthetic training scenes drawn like the bench's (pixel size, layout, nuisances), seeds >= 10000."""
    cases = []
    for k in range(0, 2 * n, 2):
        seed = first_seed + k
        rng = np.random.default_rng(seed)
        cases.append(
            SceneCase(
                seed,
                float(pixel_sizes[k % len(pixel_sizes)]),
                "visual" if rng.random() < 0.5 else "analytic",
                glint=float(rng.uniform(0.1, 0.95)),
                whitecaps=float(rng.uniform(0.1, 0.95)),
                haze=float(rng.choice([0.0, 0.0, 0.15, 0.25])),
                cloud=bool(rng.random() < 0.25),
                port_layout=str(rng.choice(LAYOUTS)),
            )
        )
    return cases


def _rows(scene: Any, truth: dict[str, Any], settings: Settings, *, name: str, group: str, source: str) -> SceneRows:
    from berthwatch.report import objects_feature_collection

    water = water_mask(scene, config=settings.water)
    cands = vessel_candidates(scene, water & scene.valid, config=settings.vessel)
    dets: list[Detection] = []
    X = []
    for k, c in enumerate(cands):
        d = _vessel_detection(c, 1.0, scene, config=settings.vessel)
        if d is None:
            continue
        d.id = f"c{k}"
        dets.append(d)
        X.append(c.vector())
    y = np.zeros(len(dets), dtype=np.int64)
    if dets:
        r = evaluate(objects_feature_collection(dets, scene.crs), truth, kinds=("vessel",))
        idx = {d.id: i for i, d in enumerate(dets)}
        for m in r["vessel"].matches:
            y[idx[m.pred_id]] = -1 if m.occluded else 1
        y[(y == 0) & (_share_inside_vessels(dets, truth, str(scene.crs)) >= PIECE_SHARE)] = -1
    shore = shore_touching(scene, truth) if source == "sen2ships" else set()
    return SceneRows(
        name=name,
        group=group,
        source=source,
        X=np.array(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)),
        y=y,
        dets=dets,
        truth=truth,
        crs=str(scene.crs),
        shore=shore,
    )


def _share_inside_vessels(dets: list[Detection], truth: dict[str, Any], crs: str) -> np.ndarray:
    """Share of each detection's footprint that lies inside the truth vessels (truth in EPSG:4326)."""
    polys = [
        reproject_geometry(shape(f["geometry"]), "EPSG:4326", crs)
        for f in truth["features"]
        if f["properties"].get("kind", "vessel") == "vessel"
    ]
    if not polys:
        return np.zeros(len(dets))
    inside = shapely.union_all(polys)
    geoms = np.array([d.geometry for d in dets], dtype=object)
    return np.asarray(shapely.area(shapely.intersection(geoms, inside)) / np.maximum(shapely.area(geoms), 1e-12))


def _cached(cache: Path | None, key: str, make: Any) -> SceneRows:
    path = cache / "rows" / f"{key}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as f:
            return pickle.load(f)  # type: ignore[no-any-return]
    t0 = time.perf_counter()
    rows = make()
    print(f"  {key}: {len(rows.y)} candidates, {int((rows.y == 1).sum())} vessels ({time.perf_counter() - t0:.1f} s)")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(rows, f)
    return rows


def real_rows(real: Path, settings: Settings, cache: Path | None) -> list[SceneRows]:
    from berthwatch.io import read_scene

    out = []
    for port in sorted(p for p in (real / "sen2ships").iterdir() if p.is_dir()):

        def make(port: Path = port) -> SceneRows:
            scene = read_scene(next(port.glob("*_S2L2A_*.tif")))
            truth = load_sen2ships_truth(next(port.glob("*_vessels_epsg4326.geojson")))
            return _rows(scene, truth, settings, name=port.name, group=port.name, source="sen2ships")

        out.append(_cached(cache, f"real-{port.name}", make))
    return out


def _rendered(case: SceneCase, cache: Path | None) -> tuple[Any, dict[str, Any]]:
    """The rendered scene and its truth (cached: rendering dominates the run time)."""
    from berthwatch import synth

    path = cache / "scenes" / f"{case.seed}-{case.pixel_size_m:g}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as f:
            return pickle.load(f)  # type: ignore[no-any-return]
    port, sscene = _synth_scene(case)
    out = (sscene.to_scene(), synth.truth_feature_collection(sscene.truth, port.crs, with_status=False))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(out, f)
    return out


def synth_rows(
    cases: list[SceneCase], settings: Settings, cache: Path | None, *, group_prefix: str, redeliver: bool = False
) -> list[SceneRows]:
    """Candidate rows of rendered scenes; with ``redeliver`` also of each scene as another delivery (resampled,
    softer optics: :func:`_common.redelivered`), in the same group."""
    out = []
    for case in cases:
        rendered: list[tuple[Any, dict[str, Any]]] = []  # rendered once per case, used by both deliveries
        for again in (False, True) if redeliver else (False,):

            def make(case: SceneCase = case, again: bool = again, rendered: list[Any] = rendered) -> SceneRows:
                if not rendered:
                    rendered.append(_rendered(case, cache))
                scene, truth = rendered[0]
                truth = json.loads(json.dumps(truth))  # mark_unresolvable edits it
                if again:
                    scene = redelivered(scene, np.random.default_rng(case.seed + 1))
                mark_unresolvable(truth, case.pixel_size_m, settings)
                group = f"{group_prefix}-{case.seed}"
                return _rows(scene, truth, settings, name=case.name, group=group, source="synth")

            key = f"synth-{case.seed}-{case.pixel_size_m:g}" + ("-redelivered" if again else "")
            out.append(_cached(cache, key, make))
    return out


def write_table(scenes: list[SceneRows], path: Path, *, max_negatives: int, max_real_negatives: int) -> None:
    """All positive rows and up to ``max_negatives`` (``max_real_negatives`` for a real port) negative rows per
    scene (a seeded random sample)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([*FEATURE_NAMES, "label", "group", "source"])
        for k, s in enumerate(scenes):
            neg = np.flatnonzero(s.y == 0)
            cap = max_real_negatives if s.source == "sen2ships" else max_negatives
            if neg.size > cap:
                neg = np.random.default_rng(k).choice(neg, cap, replace=False)
            for i in np.sort(np.concatenate([np.flatnonzero(s.y == 1), neg])):
                w.writerow([*(f"{v:.4g}" for v in s.X[i]), int(s.y[i]), s.group, s.source])
                n += 1
    print(f"wrote {n} rows to {path} ({path.stat().st_size / 1024:.0f} kB)")


def _score(s: SceneRows, prob: np.ndarray, threshold: float) -> Any:
    from berthwatch.report import objects_feature_collection

    # as detect_vessels: candidates above the threshold, most probable first, overlapping ones suppressed
    keep = [dataclasses.replace(d, confidence=float(p)) for d, p in zip(s.dets, prob, strict=True) if p >= threshold]
    keep = _suppress_overlaps(sorted(keep, key=lambda d: -d.confidence), Settings().vessel.max_overlap)
    return evaluate(objects_feature_collection(keep, s.crs), s.truth, kinds=("vessel",))


def evaluate_lopo(real: list[SceneRows], bench: list[SceneRows], threshold: float) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from berthwatch.classify import fit_model

    report: dict[str, Any] = {"ports": {}, "synthetic": {}}
    results, ys, ps = [], [], []
    shore_total = shore_found = 0
    print(f"\nleave-one-port-out on sen2ships (threshold {threshold:g})")
    for s in real:
        model = fit_model(frozenset({s.group}))
        prob = model.predict_proba(s.X)[:, 1] if len(s.y) else np.zeros(0)  # type: ignore[attr-defined]
        r = _score(s, prob, threshold)
        results.append(r)
        v = r["vessel"]
        found = {m.truth_id for m in v.matches}
        shore_total += len(s.shore)
        shore_found += len(s.shore & found)
        ok = s.y >= 0
        ys.append(s.y[ok])
        ps.append(prob[ok])
        print(
            f"  {s.name:12s} truth {v.n_truth:3d} pred {v.n_pred:3d} P {fmt(v.precision)} R {fmt(v.recall)}"
            f" F1 {fmt(v.f1)} shore {len(s.shore & found)}/{len(s.shore)} len err {fmt(v.length_error_pct, 1)} %"
            f" (candidate recall {int((s.y == 1).sum())}/{v.n_truth})"
        )
        report["ports"][s.name] = {"P": v.precision, "R": v.recall, "F1": v.f1}
    v = combine(results)["vessel"]
    y = np.concatenate(ys)
    auc = roc_auc_score(y, np.concatenate(ps)) if 0 < y.sum() < y.size else None
    print(
        f"  overall P {fmt(v.precision)} R {fmt(v.recall)} F1 {fmt(v.f1)} (TP {v.tp} FP {v.fp} FN {v.fn});"
        f" shore recall {shore_found}/{shore_total}; median length error {fmt(v.length_error_pct, 1)} %;"
        f" held-out ROC AUC {fmt(auc)}"
    )
    report["sen2ships"] = {"P": v.precision, "R": v.recall, "F1": v.f1, "auc": auc, "shore": [shore_found, shore_total]}
    if bench:
        model = fit_model(frozenset())
        results, ys, ps = [], [], []
        print("\nsynthetic bench scenes (seeds 101-112, never trained on)")
        for s in bench:
            prob = model.predict_proba(s.X)[:, 1] if len(s.y) else np.zeros(0)  # type: ignore[attr-defined]
            r = _score(s, prob, threshold)
            results.append(r)
            v = r["vessel"]
            ok = s.y >= 0
            ys.append(s.y[ok])
            ps.append(prob[ok])
            print(
                f"  {s.name:40s} truth {v.n_truth - v.n_occluded:3d} pred {v.n_pred:3d} P {fmt(v.precision)}"
                f" R {fmt(v.recall)} F1 {fmt(v.f1)} len err {fmt(v.length_error_pct, 1)} %"
                f" (candidate recall {int((s.y == 1).sum())}/{v.n_truth - v.n_occluded})"
            )
        v = combine(results)["vessel"]
        y = np.concatenate(ys)
        auc = roc_auc_score(y, np.concatenate(ps)) if 0 < y.sum() < y.size else None
        print(
            f"  overall P {fmt(v.precision)} R {fmt(v.recall)} F1 {fmt(v.f1)} (TP {v.tp} FP {v.fp} FN {v.fn});"
            f" median length error {fmt(v.length_error_pct, 1)} %; ROC AUC {fmt(auc)}"
        )
        report["synthetic"] = {"P": v.precision, "R": v.recall, "F1": v.f1, "auc": auc,
                               "length_error_pct": v.length_error_pct}  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL, help="folder holding sen2ships/")
    ap.add_argument("--synth", type=int, default=50, help="number of synthetic training scenes (seeds 10000, 10002...)")
    ap.add_argument("--fine", type=int, default=30, help="extra synthetic scenes at 0.5-1 m (seeds 20000, 20002...)")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--cache", type=Path, default=None, help="cache candidates per scene here (scratch)")
    ap.add_argument("--evaluate", action="store_true", help="LOPO on the ports and the bench's synthetic scenes")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite the table (evaluate only)")
    ap.add_argument("--no-redeliver", action="store_true", help="rendered scenes only (no resampled copies)")
    ap.add_argument("--threshold", type=float, default=Settings().vessel.min_confidence)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--max-negatives", type=int, default=100, help="negative rows kept per synthetic scene")
    ap.add_argument("--max-real-negatives", type=int, default=100, help="negative rows kept per real port")
    args = ap.parse_args(argv)
    settings = Settings()
    t0 = time.perf_counter()
    real = real_rows(args.real, settings, args.cache) if (args.real / "sen2ships").is_dir() else []
    if not real:
        print(f"no sen2ships under {args.real}: synthetic rows only", file=sys.stderr)
    cases = training_cases(args.synth) + training_cases(args.fine, 20000, FINE_PIXEL_SIZES)
    train_synth = synth_rows(cases, settings, args.cache, group_prefix="synth", redeliver=not args.no_redeliver)
    if not args.no_write:
        write_table(
            real + train_synth, args.table, max_negatives=args.max_negatives, max_real_negatives=args.max_real_negatives
        )
    if args.evaluate:
        from berthwatch import classify

        classify.load_table.cache_clear()
        classify.fit_model.cache_clear()
        bench = synth_rows(list(DETECT_CASES), settings, args.cache, group_prefix="bench")
        rep = evaluate_lopo(real, bench, args.threshold)
        if args.json:
            args.json.write_text(json.dumps(rep, indent=2, default=float), encoding="utf-8")
    print(f"done in {time.perf_counter() - t0:.0f} s ({dt.datetime.now():%H:%M})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
