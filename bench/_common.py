"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL = ROOT.parent / "shared" / "data" / "real"

# Make ``import berthwatch`` work from a plain checkout too (src layout).
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def fmt(v: float | None, nd: int = 3, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{nd}f}%" if pct else f"{v:.{nd}f}"


def verdict(name: str, value: float | None, op: str, threshold: float, *, unit: str = "") -> dict[str, Any]:
    """A target line: ``name value op threshold -> PASS/FAIL`` (n/a when there was nothing to measure)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        ok: bool | None = None
    elif op == ">=":
        ok = value >= threshold
    elif op == "<=":
        ok = value <= threshold
    else:  # pragma: no cover
        raise ValueError(op)
    return {"target": name, "value": value, "op": op, "threshold": threshold, "unit": unit, "pass": ok}


def print_targets(targets: Sequence[dict[str, Any]]) -> None:
    print("\nTargets")
    width = max((len(t["target"]) for t in targets), default=10)
    for t in targets:
        word = "n/a " if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        val = fmt(t["value"], 3)
        print(f"  [{word}] {t['target']:<{width}}  {val:>8} {t['op']} {t['threshold']:g}{t['unit']}")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    if title:
        print(f"\n{title}")
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  " + "  ".join(
            v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    print(line(list(headers)))
    for r in cells:
        print(line(r))


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0


def write_json(path: str | Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    print(f"\nwrote {p}")


def redelivered(scene: Any, rng: Any) -> Any:
    """``scene`` as another delivery of the same image: a training augmentation for the classifiers.

    Real products are resampled (orthorectification, reprojection) and every sensor has its own optics, while
    the renderer draws one sharp image. The pixels are resampled (bilinear) onto the grid shifted by a random
    0.2-0.8 pixel in x and y (the transform moves with it, so map coordinates and the truth stay valid), then
    softened by a Gaussian of random sigma 0-0.6 pixel. ``rng`` is a :class:`numpy.random.Generator`.
    """
    import numpy as np
    from affine import Affine
    from scipy import ndimage as ndi

    dy, dx = (float(v) for v in rng.uniform(0.2, 0.8, size=2))
    sigma = float(rng.uniform(0.0, 0.6))
    out = []
    for band in scene.data:
        x = ndi.shift(band.astype(np.float32), (-dy, -dx), order=1, mode="nearest")
        out.append(ndi.gaussian_filter(x, sigma) if sigma > 0.05 else x)
    data = np.stack(out)
    if np.issubdtype(scene.data.dtype, np.integer):
        data = np.clip(np.rint(data), 0, np.iinfo(scene.data.dtype).max)
    valid = ndi.shift(scene.valid.astype(np.float32), (-dy, -dx), order=1, mode="constant", cval=0.0) > 0.999
    return scene.with_(
        data=data.astype(scene.data.dtype), valid=valid, transform=scene.transform @ Affine.translation(dx, dy)
    )
