"""Pictures: annotated before/after/detection PNGs, the side-by-side overview and per-object chips.

Everything is drawn with matplotlib's object-oriented API on an Agg canvas (never pyplot's global state), so
it is safe in worker processes and threads. Images are decimated by block averaging for display (at most
``MAX_SIDE_PX`` on the long side) but outlines are drawn in full-resolution pixel coordinates, so they stay
exact. All pictures share one display stretch, :func:`display_rgb`.

Colours: departed red, arrived cyan, stayed yellow, unknown grey. An outline is solid on the date the object
is present and dashed on the date it is absent (where a departed ship *was*, where an arrived one *will be*).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patheffects import Normal, Stroke, withStroke
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from shapely import STRtree
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from skimage import draw, exposure, transform

from berthwatch.errors import OutputError
from berthwatch.geo import crs_to_pixel, from_lonlat, to_lonlat
from berthwatch.models import AlignedPair, ChangedObject, Detection, Scene

logger = logging.getLogger(__name__)

MAX_SIDE_PX = 2500
"""Longest side of a single annotated picture, in output pixels."""
MIN_SIDE_PX = 1100
"""Small scenes are enlarged to at least this long side so labels stay legible."""
OVERVIEW_PANEL_PX = 1500
"""Longest side of each panel of the overview."""
DPI = 150

STATUS_COLOURS: dict[str, str] = {
    "departed": "#ff2d2d",
    "arrived": "#00e5ff",
    "stayed": "#ffd500",
    "unknown": "#b0b0b0",
}
KIND_COLOURS: dict[str, str] = {"vessel": "#ff8c00", "equipment": "#ff4fd8"}
CHANGED = ("departed", "arrived")
MAX_EQUIPMENT_LABELS = 30
"""Above this many changed equipment items on one picture their ids are not printed (the outlines still are)."""

Which = Literal["before", "after", "detect"]
AnyObject = ChangedObject | Detection


# ------------------------------------------------------------------------------------------------ stretch
def display_rgb(scene: Scene, *, percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """RGB uint8 picture of a scene for display, shape ``(rows, cols, 3)``.

    Each band is stretched linearly between its ``percentiles`` computed over valid pixels (on a regular
    subsample of at most about a million pixels, so large scenes stay fast). Red/green/blue roles give a colour
    picture; a scene without all three (panchromatic, or unusual layouts) is shown in grey from
    :meth:`Scene.gray`. Invalid pixels are black.

    Parameters
    ----------
    scene
        The scene to display.
    percentiles
        Lower and upper percentile of the linear stretch.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``(rows, cols, 3)``.
    """
    rows, cols = scene.shape
    valid = scene.valid
    out = np.zeros((rows, cols, 3), dtype=np.uint8)
    if not valid.any():
        return out
    step = max(1, int(math.sqrt(valid.size / 1_000_000)))
    sample_valid = valid[::step, ::step]
    if all(scene.has(r) for r in ("red", "green", "blue")):
        channels: list[np.ndarray] = [scene.band("red"), scene.band("green"), scene.band("blue")]
    elif scene.has("pan"):
        channels = [scene.band("pan")] * 3
    else:
        channels = [scene.gray()] * 3
    cache: dict[int, np.ndarray] = {}
    for i, band in enumerate(channels):
        if id(band) not in cache:
            vals = band[::step, ::step][sample_valid]
            lo, hi = (float(v) for v in np.percentile(vals, percentiles))
            if not hi > lo:
                hi = lo + 1.0
            cache[id(band)] = np.rint(
                exposure.rescale_intensity(band, in_range=(lo, hi), out_range=(0.0, 255.0))
            ).astype(np.uint8)
        out[..., i] = cache[id(band)]
    out[~valid] = 0
    return out


def _decimate(rgb: np.ndarray, max_side: int) -> np.ndarray:
    factor = math.ceil(max(rgb.shape[:2]) / max_side)
    if factor <= 1:
        return rgb
    small = transform.downscale_local_mean(rgb, (factor, factor, 1))
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ geometry
def _footprint(obj: AnyObject, which: Which) -> tuple[BaseGeometry, bool]:
    """The outline to draw for one object on one picture and whether it is present on that date."""
    if isinstance(obj, Detection):
        return obj.geometry, True
    det = obj.before if which == "before" else obj.after
    if det is not None:
        return det.geometry, True
    return obj.geometry, False


def _exteriors_px(geoms: Iterable[BaseGeometry], scene: Scene) -> list[np.ndarray]:
    rings: list[np.ndarray] = []
    for g in geoms:
        gp = crs_to_pixel(g, scene.transform)
        for part in getattr(gp, "geoms", [gp]):
            if isinstance(part, Polygon) and not part.is_empty:
                rings.append(np.asarray(part.exterior.coords))
    return rings


def _object_colour(obj: AnyObject, which: Which) -> str:
    if isinstance(obj, Detection) or which == "detect":
        return KIND_COLOURS[obj.kind]
    return STATUS_COLOURS[obj.status]


MAX_STAYED_VESSEL_LABELS = 60
"""Above this many stayed vessels on one picture only changed objects get ids (a busy anchorage stays readable)."""
MAX_DETECT_LABELS = 200


def _labelled(objs: Sequence[AnyObject], which: Which) -> list[AnyObject]:
    """Objects whose id is printed, most important first (the label placer gives them the best spots).

    Changed vessels always; stayed vessels unless there are more than MAX_STAYED_VESSEL_LABELS; changed equipment
    unless there are more than MAX_EQUIPMENT_LABELS; stayed equipment never. For a single date: vessels.
    """
    if which == "detect":
        vessels = [o for o in objs if o.kind == "vessel"]
        return vessels if len(vessels) <= MAX_DETECT_LABELS else []
    status = {id(o): getattr(o, "status", "stayed") for o in objs}
    changed_v = [o for o in objs if o.kind == "vessel" and status[id(o)] != "stayed"]
    stayed_v = [o for o in objs if o.kind == "vessel" and status[id(o)] == "stayed"]
    equip = [o for o in objs if o.kind == "equipment" and status[id(o)] in CHANGED]
    return (
        changed_v
        + (stayed_v if len(stayed_v) <= MAX_STAYED_VESSEL_LABELS else [])
        + (equip if len(equip) <= MAX_EQUIPMENT_LABELS else [])
    )


def _label_text(obj: AnyObject) -> str:
    """The id, and for a vessel that departed or arrived its length, so the picture alone tells which ship."""
    if obj.kind == "vessel" and getattr(obj, "status", "stayed") in CHANGED:
        return f"{obj.id} {obj.length_m:.0f} m"
    return obj.id


def _nice_length(target_m: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) not longer than ``target_m``."""
    if target_m <= 0:
        return 1.0
    exp = math.floor(math.log10(target_m))
    for m in (5, 2, 1):
        if m * 10**exp <= target_m:
            return float(m * 10**exp)
    return float(10**exp)


