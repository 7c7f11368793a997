"""Known-answer tests for two-date alignment (berthwatch.align)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage as ndi

from berthwatch.align import align, common_grid, estimate_shift, normalise_radiometry
from berthwatch.config import AlignConfig
from berthwatch.errors import AlignmentError, NoOverlapError
from berthwatch.models import Scene

UTM = CRS.from_epsg(32636)
WORLD_T = Affine(0.5, 0, 500_000, 0, -0.5, 3_800_000)  # 0.5 m "ground truth" raster, 300 m square
BEFORE_T = Affine(1.0, 0, 500_010, 0, -1.0, 3_799_990)  # BEFORE: 1 m pixels, 256 x 256


def _world(seed: int = 0, n: int = 600, *, land: bool = True) -> np.ndarray:
    """Reflectance-like field 0..255: textured land with buildings on the left half, calm water on the right."""
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(rng.normal(size=(n, n)), 3) * 40 + 120
    for _ in range(80):
        r, c = rng.integers(0, n - 30, 2)
        h, w = rng.integers(6, 30, 2)
        img[r : r + h, c : c + w] = rng.uniform(60, 220)
    water = 40 + rng.normal(size=(n, n)) * 1.5
    if land:
        img[:, n // 2 :] = water[:, n // 2 :]
    else:
        img = water
    return img.astype(np.float32)


def _scene(
    world: np.ndarray,
    grid: Affine,
    shape: tuple[int, int],
    *,
    crs: CRS = UTM,
    shift_m: tuple[float, float] = (0.0, 0.0),
    gain: float = 1.0,
    offset: float = 0.0,
    gamma: float = 1.0,
    seed: int = 1,
    bands: tuple[str, ...] = ("red", "green", "blue"),
    dtype: type = np.float32,
    name: str = "scene.tif",
) -> Scene:
    """Sample the world on ``grid`` (in ``crs``); ``shift_m`` = (east, north) error of the georeferencing."""
    out = np.zeros(shape, np.float32)
    reproject(
        world, out, src_transform=WORLD_T, src_crs=UTM, dst_transform=grid, dst_crs=crs, resampling=Resampling.bilinear
    )
    rng = np.random.default_rng(seed)
    out = np.clip(out + rng.normal(size=shape), 0, 255) / 255.0
    out = (out**gamma) * 255.0 * gain + offset
    planes = {"red": out, "green": 0.9 * out + 5, "blue": 0.8 * out + 10, "nir": 0.5 * out + 20}
    data = np.stack([planes[b] for b in bands]).astype(dtype)
    # content displaced by shift_m: the georeferencing claims each pixel lies shift_m further east/north
    scale = 1.0 if crs == UTM else 1.0 / _ground_scale_probe(crs, grid)
    label = Affine.translation(shift_m[0] * scale, shift_m[1] * scale) @ grid
    return Scene(
        data=data,
        transform=label,
        crs=crs,
        date=dt.date(2025, 1, 18),
        bands=bands,  # type: ignore[arg-type]
        valid=np.ones(shape, bool),
        path=Path(name),
    )


def _ground_scale_probe(crs: CRS, grid: Affine) -> float:
    probe = Scene(
        data=np.zeros((1, 4, 4), np.uint8),
        transform=grid,
        crs=crs,
        date=dt.date(2025, 1, 1),
        bands=("red",),
        valid=np.ones((4, 4), bool),
    )
    return probe.ground_scale


@pytest.fixture(scope="module")
def world() -> np.ndarray:
    return _world()


@pytest.fixture(scope="module")
def before(world: np.ndarray) -> Scene:
    return _scene(world, BEFORE_T, (256, 256), name="before.tif")


def test_estimate_shift_sign_convention() -> None:
    rng = np.random.default_rng(4)
    ref = ndi.gaussian_filter(rng.normal(size=(160, 160)), 2).astype(np.float32)
    mov = ndi.shift(ref, (2.4, -1.3), order=3)  # content moves down 2.4 rows and left 1.3 columns
    (dr, dc), residual, quality = estimate_shift(ref, mov, stable=np.ones(ref.shape, bool), max_shift_px=10)
    assert dr == pytest.approx(2.4, abs=0.15)
    assert dc == pytest.approx(-1.3, abs=0.15)
    assert quality > 0.5
    assert residual < 0.3


@pytest.mark.parametrize("shift_px", [(0.3, -0.6), (3.0, -4.5)])
def test_known_shift_recovered_across_pixel_sizes(
    world: np.ndarray, before: Scene, shift_px: tuple[float, float]
) -> None:
    # AFTER at 1.2 m pixels over a slightly different extent; its georeferencing is off by shift_px BEFORE pixels
    after_grid = Affine(1.2, 0, 500_020, 0, -1.2, 3_799_980)
    after = _scene(
        world,
        after_grid,
        (220, 220),
        shift_m=(shift_px[1], -shift_px[0]),
        gain=1.3,
        offset=10,
        seed=2,
        name="after.tif",
    )
    pair = align(before, after)
    al = pair.alignment
    assert al.applied and not al.flagged
    assert al.shift_px[0] == pytest.approx(shift_px[0], abs=0.2)
    assert al.shift_px[1] == pytest.approx(shift_px[1], abs=0.2)
    assert al.residual_px < 0.5
    # once corrected, the two dates agree to the noise level on land (no edge residue)
    land = pair.valid.copy()
    land[:, 120:] = False
    diff = np.abs(pair.after.data[0] - pair.before.data[0].astype(np.float32))[land]
    assert np.median(diff) < 2.0
    assert pair.before.transform == pair.after.transform
    assert pair.after.crs == pair.before.crs
    assert pair.after.data.dtype == np.float32
    assert pair.before_source is before and pair.after_source is after


@pytest.mark.parametrize(("resampling", "sharp"), [("cubic", True), ("bilinear", False)])
def test_after_keeps_its_sharpness_through_the_warp(resampling: str, sharp: bool) -> None:
    """AFTER on a grid offset by half a pixel: after the warp its edges are as crisp as BEFORE's with cubic."""
    rng = np.random.default_rng(7)
    world = np.kron(rng.uniform(40, 220, (75, 75)), np.ones((8, 8))).astype(np.float32)  # 4 m blocks, 0.5 m world
    before = _scene(world, BEFORE_T, (256, 256), name="before.tif")
    half = Affine(1.0, 0, 500_010.5, 0, -1.0, 3_799_989.5)  # the same 1 m pixels, grid offset by half a pixel
    after = _scene(world, half, (256, 256), seed=2, name="after.tif")
    pair = align(before, after, config=AlignConfig(resampling=resampling))
    assert not pair.alignment.applied or max(abs(v) for v in pair.alignment.shift_px) < 0.2

    def edges(img: np.ndarray) -> float:  # gradient energy: blur spreads an edge and lowers it
        gy, gx = np.gradient(img.astype(np.float64))
        return float(np.mean((gx * gx + gy * gy)[pair.valid]))

    ratio = edges(pair.after.data[0]) / edges(pair.before.data[0])
    assert (ratio > 0.93) == sharp, ratio  # cubic 1.00, bilinear 0.87


