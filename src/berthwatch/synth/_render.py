"""Rendering: world radiometry on a fine grid in the port's UTM CRS, then per date a warp onto that date's own
grid (CRS, pixel size, misregistration), optical blur, atmosphere, sensor noise and quantisation."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.features import rasterize
from rasterio.warp import reproject
from scipy import ndimage as ndi
from shapely import affinity
from shapely.geometry import LineString, Polygon, box
from shapely.geometry.base import BaseGeometry

from berthwatch.geo import oriented_measures, reproject_geometry
from berthwatch.models import Scene, _ground_scale
from berthwatch.synth._specs import BAND_LAYOUTS, DateSpec, EquipmentSpec, PortSpec, TruthObject, VesselSpec
from berthwatch.synth._world import (
    SMALL_BOAT_MAX_M,
    Port,
    _place,
    equipment_footprint,
    equipment_height,
    equipment_model,
    make_port,
    vessel_footprint,
    vessel_parts,
)

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None] | None

# Surface reflectances (blue, green, red, nir), 0-1. Water is dark in the NIR, vegetation bright; foam is
# bright in the visible but lower in the NIR.
PAL: dict[str, tuple[float, float, float, float]] = {
    "water_deep": (0.056, 0.044, 0.021, 0.006),
    "water_turbid": (0.058, 0.060, 0.038, 0.011),
    "foam": (0.52, 0.52, 0.50, 0.30),
    "soil": (0.11, 0.14, 0.18, 0.25),
    "urban": (0.16, 0.168, 0.175, 0.2),
    "sand": (0.21, 0.24, 0.28, 0.33),
    "concrete": (0.21, 0.225, 0.24, 0.27),
    "asphalt": (0.075, 0.082, 0.09, 0.11),
    "rock": (0.17, 0.18, 0.19, 0.22),
    "grass": (0.035, 0.075, 0.055, 0.32),
    "tree": (0.025, 0.05, 0.035, 0.28),
    "roof_concrete": (0.25, 0.26, 0.27, 0.30),
    "roof_light": (0.34, 0.35, 0.36, 0.39),
    "roof_red": (0.07, 0.09, 0.20, 0.30),
    "roof_dark": (0.075, 0.08, 0.085, 0.10),
    "roof_metal": (0.28, 0.30, 0.31, 0.33),
    "roof_blue": (0.21, 0.15, 0.10, 0.13),
    "hull_bright": (0.40, 0.41, 0.42, 0.44),
    "deck_bright": (0.27, 0.28, 0.29, 0.31),
    "hull_dark": (0.018, 0.018, 0.02, 0.025),
    "deck_dark": (0.026, 0.027, 0.034, 0.04),
    "deck_darkred": (0.02, 0.021, 0.045, 0.07),
    "deck_darkgreen": (0.022, 0.034, 0.024, 0.05),
    "hull_grey": (0.12, 0.125, 0.13, 0.15),
    "deck_grey": (0.095, 0.10, 0.105, 0.12),
    "super": (0.50, 0.51, 0.52, 0.53),
    "super_grey": (0.17, 0.175, 0.18, 0.20),
    "funnel": (0.06, 0.06, 0.14, 0.18),
    "pipe": (0.30, 0.31, 0.30, 0.33),
    "net": (0.10, 0.12, 0.08, 0.12),
    "window": (0.03, 0.035, 0.04, 0.04),
    "gun": (0.10, 0.105, 0.11, 0.12),
    "cargo_pile": (0.09, 0.11, 0.13, 0.18),
    "olive": (0.05, 0.075, 0.068, 0.17),
    "sand_paint": (0.15, 0.19, 0.24, 0.30),
    "grey": (0.17, 0.18, 0.19, 0.22),
    "brown": (0.06, 0.08, 0.11, 0.17),
    "white": (0.42, 0.43, 0.44, 0.46),
    "black": (0.03, 0.03, 0.032, 0.04),
    "silver": (0.28, 0.29, 0.30, 0.32),
    "red": (0.05, 0.05, 0.20, 0.30),
    "blue": (0.16, 0.09, 0.045, 0.10),
    "green": (0.05, 0.10, 0.06, 0.13),
    "orange": (0.05, 0.13, 0.30, 0.35),
    "yellow": (0.08, 0.30, 0.38, 0.42),
    "glass": (0.035, 0.04, 0.045, 0.05),
}
HATCH = ["red", "green", "grey", "blue", "brown", "deck_grey"]
AMBIENT = np.array([0.42, 0.36, 0.30, 0.24], dtype=np.float32)  # fraction of light left in shadow (sky light)
BAND_NAMES = {"analytic": ("blue", "green", "red", "nir"), "visual": ("red", "green", "blue")}


def _col(name: str) -> np.ndarray:
    if name == "sand":
        name = "sand_paint"
    return np.array(PAL.get(name, PAL["grey"]), dtype=np.float32)


# ------------------------------------------------------------------------------------------------ canvas --
class _Canvas:
    """The fine world grid in the port's UTM CRS and painter's-algorithm layers on it (in row strips)."""

    STRIP = 512

    def __init__(self, port: Port, oversample: int) -> None:
        spec = port.spec
        self.port = port
        self.os = oversample
        self.res_m = spec.pixel_size_m / oversample
        self.x0 = -spec.width_m / 2 - port.margin_m
        self.y0 = spec.height_m / 2 + port.margin_m
        self.W = math.ceil((spec.width_m + 2 * port.margin_m) / self.res_m)
        self.H = math.ceil((spec.height_m + 2 * port.margin_m) / self.res_m)
        k = port.ground_scale
        cx, cy = port.centre_xy
        self.transform = Affine(self.res_m / k, 0, cx + self.x0 / k, 0, -self.res_m / k, cy + self.y0 / k)
        self.aa = 2 if oversample == 1 else 1

    def px(self, geom: BaseGeometry) -> BaseGeometry:
        r = self.res_m
        return affinity.affine_transform(geom, [1 / r, 0, 0, -1 / r, -self.x0 / r, self.y0 / r])

    def m(self, metres: float) -> float:
        """Metres -> world pixels."""
        return metres / self.res_m

    def strips(self, geoms: Sequence[BaseGeometry]) -> Iterable[tuple[int, int, int, np.ndarray, np.ndarray]]:
        """Yield (r0, r1, c0, coverage, label) per strip window that any geometry touches; the window spans
        rows r0:r1 and columns c0:c0 + coverage.shape[1]. Labels are 1-based indices into ``geoms``."""
        if not geoms:
            return
        arr = np.array([self.px(g) for g in geoms], dtype=object)
        bounds = shapely.bounds(arr)
        ok = ~np.isnan(bounds[:, 0]) & (bounds[:, 2] > 0) & (bounds[:, 0] < self.W)
        aa = self.aa
        for r0 in range(0, self.H, self.STRIP):
            r1 = min(self.H, r0 + self.STRIP)
            sel = np.nonzero(ok & (bounds[:, 1] < r1) & (bounds[:, 3] > r0))[0]
            if sel.size == 0:
                continue
            c0 = max(0, int(np.floor(bounds[sel, 0].min())) - 1)
            c1 = min(self.W, int(np.ceil(bounds[sel, 2].max())) + 1)
            shapes = ((arr[i], int(i) + 1) for i in sel)
            lab = rasterize(
                shapes, out_shape=((r1 - r0) * aa, (c1 - c0) * aa),
                transform=Affine(1 / aa, 0, c0, 0, 1 / aa, r0), fill=0, dtype="int32", all_touched=False,
            )  # fmt: skip
            if aa == 2:
                m = (lab > 0).view(np.uint8)
                cov = (m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2]).astype(np.float32) * 0.25
                idx = np.maximum(
                    np.maximum(lab[0::2, 0::2], lab[1::2, 0::2]), np.maximum(lab[0::2, 1::2], lab[1::2, 1::2])
                )
            else:
                cov = (lab > 0).astype(np.float32)
                idx = lab
            yield r0, r1, c0, cov, idx

    def coverage(self, geoms: Sequence[BaseGeometry]) -> np.ndarray:
        out = np.zeros((self.H, self.W), dtype=np.float32)
        for r0, r1, c0, cov, _ in self.strips([g for g in geoms if not g.is_empty]):
            out[r0:r1, c0 : c0 + cov.shape[1]] = cov
        return out

    def paint(
        self,
        img: np.ndarray,
        geoms: Sequence[BaseGeometry],
        colours: np.ndarray | Sequence[np.ndarray],
        *,
        alpha: np.ndarray | Sequence[float] | None = None,
        tex: np.ndarray | None = None,
        tex_amp: float = 0.0,
        alpha_tex: np.ndarray | None = None,
    ) -> None:
        """Paint opaque (or ``alpha``-weighted) geometries with per-geometry colours (n, 4), optionally textured."""
        keep = [i for i, g in enumerate(geoms) if g is not None and not g.is_empty]
        if not keep:
            return
        geoms = [geoms[i] for i in keep]
        table = np.zeros((len(geoms) + 1, 4), dtype=np.float32)
        table[1:] = np.asarray(colours, dtype=np.float32).reshape(-1, 4)[keep]
        atab = np.ones(len(geoms) + 1, dtype=np.float32)
        if alpha is not None:
            atab[1:] = np.asarray(alpha, dtype=np.float32)[keep]
        for r0, _, c0, cov, idx in self.strips(geoms):
            rr, cc = np.nonzero(cov)
            if rr.size == 0:
                continue
            i = idx[rr, cc]
            c = cov[rr, cc] * atab[i]
            cc = cc + c0
            if alpha_tex is not None:
                c = c * alpha_tex[rr + r0, cc]
            col = table[i]  # (n, 4)
            if tex is not None and tex_amp:
                col = col * (1.0 + tex_amp * tex[rr + r0, cc])[:, None]
            sub = img[:, rr + r0, cc]
            img[:, rr + r0, cc] = sub * (1.0 - c) + col.T * c

    def darken(self, img: np.ndarray, geoms: Sequence[BaseGeometry], strength: float = 1.0) -> None:
        """Shadow: keep only the ambient (sky) light where the geometries (their union) cover."""
        geoms = [g for g in geoms if g is not None and not g.is_empty]
        amb = 1.0 - strength * (1.0 - AMBIENT)
        for r0, _, c0, cov, _ in self.strips(geoms):
            rr, cc = np.nonzero(cov)
            if rr.size == 0:
                continue
            c = cov[rr, cc]
            cc = cc + c0
            f = 1.0 - c[None, :] * (1.0 - amb[:, None])
            img[:, rr + r0, cc] *= f


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Smooth random field (zero mean, unit std) with correlation length ``sigma_px`` pixels; coarse fields are
    drawn on a reduced grid and interpolated, so the cost stays proportional to the output size."""
    h, w = shape
    step = max(1, int(sigma_px / 3))
    ch, cw = h // step + 3, w // step + 3
    n = rng.standard_normal((ch, cw)).astype(np.float32)
    n = ndi.gaussian_filter(n, sigma_px / step, mode="wrap")
    n = ndi.zoom(n, step, order=1, prefilter=False)[:h, :w] if step > 1 else n[:h, :w]
    n -= n.mean()
    s = float(n.std())
    return np.ascontiguousarray(n / (s if s > 0 else 1.0), dtype=np.float32)


