"""Where the synthetic vessel misses are: a diagnosis, not a score (``bench/accuracy.py`` gives the scores).

Run from the project root::

    python bench/misses.py                      # detection scenes (seeds 101-112) and change pairs (201-210)
    python bench/misses.py --only detect --seeds 101 108 --list
    python bench/misses.py --only change --json out/misses.json
    python bench/misses.py --only sen2ships --real ../shared/data/real

For every scorable truth vessel (not occluded, at least the minimum length and 3 pixels long) of the accuracy
bench's synthetic scenes, the candidates of :func:`berthwatch.detect.vessel_candidates` that the bench's matching
rule would pair with it (footprint IoU >= 0.3 or centroid within half the truth length) are looked up, with the
classifier's probability, and the vessel is put in one of these classes:

- ``found``: such a candidate is at or above ``vessel.min_confidence``;
- ``refused-shore`` / ``refused-water``: matching candidates exist, all below the threshold; the best is a region
  cut from the shore band (a hull the water mask calls land) or a blob on the water;
- ``none``: no candidate near it (missed by the segmentation, or outlined with its wake or the quay so that
  neither rule matches).

For the Sentinel-2 ports of ``sen2ships`` (leave-one-port-out, as in ``bench/accuracy.py``) the labelled vessels are
classed the same way and split by ``shore`` (within 20 m of land) or ``open``; a second table shows, per band of
classifier probability, how many candidates in the shore band and on the water lie on a labelled vessel: how well
the probability ranks on real ports.

For the change pairs the vessels that departed or arrived are classed the same way at the date they are present;
there ``found`` means the compare reported a change of that status matching them, and ``unchanged`` that a
confident candidate was there but no change of that status was reported for it. Vessels are also split by
setting: ``moored`` (alongside a quay, or rafted), ``under way`` or ``free`` (at anchor). Counts are loose (one
candidate may serve two vessels; overlap suppression is not applied), so ``found`` can exceed the bench's
true positives slightly.
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from _common import DEFAULT_REAL, fmt, print_table, write_json
from accuracy import DETECT_CASES, PAIR_CASES, _synth_pair, _synth_scene, load_sen2ships_truth, shore_touching
from berthwatch.classify import holdout, vessel_probability
from berthwatch.config import Settings
from berthwatch.detect import _footprint, vessel_candidates
from berthwatch.geo import from_lonlat, oriented_measures
from berthwatch.io import read_scene
from berthwatch.masks import union_water, water_mask
from berthwatch.models import Scene

CLASSES = ("found", "refused-shore", "refused-water", "none")
CHANGE_CLASSES = (*CLASSES, "unchanged")
SETTINGS = ("moored", "under way", "free")


def _near(geom: Any, truth: Any, length_m: float) -> bool:
    """The bench's matching rule (:func:`berthwatch.evaluate.evaluate`) for one pair of footprints."""
    inter = shapely.area(shapely.intersection(geom, truth))
    iou = inter / max(shapely.area(shapely.union(geom, truth)), 1e-9)
    return iou >= 0.3 or shapely.distance(shapely.centroid(geom), shapely.centroid(truth)) <= length_m / 2


def _candidates(scene: Scene, water: np.ndarray, settings: Settings) -> list[tuple[Any, float, bool]]:
    """(footprint, probability, shore-band region) of every vessel candidate of ``scene``."""
    cands = vessel_candidates(scene, water, config=settings.vessel)
    if not cands:
        return []
    prob = vessel_probability(np.vstack([c.vector() for c in cands]))
    return [
        (_footprint(c.mask, c.r0, c.c0, scene), float(p), bool(c.features["shore_region"]))
        for c, p in zip(cands, prob, strict=True)
    ]


P_BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)


def _setting(o: Any) -> str:
    return "moored" if o.moored else "under way" if o.underway else "free"


def _class(o: Any, cands: list[tuple[Any, float, bool]], threshold: float) -> tuple[str, float | None]:
    return _class_at(o.polygon, o.length_m, cands, threshold)


def _class_at(
    truth: Any, length_m: float, cands: list[tuple[Any, float, bool]], threshold: float
) -> tuple[str, float | None]:
    """The class of a truth footprint ``truth`` of that length among the candidates, and its best probability."""
    near = [(p, shore) for g, p, shore in cands if _near(g, truth, length_m)]
    if not near:
        return "none", None
    p, shore = max(near)
    if p >= threshold:
        return "found", p
    return ("refused-shore" if shore else "refused-water"), p