def test_unknown_resampling_is_a_config_error() -> None:
    from berthwatch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"align\.resampling"):
        AlignConfig(resampling="nearest")
    from berthwatch.config import Settings

    with pytest.raises(ConfigError, match=r"^my\.toml: align\.resampling"):
        Settings().updated({"align": {"resampling": "Cubic"}}, source="my.toml")


def test_different_crs_gives_the_same_shift(world: np.ndarray, before: Scene) -> None:
    merc = CRS.from_epsg(3857)
    left, bottom, right, top = transform_bounds(UTM, merc, *before.bounds)
    px = 1.44  # web-mercator units, about 1.2 m on the ground at 34 deg N
    grid = Affine(px, 0, left, 0, -px, top)
    shape = (int((top - bottom) / px), int((right - left) / px))
    after = _scene(world, grid, shape, crs=merc, shift_m=(-2.0, -1.5), seed=3, name="after_3857.tif")
    pair = align(before, after)
    assert pair.after.crs == before.crs
    # 2 m east, 1.5 m south = (+1.5 rows, +2 cols) of 1 m BEFORE pixels... with the sign of the error
    assert pair.alignment.shift_px[0] == pytest.approx(1.5, abs=0.2)
    assert pair.alignment.shift_px[1] == pytest.approx(-2.0, abs=0.2)


def test_shift_beyond_bound_is_refused(world: np.ndarray, before: Scene) -> None:
    after = _scene(world, BEFORE_T, (256, 256), shift_m=(6.0, -8.0), seed=2, name="after.tif")
    with pytest.raises(AlignmentError, match=r"before\.tif") as info:
        align(before, after, config=AlignConfig(max_shift_m=5.0))
    assert "after.tif" in str(info.value)
    # within the default bound the same pair aligns
    assert align(before, after).alignment.shift_px == pytest.approx((8.0, 6.0), abs=0.2)


def test_no_structure_is_flagged_not_applied() -> None:
    sea = _world(land=False)
    b = _scene(sea, BEFORE_T, (256, 256), seed=1, name="b.tif")
    a = _scene(sea, BEFORE_T, (256, 256), seed=5, shift_m=(2.0, 2.0), name="a.tif")
    al = align(b, a).alignment
    assert al.flagged and not al.applied
    assert al.message


