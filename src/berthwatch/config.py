"""All tunable settings, in one place, in physical units.

Every size and distance is in metres (or square metres) and is converted to pixels with the scene's ground
pixel size at run time — never a pixel count. ``Settings`` groups one frozen dataclass per pipeline stage.
A TOML file (``--config FILE``) and ``--set section.key=value`` options override the defaults; the effective
values are written to ``summary.json``.

Each stage module owns its own section: add a field there with a comment saying what it means physically.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from berthwatch.errors import ConfigError


@dataclass(frozen=True)
class WaterConfig:
    """Water/land segmentation (masks.py)."""

    min_water_area_m2: float = 20_000.0  # water bodies smaller than this are not harbour water
    min_land_hole_m2: float = 400.0  # land specks inside water smaller than this are filled (ships are kept)
    max_hole_m2: float = 30_000.0  # land enclosed by water up to this area (a ship at anchor) is searched as water
    max_moored_width_m: float = 90.0  # land narrower than this jutting into water (hull, rafted pair) is searched
    texture_z: float = 4.0  # (no NIR) water pixels rougher than the water interior by this many robust sigmas are land
    ndwi_margin: float = 2.0  # (NDWI) water's local mean index lies this many local sigmas above the threshold
    quay_tolerance_m: float = 60.0  # the quay line is straightened to this tolerance (about a hull beam)
    min_moored_beam_m: float = 8.0  # quay-line bumps narrower than this are slivers of a jagged outline
    min_vessel_area_m2: float = 60.0  # quay-line bumps smaller than this are not hulls
    min_moored_elongation: float = 2.0  # quay-line bumps must be at least this elongated to be hulls
    min_moored_fill: float = 0.93  # ... and be rectangular (area / moment-equivalent rectangle; a triangle: 0.87)
    # pixel-accurate water of one date without NIR (water_extent): a local water colour model
    colour_z: float = 3.0  # pixels within this RMS band contrast of the local water colour are water
    colour_window_m: float = 300.0  # window of the local water colour statistics
    colour_smooth_m: float = 1.0  # Gaussian smoothing (sigma) before the colour test (sensor noise)
    colour_interior_m: float = 30.0  # the water colour is learned this far inside the coarse water mask


@dataclass(frozen=True)
class VesselConfig:
    """Vessel detection (detect.py)."""

    min_length_m: float = 8.0  # boats shorter than this are not reported
    max_length_m: float = 450.0  # longer than the largest ships afloat: not a vessel
    max_width_m: float = 70.0
    min_width_m: float = 2.0  # narrowest hull considered (with min_length_m sets the smallest blob kept)
    # no hull is this many beams long (ships ~3-10, with a pixel of measuring error to spare): a longer, thinner
    # object is a quay edge, a boom's shadow or a wake trail
    max_elongation: float = 15.0
    background_window_m: float = 600.0  # side of the window for local water statistics (wider than ships)
    low_z: float = 2.5  # hysteresis: pixels this anomalous (RMS band contrast) may belong to an object
    high_z: float = 4.0  # hysteresis: a candidate needs pixels at least this anomalous (the classifier decides)
    shore_fringe_m: float = 5.0  # mixed land/water pixels this close to the quay line never seed an object
    close_m: float = 2.0  # gaps this small inside a hull (hatches, deck shadows) are closed
    wake_fade_fraction: float = 0.35  # the hull ends where the along-axis contrast drops below this x peak
    foam_nir_ratio: float = 0.35  # bright objects whose NIR contrast is below this x visible are foam-like
    foam_nir_drop: float = 0.8  # a wake's NIR/visible contrast ratio is below this x the hull's
    wake_nir_drop: float = 0.65  # hull/wake split: foam's NIR/visible ratio is below this x the hull's (foam
    # loses ~40% at 850 nm, a painted hull does not; Dierssen 2019)
    wake_split_gain: float = 0.5  # hull/wake split: the two stretches explain at least this share of the
    # along-axis profile's variance (a real change, not noise along one hull)
    wake_min_hull_beams: float = 1.0  # the hull kept by a split is at least this many beams long
    # V-shaped wake without NIR (detect._cut_v_wake): hull + Kelvin arms + trail segmented as one hollow V
    v_max_solidity: float = 0.6  # a V fills at most this share of its convex hull (a hull, even with shadow, ~0.8+)
    v_open_ratio: float = 2.5  # its far end is at least this x wider across the axis than its apex end
    v_min_half_angle_deg: float = 8.0  # and it opens at least this much (Kelvin arms: 19.5 deg)
    v_arm_beams: float = 9.0  # the arms leave the hull's sides by its stern (they may run along the hull)
    v_split_gain: float = 0.4  # the hull/foam change along the central branch explains this share of variance
    v_min_hull_beams: float = 2.0  # a hull is at least this many beams long (vessels: length/beam >= ~3)
    v_max_hull_beams: float = 9.0  # and at most this many (slender hulls, ~ L/B 8)
    min_rafted_beam_m: float = 6.0  # a blob is tested for rafted hulls only if at least twice this wide
    rafted_max_elongation: float = 4.5  # blobs more elongated than this are single hulls
    rafted_seam_contrast: float = 1.0  # seam/step strength (in units of the object's contrast spread)
    min_part_elongation: float = 2.0  # each part of a split must itself be hull-shaped
    min_confidence: float = 0.8  # detections below this classifier probability are dropped (training scenes are
    # class-balanced, so probabilities run high; 0.8 maximised leave-one-port-out F1 on sen2ships and bench F1)
    max_ndvi: float = 0.3  # candidates whose median NDVI is above this are vegetation, not hulls (needs red + NIR)
    max_overlap: float = 0.5  # a detection overlapping a more confident one by this share of the smaller footprint
    # is a piece of the same ship (hull and its shadow, superstructure, the shore-band half): dropped
    shore_band_m: float = 60.0  # land this close to water is segmented for hulls alongside quays (0: off)
    shore_segment_scale: float = 100.0  # Felzenszwalb scale for that segmentation (contrast units; larger: bigger)
    shore_min_region_m2: float = 16.0  # smallest region of that segmentation (about the smallest hull reported)
    shore_water_like: bool = True  # regions of that segmentation as contrasted as water (< low_z) are water, so a
    # hull behind a sliver of water that the straightened quay line called land still touches the water
    shore_merge_z: float = 2.0  # adjacent regions whose mean contrasts differ less than this are merged (0: off)
    shore_merge_fill: float = 0.7  # ... and anomalous ones joined end to end whose union fills this much of its
    # moment rectangle (one hull cut by a crane boom or a deck shadow; 0: off)
    ring_m: float = 20.0  # ring around a candidate where water contrast and shore contact are measured
    end_strip_m: float = 20.0  # depth of the strips past a candidate's ends compared with it (a breakwater continues)
    clutter_window_m: float = 300.0  # window for the share of anomalous water pixels (sea clutter) near a candidate


@dataclass(frozen=True)
class EquipmentConfig:
    """Vehicle and container detection (equipment.py)."""

    max_pixel_size_m: float = 1.2  # coarser imagery: equipment is not searched (said in the summary)
    min_length_m: float = 3.0
    max_length_m: float = 16.0  # longer than a 40 ft container or a semi-trailer: not equipment
    min_width_m: float = 1.5  # narrower: road markings, rails
    max_width_m: float = 3.9  # wider: buildings, sheds, crane gantries (a tank is ~3.5 m; blur adds a pixel)
    max_elongation: float = 7.0  # longer for its width than a 40 ft container (5): rails, kerbs, crane shadows
    cell_m: float = 6.0  # the pavement background is computed on cells this wide (about a 20 ft module)
    background_m: float = 45.0  # window of the local pavement median and noise (much wider than a row)
    low_z: float = 3.0  # hysteresis on band-RMS contrast to the local pavement (local robust sigmas)
    high_z: float = 6.0
    min_rectangularity: float = 0.4  # pixel area / oriented rectangle area (proposals; the classifier decides)
    water_margin_m: float = 1.5  # land this close to water (quay edge, fenders) is not searched
    roof_min_m: float = 20.0  # bright regions at least this wide are roofs (not searched)
    roof_z: float = 4.0  # how bright (robust z over pavement) a roof-scale opening must be
    max_texture: float = float("inf")  # rougher ground (x the smoothest pavement) is not searched; inf: classifier
    shadow_max_ratio: float = 0.8  # a shadow is darker than this fraction of the pavement in every band
    shadow_min_m: float = 6.0  # dark regions at least this wide (building shadows) give the sky-lit band ratios
    shadow_tolerance: float = 0.06  # band ratios this close (RMS) to pavement-to-shadow mixtures are shadow
    shadow_min_fraction: float = 0.3  # ... and at least this far from pavement towards full shadow
    max_row_length_m: float = 110.0  # merged container rows up to this length are cut into modules
    max_block_width_m: float = 16.0  # merged blocks up to this wide (about 5 rows) are cut into rows
    container_20ft_m: float = 6.06  # ISO container module lengths used to cut merged rows
    container_40ft_m: float = 12.19
    container_width_m: float = 2.44  # ISO container width (rows side by side are cut at this module)
    row_gap_m: float = 0.5  # typical gap between rows side by side (added to the module width)
    end_gap_m: float = 0.4  # typical gap between containers end to end
    seam_contrast: float = 0.25  # a 12 m strip is two 20 ft modules when its middle is this much weaker
    ring_m: float = 4.0  # ring around a candidate where its surroundings (contrast, shadow) are measured
    min_confidence: float = 0.5  # candidates below this classifier probability are dropped
    levels_z: tuple[float, ...] = (1.5, 2.0, 3.0, 4.5, 7.0, 11.0, 17.0)  # contrast levels at which pieces are proposed
    max_overlap: float = 0.3  # a proposal covering this share of a more probable one (or vice versa) is that item


@dataclass(frozen=True)
class AlignConfig:
    """Co-registration and radiometric normalisation (align.py)."""

    max_shift_m: float = 60.0  # a larger estimated shift is refused, never applied blindly
    min_overlap_fraction: float = 0.05  # of the BEFORE footprint
    min_overlap_m2: float = 10_000.0
    tile_m: float = 200.0  # side of the tiles on which the shift is estimated independently (robust median)
    min_tiles: int = 3  # fewer structured tiles agreeing on one shift: not applied, flagged
    min_quality: float = 0.15  # agreement x gradient correlation below this: not applied, flagged
    # AFTER's warp onto BEFORE's grid, "bilinear" or "cubic". Bilinear blurs AFTER by up to a half-pixel kernel that
    # BEFORE lacks; cubic keeps it as sharp. Cubic: change bench F1 +0.004 vessels, +0.014 equipment, but on the
    # Tartus sample 8 false equipment changes instead of 1, so bilinear stays the default.
    resampling: str = "bilinear"

    def __post_init__(self) -> None:
        if self.resampling not in ("bilinear", "cubic"):
            raise ConfigError(f"align.resampling must be 'bilinear' or 'cubic', got {self.resampling!r}")


@dataclass(frozen=True)
class MatchConfig:
    """Object matching between dates (match.py)."""

    max_vessel_shift_m: float = 25.0  # a moored vessel may swing/shift this much and still have stayed
    max_equipment_shift_m: float = 3.0
    length_tolerance: float = 0.3  # relative length difference beyond which it is another object
    max_heading_change_deg: float = 30.0  # an elongated object turning more than this is another object
    change_sigma: float = 4.0  # a pixel changed when its normalised two-date difference exceeds this (robust sigma)
    min_changed_fraction: float = 0.5  # share of a footprint that must have changed to call it departed/arrived
    same_ncc: float = 0.6  # footprint correlation between dates at or above which it is the same object
    max_invalid_fraction: float = 0.25  # more of a footprint without data at the other date: status unknown
    min_gone_contrast: float = 2.0  # a detected hull this contrasted (robust sigma) and water-like at the other date
    # (a quarter of that contrast or less) changed, however few of its pixels pass change_sigma
    min_change_pixels: int = 12  # an object seen at one date only needs this many pixels to be verified at all
    # equipment: the bare ground around an item (away from every detection of both dates) is the local reference
    ground_radius_m: float = 20.0  # bare ground this close to an item's outline is its reference (0: off)
    ground_margin_m: float = 3.0  # ground this close to any detection (its cast shadow, neighbours) is not bare
    ground_shift_sigma: float = 3.0  # an item changed when its median pixel changed by this many robust sigmas
    # of the bare ground's own change (after removing the bare ground's local change: haze, shadow, gain)
    min_quiet_ground: float = 0.25  # fewer of the bare ground's pixels unchanged: cloud or its shadow (unknown)
    same_occupant_change: float = 0.5  # an item's colour against the bare ground changed by less than this share of
    # itself, unlike the ground at both dates: the same occupant at both (partly shaded, or missed at one date)
    shadow_pair_m: float = 10.0  # a dark item gone and a dark item come this close, each in a sky-lit shadow at
    # its own date only: one shadow that turned with the sun (a crane leg's, a mast's), not two items (0: off)
    # recover vessels the detector missed from hull-shaped regions of strong two-date change anywhere on the water
    # (off by default: on rough water it mostly finds whitecaps and small boats with wakes; berth covers quays)
    recover: bool = False
    recover_sigma: float = 8.0  # a recovered region must hold pixels at least this changed (robust sigma)
    min_recover_contrast: float = 4.0  # hull vs surrounding water contrast (robust sigma) at the date it is there
    min_recover_elongation: float = 2.0  # recovered regions must be at least this elongated (length / width)
    recover_clutter_window_m: float = 200.0  # neighbourhood whose background change rate gates recovery
    max_recover_clutter: float = 0.01  # recover only where < this share of the surrounding water changed
    berth: bool = True  # departed/arrived vessels where the water surface itself changed (berths.py)
    berth_min_beam_m: float = 4.0  # water-change regions are opened by a disk this wide (no hull is narrower)
    berth_max_elongation: float = 12.0  # longer for their beam than any hull: shadows of booms, wakes
    berth_pair_ring_m: float = 10.0  # opposite water change this close beside a region ...
    berth_max_opposite: float = 0.25  # ... over this share of its area: a shifted shadow or a moved object
    berth_shore_m: float = 10.0  # a berth region lies this close to non-water of both dates (quay, other hull)
    berth_clutter_window_m: float = 100.0  # the berth's own water, whose flip rate gates it (max_recover_clutter)
    berth_min_diff_z: float = 1.5  # a region with few pixels past change_sigma is kept only when its median change
    # is this many noise sigmas (a dark hull that left dark water changes every pixel a little; a region whose ring
    # changed around an unchanged footprint, a moved shadow, does not)
    berth_outline_agreement: float = 0.75  # a detector outline less inside the water change is measured on it
    other_change_sigma: float = 5.0  # "other surface change" in the change map: magnitude above this
    min_other_change_m2: float = 50.0  # ... over at least this connected area
    object_margin_m: float = 5.0  # changes this close to a reported object belong to it (not "other")


@dataclass(frozen=True)
class Settings:
    """Every setting berthwatch uses, grouped by stage."""

    water: WaterConfig = field(default_factory=WaterConfig)
    vessel: VesselConfig = field(default_factory=VesselConfig)
    equipment: EquipmentConfig = field(default_factory=EquipmentConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    match: MatchConfig = field(default_factory=MatchConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def updated(self, overrides: dict[str, dict[str, Any]], *, source: str = "settings") -> Settings:
        """A copy with ``{section: {key: value}}`` applied; unknown sections/keys raise ConfigError."""
        sections: dict[str, Any] = {}
        for f in fields(self):
            sections[f.name] = getattr(self, f.name)
        for sec, values in overrides.items():
            if sec not in sections:
                raise ConfigError(f"unknown settings section [{sec}] (known: {', '.join(sections)})", path=source)
            if not isinstance(values, dict):
                raise ConfigError(f"[{sec}] must be a table of key = value", path=source)
            current = sections[sec]
            known = {f.name: f for f in fields(current)}
            kwargs: dict[str, Any] = {}
            for key, val in values.items():
                if key not in known:
                    raise ConfigError(f"unknown setting {sec}.{key} (known: {', '.join(sorted(known))})", path=source)
                default = getattr(current, key)
                try:
                    kwargs[key] = _coerce(val, default)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"setting {sec}.{key}={val!r} is not a {type(default).__name__}", path=source
                    ) from exc
            try:
                sections[sec] = dataclasses.replace(current, **kwargs)
            except ConfigError as exc:  # a value the section itself refuses (__post_init__)
                raise ConfigError(str(exc), path=source) from None
        return Settings(**sections)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(value: Any, default: Any) -> Any:
    """``value`` (from TOML or a ``--set`` string) as the type of the default it replaces."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError(f"not a boolean: {value!r}")
    if isinstance(default, tuple):
        items = value if isinstance(value, list | tuple) else str(value).strip("()[] ").split(",")
        kind = type(default[0]) if default else float
        return tuple(kind(v) for v in items if str(v).strip())
    return type(default)(value)


def load_settings(path: str | Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Defaults, then a TOML file, then ``section.key=value`` strings, later winning."""
    settings = Settings()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError("settings file not found", path=p) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML ({exc})", path=p) from exc
        settings = settings.updated(data, source=str(p))
    for item in overrides or []:
        key, sep, value = item.partition("=")
        sec, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        settings = settings.updated({sec: {name: value.strip()}}, source="--set")
    return settings