def _scorable(o: Any, pixel_size_m: float, settings: Settings) -> bool:
    return o.kind == "vessel" and not o.occluded and o.length_m >= max(settings.vessel.min_length_m, 3 * pixel_size_m)


def _row(
    name: str,
    counts: collections.Counter[tuple[str, str]],
    classes: tuple[str, ...] = CLASSES,
    settings: tuple[str, ...] = SETTINGS,
) -> list[Any]:
    """A table row: the vessel count, then per class the counts per setting (moored / under way / free)."""
    return [name, sum(counts.values()), *(" / ".join(str(counts[s, c]) for s in settings) for c in classes)]


def _say(where: str, o: Any, what: str, cls: str, p: float | None) -> None:
    print(f"  {where}: {o.id} {o.subtype} {o.hull} {o.length_m:.0f} m {what}{_setting(o)}: {cls} (p {fmt(p, 2)})")


def run_detect(seeds: set[int] | None, settings: Settings, listing: bool) -> dict[str, Any]:
    rows, per, overall = [], [], collections.Counter[tuple[str, str]]()
    threshold = settings.vessel.min_confidence
    for case in DETECT_CASES:
        if seeds and case.seed not in seeds:
            continue
        _port, ss = _synth_scene(case)
        scene = ss.to_scene()
        cands = _candidates(scene, water_mask(scene, config=settings.water), settings)
        counts = collections.Counter[tuple[str, str]]()
        for o in ss.truth:
            if not _scorable(o, case.pixel_size_m, settings):
                continue
            cls, p = _class(o, cands, threshold)
            counts[(_setting(o), cls)] += 1
            if listing and cls != "found":
                _say(case.name, o, "", cls, p)
        overall.update(counts)
        rows.append(_row(case.name, counts))
        per.append({"scene": case.name, "counts": {f"{s}/{c}": n for (s, c), n in counts.items()}})
    rows.append(_row("overall", overall))
    print_table(
        ["scene", "vessels", *(f"{c} (moored / under way / free)" for c in CLASSES)],
        rows,
        title=f"(a) Detection scenes: scorable truth vessels by class (threshold {threshold:g})",
    )
    return {"scenes": per, "overall": {f"{s}/{c}": n for (s, c), n in overall.items()}}


def run_sen2ships(real: Path, settings: Settings, listing: bool) -> dict[str, Any] | None:
    root = real / "sen2ships"
    if not root.is_dir():
        print(f"\n(b) sen2ships: skipped, folder not found: {root}")
        return None
    threshold = settings.vessel.min_confidence
    rows, per, overall = [], [], collections.Counter[tuple[str, str]]()
    bands = collections.Counter[tuple[str, int, bool]]()  # (shore/water, probability band, on a vessel)
    for port in sorted(p for p in root.iterdir() if p.is_dir()):
        scene = read_scene(next(port.glob("*_S2L2A_*.tif")))
        truth = load_sen2ships_truth(next(port.glob("*_vessels_epsg4326.geojson")))
        with holdout({port.name}):  # as scored by bench/accuracy.py: a model fitted without this port
            cands = _candidates(scene, water_mask(scene, config=settings.water), settings)
        shore = shore_touching(scene, truth)
        geoms = [from_lonlat(shape(f["geometry"]), scene.crs) for f in truth["features"]]
        lengths = [oriented_measures(g, ground_scale=scene.ground_scale)[0] for g in geoms]
        counts = collections.Counter[tuple[str, str]]()
        for f, g, length in zip(truth["features"], geoms, lengths, strict=True):
            cls, p_best = _class_at(g, length, cands, threshold)
            where = "shore" if f["properties"]["id"] in shore else "open"
            counts[(where, cls)] += 1
            if listing and cls != "found":
                print(f"  {port.name}: {f['properties']['id']} {length:.0f} m {where}: {cls} (p {fmt(p_best, 2)})")
        for c, p, sh in cands:
            hit = any(_near(c, g, length) for g, length in zip(geoms, lengths, strict=True))
            band = min(int(np.searchsorted(P_BANDS, p, side="right")) - 1, len(P_BANDS) - 2)
            bands[("shore" if sh else "water", band, hit)] += 1
        overall.update(counts)
        rows.append(_row(port.name, counts, settings=("shore", "open")))
        per.append({"port": port.name, "counts": {f"{s}/{c}": n for (s, c), n in counts.items()}})
    rows.append(_row("overall", overall, settings=("shore", "open")))
    print_table(
        ["port", "vessels", *(f"{c} (shore / open)" for c in CLASSES)],
        rows,
        title=f"(b) sen2ships, leave-one-port-out: labelled vessels by class (threshold {threshold:g})",
    )
    prow = [
        [
            f"{P_BANDS[b]:.1f}-{P_BANDS[b + 1]:.1f}",
            *(f"{bands[(w, b, True)]} / {bands[(w, b, False)]}" for w in ("water", "shore")),
        ]
        for b in range(len(P_BANDS) - 1)
    ]
    print_table(
        ["probability", "water candidates on / off a vessel", "shore-band candidates on / off a vessel"],
        prow,
        title="    candidates by classifier probability (all ports, leave-one-port-out)",
    )
    return {
        "ports": per,
        "overall": {f"{s}/{c}": n for (s, c), n in overall.items()},
        "probability_bands": {f"{w}/{P_BANDS[b]:.1f}/{'on' if h else 'off'}": n for (w, b, h), n in bands.items()},
    }