def _smooth(a: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with a large sigma, done on a block-averaged grid and interpolated back (cheap)."""
    step = max(1, int(sigma_px / 4))
    if step == 1:
        return np.asarray(ndi.gaussian_filter(a, sigma_px, mode="nearest"), dtype=np.float32)
    h, w = a.shape
    ph, pw = -h % step, -w % step
    p = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    small = p.reshape(p.shape[0] // step, step, p.shape[1] // step, step).mean(axis=(1, 3))
    small = ndi.gaussian_filter(small, sigma_px / step, mode="nearest")
    # sample the coarse grid at the fine pixel centres
    rows = (np.arange(h, dtype=np.float32) + 0.5) / step - 0.5
    cols = (np.arange(w, dtype=np.float32) + 0.5) / step - 0.5
    r0 = np.clip(np.floor(rows).astype(int), 0, small.shape[0] - 1)
    c0 = np.clip(np.floor(cols).astype(int), 0, small.shape[1] - 1)
    r1 = np.minimum(r0 + 1, small.shape[0] - 1)
    c1 = np.minimum(c0 + 1, small.shape[1] - 1)
    fr = np.clip(rows - r0, 0, 1)[:, None]
    fc = np.clip(cols - c0, 0, 1)[None, :]
    top = small[r0][:, c0] * (1 - fc) + small[r0][:, c1] * fc
    bot = small[r1][:, c0] * (1 - fc) + small[r1][:, c1] * fc
    return np.asarray(top * (1 - fr) + bot * fr, dtype=np.float32)


@dataclass(eq=False)
class _Base:
    canvas: _Canvas
    img: np.ndarray
    land: np.ndarray  # land coverage 0-1
    exposure: np.ndarray  # 1 open sea .. 0 sheltered
    tex_hi: np.ndarray
    tex_mid: np.ndarray


def _oversample(port: Port) -> int:
    if port.spec.oversample is not None:
        return max(1, int(port.spec.oversample))
    return 2 if port.shape[0] * port.shape[1] <= 9_000_000 else 1


def _render_base(port: Port, progress: Progress = None) -> _Base:
    """Static ground: water body colour, land, beach, quays, breakwater armour, roads, vegetation."""
    cache = port.meta.get("_base")
    if isinstance(cache, _Base):
        return cache
    cv = _Canvas(port, _oversample(port))
    rng = np.random.default_rng([port.seed, 53])
    shape = (cv.H, cv.W)
    t_lo = _field(rng, shape, cv.m(120))
    t_mid = _field(rng, shape, cv.m(18))
    t_hi = _field(rng, shape, cv.m(2.5))
    t_px = _field(rng, shape, 0.6)
    if progress:
        progress("textures", 0.1)
    land = cv.coverage([port.land])
    sheltered = cv.coverage([port.harbour])
    s = max(1.0, cv.m(40))
    exposure = 1.0 - np.clip(_smooth(sheltered, s) * 1.3, 0, 1)
    near = _smooth(land, max(1.0, cv.m(25)))
    mix = np.clip(0.3 + 0.22 * t_lo + 0.3 * (1 - exposure) + 0.4 * near, 0, 1)
    deep, turb = _col("water_deep"), _col("water_turbid")
    img = deep[:, None, None] * (1 - mix)[None] + turb[:, None, None] * mix[None]
    img *= (1.0 + 0.04 * t_mid)[None]
    img = img.astype(np.float32)
    # land surface
    urban = np.clip(0.5 + 0.35 * t_mid + 0.2 * t_lo, 0, 1)
    ground = _col("soil")[:, None, None] * (1 - urban)[None] + _col("urban")[:, None, None] * urban[None]
    ground *= (1.0 + 0.10 * t_hi + 0.05 * t_px)[None]
    img = img * (1 - land)[None] + ground * land[None]
    del ground, urban, mix, near
    tex = np.clip(t_hi * 0.6 + t_px * 0.4, -3, 3)
    cv.paint(img, [port.beach], [_col("sand")], tex=tex, tex_amp=0.06)
    cv.paint(img, [port.vegetation], [_col("grass")], tex=t_mid * 0.5 + t_hi * 0.5, tex_amp=0.25)
    cv.paint(img, [port.quay_area], [_col("concrete")], tex=t_mid * 0.6 + t_px * 0.4, tex_amp=0.07)
    # worn and resurfaced patches on the quays: darker, irregular
    qc = cv.coverage([port.quay_area])
    wear = np.clip((t_lo * 0.3 + t_mid * 0.7) - 0.4, 0, 1) * 0.2 * qc
    img *= (1.0 - wear)[None]
    del qc, wear
    # quay furniture along berths: painted safety line, bollards, fenders on the water side
    marks: list[BaseGeometry] = []
    mcol: list[np.ndarray] = []
    for b in port.berths:
        h = math.radians(b.heading_deg)
        ux, uy = math.sin(h), math.cos(h)
        nx, ny = math.sin(math.radians(b.normal_deg)), math.cos(math.radians(b.normal_deg))
        half = b.length_m / 2 - 3
        line = LineString([(b.x - half * ux - 2.2 * nx, b.y - half * uy - 2.2 * ny),
                           (b.x + half * ux - 2.2 * nx, b.y + half * uy - 2.2 * ny)])  # fmt: skip
        marks.append(line.buffer(0.2, cap_style="flat"))
        mcol.append(_col("yellow") * np.float32(0.9))
        for t in np.arange(-half, half, 18.0):
            cx, cy = b.x + t * ux, b.y + t * uy
            marks.append(box(-0.35, -0.35, 0.35, 0.35))
            marks[-1] = affinity.translate(marks[-1], cx - 0.9 * nx, cy - 0.9 * ny)
            mcol.append(_col("black"))
            fender = _place(box(-1.3, -0.1, 1.3, 0.9), cx + 9 * ux, cy + 9 * uy, b.normal_deg + 180.0)
            marks.append(fender)
            mcol.append(_col("black"))
    if marks:
        cv.paint(img, marks, np.array(mcol))
    rock = _field(rng, shape, cv.m(0.7))
    cv.paint(img, [port.breakwater], [_col("rock")], tex=np.clip(rock, -2.2, 2.2), tex_amp=0.38)
    del rock
    cv.paint(img, [port.breakwater_crown], [_col("concrete")], tex=t_px, tex_amp=0.05)
    cv.paint(img, [port.roads], [_col("asphalt")], tex=t_px * 0.5 + t_mid * 0.5, tex_amp=0.08)
    if progress:
        progress("ground", 0.3)
    base = _Base(cv, img, land, exposure.astype(np.float32), t_hi, t_mid)
    port.meta["_base"] = base
    return base


def _sun_offset(height_m: np.ndarray | float, az: float, el: float) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(height_m, dtype=float) / math.tan(math.radians(max(el, 3.0)))
    a = math.radians(az + 180.0)
    return d * math.sin(a), d * math.cos(a)


def _translate_each(geoms: Sequence[BaseGeometry], dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    arr = np.array(geoms, dtype=object)
    _, idx = shapely.get_coordinates(arr, return_index=True)
    off = np.column_stack([np.asarray(dx, float)[idx], np.asarray(dy, float)[idx]])
    return shapely.transform(arr, lambda c: c + off)


def _sweep(geoms: Sequence[BaseGeometry], heights: Sequence[float], az: float, el: float) -> list[BaseGeometry]:
    """Shadows cast on the ground by upright prisms (footprint, height): hull of footprint and its image."""
    if len(geoms) == 0:
        return []
    dx, dy = _sun_offset(np.asarray(heights, dtype=float), az, el)
    moved = _translate_each(geoms, dx, dy)
    return list(shapely.convex_hull(shapely.union(np.array(geoms, dtype=object), moved)))


def _jitter(rng: np.random.Generator, base: np.ndarray, amount: float = 0.08) -> np.ndarray:
    return (base * (1 + rng.uniform(-amount, amount)) * (1 + rng.uniform(-0.03, 0.03, 4))).astype(np.float32)


def _render_world(port: Port, base: _Base, date: DateSpec, which: int, rng: np.random.Generator) -> np.ndarray:
    """World reflectance at one date (objects present at ``which``), before the atmosphere and the sensor."""
    cv = base.canvas
    img = base.img.copy()
    az, el = date.sun_azimuth_deg, date.sun_elevation_deg
    spec = port.spec
    orng = np.random.default_rng([port.seed, 41])  # object colours: identical at both dates
    # --- water surface: wind waves, glint, whitecaps -------------------------------------------------
    sea = float(rng.uniform(0.25, 0.75)) if date.sea_state is None else float(date.sea_state)
    water = 1.0 - base.land
    xs = (np.arange(cv.W, dtype=np.float32) + 0.5) * cv.res_m
    ys = (np.arange(cv.H, dtype=np.float32) + 0.5) * cv.res_m
    waves = np.zeros((cv.H, cv.W), dtype=np.float32)
    wind = math.radians(port.wind_deg + rng.uniform(-10, 10))
    for _ in range(6):
        lam = rng.uniform(5.0, 16.0) * (0.6 + sea)
        th = wind + rng.normal(0, 0.35)
        kx, ky = 2 * math.pi / lam * math.sin(th), 2 * math.pi / lam * math.cos(th)
        ph = rng.uniform(0, 2 * math.pi)
        ax, ay = kx * xs + ph, -ky * ys
        waves += np.outer(np.cos(ay), np.sin(ax)) + np.outer(np.sin(ay), np.cos(ax))
    waves /= math.sqrt(6 / 2)
    env = np.clip(1.0 + 0.5 * _field(rng, (cv.H, cv.W), cv.m(60)), 0.2, 2.0)
    amp = (0.35 + 0.65 * base.exposure) * env
    ripple = waves * amp
    wave_mod = 1.0 + 0.06 * (0.5 + sea) * ripple
    glint = np.clip(ripple - 1.6, 0, None) ** 2 * (0.05 * spec.glint * (0.3 + sea))
    fine = _field(rng, (cv.H, cv.W), cv.m(0.8))
    caps = np.clip(fine * 0.8 + ripple * 0.6 - (3.1 - 0.9 * sea), 0, 1)
    caps *= base.exposure * spec.whitecaps * 1.5 * sea
    del waves, env
    foam = _col("foam")
    gl_col = np.array([0.9, 0.9, 0.88, 0.75], dtype=np.float32)
    wave_mod = 1.0 + water * (wave_mod - 1.0)
    glint *= water
    caps *= water
    for bi in range(4):  # in place, band by band: memory stays at one extra band
        band = img[bi]
        band *= wave_mod
        band += glint * gl_col[bi]
        band *= 1.0 - caps
        band += caps * foam[bi]
    del ripple, wave_mod, glint, caps
    turbulence = np.clip(0.55 + 0.45 * fine, 0.05, 1.0)
    del fine
    # --- objects present at this date --------------------------------------------------------------
    vessels = [v for v in port.vessels if v.present[which]]
    vindex = {id(v): i for i, v in enumerate(port.vessels)}
    eindex = {id(e): i for i, e in enumerate(port.equipment)}
    parts = [
        vessel_parts(v, *port.vessel_at(v, which), np.random.default_rng([port.seed, 43, vindex[id(v)]]))
        for v in vessels
    ]
    equip = [e for e in port.equipment if e.present[which]]
    distr = [d for d in port.distractors if d.present[which]]
    # wakes (foam on water, under everything)
    wk_g: list[BaseGeometry] = []
    wk_a: list[float] = []
    for p in parts:
        for g, s_ in p.wake:
            wk_g.append(g)
            wk_a.append(s_)
    for d in distr:
        if d.kind == "boat" and d.underway:
            L = d.length_m
            c = d.polygon.centroid
            for sgn in (-1, 1):
                arm = LineString([(sgn * 0.2 * L, -0.3 * L), (sgn * 2.2 * L, -8 * L)]).buffer(
                    0.35 * L, cap_style="flat"
                )
                wk_g.append(_place(arm, c.x, c.y, d.heading_deg))
                wk_a.append(0.35)
            trail = Polygon([(-0.25 * L, -0.45 * L), (0.25 * L, -0.45 * L), (0.6 * L, -6 * L), (-0.6 * L, -6 * L)])
            wk_g.append(_place(trail, c.x, c.y, d.heading_deg))
            wk_a.append(0.5)
    if wk_g:
        cv.paint(img, wk_g, np.tile(foam, (len(wk_g), 1)), alpha=np.array(wk_a), alpha_tex=turbulence)
    del turbulence
    # --- ground shadows ------------------------------------------------------------------------------
    sh: list[BaseGeometry] = []
    dx, dy = _sun_offset(2.2, az, el)
    land_sh = affinity.translate(port.land, float(dx), float(dy)).difference(port.land)
    sh.append(land_sh)
    dx, dy = _sun_offset(3.5, az, el)
    sh.append(affinity.translate(port.breakwater, float(dx), float(dy)).difference(port.land))
    sh += _sweep([b.polygon for b in port.buildings], [b.height_m for b in port.buildings], az, el)
    sh += _sweep([p.buffer(r, quad_segs=4) for p, r, _ in port.trees], [0.6 * h for _, _, h in port.trees], az, el)
    for crane in port.cranes:
        sh += _sweep(crane.legs, [crane.height_m * 0.8] * len(crane.legs), az, el)
        dx, dy = _sun_offset(crane.height_m, az, el)
        sh.append(affinity.translate(crane.boom, float(dx), float(dy)))
        dx, dy = _sun_offset(crane.height_m * 0.8, az, el)
        sh.append(affinity.translate(crane.frame, float(dx), float(dy)))
    sh += _sweep([p.hull for p in parts], [p.freeboard_m for p in parts], az, el)
    hs = [(g, p.freeboard_m + h) for p in parts for g, h, _ in p.houses]
    sh += _sweep([g for g, _ in hs], [h for _, h in hs], az, el)
    sh += _sweep([d.polygon for d in distr], [d.height_m for d in distr], az, el)
    eq_fp = [equipment_footprint(e) for e in equip]
    sh += _sweep(eq_fp, [equipment_height(e) for e in equip], az, el)
    cv.darken(img, sh)
    del sh
    # --- buildings and trees ---------------------------------------------------------------------------
    roofs: list[BaseGeometry] = []
    rcol: list[np.ndarray] = []
    brng = np.random.default_rng([port.seed, 47])
    sun = np.array([math.sin(math.radians(az)), math.cos(math.radians(az))])
    for b in port.buildings:
        c = _jitter(brng, _col("roof_" + b.roof), 0.1)
        if b.gable:
            rect = b.polygon.minimum_rotated_rectangle
            xy = np.asarray(rect.exterior.coords)[:4]
            e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
            if np.hypot(*e1) < np.hypot(*e2):
                xy = np.roll(xy, -1, axis=0)
                e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
            m0, m1 = xy[0] + e2 / 2, xy[1] + e2 / 2
            h1 = Polygon([xy[0], xy[1], m1, m0])
            h2 = Polygon([m0, m1, xy[2], xy[3]])
            nrm = -e2 / (np.hypot(*e2) + 1e-9)  # normal of the first half, pointing out
            lit = float(np.dot(nrm, sun))
            roofs += [h1, h2]
            rcol += [c * (1 + 0.12 * lit), c * (1 - 0.12 * lit)]
        else:
            roofs.append(b.polygon)
            rcol.append(c)
    # rooftop clutter (plant rooms, water tanks, AC units) with their own small shadows
    rt: list[BaseGeometry] = []
    rtc: list[np.ndarray] = []
    for b in port.buildings:
        if b.gable or brng.random() > 0.35:
            continue
        minx, miny, maxx, maxy = b.polygon.bounds
        for _ in range(int(brng.integers(1, 5))):
            sz = float(brng.uniform(1.0, 3.5))
            q = box(0, 0, sz, sz * brng.uniform(0.6, 1.6))
            q = affinity.translate(q, brng.uniform(minx, maxx), brng.uniform(miny, maxy))
            if b.polygon.buffer(-0.5).contains(q):
                rt.append(q)
                rtc.append(
                    _col("roof_light" if brng.random() < 0.6 else "roof_dark") * np.float32(brng.uniform(0.8, 1.2))
                )
    if roofs:
        cv.paint(img, roofs, np.array(rcol), tex=base.tex_hi, tex_amp=0.05)
    if rt:
        cv.darken(img, [g.difference(q) for g, q in zip(_sweep(rt, [1.5] * len(rt), az, el), rt, strict=True)])
        cv.paint(img, rt, np.array(rtc))
    if port.trees:
        tr = [p.buffer(r, quad_segs=4) for p, r, _ in port.trees]
        cv.paint(img, tr, np.array([_jitter(brng, _col("tree"), 0.2) for _ in tr]), tex=base.tex_hi, tex_amp=0.3)
    # --- vessels ---------------------------------------------------------------------------------------
    hulls, hcol, decks, dcol, det, detc, houses, housec, dsh = [], [], [], [], [], [], [], [], []
    for v, p in zip(vessels, parts, strict=True):
        r = np.random.default_rng([port.seed, 59, vindex[id(v)]])
        hulls.append(p.hull)
        hcol.append(_jitter(r, _col("hull_" + v.hull)))
        deck_c = _jitter(r, _col("deck_" + v.hull))
        if v.hull == "dark":  # black, dark red-brown or dark green decks: all darker than water
            deck_c = _jitter(r, _col(str(r.choice(["deck_dark", "deck_darkred", "deck_darkgreen"]))))
        elif v.subtype in ("cargo", "tanker", "barge") and v.hull == "bright" and r.random() < 0.5:
            deck_c = _jitter(r, _col(str(r.choice(["red", "green", "brown"]))))
        decks.append(p.deck)
        dcol.append(deck_c)
        hatch_c = _jitter(r, _col(HATCH[int(r.integers(0, len(HATCH)))]))
        if v.hull == "dark":
            hatch_c = deck_c * np.float32(r.uniform(0.75, 1.3))
        elif v.hull == "grey":
            hatch_c = _col("deck_grey") * 1.1
        for g, key in p.details:
            det.append(g)
            if key == "hatch":
                detc.append(hatch_c * r.uniform(0.93, 1.07))
            elif key.startswith("box"):
                detc.append(_jitter(r, _col(["red", "blue", "green", "white", "orange", "grey"][int(key[3:])])))
            else:
                detc.append(_jitter(r, _col(key)))
        super_key = "super_grey" if v.hull == "grey" else "super"
        for g, h, key in p.houses:
            houses.append(g)
            if key == "funnel":
                housec.append(_jitter(r, _col("funnel" if v.hull != "grey" else "super_grey")))
            elif key == "deckcrane":
                housec.append(_jitter(r, _col("yellow")))
            else:
                housec.append(_jitter(r, _col(super_key), 0.05) * (1.05 if key == "super2" else 1.0))
            dx, dy = _sun_offset(h, az, el)
            sweep = shapely.convex_hull(g.union(affinity.translate(g, float(dx), float(dy))))
            dsh.append(sweep.intersection(p.hull))
    cv.paint(img, hulls, np.array(hcol).reshape(-1, 4))
    cv.paint(img, decks, np.array(dcol).reshape(-1, 4), tex=base.tex_hi, tex_amp=0.04)
    cv.paint(img, det, np.array(detc).reshape(-1, 4))
    cv.darken(img, dsh)
    cv.paint(img, houses, np.array(housec).reshape(-1, 4))
    # --- distractors: small boats and buoys --------------------------------------------------------------
    if distr:
        cv.paint(img, [d.polygon for d in distr], np.array([_jitter(orng, _col(d.colour)) for d in distr]))
    # --- equipment -------------------------------------------------------------------------------------
    eg, ec = [], []
    for e, fp in zip(equip, eq_fp, strict=True):
        r = np.random.default_rng([port.seed, 61, eindex[id(e)]])
        c = _jitter(r, _col(e.colour), 0.06)
        eg.append(fp)
        ec.append(c)
        model = equipment_model(e)
        L, W = e.length_m, e.width_m

        def put(g: BaseGeometry, e: EquipmentSpec = e) -> BaseGeometry:
            return _place(g, e.x, e.y, e.heading_deg)

        if model == "truck":
            eg.append(put(box(-W * 0.45, L * 0.28, W * 0.45, L * 0.48)))
            ec.append(c * 0.7)
        elif model == "tank":
            eg.append(put(shapely.Point(0, L * 0.04).buffer(W * 0.34, quad_segs=6)))
            ec.append(c * 0.78)
            eg.append(put(box(-0.18, L * 0.2, 0.18, L * 0.5)))
            ec.append(c * 0.6)
        elif model == "apc":
            eg.append(put(box(-W * 0.3, -L * 0.3, W * 0.3, L * 0.1)))
            ec.append(c * 1.15)
        elif model == "car":
            eg.append(put(box(-W * 0.42, L * 0.1, W * 0.42, L * 0.28)))
            ec.append(_col("glass"))
            eg.append(put(box(-W * 0.42, -L * 0.32, W * 0.42, -L * 0.2)))
            ec.append(_col("glass"))
        else:  # container: door end and roof panel seams
            eg.append(put(box(-W / 2, -L / 2, W / 2, -L / 2 + 0.35)))
            ec.append(c * 0.7)
    if eg:
        cv.paint(img, eg, np.array(ec).reshape(-1, 4))
    # --- cranes on top -----------------------------------------------------------------------------------
    if port.cranes:
        cg: list[BaseGeometry] = []
        ccol: list[np.ndarray] = []
        for crane in port.cranes:
            col = _jitter(orng, _col(crane.colour), 0.05)
            for g in [*crane.legs, crane.frame]:
                cg.append(g)
                ccol.append(col * 0.85)
            cg.append(crane.boom)
            ccol.append(col)
        cv.paint(img, cg, np.array(ccol).reshape(-1, 4))
    return img


# --------------------------------------------------------------------------------------------------- cloud --
@dataclass(frozen=True)
class _Cloud:
    x: float
    y: float
    r: float
    harm: tuple[tuple[float, float], ...]
    shadow_dx: float
    shadow_dy: float

    @classmethod
    def make(cls, spec: tuple[float, float, float], date: DateSpec, seed: int) -> _Cloud:
        rng = np.random.default_rng([seed, 71])
        harm = tuple((float(rng.uniform(0.03, 0.12)), float(rng.uniform(0, 2 * math.pi))) for _ in range(5))
        # a low cloud whose height puts its shadow beside it: h = 1.3 r tan(elevation)
        a = math.radians(date.sun_azimuth_deg + 180.0)
        d = 1.3 * spec[2]
        return cls(spec[0], spec[1], spec[2], harm, d * math.sin(a), d * math.cos(a))

    def opacity(self, x: np.ndarray, y: np.ndarray, *, shadow: bool = False) -> np.ndarray:
        cx, cy = (self.x + self.shadow_dx, self.y + self.shadow_dy) if shadow else (self.x, self.y)
        dx, dy = x - cx, y - cy
        th = np.arctan2(dy, dx)
        reff = np.ones_like(th)
        for k, (a, ph) in enumerate(self.harm, start=2):
            reff += a * np.cos(k * th + ph)
        d = np.hypot(dx, dy) / (self.r * reff)
        return np.clip((1.25 - d) / 0.6, 0, 1) ** 1.5


def _apply_cloud(img: np.ndarray, cv: _Canvas, cloud: _Cloud, rng: np.random.Generator) -> None:
    for shadow in (True, False):
        cx = cloud.x + (cloud.shadow_dx if shadow else 0.0)
        cy = cloud.y + (cloud.shadow_dy if shadow else 0.0)
        R = cloud.r * 1.6
        c0 = max(0, int((cx - R - cv.x0) / cv.res_m))
        c1 = min(cv.W, int((cx + R - cv.x0) / cv.res_m) + 1)
        r0 = max(0, int((cv.y0 - (cy + R)) / cv.res_m))
        r1 = min(cv.H, int((cv.y0 - (cy - R)) / cv.res_m) + 1)
        if c1 <= c0 or r1 <= r0:
            continue
        xs = cv.x0 + (np.arange(c0, c1) + 0.5) * cv.res_m
        ys = cv.y0 - (np.arange(r0, r1) + 0.5) * cv.res_m
        X, Y = np.meshgrid(xs, ys)
        op = cloud.opacity(X, Y, shadow=shadow).astype(np.float32)
        sub = img[:, r0:r1, c0:c1]
        if shadow:
            sub *= 1.0 - op[None] * (1.0 - AMBIENT[:, None, None]) * 0.9
        else:
            puff = (
                _field(rng, op.shape, cv.m(cloud.r * 0.12)) * 0.12 + _field(rng, op.shape, cv.m(cloud.r * 0.03)) * 0.06
            )
            col = np.array([0.62, 0.62, 0.62, 0.58], dtype=np.float32)[:, None, None] * (1 + puff)[None]
            img[:, r0:r1, c0:c1] = sub * (1 - op[None]) + col * op[None]


# ------------------------------------------------------------------------------------------------- scene --
@dataclass(eq=False)
class SyntheticScene:
    """One rendered date. ``data`` is (bands, rows, cols) uint8 (visual RGB) or uint16 (analytic BGRN);
    ``transform`` is the nominal (written) georeferencing, ``true_transform`` the one the pixels were rendered
    on (they differ by the misregistration ``date_spec.shift_px``). ``truth`` lists the objects present at this
    date with ``occluded`` for this date."""

    data: np.ndarray
    transform: Affine
    crs: CRS
    valid: np.ndarray
    date_spec: DateSpec
    layout: str
    truth: list[TruthObject]
    true_transform: Affine
    port: Port | None = None
    cloud_opacity: np.ndarray | None = None

    @functools.cached_property
    def in_port_crs(self) -> bool:
        """True when this date's CRS is the port's own (UTM) CRS."""
        return self.port is None or bool(self.crs == self.port.crs)

    @property
    def bands(self) -> tuple[str, ...]:
        return BAND_NAMES[self.layout]

    @property
    def acquired(self) -> dt.datetime:
        return self.date_spec.acquired

    def to_scene(self, path: Path | None = None) -> Scene:
        """The rendered date as an in-memory :class:`berthwatch.models.Scene` (``date_source="synthetic"``)."""
        return Scene(
            data=self.data, transform=self.transform, crs=self.crs, date=self.date_spec.date,
            bands=self.bands, valid=self.valid, path=path, date_source="synthetic",  # type: ignore[arg-type]
            acquired=self.acquired, layout=self.layout, sensor="synthetic",
        )  # fmt: skip

    def write(self, path: str | Path) -> Path:
        """Write a tiled, deflate-compressed GeoTIFF with TIFFTAG_DATETIME, band descriptions and nodata=0."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        count, rows, cols = self.data.shape
        profile: dict[str, object] = {
            "driver": "GTiff", "height": rows, "width": cols, "count": count, "dtype": self.data.dtype.name,
            "crs": self.crs, "transform": self.transform, "nodata": 0, "tiled": True, "blockxsize": 256,
            "blockysize": 256, "compress": "deflate", "predictor": 2, "zlevel": 9, "interleave": "pixel",
        }  # fmt: skip
        if self.layout == "visual":
            profile["photometric"] = "RGB"
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(self.data)
            ds.update_tags(
                TIFFTAG_DATETIME=self.acquired.strftime("%Y:%m:%d %H:%M:%S"),
                TIFFTAG_SOFTWARE="berthwatch.synth",
                TIFFTAG_IMAGEDESCRIPTION="synthetic port scene (berthwatch.synth)",
            )
            for i, name in enumerate(self.bands, start=1):
                ds.set_band_description(i, name)
            if self.layout == "visual":
                ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            else:
                ds.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined]
        return path


