"""Accuracy of berthwatch outputs against ground truth, object by object.

:func:`evaluate` matches predicted objects to truth objects one-to-one per kind and reports detection scores
(precision, recall, F1), measurement errors (length, heading) and, for two-date outputs whose features carry a
``status``, status accuracy and change scores. Both inputs are GeoJSON FeatureCollections in the output
contract's shape (lon/lat, one feature per object, property ``kind``); geometry is compared in the UTM zone of
the truth's centre so that distances and areas are in metres.

Matching
--------
For each kind, a prediction and a truth object are *admissible* when their footprint IoU is at least
``iou_threshold`` OR their centroids lie within ``distance_factor`` x the truth's length of each other (so small
or loosely outlined objects still match). Among admissible pairs, :func:`scipy.optimize.linear_sum_assignment`
picks the one-to-one assignment with the most pairs, and among those the best overlap. In two-date mode a pair
whose statuses differ costs a little more, so that a departed and an arrived vessel at the same berth are not
cross-assigned.

Occlusion
---------
Truth features with ``occluded: true`` (or truth ``status: "unknown"``) are objects nobody can score: an unmatched
occluded truth is not a miss, and a prediction matched to one is dropped from every count (whatever its status,
including ``unknown``). A prediction with status ``unknown`` matched to a visible truth object counts as a
status error.

Change scores (two-date)
------------------------
Changes are statuses ``departed`` and ``arrived``. Predicted changes are the predictions with such a status, not
matched to occluded truth; truth changes are the visible truth objects with such a status. A change true positive
is a matched pair whose two statuses are equal and a change. Change precision = TP / predicted changes, recall =
TP / truth changes. *False changes* are predicted changes that are not change true positives (matched to a
truth that stayed or changed the other way, or matched to nothing); *missed changes* are truth changes that are
not change true positives.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.crs import CRS
from scipy.optimize import linear_sum_assignment
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from berthwatch.errors import VectorInputError
from berthwatch.geo import heading_difference, oriented_measures, reproject_geometry

logger = logging.getLogger(__name__)

CHANGE_STATUSES = ("departed", "arrived")
_INADMISSIBLE = 1.0e6  # cost of a pair that may not match; larger than any sum of admissible costs
_STATUS_MISMATCH_COST = 0.5  # tie-break in two-date mode (geometric costs lie in [0, 1])

__all__ = [
    "EvaluationResult",
    "KindScore",
    "Match",
    "combine",
    "evaluate",
    "load_feature_collection",
]


# --------------------------------------------------------------------------------------------------------------
# Inputs


def load_feature_collection(path: str | Path, *, default_kind: str | None = None) -> dict[str, Any]:
    """Read a GeoJSON FeatureCollection whose features each carry a ``kind``.

    ``default_kind`` ("vessel" or "equipment") is given to features without one: a plain file of ship outlines
    drawn by hand is a truth of vessels.

    Raises
    ------
    VectorInputError
        Naming the file when it is missing, not JSON, not a FeatureCollection, or a feature has no geometry or
        no ``kind`` property (and no ``default_kind``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise VectorInputError("file not found", path=p) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorInputError(f"cannot read file ({exc})", path=p) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VectorInputError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=p) from exc
    if default_kind is not None and isinstance(data, dict) and isinstance(data.get("features"), list):
        for f in data["features"]:
            if isinstance(f, dict) and isinstance(f.get("properties") or {}, dict):
                f["properties"] = {"kind": default_kind, **(f.get("properties") or {})}
    _check_collection(data, source=p)
    return data


def _check_collection(data: Any, *, source: str | Path | None) -> None:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        got = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise VectorInputError(f"not a GeoJSON FeatureCollection (type: {got!r})", path=source)
    feats = data.get("features")
    if not isinstance(feats, list):
        raise VectorInputError("FeatureCollection has no 'features' list", path=source)
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise VectorInputError(f"features[{i}] is not a GeoJSON Feature", path=source)
        props = f.get("properties") or {}
        if not isinstance(props, dict) or "kind" not in props:
            raise VectorInputError(f"features[{i}] has no 'kind' property (vessel | equipment)", path=source)
        if not f.get("geometry"):
            raise VectorInputError(f"features[{i}] has no geometry", path=source)


def _as_collection(obj: Mapping[str, Any] | str | Path, role: str) -> tuple[dict[str, Any], str]:
    if isinstance(obj, (str, Path)):
        return load_feature_collection(obj), str(obj)
    data = dict(obj)
    _check_collection(data, source=f"<{role}>")
    return data, f"<{role}>"


