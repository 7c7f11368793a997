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


@dataclass(frozen=True)
class VesselConfig:
    """Vessel detection (detect.py)."""

    min_length_m: float = 8.0  # boats shorter than this are not reported
    max_length_m: float = 450.0  # longer than the largest ships afloat: not a vessel
    max_width_m: float = 70.0


@dataclass(frozen=True)
class EquipmentConfig:
    """Vehicle and container detection (detect.py)."""

    max_pixel_size_m: float = 1.2  # coarser imagery: equipment is not searched (said in the summary)
    min_length_m: float = 3.0
    max_length_m: float = 16.0  # longer than a 40 ft container or a semi-trailer: not equipment


@dataclass(frozen=True)
class AlignConfig:
    """Co-registration and radiometric normalisation (align.py)."""

    max_shift_m: float = 60.0  # a larger estimated shift is refused, never applied blindly
    min_overlap_fraction: float = 0.05  # of the BEFORE footprint
    min_overlap_m2: float = 10_000.0
    tile_m: float = 200.0  # side of the tiles on which the shift is estimated independently (robust median)
    min_tiles: int = 3  # fewer structured tiles agreeing on one shift: not applied, flagged
    min_quality: float = 0.15  # agreement x gradient correlation below this: not applied, flagged


@dataclass(frozen=True)
class MatchConfig:
    """Object matching between dates (match.py)."""

    max_vessel_shift_m: float = 25.0  # a moored vessel may swing/shift this much and still have stayed
    max_equipment_shift_m: float = 3.0
    length_tolerance: float = 0.3  # relative length difference beyond which it is another object


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
                    kwargs[key] = type(default)(val)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"setting {sec}.{key}={val!r} is not a {type(default).__name__}", path=source
                    ) from exc
            sections[sec] = dataclasses.replace(current, **kwargs)
        return Settings(**sections)


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
