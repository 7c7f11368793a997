"""Ready-made scenes: varied random pairs for benchmarks and the bundled Tartus sample pair."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np

from berthwatch.synth._render import SyntheticPair, make_pair
from berthwatch.synth._specs import DateSpec, EquipmentSpec, PortSpec, VesselSpec
from berthwatch.synth._world import Berth, equipment_rows, make_port, quay_berths


def random_pair(
    seed: int,
    *,
    pixel_size_m: float = 0.8,
    layout: str = "auto",
    band_layout: str = "analytic",
    size_px: tuple[int, int] = (1000, 750),
    nuisances: bool = True,
    cloud: bool | None = None,
    other_crs: bool | None = None,
    centre_lonlat: tuple[float, float] | None = None,
) -> SyntheticPair:
    """A varied synthetic pair for benchmarks, everything drawn from ``seed``.

    Parameters
    ----------
    seed
        Seed of the port and of the nuisances.
    pixel_size_m
        Pixel size of the port (both dates keep it unless ``other_crs``).
    layout
        Port layout ("auto", "harbour", "quay", "open_sea").
    band_layout
        "analytic" (BGRN uint16) or "visual" (RGB uint8) for both dates.
    size_px
        (cols, rows) of the scene.
    nuisances
        Draw gain/offset/gamma, haze, sun change, misregistration (up to 3 px), sometimes a cloud, a nodata
        border and another CRS for the after date; False gives two clean, co-registered dates.
    cloud, other_crs
        Force a cloud on the after date / the after date in EPSG:3857 (None: drawn from the seed).
    centre_lonlat
        Where on Earth (None: drawn among a few real port latitudes).
    """
    rng = np.random.default_rng([seed, 101])
    if centre_lonlat is None:
        centre_lonlat = [(35.87, 34.89), (-7.62, 33.6), (129.04, 35.1), (-157.87, 21.31), (31.03, -29.87),
                         (101.39, 3.0), (-75.53, 10.4)][int(rng.integers(0, 7))]  # fmt: skip
    spec = PortSpec(seed=seed, width_m=size_px[0] * pixel_size_m, height_m=size_px[1] * pixel_size_m,
                    pixel_size_m=pixel_size_m, centre_lonlat=centre_lonlat, layout=layout,
                    glint=float(rng.uniform(0.2, 0.9)), whitecaps=float(rng.uniform(0.1, 0.9)))  # fmt: skip
    d0 = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
    d1 = d0 + dt.timedelta(days=int(rng.integers(1, 30)))
    az0 = float(rng.uniform(120, 200))
    el0 = float(rng.uniform(25, 65))
    before = DateSpec(d0, dt.time(int(rng.integers(7, 12)), int(rng.integers(0, 60))), sun_azimuth_deg=az0,
                      sun_elevation_deg=el0, layout=band_layout)  # fmt: skip
    after = DateSpec(d1, dt.time(int(rng.integers(7, 12)), int(rng.integers(0, 60))), sun_azimuth_deg=az0,
                     sun_elevation_deg=el0, layout=band_layout)  # fmt: skip
    if nuisances:
        w, h = spec.width_m, spec.height_m
        has_cloud = bool(rng.random() < 0.35) if cloud is None else cloud
        use_crs = bool(rng.random() < 0.2) if other_crs is None else other_crs
        after = replace(
            after,
            gain=float(rng.uniform(0.8, 1.2)),
            offset=float(rng.uniform(-0.01, 0.015)),
            gamma=float(rng.uniform(0.9, 1.1)),
            haze=float(rng.uniform(0, 0.3)),
            sun_azimuth_deg=az0 + float(rng.uniform(-35, 35)),
            sun_elevation_deg=float(np.clip(el0 + rng.uniform(-15, 15), 15, 75)),
            shift_px=(float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))),
            cloud=(
                float(rng.uniform(-0.3, 0.3) * w),
                float(rng.uniform(-0.3, 0.3) * h),
                float(rng.uniform(0.06, 0.15) * min(w, h)),
            )
            if has_cloud
            else None,
            nodata_border=bool(rng.random() < 0.3),
            crs="EPSG:3857" if use_crs else None,
        )
        before = replace(before, haze=float(rng.uniform(0, 0.15)), shift_px=(float(rng.uniform(-0.5, 0.5)),
                         float(rng.uniform(-0.5, 0.5))))  # fmt: skip
    pair = make_pair(spec, before, after)
    pair.meta["seed"] = seed
    return pair


# ------------------------------------------------------------------------------------------------ Tartus --
TARTUS_SEED = 2025
TARTUS_NAMES = ("20250118_081523_ssc7_u0001_visual.tif", "20250127_082011_ssc9_u0002_visual.tif")
TARTUS_SPEC = PortSpec(
    seed=TARTUS_SEED, width_m=1600.0, height_m=1200.0, pixel_size_m=0.8, centre_lonlat=(35.87, 34.89),
    layout="harbour", land_side=97.0, glint=0.4, whitecaps=0.5,
)  # fmt: skip
TARTUS_BEFORE = DateSpec(
    dt.date(2025, 1, 18), dt.time(8, 15, 23), gain=1.0, gamma=1.0, haze=0.03, sun_azimuth_deg=152.0,
    sun_elevation_deg=31.0, layout="visual", shift_px=(0.0, 0.0), sea_state=0.45, noise=0.7,
)  # fmt: skip
TARTUS_AFTER = DateSpec(
    dt.date(2025, 1, 27), dt.time(8, 20, 11), gain=1.08, offset=0.004, gamma=0.93, haze=0.12,
    sun_azimuth_deg=158.0, sun_elevation_deg=34.0, layout="visual", shift_px=(1.1, -1.0), sea_state=0.6, noise=0.7,
)  # fmt: skip


def _tartus_objects(berths: list[Berth]) -> tuple[list[VesselSpec], list[EquipmentSpec]]:
    rng = np.random.default_rng([TARTUS_SEED, 7])
    piers = sorted([b for b in berths if "pier" in b.quay and not b.quay.endswith("head")], key=lambda b: -b.length_m)
    walls = [b for b in berths if b.quay.startswith("wall")]
    main = piers[0]
    vessels: list[VesselSpec] = []
    eq: list[EquipmentSpec] = []
    # Sparta and Sparta II: in line along the longest pier side, gone on the 27th
    s1 = main.place(128.0, width_m=19.6, along_m=-main.length_m / 2 + 75, subtype="cargo", hull="dark",
                    present=(True, False), id="V-SPARTA", name="Sparta")  # fmt: skip
    s2 = main.place(136.0, width_m=20.4, along_m=main.length_m / 2 - 78, subtype="cargo", hull="grey",
                    present=(True, False), id="V-SPARTA-II", name="Sparta II", reverse=True)  # fmt: skip
    vessels += [s1, s2]
    # equipment on the apron behind them: rows of military vehicles and containers; ~78% leave with the ships
    blocks = [
        (-main.length_m / 2 + 45, 16.0, dict(n_rows=2, n_per_row=9, length_m=9.8, width_m=2.5, model="truck",
                                               colour="olive")),
        (-main.length_m / 2 + 45, 31.0, dict(n_rows=1, n_per_row=8, length_m=7.9, width_m=3.6, model="tank",
                                               colour="olive")),
        (-main.length_m / 2 + 110, 17.0, dict(n_rows=2, n_per_row=7, length_m=7.2, width_m=2.9, model="apc",
                                                colour="sand")),
        (main.length_m / 2 - 60, 14.0, dict(n_rows=3, n_per_row=6, length_m=12.19, width_m=2.44,
                                             subtype="container", side_by_side=False, gap_along_m=0.4,
                                             gap_across_m=0.5, colour="green")),
        (main.length_m / 2 - 105, 20.0, dict(n_rows=2, n_per_row=8, length_m=6.06, width_m=2.44,
                                              subtype="container", side_by_side=False, gap_along_m=0.3,
                                              gap_across_m=0.6, colour="brown")),
        (main.length_m / 2 - 60, 33.0, dict(n_rows=1, n_per_row=10, length_m=4.6, width_m=1.85, model="car",
                                             colour="white")),
    ]  # fmt: skip
    for i, (along, back, kw) in enumerate(blocks):
        x, y = main.point(along, -back)
        items = equipment_rows(x, y, main.heading_deg, id_prefix=f"E-Q{i + 1}-", **kw)  # type: ignore[arg-type]
        for it in items:
            it.present = (True, False) if rng.random() < 0.78 else (True, True)
        eq += items
    # another cargo ship at another quay, a tug and a patrol boat, fishing boats; one ship at anchor
    other = walls[0] if walls else piers[1]
    vessels.append(other.place(min(112.0, other.length_m - 20), subtype="cargo", hull="bright", id="V-CARGO-2"))
    vessels.append(other.place(28.0, along_m=other.length_m / 2 - 22, subtype="tug", hull="dark", id="V-TUG-1",
                               shift_m=(0.8, -0.5), rotate_deg=1.0))  # fmt: skip
    opp = piers[1] if len(piers) > 1 else walls[-1]
    vessels.append(opp.place(46.0, along_m=-opp.length_m / 2 + 40, subtype="patrol", hull="grey", id="V-PATROL-1"))
    f1 = opp.place(19.0, along_m=opp.length_m / 2 - 18, subtype="fishing", hull="bright", id="V-FISH-1")
    f2 = opp.place(16.0, along_m=opp.length_m / 2 - 40, subtype="fishing", hull="bright", id="V-FISH-2",
                   present=(False, True))  # fmt: skip
    vessels += [f1, f2]
    vessels.append(VesselSpec(-640.0, 380.0, 168.0, 27.0, 212.0, hull="dark", subtype="tanker", id="V-ANCHOR-1",
                              shift_m=(1.2, 0.7), rotate_deg=1.5))  # fmt: skip
    vessels.append(VesselSpec(-520.0, -300.0, 32.0, None, 35.0, hull="bright", subtype="patrol", underway=True,
                              present=(False, True), id="V-UNDERWAY-1"))  # fmt: skip
    # a container yard and a vehicle park elsewhere that stay
    yard = opp
    x, y = yard.point(opp.length_m * 0.1, -22)
    items = equipment_rows(x, y, yard.heading_deg, n_rows=4, n_per_row=7, length_m=12.19, width_m=2.44,
                           subtype="container", side_by_side=False, gap_along_m=0.4, gap_across_m=0.5,
                           id_prefix="E-Y-")  # fmt: skip
    cols = ["red", "blue", "white", "orange", "grey", "blue", "red"]
    for j, it in enumerate(items):
        it.colour = cols[j % len(cols)]
        it.stack = 1 + j % 3
        if j % 11 == 5:
            it.present = (False, True)
    eq += items
    if walls:
        w = walls[-1]
        x, y = w.point(0.0, -35)
        eq += equipment_rows(x, y, w.heading_deg, n_rows=2, n_per_row=9, length_m=4.5, width_m=1.8, model="car",
                             gap_along_m=1.2, gap_across_m=5.0, id_prefix="E-P-")  # fmt: skip
    return vessels, eq


def tartus_pair() -> SyntheticPair:
    """The bundled sample: Tartus port, 18 and 27 January 2025, 0.8 m visual RGB (SkySat-like)."""
    port0 = make_port(replace(TARTUS_SPEC, vessels=[], equipment=[]))
    vessels, eq = _tartus_objects(quay_berths(port0))
    spec = replace(TARTUS_SPEC, vessels=vessels, equipment=eq)
    pair = make_pair(spec, TARTUS_BEFORE, TARTUS_AFTER)
    pair.meta["truth_stem"] = "tartus_truth"
    return pair


def write_tartus_sample(out_dir: str | Path) -> list[Path]:
    """Render :func:`tartus_pair` and write the two GeoTIFFs, pair truth and per-date truth into ``out_dir``."""
    pair = tartus_pair()
    return pair.write(out_dir, names=TARTUS_NAMES)