def _collection_crs(data: Mapping[str, Any], source: str) -> str:
    """CRS of the coordinates: RFC 7946 says lon/lat; an old-style named ``crs`` member is honoured."""
    crs = data.get("crs")
    if not crs:
        return "EPSG:4326"
    try:
        name = crs["properties"]["name"]
    except (KeyError, TypeError) as exc:
        raise VectorInputError(f"unsupported 'crs' member {crs!r}", path=source) from exc
    if "CRS84" in str(name):
        return "EPSG:4326"
    return str(name)


@dataclass
class _Obj:
    index: int
    id: str
    kind: str
    geom: BaseGeometry  # local metric CRS
    status: str | None
    occluded: bool
    length_m: float
    heading_deg: float


def _parse(data: Mapping[str, Any], src_crs: str, dst_crs: str, source: str, *, truth: bool) -> list[_Obj]:
    out: list[_Obj] = []
    local_crs = CRS.from_user_input(dst_crs)
    for i, f in enumerate(data["features"]):
        props = f.get("properties") or {}
        try:
            g = shape(f["geometry"])
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise VectorInputError(f"features[{i}] geometry is not valid GeoJSON ({exc})", path=source) from exc
        if g.is_empty:
            raise VectorInputError(f"features[{i}] geometry is empty", path=source)
        g = reproject_geometry(g, src_crs, dst_crs)
        if not g.is_valid:
            g = shapely.make_valid(g)
        length, _, heading, _ = oriented_measures(g, crs=local_crs)
        if _finite(props.get("length_m")):
            length = float(props["length_m"])
        if _finite(props.get("heading_deg")):
            heading = float(props["heading_deg"]) % 180.0
        status = props.get("status")
        occluded = bool(props.get("occluded", False)) or (truth and status == "unknown")
        out.append(
            _Obj(
                index=i,
                id=str(props.get("id", i)),
                kind=str(props["kind"]),
                geom=g,
                status=str(status) if status is not None else None,
                occluded=occluded,
                length_m=float(length),
                heading_deg=float(heading),
            )
        )
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _local_utm(geoms: Sequence[BaseGeometry]) -> str:
    """EPSG code of the UTM zone at the centre of ``geoms`` (lon/lat)."""
    if not geoms:
        return "EPSG:32631"
    c = shapely.GeometryCollection(list(geoms)).centroid
    lon, lat = float(c.x), float(c.y)
    infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not infos:  # polar: no UTM zone
        return "EPSG:3413" if lat > 0 else "EPSG:3031"
    return f"EPSG:{infos[0].code}"


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Match:
    """One matched (prediction, truth) pair in one kind."""

    pred_id: str
    truth_id: str
    iou: float
    distance_m: float
    length_error_m: float
    length_error_pct: float
    heading_error_deg: float
    pred_status: str | None
    truth_status: str | None
    occluded: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "pred_id": self.pred_id,
            "truth_id": self.truth_id,
            "iou": round(self.iou, 4),
            "distance_m": round(self.distance_m, 2),
            "length_error_m": round(self.length_error_m, 2),
            "length_error_pct": round(self.length_error_pct, 2),
            "heading_error_deg": round(self.heading_error_deg, 2),
            "pred_status": self.pred_status,
            "truth_status": self.truth_status,
            "occluded": self.occluded,
        }


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _median(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else None


@dataclass
class KindScore:
    """Scores for one kind. Counts are additive across scenes (see :func:`combine`)."""

    kind: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0  # predictions matched to occluded truth
    n_pred: int = 0
    n_truth: int = 0
    n_occluded: int = 0
    matches: list[Match] = field(default_factory=list)
    unmatched_pred: list[str] = field(default_factory=list)
    unmatched_truth: list[str] = field(default_factory=list)
    # two-date
    status_total: int = 0
    status_correct: int = 0
    change_tp: int = 0
    change_pred: int = 0
    change_truth: int = 0

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        if self.tp + self.fp + self.fn == 0:
            return None
        return _f1(self.precision or 0.0, self.recall or 0.0)

    def _visible(self) -> list[Match]:
        return [m for m in self.matches if not m.occluded]

    @property
    def length_error_m(self) -> float | None:
        """Median absolute length error over visible matches, metres."""
        return _median([m.length_error_m for m in self._visible()])

    @property
    def length_error_pct(self) -> float | None:
        """Median absolute length error relative to truth length, percent."""
        return _median([m.length_error_pct for m in self._visible()])

    @property
    def heading_error_deg(self) -> float | None:
        """Median axial heading error, degrees (0-90)."""
        return _median([m.heading_error_deg for m in self._visible()])

    @property
    def status_accuracy(self) -> float | None:
        return _ratio(self.status_correct, self.status_total)

    @property
    def change_precision(self) -> float | None:
        return _ratio(self.change_tp, self.change_pred)

    @property
    def change_recall(self) -> float | None:
        return _ratio(self.change_tp, self.change_truth)

    @property
    def change_f1(self) -> float | None:
        if self.change_pred + self.change_truth == 0:
            return None
        return _f1(self.change_precision or 0.0, self.change_recall or 0.0)

    @property
    def false_changes(self) -> int:
        return self.change_pred - self.change_tp

    @property
    def missed_changes(self) -> int:
        return self.change_truth - self.change_tp

    def merged(self, other: KindScore) -> KindScore:
        if other.kind != self.kind:
            raise ValueError(f"cannot merge scores of {self.kind!r} and {other.kind!r}")
        return KindScore(
            kind=self.kind,
            tp=self.tp + other.tp,
            fp=self.fp + other.fp,
            fn=self.fn + other.fn,
            ignored=self.ignored + other.ignored,
            n_pred=self.n_pred + other.n_pred,
            n_truth=self.n_truth + other.n_truth,
            n_occluded=self.n_occluded + other.n_occluded,
            matches=self.matches + other.matches,
            unmatched_pred=self.unmatched_pred + other.unmatched_pred,
            unmatched_truth=self.unmatched_truth + other.unmatched_truth,
            status_total=self.status_total + other.status_total,
            status_correct=self.status_correct + other.status_correct,
            change_tp=self.change_tp + other.change_tp,
            change_pred=self.change_pred + other.change_pred,
            change_truth=self.change_truth + other.change_truth,
        )

    def to_dict(self, *, two_date: bool = False, details: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "ignored_occluded": self.ignored,
            "n_pred": self.n_pred,
            "n_truth": self.n_truth,
            "n_truth_occluded": self.n_occluded,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
            "median_length_error_m": _round(self.length_error_m, 2),
            "median_length_error_pct": _round(self.length_error_pct, 2),
            "median_heading_error_deg": _round(self.heading_error_deg, 2),
        }
        if two_date:
            d.update(
                {
                    "status_matched": self.status_total,
                    "status_correct": self.status_correct,
                    "status_accuracy": _round(self.status_accuracy),
                    "change_tp": self.change_tp,
                    "change_pred": self.change_pred,
                    "change_truth": self.change_truth,
                    "change_precision": _round(self.change_precision),
                    "change_recall": _round(self.change_recall),
                    "change_f1": _round(self.change_f1),
                    "false_changes": self.false_changes,
                    "missed_changes": self.missed_changes,
                }
            )
        if details:
            d["matches"] = [m.to_dict() for m in self.matches]
            d["unmatched_pred"] = list(self.unmatched_pred)
            d["unmatched_truth"] = list(self.unmatched_truth)
        return d


def _round(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


@dataclass
class EvaluationResult:
    """Scores per kind plus the matching rule used. ``two_date`` is True when features carry ``status``."""

    kinds: dict[str, KindScore]
    iou_threshold: float
    distance_factor: float
    two_date: bool
    pred_source: str = ""
    truth_source: str = ""
    local_crs: str = ""

    def __getitem__(self, kind: str) -> KindScore:
        return self.kinds[kind]

    def to_dict(self, *, details: bool = True) -> dict[str, Any]:
        return {
            "pred": self.pred_source,
            "truth": self.truth_source,
            "matching": {
                "iou_threshold": self.iou_threshold,
                "distance_factor": self.distance_factor,
                "local_crs": self.local_crs,
            },
            "two_date": self.two_date,
            "kinds": {k: s.to_dict(two_date=self.two_date, details=details) for k, s in self.kinds.items()},
        }

    def table(self) -> str:
        """A plain-text table of the scores."""
        lines = [
            f"pred:  {self.pred_source}",
            f"truth: {self.truth_source}",
            f"match: IoU >= {self.iou_threshold:g} or centroid within {self.distance_factor:g} x truth length",
            "",
            f"{'kind':<10} {'truth':>5} {'pred':>5} {'TP':>4} {'FP':>4} {'FN':>4} {'occl':>4} "
            f"{'prec':>6} {'recall':>6} {'F1':>6} {'len err m':>9} {'len err %':>9} {'head err':>8}",
        ]
        for k, s in self.kinds.items():
            lines.append(
                f"{k:<10} {s.n_truth:>5} {s.n_pred:>5} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.ignored:>4} "
                f"{_fmt(s.precision):>6} {_fmt(s.recall):>6} {_fmt(s.f1):>6} "
                f"{_fmt(s.length_error_m, 1):>9} {_fmt(s.length_error_pct, 1):>9} "
                f"{_fmt(s.heading_error_deg, 1):>8}"
            )
        if self.two_date:
            lines += [
                "",
                f"{'kind':<10} {'status acc':>10} {'(n)':>5} {'chg TP':>6} {'pred':>5} {'truth':>5} "
                f"{'chg P':>6} {'chg R':>6} {'chg F1':>6} {'false':>5} {'missed':>6}",
            ]
            for k, s in self.kinds.items():
                lines.append(
                    f"{k:<10} {_fmt(s.status_accuracy):>10} {s.status_total:>5} {s.change_tp:>6} "
                    f"{s.change_pred:>5} {s.change_truth:>5} {_fmt(s.change_precision):>6} "
                    f"{_fmt(s.change_recall):>6} {_fmt(s.change_f1):>6} {s.false_changes:>5} "
                    f"{s.missed_changes:>6}"
                )
        lines.append("(occl = predictions matched to occluded truth, not counted; n/a = nothing to score)")
        return "\n".join(lines)


def _fmt(v: float | None, nd: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def combine(results: Iterable[EvaluationResult]) -> EvaluationResult:
    """Pool several results (e.g. one per scene): counts are summed, medians taken over all matches."""
    results = list(results)
    if not results:
        raise ValueError("combine() needs at least one EvaluationResult")
    kinds: dict[str, KindScore] = {}
    for r in results:
        for k, s in r.kinds.items():
            kinds[k] = kinds[k].merged(s) if k in kinds else s.merged(KindScore(kind=k))
    first = results[0]
    return EvaluationResult(
        kinds=kinds,
        iou_threshold=first.iou_threshold,
        distance_factor=first.distance_factor,
        two_date=any(r.two_date for r in results),
        pred_source=f"{len(results)} result(s)",
        truth_source=f"{len(results)} result(s)",
        local_crs="per result",
    )


# --------------------------------------------------------------------------------------------------------------
# Matching and scoring


def evaluate(
    pred: Mapping[str, Any] | str | Path,
    truth: Mapping[str, Any] | str | Path,
    *,
    iou_threshold: float = 0.3,
    distance_factor: float = 0.5,
    kinds: Sequence[str] = ("vessel", "equipment"),
) -> EvaluationResult:
    """Score predicted objects against truth objects, per kind.

    Parameters
    ----------
    pred, truth
        GeoJSON FeatureCollections (dicts or file paths) in lon/lat; every feature has a ``kind``. Features may
        carry ``length_m``/``heading_deg`` (otherwise measured from the polygon), ``status`` (two-date outputs)
        and, in truth, ``occluded``.
    iou_threshold
        A pair is admissible if its footprint IoU is at least this ...
    distance_factor
        ... or its centroids are within this many truth lengths of each other.
    kinds
        The kinds to score; features of other kinds are ignored.

    Returns
    -------
    EvaluationResult
        Per-kind :class:`KindScore` (``.to_dict()``, ``.table()``).

    Raises
    ------
    VectorInputError
        If an input is unreadable or of the wrong shape.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if distance_factor < 0.0:
        raise ValueError(f"distance_factor must be >= 0, got {distance_factor}")
    pdata, psrc = _as_collection(pred, "pred")
    tdata, tsrc = _as_collection(truth, "truth")
    pcrs, tcrs = _collection_crs(pdata, psrc), _collection_crs(tdata, tsrc)

    # local metric CRS: UTM zone at the truth's centre (the predictions' if there is no truth)
    ref_data, ref_crs = (tdata, tcrs) if tdata["features"] else (pdata, pcrs)
    centres = [reproject_geometry(shape(f["geometry"]).centroid, ref_crs, "EPSG:4326") for f in ref_data["features"]]
    local = _local_utm(centres)

    pobjs = _parse(pdata, pcrs, local, psrc, truth=False)
    tobjs = _parse(tdata, tcrs, local, tsrc, truth=True)
    two_date = any(o.status is not None for o in pobjs) or any(o.status is not None for o in tobjs)
    logger.debug("evaluate: %d predictions vs %d truth objects in %s", len(pobjs), len(tobjs), local)

    scores: dict[str, KindScore] = {}
    for kind in kinds:
        p = [o for o in pobjs if o.kind == kind]
        t = [o for o in tobjs if o.kind == kind]
        scores[kind] = _score_kind(kind, p, t, iou_threshold, distance_factor, two_date)
    return EvaluationResult(
        kinds=scores,
        iou_threshold=iou_threshold,
        distance_factor=distance_factor,
        two_date=two_date,
        pred_source=psrc,
        truth_source=tsrc,
        local_crs=local,
    )


def _pair_matrices(p: list[_Obj], t: list[_Obj]) -> tuple[np.ndarray, np.ndarray]:
    pg = np.array([o.geom for o in p], dtype=object)
    tg = np.array([o.geom for o in t], dtype=object)
    inter = shapely.area(shapely.intersection(pg[:, None], tg[None, :]))
    union = shapely.area(shapely.union(pg[:, None], tg[None, :]))
    iou = np.divide(inter, union, out=np.zeros_like(inter, dtype=float), where=union > 0)
    dist = shapely.distance(shapely.centroid(pg)[:, None], shapely.centroid(tg)[None, :])
    return iou.astype(float), dist.astype(float)


def _score_kind(
    kind: str, p: list[_Obj], t: list[_Obj], iou_thr: float, dist_factor: float, two_date: bool
) -> KindScore:
    s = KindScore(kind=kind, n_pred=len(p), n_truth=len(t), n_occluded=sum(o.occluded for o in t))
    pairs: list[tuple[int, int]] = []
    iou = dist = np.zeros((len(p), len(t)))
    if p and t:
        iou, dist = _pair_matrices(p, t)
        tlen = np.array([max(o.length_m, 1e-9) for o in t])
        reach = dist_factor * tlen[None, :]
        admissible = (iou >= iou_thr) | (dist <= reach)
        # geometric cost in [0, 1]: poor overlap and far centroids cost more
        cost = 0.5 * (1.0 - iou) + 0.5 * np.minimum(dist / np.maximum(tlen[None, :], 1e-9), 1.0)
        if two_date:
            ps = np.array([o.status or "" for o in p], dtype=object)
            ts = np.array([o.status or "" for o in t], dtype=object)
            cost = cost + _STATUS_MISMATCH_COST * (ps[:, None] != ts[None, :])
        cost = np.where(admissible, cost, _INADMISSIBLE)
        rows, cols = linear_sum_assignment(cost)
        pairs = [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if admissible[i, j]]

    matched_p = {i for i, _ in pairs}
    matched_t = {j for _, j in pairs}
    for i, j in pairs:
        po, to = p[i], t[j]
        lerr = abs(po.length_m - to.length_m)
        s.matches.append(
            Match(
                pred_id=po.id,
                truth_id=to.id,
                iou=float(iou[i, j]),
                distance_m=float(dist[i, j]),
                length_error_m=lerr,
                length_error_pct=100.0 * lerr / to.length_m if to.length_m > 0 else float("nan"),
                heading_error_deg=heading_difference(po.heading_deg, to.heading_deg),
                pred_status=po.status,
                truth_status=to.status,
                occluded=to.occluded,
            )
        )
        if to.occluded:
            s.ignored += 1
            continue
        s.tp += 1
        if two_date:
            s.status_total += 1
            if po.status == to.status:
                s.status_correct += 1
                if po.status in CHANGE_STATUSES:
                    s.change_tp += 1
        if two_date and po.status in CHANGE_STATUSES:
            s.change_pred += 1
    for i, po in enumerate(p):
        if i not in matched_p:
            s.fp += 1
            s.unmatched_pred.append(po.id)
            if two_date and po.status in CHANGE_STATUSES:
                s.change_pred += 1
    for j, to in enumerate(t):
        if not to.occluded and two_date and to.status in CHANGE_STATUSES:
            s.change_truth += 1
        if j not in matched_t and not to.occluded:
            s.fn += 1
            s.unmatched_truth.append(to.id)
    return s