def _north_vector(scene: Scene) -> tuple[float, float]:
    """Unit vector (dx, dy) in axes coordinates (y up) pointing to true north at the scene centre."""
    cx, cy = scene.transform @ (scene.width / 2.0, scene.height / 2.0)
    c_ll = to_lonlat(Point(cx, cy), scene.crs)
    dlat = 0.001 if c_ll.y < 89.0 else -0.001
    n = from_lonlat(Point(c_ll.x, c_ll.y + dlat), scene.crs)
    inv = ~scene.transform
    c0, r0 = inv @ (cx, cy)
    c1, r1 = inv @ (n.x, n.y)
    dx, dy = (c1 - c0), -(r1 - r0)  # rows grow downwards
    if dlat < 0:
        dx, dy = -dx, -dy
    norm = math.hypot(dx, dy) or 1.0
    return dx / norm, dy / norm


@lru_cache(maxsize=32)
def _m_per_px_cached(crs_wkt: str, transform: tuple[float, ...], width: int, height: int) -> float:
    from affine import Affine
    from pyproj import Geod

    t = Affine(*transform[:6])
    row = height / 2.0
    c0, c1 = width / 2.0 - min(width, 100) / 2.0, width / 2.0 + min(width, 100) / 2.0
    line = to_lonlat(LineString([t @ (c0, row), t @ (c1, row)]), crs_wkt)
    metres = Geod(ellps="WGS84").line_length(*line.xy)
    return float(metres / (c1 - c0)) if math.isfinite(metres) and metres > 0 else abs(t.a)


