"""Small hand-built scenes with known objects for the mask and detector tests."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from skimage.draw import polygon as draw_polygon

from berthwatch.models import Scene

# reflectance-like levels (x 10000) per band role: blue, green, red, nir
WATER = (600.0, 700.0, 400.0, 150.0)
LAND = (1400.0, 1500.0, 1600.0, 2600.0)
BRIGHT = (3200.0, 3300.0, 3300.0, 3400.0)
DARK = (250.0, 280.0, 200.0, 80.0)


def rect(cx: float, cy: float, length: float, width: float, heading_deg: float) -> np.ndarray:
    """Corners (x, y) in metres of a rectangle whose long axis points ``heading_deg`` clockwise from north."""
    h = math.radians(heading_deg)
    ax = np.array([math.sin(h), math.cos(h)])  # along (x east, y north)
    cr = np.array([math.cos(h), -math.sin(h)])
    pts = [
        np.array([cx, cy]) + sa * ax * length / 2 + sc * cr * width / 2
        for sa, sc in ((1, 1), (1, -1), (-1, -1), (-1, 1))
    ]
    return np.array(pts)


class Canvas:
    """A north-up UTM scene of ``size_m`` metres at ``px`` metres per pixel, filled band by band."""

    def __init__(self, size_m: tuple[float, float], px: float, *, seed: int = 0, rgb: bool = False) -> None:
        self.px = px
        self.cols, self.rows = round(size_m[0] / px), round(size_m[1] / px)
        self.rgb = rgb
        self.rng = np.random.default_rng(seed)
        self.data = np.zeros((4, self.rows, self.cols), dtype=np.float32)
        self.fill_all(WATER)
        self.x0, self.y0 = 500000.0, 4000000.0 + size_m[1]

    def fill_all(self, levels: tuple[float, ...]) -> None:
        for b, v in enumerate(levels):
            self.data[b] = v

    def _rc(self, corners_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = corners_m[:, 0] / self.px
        rows = self.rows - corners_m[:, 1] / self.px
        return draw_polygon(rows, cols, shape=(self.rows, self.cols))

    def paint(self, corners_m: np.ndarray, levels: tuple[float, ...]) -> None:
        """Paint a polygon given in metres from the lower-left corner (x east, y north)."""
        rr, cc = self._rc(corners_m)
        for b, v in enumerate(levels):
            self.data[b, rr, cc] = v

    def box(self, x0: float, y0: float, x1: float, y1: float, levels: tuple[float, ...]) -> None:
        self.paint(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), levels)

    def scene(self, *, noise: float = 40.0, blur_px: float = 0.6) -> Scene:
        from scipy import ndimage as ndi

        data = self.data.copy()
        for b in range(4):
            if blur_px > 0:
                data[b] = ndi.gaussian_filter(data[b], blur_px)
            data[b] += self.rng.normal(0.0, noise, data[b].shape)
        transform = Affine(self.px, 0.0, self.x0, 0.0, -self.px, self.y0)
        valid = np.ones((self.rows, self.cols), dtype=bool)
        if self.rgb:
            rgb = np.stack([data[2], data[1], data[0]])
            out = np.clip(rgb / 3600.0 * 255.0, 0, 255).astype(np.uint8)
            bands: tuple = ("red", "green", "blue")
        else:
            out = np.clip(data, 0, 65535).astype(np.uint16)
            bands = ("blue", "green", "red", "nir")
        return Scene(
            data=out,
            transform=transform,
            crs=CRS.from_epsg(32636),
            date=dt.date(2025, 1, 18),
            bands=bands,
            valid=valid,
        )

    def to_crs(self, x: float, y: float) -> tuple[float, float]:
        return self.x0 + x, self.y0 - self.rows * self.px + y
