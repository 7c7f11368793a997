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