def _m_per_px(scene: Scene) -> float:
    """Ground metres per pixel along a row at the scene centre (the scale bar is horizontal); cached."""
    return _m_per_px_cached(scene.crs.to_wkt(), tuple(scene.transform), scene.width, scene.height)


def _fmt_len(m: float) -> str:
    return f"{m / 1000:g} km" if m >= 1000 else f"{m:g} m"


# ------------------------------------------------------------------------------------------------ drawing
def _draw_panel(
    ax: Axes,
    scene: Scene,
    objects: Sequence[AnyObject],
    which: Which,
    *,
    max_side: int,
    rgb: np.ndarray | None = None,
) -> None:
    """Image, outlines, ids, scale bar and north arrow on one axes."""
    full = display_rgb(scene) if rgb is None else rgb
    img = _decimate(full, max_side)
    rows, cols = scene.shape
    ax.imshow(img, extent=(0, cols, rows, 0), interpolation="antialiased")
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_axis_off()

    # outlines: one collection per (colour, present, kind) so styles stay few and drawing fast
    groups: dict[tuple[str, bool, str], list[BaseGeometry]] = {}
    for obj in objects:
        geom, present = _footprint(obj, which)
        groups.setdefault((_object_colour(obj, which), present, obj.kind), []).append(geom)
    order = sorted(groups, key=lambda k: (k[2] == "vessel", k[1]))  # vessels and present outlines on top
    for colour, present, kind in order:
        rings = _exteriors_px(groups[(colour, present, kind)], scene)
        if not rings:
            continue
        lw = 1.6 if kind == "vessel" else 0.9
        coll = PolyCollection(
            rings,
            closed=True,
            facecolors="none",
            edgecolors=colour,
            linewidths=lw,
            linestyles="solid" if present else ((0, (3, 2)) if kind == "vessel" else (0, (1.5, 1))),
            zorder=3 if kind == "vessel" else 2,
        )
        coll.set_path_effects([Stroke(linewidth=lw + 1.6, foreground="black", alpha=0.75), Normal()])
        ax.add_collection(coll)

    # scale bar: a round length near a sixth of the width; sizes in output pixels via the axes' pixel scale
    per_px = cols / max(float(ax.get_window_extent().width), 1.0)  # scene pixels per output pixel
    m_per_px = _m_per_px(scene)
    length_m = _nice_length(min(0.17 * cols, 400.0 * per_px) * m_per_px)
    bar = AnchoredSizeBar(
        ax.transData,
        length_m / m_per_px,
        _fmt_len(length_m),
        "lower right",
        pad=0.6,
        borderpad=0.8,
        sep=4,
        color="white",
        frameon=True,
        size_vertical=4.0 * per_px,
        fontproperties=FontProperties(size=8, weight="bold"),
    )
    bar.patch.set_facecolor("black")
    bar.patch.set_alpha(0.55)
    bar.patch.set_edgecolor("none")
    ax.add_artist(bar)

    # north arrow (true north; grid north differs by the meridian convergence), 34 points long
    dx, dy = _north_vector(scene)
    tip = (0.975, 0.955)
    ax.annotate(
        "",
        xy=tip,
        xycoords="axes fraction",
        xytext=(-34.0 * dx, -34.0 * dy),
        textcoords="offset points",
        arrowprops={"arrowstyle": "-|>,head_width=0.35,head_length=0.7", "color": "white", "lw": 2.0},
        path_effects=[withStroke(linewidth=4, foreground="black")],
        zorder=6,
    )
    ax.annotate(
        "N",
        xy=tip,
        xycoords="axes fraction",
        xytext=(-34.0 * dx, -34.0 * dy - 3.0),
        textcoords="offset points",
        ha="center",
        va="top",
        fontsize=10,
        fontweight="bold",
        color="white",
        path_effects=[withStroke(linewidth=2.5, foreground="black")],
        zorder=6,
    )


