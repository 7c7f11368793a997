"""Learned vessel/non-vessel decision on detector candidates (METHODS.md sections 2, 4 and 7).

The masked CFAR of :mod:`berthwatch.detect` proposes candidates with high recall; a gradient-boosted tree
ensemble (:class:`sklearn.ensemble.HistGradientBoostingClassifier`, fixed ``random_state``) on their evidence
(:data:`berthwatch.detect.FEATURE_NAMES`: size in metres and pixels, shape, signed band contrasts, NIR/visible
ratio, ring contrast, shore contact, sea clutter, contrast past the ends, pixel size) tells vessels from
whitecaps, glint, wakes, breakwater ends and quay fragments. Its probability is the detection confidence.

The package ships the *training table* (``berthwatch/data/vessel_candidates.csv``: one row per candidate with
its features, label, group and source), not a fitted model: the model is fitted from the table on first use
(deterministic, a second or two) and cached. Every training scene weighs the same, with its vessels and
non-vessels balanced (:func:`scene_weights`). ``bench/train_vessels.py`` regenerates the table from the labelled
Sentinel-2 ports (groups = port names) and synthetic scenes of seeds >= 10000 (groups ``synth-<seed>``).

Honest validation: :func:`holdout` fits (and uses) a model without some groups, so a port is never scored by a
model that saw its rows::

    from berthwatch.classify import holdout
    with holdout({"busan"}):
        result = detect(busan_scene)
"""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "TABLE_NAME",
    "TrainingTable",
    "excluded_groups",
    "fit_model",
    "holdout",
    "load_table",
    "scene_weights",
    "vessel_probability",
]

TABLE_NAME = "vessel_candidates.csv"
_EXCLUDED: ContextVar[frozenset[str]] = ContextVar("berthwatch_classify_excluded", default=frozenset())


@dataclass(frozen=True)
class TrainingTable:
    """Candidate rows: ``X`` (n, features) in ``feature_names`` order, ``y`` 0/1, ``groups`` and ``sources``."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    feature_names: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def load_table() -> TrainingTable:
    """The bundled training table (read once)."""
    from berthwatch.detect import FEATURE_NAMES

    text = resources.files("berthwatch.data").joinpath(TABLE_NAME).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    missing = [k for k in FEATURE_NAMES if rows and k not in rows[0]]
    if missing:
        raise RuntimeError(f"training table lacks features {missing}: regenerate it with bench/train_vessels.py")
    X = np.array([[float(r[k]) for k in FEATURE_NAMES] for r in rows], dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    y = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    groups = np.array([r["group"] for r in rows], dtype=object)
    sources = np.array([r["source"] for r in rows], dtype=object)
    return TrainingTable(X=X, y=y, groups=groups, sources=sources, feature_names=tuple(FEATURE_NAMES))


@functools.lru_cache(maxsize=16)
def fit_model(exclude: frozenset[str] = frozenset()) -> object:
    """Gradient-boosted trees fitted on the table without the rows of the ``exclude`` groups (cached).

    Returns
    -------
    a fitted :class:`sklearn.ensemble.HistGradientBoostingClassifier`
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    t = load_table()
    keep = ~np.isin(t.groups, list(exclude)) if exclude else np.ones(t.y.size, dtype=bool)
    if keep.sum() == 0 or np.unique(t.y[keep]).size < 2:
        raise RuntimeError(f"no training rows of both classes left without {sorted(exclude)}")
    model = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.06,
        max_leaf_nodes=24,
        min_samples_leaf=15,
        l2_regularization=1.0,
        class_weight=None,
        # stated, not left to sklearn's "auto" (on only above 10 000 rows): 10% of the rows held out, fitting stops
        # after 10 rounds without gain on them (125 of the 200 on the shipped table)
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=0,
    )
    # one thread: the fit takes a couple of seconds, is reproducible, and does not fight other work for cores
    with threadpool_limits(limits=1):
        model.fit(t.X[keep], t.y[keep], sample_weight=scene_weights(t.groups[keep], t.y[keep]))
    log.debug("vessel classifier fitted on %d rows (%d positive), excluded %s", keep.sum(), t.y[keep].sum(), exclude)
    return model


def scene_weights(groups: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Training weights under which every group (port or synthetic scene) counts the same and, within it,
    vessels and non-vessels weigh the same (mean weight 1).

    A fine-pixel scene holds a handful of vessels among its candidates where a coarse one holds dozens, so
    unweighted the probability would carry each scene's base rate (and with it the pixel size) rather than
    the candidate's own evidence.
    """
    w = np.ones(y.size, dtype=np.float64)
    for g in np.unique(groups):
        for c in (0, 1):
            sel = (groups == g) & (y == c)
            if sel.any():
                w[sel] = 1.0 / sel.sum()
    return w * (y.size / w.sum())


def excluded_groups() -> frozenset[str]:
    """The training groups left out in the current context (see :func:`holdout`)."""
    return _EXCLUDED.get()


@contextlib.contextmanager
def holdout(groups: Iterable[str]) -> Iterator[None]:
    """Within the block, vessel probabilities come from a model fitted without these training groups.

    Groups are port names of the real training rows (``busan``, ``cartagena``, ``casablanca``, ``durban``,
    ``honolulu``, ``klang``) or ``synth-<seed>``. Nested blocks add up.
    """
    token = _EXCLUDED.set(_EXCLUDED.get() | frozenset(groups))
    try:
        yield
    finally:
        _EXCLUDED.reset(token)


def vessel_probability(features: np.ndarray) -> np.ndarray:
    """Probability that each candidate (rows in ``FEATURE_NAMES`` order) is a vessel."""
    X = np.asarray(features, dtype=np.float64)
    if X.shape[0] == 0:
        return np.zeros(0)
    from threadpoolctl import threadpool_limits

    model = fit_model(excluded_groups())
    with threadpool_limits(limits=1):
        return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)  # type: ignore[attr-defined]
