"""Does detection survive what real files do to an image? Accuracy on the bench's synthetic scenes, re-delivered.

Run from the project root::

    python bench/robustness.py                 # the 12 detection scenes of bench/accuracy.py, 5 deliveries
    python bench/robustness.py --quick         # 4 scenes
    python bench/robustness.py --only shift,lonlat --json out.json

Every scene of ``bench/accuracy.py`` (a) is written as a GeoTIFF and delivered again the ways real imagery
arrives, with the truth unchanged (it is in map coordinates):

``original``  the file as rendered;
``shift``     resampled (bilinear) onto the grid shifted by half a pixel in x and y: every orthorectified
              product is resampled once, and a half-pixel shift is the strongest such blur;
``lonlat``    warped (bilinear) to EPSG:4326 with nodata 0, as many web exports deliver (read back in UTM);
``collar``    padded with a black border 10 % of the image wide on every side, without a nodata value;
``blur``      softer optics: every band convolved with a Gaussian of sigma 0.6 pixel.

Prints vessel (and, at <= 1.2 m, equipment) F1 per scene and delivery, the overall F1 per delivery and its
change against ``original``. A robust detector loses little; nothing here is a target of an issue, the
figures say where the detector depends on the exact look of the renderer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import fmt, print_table, write_json
from accuracy import DETECT_CASES, EQUIPMENT_MAX_PIXEL_M, SceneCase, _synth_scene, mark_unresolvable
from berthwatch.config import Settings

DELIVERIES = ("original", "shift", "lonlat", "collar", "blur")
QUICK = (DETECT_CASES[0], DETECT_CASES[5], DETECT_CASES[7], DETECT_CASES[9])


def deliver(src: Path, how: str, out: Path) -> Path:
    """Write ``src`` delivered ``how`` (see the module docstring) to ``out``."""
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    from scipy import ndimage as ndi

    with rasterio.open(src) as ds:
        profile = ds.profile.copy()
        data = ds.read()
        tags = ds.tags()
        desc = ds.descriptions
        t = ds.transform
        if how == "original":
            return src
        if how == "shift":
            dst_t = Affine(t.a, 0.0, t.c + 0.5 * t.a, 0.0, t.e, t.f + 0.5 * t.e)
            out_data = np.zeros_like(data)
            for i in range(data.shape[0]):
                reproject(data[i], out_data[i], src_transform=t, src_crs=ds.crs, src_nodata=0, dst_transform=dst_t,
                          dst_crs=ds.crs, dst_nodata=0, resampling=Resampling.bilinear)  # fmt: skip
            profile.update(transform=dst_t)
        elif how == "lonlat":
            dst_t, w, h = calculate_default_transform(ds.crs, "EPSG:4326", ds.width, ds.height, *ds.bounds)
            out_data = np.zeros((data.shape[0], h, w), dtype=data.dtype)
            for i in range(data.shape[0]):
                reproject(data[i], out_data[i], src_transform=t, src_crs=ds.crs, src_nodata=0, dst_transform=dst_t,
                          dst_crs="EPSG:4326", dst_nodata=0, resampling=Resampling.bilinear)  # fmt: skip
            profile.update(crs="EPSG:4326", transform=dst_t, width=w, height=h)
        elif how == "collar":
            pr, pc = round(0.1 * ds.height), round(0.1 * ds.width)
            out_data = np.pad(data, ((0, 0), (pr, pr), (pc, pc)))
            profile.update(transform=t @ Affine.translation(-pc, -pr), width=out_data.shape[2],
                           height=out_data.shape[1], nodata=None)  # fmt: skip
        elif how == "blur":
            blurred = np.stack([ndi.gaussian_filter(b.astype(np.float32), 0.6) for b in data])
            out_data = np.clip(np.rint(blurred), 0, np.iinfo(data.dtype).max).astype(data.dtype)
            out_data[:, ~np.any(data != 0, axis=0)] = 0
        else:
            raise ValueError(how)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(out_data)
        dst.update_tags(**tags)
        for i, d in enumerate(desc, start=1):
            if d:
                dst.set_band_description(i, d)
    return out


def run(cases: tuple[SceneCase, ...], deliveries: tuple[str, ...], settings: Settings) -> dict[str, Any]:
    from berthwatch import synth
    from berthwatch.detect import detect
    from berthwatch.evaluate import combine, evaluate
    from berthwatch.io import read_scene
    from berthwatch.report import objects_feature_collection

    rows: list[list[str]] = []
    results: dict[str, dict[str, list[Any]]] = {d: {"vessel": [], "equipment": []} for d in deliveries}
    per_scene: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bw_robust_") as tmp:
        for case in cases:
            port, sscene = _synth_scene(case)
            src = sscene.write(Path(tmp) / f"{case.seed}.tif")
            truth = synth.truth_feature_collection(sscene.truth, port.crs, with_status=False)
            mark_unresolvable(truth, case.pixel_size_m, settings)
            kinds = ("vessel", "equipment") if case.pixel_size_m <= EQUIPMENT_MAX_PIXEL_M else ("vessel",)
            row = [case.name]
            scene_out: dict[str, Any] = {"name": case.name}
            for how in deliveries:
                t0 = time.perf_counter()
                path = deliver(src, how, Path(tmp) / f"{case.seed}_{how}.tif")
                scene = read_scene(path)
                det = detect(scene, settings=settings)
                r = evaluate(objects_feature_collection(det.detections, scene.crs), truth, kinds=kinds)
                results[how]["vessel"].append(r)
                if "equipment" in kinds:
                    results[how]["equipment"].append(r)
                e = r.kinds.get("equipment")
                row.append(f"{fmt(r['vessel'].f1, 2)}/{fmt(e.f1, 2) if e else '-'}")
                scene_out[how] = {
                    "vessel_f1": r["vessel"].f1,
                    "equipment_f1": e.f1 if e else None,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            rows.append(row)
            per_scene.append(scene_out)
            print(" ".join(row), file=sys.stderr, flush=True)
    print_table(["scene", *deliveries], rows, title="Vessel F1 / equipment F1 per scene and delivery")
    overall: dict[str, dict[str, float | None]] = {}
    for how in deliveries:
        v = combine(results[how]["vessel"])["vessel"]
        e = combine(results[how]["equipment"])["equipment"] if results[how]["equipment"] else None
        overall[how] = {"vessel_f1": v.f1, "equipment_f1": e.f1 if e else None}
    base = overall.get("original", {})
    print("\nOverall (change against original)")
    for how, o in overall.items():
        parts = []
        for k in ("vessel_f1", "equipment_f1"):
            d = None if o[k] is None or base.get(k) is None else o[k] - base[k]  # type: ignore[operator]
            delta = "" if d is None or how == "original" else f" ({d:+.3f})"
            parts.append(f"{k.split('_')[0]} F1 {fmt(o[k])}{delta}")
        print(f"  {how:<9} " + "   ".join(parts))
    return {"scenes": per_scene, "overall": overall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 scenes (0.5, 1, 3 and 5 m)")
    ap.add_argument("--only", default=",".join(DELIVERIES), help="comma-separated deliveries ('original' is added)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    wanted = [d.strip() for d in args.only.split(",") if d.strip()]
    bad = [d for d in wanted if d not in DELIVERIES]
    if bad:
        ap.error(f"unknown deliveries {bad}; choose from {', '.join(DELIVERIES)}")
    deliveries = tuple(d for d in DELIVERIES if d == "original" or d in wanted)
    t0 = time.perf_counter()
    out = run(QUICK if args.quick else DETECT_CASES, deliveries, Settings())
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