def test_no_overlap_names_both_files(world: np.ndarray, before: Scene) -> None:
    far = Affine(1.0, 0, 510_000, 0, -1.0, 3_799_990)
    after = _scene(world, BEFORE_T, (64, 64), name="elsewhere.tif").with_(transform=far)
    with pytest.raises(NoOverlapError) as info:
        common_grid(before, after)
    assert "before.tif" in str(info.value) and "elsewhere.tif" in str(info.value)
    # a sliver of overlap (10 m x 256 m) is too small as well
    sliver = Affine(1.0, 0, 500_010 + 246, 0, -1.0, 3_799_990)
    with pytest.raises(NoOverlapError):
        align(before, after.with_(transform=sliver))


def test_common_grid_is_before_grid_cropped(before: Scene, world: np.ndarray) -> None:
    after = _scene(world, Affine(1.2, 0, 500_100.3, 0, -1.2, 3_799_950), (100, 100), name="a.tif")
    transform, shape, win = common_grid(before, after)
    assert transform.a == before.transform.a and transform.e == before.transform.e
    assert (transform.c - before.transform.c) == pytest.approx(91.0)  # 90.3 m rounded inwards to whole pixels
    assert (before.transform.f - transform.f) == pytest.approx(40.0)
    assert shape == (120, 119)  # rows 40-160 whole; cols 90.3-210.3 -> whole pixels 91-210
    assert (win.row_off, win.col_off) == (40, 91)


@pytest.mark.parametrize(
    "change",
    [dict(gain=1.3, offset=10.0), dict(gamma=0.7), dict(gamma=1.4, gain=0.9), dict(gain=0.7, offset=40.0)],
    ids=["gain-offset", "gamma-0.7", "gamma-1.4", "haze"],
)
def test_radiometric_normalisation_removes_global_differences(
    world: np.ndarray, before: Scene, change: dict[str, float]
) -> None:
    after = _scene(world, BEFORE_T, (256, 256), seed=2, name="after.tif", **change)  # type: ignore[arg-type]
    pair = align(before, after)
    ref = _scene(world, BEFORE_T, (256, 256), seed=2)  # same noise, no radiometric change
    noise = np.abs(ref.data - before.data.astype(np.float32))[:, pair.valid]
    got = np.abs(pair.after.data - before.data.astype(np.float32))[:, pair.valid]
    assert np.median(got) < 1.2 * np.median(noise)
    assert np.quantile(got, 0.99) < 1.5 * np.quantile(noise, 0.99)
    raw = np.abs(after.data - before.data.astype(np.float32))[:, pair.valid]
    assert np.median(raw) > 3 * np.median(noise)  # the test case really had a difference to remove


def test_linear_gain_offset_recovered(world: np.ndarray, before: Scene) -> None:
    after = _scene(world, BEFORE_T, (256, 256), gain=1.25, offset=12.0, seed=2)
    _, gains, offsets, method = normalise_radiometry(before, after, mask=np.ones(before.shape, bool))
    assert method == "linear"
    assert gains[0] == pytest.approx(1 / 1.25, rel=0.03)
    assert offsets[0] == pytest.approx(-12.0 / 1.25, abs=1.5)


def test_band_roles_common_to_both_dates(world: np.ndarray) -> None:
    b = _scene(world, BEFORE_T, (256, 256), bands=("red", "green", "blue"), dtype=np.uint8, name="visual.tif")
    a = _scene(
        world,
        BEFORE_T,
        (256, 256),
        bands=("blue", "green", "red", "nir"),
        gain=40.0,
        dtype=np.uint16,
        seed=2,
        name="analytic.tif",
    )
    pair = align(b, a)
    assert pair.before.bands == pair.after.bands == ("red", "green", "blue")
    assert pair.before.data.dtype == np.uint8
    # AFTER's red is in BEFORE's red scale (uint8 range), not in its own uint16 scale
    red = pair.after.band("red")[pair.valid]
    assert abs(float(np.median(red)) - float(np.median(pair.before.band("red")[pair.valid]))) < 3.0