def run_change(seeds: set[int] | None, settings: Settings, listing: bool) -> dict[str, Any]:
    from berthwatch.pipeline import compare_scenes

    rows, per, overall = [], [], collections.Counter[tuple[str, str]]()
    threshold = settings.vessel.min_confidence
    for case in PAIR_CASES:
        if case.nuisance_only or (seeds and case.seed not in seeds):
            continue
        sb, sa, truth, _port = _synth_pair(case)
        pair, changes = compare_scenes(sb.to_scene(), sa.to_scene(), settings=settings)
        scene_before, scene_after = pair.detection_scenes  # each date with all its own bands, as compare searches
        water = union_water(scene_before, scene_after, config=settings.water)
        cands = {
            "departed": _candidates(scene_before, water, settings),
            "arrived": _candidates(scene_after, water, settings),
        }
        reported = [(ob.geometry, ob.status) for ob in changes.objects if ob.kind == "vessel"]
        counts = collections.Counter[tuple[str, str]]()
        coarse = max(case.pixel_size_m, case.px_after)
        for o in truth:
            if o.status not in ("departed", "arrived") or not _scorable(o, coarse, settings):
                continue
            if any(st == o.status and _near(g, o.polygon, o.length_m) for g, st in reported):
                cls, p = "found", None
            else:
                cls, p = _class(o, cands[o.status], threshold)
                if cls == "found":  # a confident candidate, but no change reported for it
                    cls = "unchanged"
            counts[(_setting(o), cls)] += 1
            if listing and cls != "found":
                _say(case.name, o, f"{o.status} ", cls, p)
        overall.update(counts)
        rows.append(_row(case.name, counts, CHANGE_CLASSES))
        per.append({"pair": case.name, "counts": {f"{s}/{c}": n for (s, c), n in counts.items()}})
    rows.append(_row("overall", overall, CHANGE_CLASSES))
    print_table(
        ["pair", "changes", *(f"{c} (moored / under way / free)" for c in CHANGE_CLASSES)],
        rows,
        title="(c) Change pairs: vessels that departed or arrived, by class at the date they are present",
    )
    return {"pairs": per, "overall": {f"{s}/{c}": n for (s, c), n in overall.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=("detect", "sen2ships", "change"), help="section(s) to run")
    ap.add_argument("--seeds", type=int, nargs="+", help="only these scene / pair seeds")
    ap.add_argument("--list", action="store_true", help="list every vessel not found")
    ap.add_argument("--json", default=None)
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL, help="the real-data folder (holds sen2ships/)")
    args = ap.parse_args(argv)
    settings = Settings()
    seeds = set(args.seeds) if args.seeds else None
    only = set(args.only or ("detect", "sen2ships", "change"))
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if "detect" in only:
        out["detect"] = run_detect(seeds, settings, args.list)
    if "sen2ships" in only:
        res = run_sen2ships(args.real, settings, args.list)
        if res is not None:
            out["sen2ships"] = res
    if "change" in only:
        out["change"] = run_change(seeds, settings, args.list)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