def _label_candidates(gp: BaseGeometry, pad: float) -> list[tuple[float, float, str, str]]:
    """Anchor points (x, y, ha, va) around a pixel-space footprint, best first."""
    minx, miny, maxx, maxy = gp.bounds
    xy = np.asarray(gp.exterior.coords) if isinstance(gp, Polygon) else np.asarray(gp.envelope.exterior.coords)
    urx, ury = xy[int(np.argmax(xy[:, 0] - xy[:, 1]))]  # upper-right-most vertex: beside a diagonal hull
    cx, cy = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    return [
        (urx + pad, ury, "left", "top"),
        (maxx + pad, cy, "left", "center"),
        (minx - pad, miny, "right", "top"),
        (minx - pad, cy, "right", "center"),
        (cx, miny - pad, "center", "bottom"),
        (cx, maxy + pad, "center", "top"),
        (maxx + pad, maxy, "left", "bottom"),
        (minx - pad, maxy, "right", "bottom"),
    ]


def _place_labels(ax: Axes, scene: Scene, objects: Sequence[AnyObject], which: Which) -> None:
    """Ids beside objects, moved around each object to avoid labels already placed (greedy, vessels first).

    A vessel id is always printed (overlapping if it has to); an equipment id that finds no free place is left out.
    """
    rows, cols = scene.shape
    ext = ax.get_window_extent()
    per_px = cols / max(float(ext.width), 1.0)  # scene pixels per output pixel
    dpi = DPI
    placed: list[tuple[float, float, float, float]] = []
    # legend, scale bar, north arrow and panel titles are obstacles too
    canvas = ax.figure.canvas if ax.figure is not None else None
    renderer = canvas.get_renderer() if isinstance(canvas, FigureCanvasAgg) else None
    if renderer is not None:
        inv = ax.transData.inverted()
        legend = ax.get_legend()
        for artist in [*ax.artists, *ax.texts, *([legend] if legend is not None else [])]:
            bb = artist.get_window_extent(renderer)
            (x0, y0), (x1, y1) = inv.transform([[bb.x0, bb.y0], [bb.x1, bb.y1]])
            placed.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    # every drawn outline is an obstacle too: a label must not sit on another object
    outlines = [crs_to_pixel(_footprint(o, which)[0], scene.transform) for o in objects]
    tree = STRtree(outlines)
    index = {id(o): i for i, o in enumerate(objects)}
    for obj in _labelled(objects, which):
        own = index[id(obj)]
        gp = outlines[own]
        if gp.is_empty:
            continue
        big = obj.kind == "vessel"
        text = _label_text(obj)
        fs = 8.5 if big else 5.5
        font = FontProperties(size=fs, weight="bold" if big else "normal")
        if renderer is not None:  # the text's true extent in output pixels (+ the stroke around it)
            tw, th, _ = renderer.get_text_width_height_descent(text, font, ismath=False)
            w, h = (tw + 4.0) * per_px, (th + 4.0) * per_px
        else:
            w = (len(text) * 0.7 + 0.4) * fs * dpi / 72.0 * per_px
            h = fs * 1.2 * dpi / 72.0 * per_px
        best: tuple[float, tuple[float, float, str, str, tuple[float, float, float, float]]] | None = None
        rings = [_label_candidates(gp, 3.0 * per_px + k * 1.5 * h) for k in range(5)]
        for x, y, ha, va in [c for ring in rings for c in ring]:
            x0 = {"left": x, "right": x - w, "center": x - w / 2}[ha]
            y0 = {"top": y, "bottom": y - h, "center": y - h / 2}[va]
            m = 4.0 * per_px  # keep labels apart by a few output pixels, not just non-overlapping
            box_ = (x0 - m, y0 - m, x0 + w + m, y0 + h + m)
            if box_[0] < 0 or box_[1] < 0 or box_[2] > cols or box_[3] > rows:
                continue
            hits = sum(
                1 for p in placed if not (box_[2] <= p[0] or box_[0] >= p[2] or box_[3] <= p[1] or box_[1] >= p[3])
            )
            covered = [i for i in tree.query(shapely.box(*box_), predicate="intersects") if i != own]
            score = 100.0 * hits + len(covered)
            if best is None or score < best[0]:
                best = (score, (x, y, ha, va, box_))
            if score == 0:
                break
        if best is None or (best[0] > 0 and not big):
            continue  # an equipment id without a free place is left out; a vessel id takes the least bad one
        x, y, ha, va, box_ = best[1]
        placed.append(box_)
        bx = min(max(x, gp.bounds[0]), gp.bounds[2])
        by = min(max(y, gp.bounds[1]), gp.bounds[3])
        if math.hypot(x - bx, y - by) > 6.0 * per_px + 0.6 * h:  # moved away: a leader line shows whose id it is
            ax.plot([bx, x], [by, y], color="white", lw=0.6, alpha=0.85, zorder=4, solid_capstyle="round")
        ax.text(
            x,
            y,
            text,
            fontproperties=font,
            color="white",
            va=va,
            ha=ha,
            clip_on=True,
            zorder=5,
            path_effects=[withStroke(linewidth=2.2 if big else 1.6, foreground="black")],
        )