def test_each_date_keeps_its_own_bands_for_detection(world: np.ndarray) -> None:
    """A NIR band only AFTER has is dropped from the comparison, not from AFTER's own detection scene: that one
    is on the common grid, co-registered like the compared bands, in AFTER's own radiometry."""
    b = _scene(world, BEFORE_T, (256, 256), bands=("red", "green", "blue"), dtype=np.uint8, name="visual.tif")
    a = _scene(
        world,
        Affine(0.8, 0, 500_000, 0, -0.8, 3_800_000),
        (360, 360),
        bands=("blue", "green", "red", "nir"),
        gain=40.0,
        dtype=np.uint16,
        shift_m=(3.0, -2.0),
        seed=2,
        name="analytic.tif",
    )
    pair = align(b, a)
    own_b, own_a = pair.detection_scenes
    assert pair.before_own is None and own_b is pair.before  # BEFORE has nothing beyond the common bands
    assert own_a.bands == ("blue", "green", "red", "nir")
    assert own_a.shape == pair.before.shape and own_a.transform == pair.before.transform
    assert np.array_equal(own_a.valid, pair.after.valid)
    # same content as the compared (normalised) AFTER red, in AFTER's own scale: a linear relation, gain ~ 40
    m = pair.valid
    red_own, red_cmp = own_a.band("red")[m].astype(np.float64), pair.after.band("red")[m].astype(np.float64)
    assert np.corrcoef(red_own, red_cmp)[0, 1] > 0.999
    assert np.median(red_own) / np.median(pair.before.band("red")[m]) == pytest.approx(40.0, rel=0.1)
    # and the co-registration was applied to it: it lines up with BEFORE as well as the compared bands do
    ncc_own = np.corrcoef(red_own, pair.before.band("red")[m].astype(np.float64))[0, 1]
    assert ncc_own > 0.98
    # the reverse order: BEFORE has the NIR band, AFTER none
    rev = align(a.with_(path=Path("analytic_first.tif")), b)
    assert rev.after_own is None and rev.before_own is not None
    assert rev.detection_scenes[0].bands == ("blue", "green", "red", "nir")
    assert rev.before.bands == ("blue", "green", "red")


def test_no_common_band_role_compares_gray(world: np.ndarray) -> None:
    b = _scene(world, BEFORE_T, (256, 256), bands=("red", "green", "blue"))
    a = _scene(world, BEFORE_T, (256, 256), bands=("nir",), seed=2).with_(bands=("pan",))
    pair = align(b, a)
    assert pair.before.bands == pair.after.bands == ("pan",)
    assert pair.before.data.shape[0] == pair.after.data.shape[0] == 1


def test_invalid_pixels_propagate_conservatively(world: np.ndarray, before: Scene) -> None:
    after = _scene(world, Affine(1.2, 0, 500_010, 0, -1.2, 3_799_990), (214, 214), seed=2)
    valid = after.valid.copy()
    valid[50:80, 60:100] = False  # a cloud mask: rows 60-96 m, cols 72-120 m from the corner
    pair = align(before, after.with_(valid=valid))
    assert not pair.valid[62:94, 74:118].any()  # every BEFORE pixel touching the hole is invalid
    assert pair.valid[110:200, 10:200].all()
    assert not pair.after.valid[62:94, 74:118].any() and pair.before.valid[62:94, 74:118].all()


def test_stable_mask_does_not_pull_the_shift_to_zero() -> None:
    # weak structure and a patchy stable mask: masking the images themselves would correlate the mask with
    # itself at zero shift; the mask must only choose where to look
    rng = np.random.default_rng(7)
    base = ndi.gaussian_filter(rng.normal(size=(260, 260)), 2).astype(np.float32) * 60
    ref = base + rng.normal(size=base.shape).astype(np.float32)
    mov = ndi.shift(base, (3.0, -2.0), order=3) + rng.normal(size=base.shape).astype(np.float32)
    stable = ndi.gaussian_filter(rng.normal(size=base.shape), 6) > 0
    (dr, dc), _, quality = estimate_shift(ref, mov, stable=stable, max_shift_px=10, tile_px=64)
    assert quality > 0
    assert (dr, dc) == pytest.approx((3.0, -2.0), abs=0.2)


def test_large_scene_correlates_a_capped_even_sample_of_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    import berthwatch.align as align_mod

    rng = np.random.default_rng(11)
    ref = ndi.gaussian_filter(rng.normal(size=(480, 480)), 2).astype(np.float32)
    mov = ndi.shift(ref, (1.7, -2.6), order=3)
    calls: list[tuple[int, int]] = []
    real = align_mod._pcc

    def spy(a, b, upsample):  # type: ignore[no-untyped-def]
        calls.append(a.shape)
        return real(a, b, upsample)

    monkeypatch.setattr(align_mod, "_pcc", spy)
    stable = np.ones(ref.shape, bool)
    full, _, q_full = estimate_shift(ref, mov, stable=stable, max_shift_px=10, tile_px=48)
    n_full = sum(s == (48, 48) for s in calls)  # tile correlations (the whole-image coarse one is larger)
    calls.clear()
    capped, _, q_capped = estimate_shift(ref, mov, stable=stable, max_shift_px=10, tile_px=48, max_tiles=12)
    assert n_full > 300  # half-overlapping 48 px tiles over 480 px: every structured tile without a cap
    assert sum(s == (48, 48) for s in calls) == 12
    for est in (full, capped):
        assert est == pytest.approx((1.7, -2.6), abs=0.1)
    assert q_capped > 0.5 and q_full > 0.5
