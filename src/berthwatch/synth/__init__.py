"""Realistic synthetic port scenes at two dates, with ground truth.

The world (land, quays, breakwaters, buildings, cranes, vessels, equipment) is built as shapely geometries in a
local metric frame of the port's UTM zone (:func:`make_port`), rendered as surface reflectance on a fine grid,
then for each date warped onto that date's own grid (CRS, pixel size, misregistration) with
:func:`rasterio.warp.reproject`, blurred by the optics, hazed, given sensor noise and quantised to a Planet-like
"visual" (RGB uint8) or "analytic" (BGRN uint16) product (:func:`render`, :func:`make_pair`).

Run ``python -m berthwatch.synth tartus OUT_DIR`` to regenerate the bundled ``sample_tiles/``.
"""

from __future__ import annotations

from berthwatch.synth._presets import random_pair, tartus_pair, write_tartus_sample
from berthwatch.synth._render import SyntheticPair, SyntheticScene, make_pair, render
from berthwatch.synth._specs import DateSpec, EquipmentSpec, PortSpec, TruthObject, VesselSpec
from berthwatch.synth._truth import TRUTH_PROPERTIES, truth_feature_collection, write_truth
from berthwatch.synth._world import (
    Berth,
    Port,
    alongside,
    default_beam,
    equipment_rows,
    hull_outline,
    make_port,
    quay_berths,
)

__all__ = [
    "TRUTH_PROPERTIES",
    "Berth",
    "DateSpec",
    "EquipmentSpec",
    "Port",
    "PortSpec",
    "SyntheticPair",
    "SyntheticScene",
    "TruthObject",
    "VesselSpec",
    "alongside",
    "default_beam",
    "equipment_rows",
    "hull_outline",
    "make_pair",
    "make_port",
    "quay_berths",
    "random_pair",
    "render",
    "tartus_pair",
    "truth_feature_collection",
    "write_tartus_sample",
    "write_truth",
]