def _date_grid(port: Port, date: DateSpec) -> tuple[CRS, Affine, tuple[int, int]]:
    """Nominal grid of a date: its CRS, pixel size, covering the port's extent, snapped to whole pixels."""
    px = date.pixel_size_m if date.pixel_size_m is not None else port.spec.pixel_size_m
    if not 0.3 <= px <= 30:
        raise ValueError(f"DateSpec.pixel_size_m must be within 0.3-30 m, got {px}")
    crs = CRS.from_user_input(date.crs) if date.crs else port.crs
    if crs == port.crs and abs(px - port.spec.pixel_size_m) < 1e-9:
        return crs, port.transform, port.shape
    ext = port.to_crs(port.extent.segmentize(max(port.spec.width_m, port.spec.height_m) / 64))
    ext_d = reproject_geometry(ext, port.crs, crs)
    c = reproject_geometry(shapely.Point(*port.centre_xy), port.crs, crs)
    k = _ground_scale(crs, Affine(1, 0, c.x, 0, -1, c.y), 100, 100)
    res = px / k
    minx, miny, maxx, maxy = ext_d.bounds
    left, right = math.floor(minx / res + 1e-6) * res, math.ceil(maxx / res - 1e-6) * res
    bottom, top = math.floor(miny / res + 1e-6) * res, math.ceil(maxy / res - 1e-6) * res
    shape = (round((top - bottom) / res), round((right - left) / res))
    return crs, Affine(res, 0, left, 0, -res, top), shape