def _legend_handles(objects: Sequence[AnyObject], which: Which) -> list[Line2D]:
    handles: list[Line2D] = []
    if which == "detect":
        for kind, colour in KIND_COLOURS.items():
            n = sum(1 for o in objects if o.kind == kind)
            if n:
                handles.append(Line2D([], [], color=colour, lw=2, label=f"{kind} ({n})"))
        return handles
    for status, colour in STATUS_COLOURS.items():
        objs = [o for o in objects if getattr(o, "status", None) == status]
        if objs:
            handles.append(Line2D([], [], color=colour, lw=2, label=f"{status}: {_kinds_phrase(objs)}"))
    if handles and which in ("before", "after"):
        handles.append(Line2D([], [], color="white", lw=1.5, ls=(0, (3, 2)), label="dashed: not there on this date"))
    return handles


LEGEND_ENTRY_PX = 250  # width of one legend entry in the footer
LEGEND_ROW_PX = 26


def _footer_px(handles: Sequence[Line2D], fig_w: float) -> float:
    if not handles:
        return 0.0
    ncol = max(1, min(len(handles), int(fig_w // LEGEND_ENTRY_PX)))
    nrows = math.ceil(len(handles) / ncol)
    return 14.0 + nrows * LEGEND_ROW_PX


def _add_legend(fig: Figure, handles: list[Line2D], fig_w: float, footer_px: float) -> None:
    """Legend in the footer band under the picture(s), so it never hides any of the image."""
    if not handles:
        return
    ncol = max(1, min(len(handles), int(fig_w // LEGEND_ENTRY_PX)))
    fig.legend(
        handles=handles,
        loc="center",
        bbox_to_anchor=(0.5, footer_px / 2.0 / fig.bbox.height),
        ncol=ncol,
        fontsize=8,
        frameon=False,
        labelcolor="#e6e9ed",
        handlelength=2.4,
        columnspacing=2.0,
    )


def _figure(width_px: float, height_px: float) -> Figure:
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="#111418")
    FigureCanvasAgg(fig)
    return fig


def _display_size(rows: int, cols: int, *, max_side: int, min_side: int) -> tuple[float, float]:
    long_side = max(rows, cols)
    scale = min(max_side, max(min_side, long_side)) / long_side
    return cols * scale, rows * scale


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    try:
        # zlib level 1: photographs barely compress further, and level 6 takes four times as long
        fig.savefig(path, dpi=DPI, facecolor=fig.get_facecolor(), pil_kwargs={"compress_level": 1})
    except OSError as exc:
        raise OutputError(f"cannot write picture ({exc.strerror or exc})", path=path) from exc
    logger.debug("wrote %s", path)
    return path


HEADER_PX = 80


def _header(fig: Figure, title: str, subtitle: str, height_px: float) -> None:
    top = 1.0 - 14 / height_px
    fig.text(0.012, top, title, ha="left", va="top", fontsize=12, fontweight="bold", color="white")
    fig.text(0.012, top - 34 / height_px, subtitle, ha="left", va="top", fontsize=8.5, color="#c8ccd2")


def _kinds_phrase(objs: Sequence[AnyObject]) -> str:
    nv = sum(1 for o in objs if o.kind == "vessel")
    ne = len(objs) - nv
    parts = [f"{nv} vessel{'s' if nv != 1 else ''}"] if nv else []
    parts += [f"{ne} equipment"] if ne else []
    return " + ".join(parts)


def _count_line(objects: Sequence[AnyObject], which: Which) -> str:
    if which == "detect":
        return f"{_kinds_phrase(objects) or 'nothing'} detected"
    parts = []
    for status in ("departed", "arrived", "stayed", "unknown"):
        objs = [o for o in objects if getattr(o, "status", None) == status]
        if objs:
            parts.append(f"{status} {_kinds_phrase(objs)}")
    return " · ".join(parts) if parts else "no objects"


def render_annotated(
    scene: Scene,
    objects: Sequence[AnyObject],
    path: Path,
    *,
    title: str,
    date_label: str,
    which: Which = "before",
    rgb: np.ndarray | None = None,
) -> Path:
    """Write an annotated PNG of one scene: outlines, ids, legend, scale bar, north arrow, date.

    Parameters
    ----------
    scene
        The scene to draw (for a comparison, the BEFORE or AFTER scene on the common grid).
    objects
        :class:`ChangedObject` s (coloured by status; for ``which="before"`` the BEFORE footprint is drawn,
        dashed when the object is absent at that date) or :class:`Detection` s (``which="detect"``, coloured by
        kind). Geometries are in the scene CRS.
    path
        Output PNG file.
    title, date_label
        Header lines (the date label is followed by a count summary).
    which
        ``"before"``, ``"after"`` or ``"detect"``.
    rgb
        Precomputed :func:`display_rgb` of ``scene`` (saves recomputing it for several pictures).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    rows, cols = scene.shape
    w, h = _display_size(rows, cols, max_side=MAX_SIDE_PX, min_side=MIN_SIDE_PX)
    fig_w = max(w, 900.0)
    handles = _legend_handles(objects, which)
    foot = _footer_px(handles, fig_w)
    fig_h = h + HEADER_PX + foot
    fig = _figure(fig_w, fig_h)
    ax = fig.add_axes((((fig_w - w) / 2) / fig_w, foot / fig_h, w / fig_w, h / fig_h))
    _draw_panel(ax, scene, objects, which, max_side=MAX_SIDE_PX, rgb=rgb)
    _add_legend(fig, handles, fig_w, foot)
    _place_labels(ax, scene, objects, which)
    _header(fig, title, f"{date_label}  —  {_count_line(objects, which)}", fig_h)
    return _save(fig, path)


def render_overview(
    pair: AlignedPair,
    objects: Sequence[ChangedObject],
    path: Path,
    *,
    rgbs: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write BEFORE and AFTER side by side with the same annotations as :func:`render_annotated`.

    Parameters
    ----------
    pair
        The aligned pair (both scenes on one grid).
    objects
        Changed objects in the grid CRS.
    path
        Output PNG file.
    rgbs
        Precomputed :func:`display_rgb` of BEFORE and AFTER.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    rows, cols = pair.before.shape
    w, h = _display_size(rows, cols, max_side=OVERVIEW_PANEL_PX, min_side=800)
    gap = 12.0
    fig_w = 2 * w + 3 * gap
    handles = _legend_handles(objects, "before")
    foot = max(_footer_px(handles, fig_w), gap)
    fig_h = h + HEADER_PX + foot
    fig = _figure(fig_w, fig_h)
    _add_legend(fig, handles, fig_w, foot)
    dates = []
    for i, (scene, which) in enumerate(((pair.before, "before"), (pair.after, "after"))):
        left = (gap + i * (w + gap)) / fig_w
        ax = fig.add_axes((left, foot / fig_h, w / fig_w, h / fig_h))
        rgb = rgbs[i] if rgbs is not None else None
        _draw_panel(ax, scene, objects, which, max_side=OVERVIEW_PANEL_PX, rgb=rgb)  # type: ignore[arg-type]
        ax.text(
            0.015,
            0.985,
            f"{which.upper()}  {scene.date.isoformat()}",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=11,
            fontweight="bold",
            color="white",
            path_effects=[withStroke(linewidth=3, foreground="black")],
            zorder=8,
        )
        _place_labels(ax, scene, objects, which)  # type: ignore[arg-type]
        dates.append(scene.date.isoformat())
    _header(fig, f"Changes {dates[0]} → {dates[1]}", _count_line(objects, "before"), fig_h)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ chips
def render_chip(
    scene: Scene,
    geometry: BaseGeometry,
    *,
    size_px: int = 160,
    rgb: np.ndarray | None = None,
    outline: str | None = None,
    context: float = 0.4,
    min_side_m: float = 40.0,
    dashed: bool = False,
) -> np.ndarray:
    """RGB uint8 picture ``(size_px, size_px, 3)`` of the neighbourhood of one object.

    Parameters
    ----------
    scene
        Scene to cut from.
    geometry
        Object footprint in the scene CRS.
    size_px
        Side of the returned chip.
    rgb
        Precomputed :func:`display_rgb` of ``scene`` (pass it when cutting many chips, so every chip shares the
        scene-wide stretch and it is computed once).
    outline
        Colour (matplotlib colour string) of an outline drawn just outside the footprint, or None.
    context
        Margin around the object, as a multiple of its size on each side.
    min_side_m
        Smallest ground side of the chip, so small equipment is shown with its surroundings.
    dashed
        Draw the outline dashed (object absent on this date).

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(size_px, size_px, 3)``; areas outside the scene are black.
    """
    from matplotlib.colors import to_rgb

    full = display_rgb(scene) if rgb is None else rgb
    gp = crs_to_pixel(geometry, scene.transform)
    minx, miny, maxx, maxy = gp.bounds
    m_per_px = _m_per_px(scene)
    side = max(max(maxx - minx, maxy - miny) * (1.0 + 2.0 * context), min_side_m / m_per_px, 8.0)
    cx, cy = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    r0, c0 = math.floor(cy - side / 2), math.floor(cx - side / 2)
    n = math.ceil(side)
    canvas = np.zeros((n, n, 3), dtype=np.uint8)
    rows, cols = scene.shape
    rr0, rr1 = max(r0, 0), min(r0 + n, rows)
    cc0, cc1 = max(c0, 0), min(c0 + n, cols)
    if rr1 > rr0 and cc1 > cc0:
        canvas[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = full[rr0:rr1, cc0:cc1]
    scale = size_px / n
    chip = transform.resize(
        canvas,
        (size_px, size_px),
        order=0 if scale >= 1 else 1,
        anti_aliasing=scale < 1,
        preserve_range=True,
    )
    chip = np.clip(np.rint(chip), 0, 255).astype(np.uint8)
    if outline is not None and not gp.is_empty:
        col = (np.array(to_rgb(outline)) * 255).astype(np.uint8)
        local = shapely.affinity.affine_transform(gp, [scale, 0, 0, scale, -c0 * scale, -r0 * scale])
        ring = shapely.buffer(local, 2.0, join_style="mitre")
        for part in getattr(ring, "geoms", [ring]):
            if not isinstance(part, Polygon):
                continue
            xy = np.asarray(part.exterior.coords)
            rr, cc = draw.polygon_perimeter(xy[:, 1], xy[:, 0], shape=chip.shape[:2], clip=False)
            keep = (rr >= 0) & (rr < size_px) & (cc >= 0) & (cc < size_px)
            rr, cc = rr[keep], cc[keep]
            if dashed:
                # dash along the perimeter order: 4 on, 3 off
                on = (np.arange(rr.size) % 7) < 4
                rr, cc = rr[on], cc[on]
            chip[rr, cc] = col
    return chip


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 array (for inline images)."""
    import io

    from matplotlib import image as mimage

    buf = io.BytesIO()
    mimage.imsave(buf, rgb, format="png", pil_kwargs={"compress_level": 1})
    return buf.getvalue()