def _nodata_border(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Valid mask with an orthorectified-strip edge: a slanted, slightly ragged line cutting off a corner."""
    rows, cols = shape
    corner = int(rng.integers(0, 4))
    frac_a, frac_b = rng.uniform(0.25, 0.6), rng.uniform(0.15, 0.5)
    # line from a point on the top edge to a point on the left edge (then flipped to the chosen corner)
    pa = np.array([0.0, frac_a * cols])  # (row, col)
    pb = np.array([frac_b * rows, 0.0])
    r = np.arange(rows, dtype=np.float32)[:, None]
    c = np.arange(cols, dtype=np.float32)[None, :]
    d = (pb[1] - pa[1]) * (r - pa[0]) - (pb[0] - pa[0]) * (c - pa[1])
    d /= math.hypot(pb[1] - pa[1], pb[0] - pa[0])
    rag = ndi.gaussian_filter1d(rng.standard_normal(rows + cols).astype(np.float32), 3.0) * 1.5
    d = d + rag[(np.arange(rows)[:, None] + np.arange(cols)[None, :]) % rag.size]
    valid = d < 0
    if corner in (1, 3):
        valid = valid[:, ::-1]
    if corner in (2, 3):
        valid = valid[::-1, :]
    return np.ascontiguousarray(valid)


def _date_seed(port: Port, date: DateSpec, which: int, seed: int | None) -> np.random.Generator:
    if seed is not None:
        return np.random.default_rng([seed, which, 97])
    return np.random.default_rng([port.seed, which, date.date.toordinal(), 89])


def render(
    port: Port | PortSpec,
    date: DateSpec,
    *,
    seed: int | None = None,
    which: int = 0,
    progress: Progress = None,
) -> SyntheticScene:
    """Render one date of a synthetic port.

    Parameters
    ----------
    port
        The world (:func:`make_port`), or a :class:`PortSpec` to build it from.
    date
        Acquisition: radiometry, sun, cloud, grid, misregistration, band layout.
    seed
        Seed of the date's random parts (waves, noise, cloud texture); None derives it from the port seed,
        ``which`` and the date.
    which
        0 renders the objects present at the before date, 1 those at the after date.

        The static ground (textures of land, quays, water body) is kept in the port between calls so a second
        date renders faster; call ``port.clear_cache()`` to free it.
    progress
        Optional callback ``(stage, fraction)``.

    Returns
    -------
    SyntheticScene
    """
    if isinstance(port, PortSpec):
        port = make_port(port)
    if which not in (0, 1):
        raise ValueError(f"which must be 0 (before) or 1 (after), got {which}")
    if date.layout not in BAND_LAYOUTS:
        raise ValueError(f"DateSpec.layout must be one of {BAND_LAYOUTS}, got {date.layout!r}")
    rng = _date_seed(port, date, which, seed)
    base = _render_base(port, progress)
    cv = base.canvas
    img = _render_world(port, base, date, which, rng)
    if progress:
        progress("world", 0.6)
    cloud = _Cloud.make(date.cloud, date, port.seed) if date.cloud is not None else None
    if cloud is not None:
        _apply_cloud(img, cv, cloud, rng)
    crs, nominal, shape = _date_grid(port, date)
    dr, dc = date.shift_px
    true_t = nominal @ Affine.translation(-dc, -dr)
    out = np.full((4, *shape), np.nan, dtype=np.float32)
    ratio = (date.pixel_size_m or port.spec.pixel_size_m) / cv.res_m
    resampling = Resampling.average if ratio >= 1.5 else Resampling.cubic
    reproject(
        source=img, destination=out, src_transform=cv.transform, src_crs=port.crs, dst_transform=true_t,
        dst_crs=crs, resampling=resampling, src_nodata=None, dst_nodata=np.nan, num_threads=1,
    )  # fmt: skip
    del img
    if progress:
        progress("warp", 0.75)
    valid = np.isfinite(out[0])
    if not valid.all():
        fillv = np.nanmean(out, axis=(1, 2))
        for b in range(4):
            out[b][~valid] = fillv[b]
    # optics: point spread function
    if date.psf_sigma_px > 0:
        for b in range(4):
            out[b] = ndi.gaussian_filter(out[b], date.psf_sigma_px, mode="nearest")
    # atmosphere: haze (path radiance, lower contrast), patchy
    if date.haze > 0:
        hz = np.clip(1 + 0.35 * _field(rng, shape, max(2.0, 300.0 / (date.pixel_size_m or port.spec.pixel_size_m))),
                     0.3, 1.8) * date.haze  # fmt: skip
        path_rad = np.array([0.20, 0.16, 0.12, 0.06], dtype=np.float32)
        out = np.asarray(out * (1 - 0.35 * hz)[None] + path_rad[:, None, None] * hz[None], dtype=np.float32)
    # sun elevation: direct light scales with sin(elevation)
    illum = 0.35 + 0.65 * math.sin(math.radians(date.sun_elevation_deg)) / math.sin(math.radians(35.0))
    out *= np.float32(illum)
    # sensor noise: read noise + shot noise, per band
    if date.noise > 0:
        for bi in range(out.shape[0]):  # band by band (memory)
            sig = np.sqrt(np.float32(0.0025**2) + np.float32(4e-5) * np.clip(out[bi], 0, None)) * np.float32(date.noise)
            out[bi] += sig * rng.standard_normal(out.shape[1:], dtype=np.float32)
    # radiometric nuisance of the product: gain, gamma, offset
    for bi in range(out.shape[0]):
        band = np.clip(out[bi], 0, None, out=out[bi])
        if date.gamma != 1.0:
            band **= np.float32(date.gamma)
        band *= np.float32(date.gain)
        band += np.float32(date.offset)
    if date.nodata_border:
        valid &= _nodata_border(rng, shape)
    if date.layout == "analytic":
        data = np.empty(out.shape, dtype=np.uint16)
        for bi in range(out.shape[0]):
            data[bi] = np.clip(np.rint(out[bi] * np.float32(10000.0)), 1, 65535)
    else:
        rgb = out[[2, 1, 0]]
        v = 255.0 * np.clip(rgb / 0.40, 0, None) ** 0.55
        blur = np.stack([ndi.gaussian_filter(b, 1.0) for b in v])
        v = v + 0.35 * (v - blur)  # the product's sharpening
        data = np.clip(np.rint(v), 1, 255).astype(np.uint8)
    data[:, ~valid] = 0
    cloud_op = None
    if cloud is not None:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        xs = true_t.a * (cols + 0.5) + true_t.c
        ys = true_t.e * (rows + 0.5) + true_t.f
        if crs != port.crs:
            from pyproj import Transformer

            xs, ys = Transformer.from_crs(crs.to_wkt(), port.crs.to_wkt(), always_xy=True).transform(xs, ys)
        k = port.ground_scale
        cloud_op = cloud.opacity((np.asarray(xs) - port.centre_xy[0]) * k, (np.asarray(ys) - port.centre_xy[1]) * k)
        cloud_op = cloud_op.astype(np.float32)
    scene = SyntheticScene(
        data=data, transform=nominal, crs=crs, valid=valid, date_spec=date, layout=date.layout, truth=[],
        true_transform=true_t, port=port, cloud_opacity=cloud_op,
    )  # fmt: skip
    scene.truth = _scene_truth(port, scene, which, cloud)
    if progress:
        progress("done", 1.0)
    return scene


# ------------------------------------------------------------------------------------------------- truth --
CLOUD_OCCLUSION = 0.4  # cloud opacity from which an object counts as hidden


def _occluded(port: Port, scene: SyntheticScene, fp_local: BaseGeometry, cloud: _Cloud | None) -> bool:
    """True when any part of the footprint is outside valid data or under thick cloud at this date."""
    if cloud is not None:
        pts = shapely.get_coordinates(fp_local.segmentize(2.0))
        inner = fp_local.buffer(-0.5)
        if not inner.is_empty:
            pts = np.vstack(
                [pts, shapely.get_coordinates(inner.segmentize(2.0)), [[fp_local.centroid.x, fp_local.centroid.y]]]
            )
        if float(cloud.opacity(pts[:, 0], pts[:, 1]).max()) >= CLOUD_OCCLUSION:
            return True
    geom = port.to_crs(fp_local)
    if not scene.in_port_crs:
        geom = reproject_geometry(geom, port.crs, scene.crs)
    inv = ~scene.true_transform
    pix = affinity.affine_transform(geom, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
    minx, miny, maxx, maxy = pix.bounds
    rows, cols = scene.valid.shape
    if minx < 0 or miny < 0 or maxx > cols or maxy > rows:
        return True
    c0, r0 = int(minx), int(miny)
    c1, r1 = math.ceil(maxx), math.ceil(maxy)
    m = rasterize([(affinity.translate(pix, -c0, -r0), 1)], out_shape=(r1 - r0, c1 - c0), all_touched=True,
                  transform=Affine.identity(), dtype="uint8")  # fmt: skip
    return bool((~scene.valid[r0:r1, c0:c1])[m.astype(bool)].any())


Item = VesselSpec | EquipmentSpec


def _truth_items(port: Port) -> list[Item]:
    """Objects that belong in the truth: vessels of at least 8 m and all equipment (not distractors)."""
    return [v for v in port.vessels if v.length_m >= SMALL_BOAT_MAX_M] + list(port.equipment)


def _footprint(port: Port, obj: Item, which: int) -> Polygon:
    if isinstance(obj, VesselSpec):
        return vessel_footprint(obj, *port.vessel_at(obj, which))
    return equipment_footprint(obj)


def _truth_object(port: Port, obj: Item, fp_local: BaseGeometry, status: str) -> TruthObject:
    poly = port.to_crs(fp_local)
    length, width, heading, _ = oriented_measures(poly, ground_scale=port.ground_scale, crs=port.crs)
    t = TruthObject(
        id=obj.id,
        kind="vessel" if isinstance(obj, VesselSpec) else "equipment",
        subtype=obj.subtype,
        polygon=poly,
        length_m=round(length, 3),
        width_m=round(width, 3),
        heading_deg=round(heading, 3),
        status=status,
    )
    if isinstance(obj, VesselSpec):
        t.moored, t.rafted, t.underway, t.hull, t.name = obj.moored, obj.rafted, obj.underway, obj.hull, obj.name
    else:
        t.extra = {"model": equipment_model(obj), "colour": obj.colour}
    return t


def _scene_truth(port: Port, scene: SyntheticScene, which: int, cloud: _Cloud | None) -> list[TruthObject]:
    out = []
    for obj in _truth_items(port):
        if not obj.present[which]:
            continue
        fp = _footprint(port, obj, which)
        t = _truth_object(port, obj, fp, "stayed")
        t.occluded = _occluded(port, scene, fp, cloud)
        if which == 0:
            t.occluded_before = t.occluded
        else:
            t.occluded_after = t.occluded
        out.append(t)
    return out


@dataclass(eq=False)
class SyntheticPair:
    """Two dates of one port with pair ground truth (status departed / arrived / stayed)."""

    before: SyntheticScene
    after: SyntheticScene
    truth: list[TruthObject]
    port: Port
    meta: dict[str, object] = field(default_factory=dict)

    def write(
        self, out_dir: str | Path, *, names: tuple[str, str] | None = None, per_date_truth: bool = True
    ) -> list[Path]:
        """Write both GeoTIFFs, the pair truth ``truth.geojson`` and (optionally) per-date truth files."""
        from berthwatch.synth._truth import write_truth

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if names is None:
            names = tuple(f"{s.acquired:%Y%m%d_%H%M%S}_synth_{s.layout}.tif" for s in (self.before, self.after))  # type: ignore[assignment]
        assert names is not None
        paths = [self.before.write(out_dir / names[0]), self.after.write(out_dir / names[1])]
        bd, ad = self.before.date_spec.date, self.after.date_spec.date
        stem = self.meta.get("truth_stem", "truth")
        paths.append(write_truth(self.truth, self.port.crs, out_dir / f"{stem}.geojson", before_date=bd, after_date=ad))
        if per_date_truth:
            for s, n in zip((self.before, self.after), names, strict=True):
                p = out_dir / (Path(n).stem + "_truth.geojson")
                paths.append(write_truth(s.truth, self.port.crs, p, with_status=False, date=s.date_spec.date))
        return paths


def _pair_truth(
    port: Port, before: SyntheticScene, after: SyntheticScene, cb: _Cloud | None, ca: _Cloud | None
) -> list[TruthObject]:
    out = []
    for obj in _truth_items(port):
        pres = obj.present
        if not any(pres):
            continue
        status = "stayed" if all(pres) else ("departed" if pres[0] else "arrived")
        fp_b = _footprint(port, obj, 0)
        fp_a = _footprint(port, obj, 1)
        t = _truth_object(port, obj, fp_b if pres[0] else fp_a, status)
        # where the object is absent, look where it would be (its other-date footprint)
        t.occluded_before = _occluded(port, before, fp_b if pres[0] else fp_a, cb)
        t.occluded_after = _occluded(port, after, fp_a if pres[1] else fp_b, ca)
        t.occluded = t.occluded_before or t.occluded_after
        if status == "stayed":
            t.polygon_after = port.to_crs(fp_a)
        out.append(t)
    return out


def make_pair(
    port_spec: PortSpec | Port, before: DateSpec, after: DateSpec, *, progress: Progress = None
) -> SyntheticPair:
    """Render a port at two dates and its pair ground truth.

    Parameters
    ----------
    port_spec
        The port (spec or an already built :class:`Port`).
    before, after
        The two acquisitions.
    progress
        Optional callback ``(stage, fraction)``.
    """
    port = make_port(port_spec) if isinstance(port_spec, PortSpec) else port_spec

    def sub(lo: float, hi: float) -> Progress:
        if progress is None:
            return None
        return lambda s, f: progress(s, lo + (hi - lo) * f)

    b = render(port, before, which=0, progress=sub(0.0, 0.5))
    a = render(port, after, which=1, progress=sub(0.5, 1.0))
    cb = _Cloud.make(before.cloud, before, port.seed) if before.cloud is not None else None
    ca = _Cloud.make(after.cloud, after, port.seed) if after.cloud is not None else None
    truth = _pair_truth(port, b, a, cb, ca)
    port.clear_cache()
    return SyntheticPair(before=b, after=a, truth=truth, port=port)
