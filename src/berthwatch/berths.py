"""Vessels that left or came to a berth, from where the water surface itself changed between two dates.

A hull moored flush alongside a quay is hard to find on one date: it touches the quay, may share its
brightness, and its shadow joins it. Two dates make it easy (METHODS.md sections 1 and 6): where a ship lay on
one date there is *open water* on the other. :func:`berthwatch.masks.water_extent` gives each date's water
surface pixel by pixel; a region that is water at one date and not at the other, hull-sized and hull-shaped,
is a vessel that departed (water afterwards) or arrived (water before).

Two things also flip water to non-water and are refused on evidence, not on size alone:

- *moving shadows and displaced objects*: the sun moves between acquisitions, so the shadows of cranes and
  buildings on the water shift sideways; a ship that swung at its berth shifts too. Both leave a region that
  became water right beside one that stopped being water. A departure or arrival has no such partner: a region
  is kept only when the opposite change next to it covers less than ``berth_max_opposite`` of its area.
- *sea clutter and boats under way*: whitecaps and glint flip small patches everywhere on rough water, and a
  small boat's wake makes a hull-sized bright streak. Regions are opened with a disk of ``berth_min_beam_m``
  (no hull is narrower), kept only where the surrounding water flipped at a low rate (``max_recover_clutter``
  in ``berth_clutter_window_m``; flips on the two pixels along quays and hulls that stayed are registration and
  resampling, and specks narrower than half a beam are the classifier's noise: neither is the sea's), and only at
  a *berth*: within
  ``berth_shore_m`` of something that is not water at either date (a quay, a hull that stayed). On open water
  the single-date detector sees hulls whole, with its wake cutting; at the quay it does not, and this is for it.

Measures are robust to the ship's own shadow and superstructure, which join the hull region on the water side:
the hull is the straight band of the region (slices along its principal axis that keep to the median mid-line
and beam), the length its extent along the axis measured again on the band, the beam the median slice width.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage as ndi
from shapely import affinity
from shapely.geometry import Polygon, box
from skimage import morphology

from berthwatch.config import Settings
from berthwatch.geo import oriented_measures, pixel_to_crs, principal_axes
from berthwatch.masks import cast_shadow_date, water_extent
from berthwatch.models import AlignedPair, ChangedObject, Detection, Status

log = logging.getLogger(__name__)

__all__ = ["berth_changes", "water_change"]


def water_change(pair: AlignedPair, *, settings: Settings | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the water surface changed between the dates, from each date's :func:`~berthwatch.masks.water_extent`
    on all of that date's bands (:attr:`AlignedPair.detection_scenes`: NDWI at a date with NIR, even when the other
    date has none and the dates are compared on RGB).

    Returns
    -------
    gone : bool (rows, cols)
        Not water before, water after (something left).
    came : bool (rows, cols)
        Water before, not water after (something came).
    water : bool (rows, cols)
        Water at either date. All three only where both dates are valid.
    """
    settings = settings or Settings()
    scene_before, scene_after = pair.detection_scenes
    wb = water_extent(scene_before, config=settings.water)
    wa = water_extent(scene_after, config=settings.water)
    valid = pair.valid
    return (~wb & wa & valid), (wb & ~wa & valid), ((wb | wa) & valid)


def _slices(u: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-pixel slices along the axis: bin index of each pixel, and per slice its across-axis min/max/presence."""
    bins = np.floor(u - u.min()).astype(int)
    nb = int(bins.max()) + 1
    lo = np.full(nb, np.inf)
    hi = np.full(nb, -np.inf)
    np.minimum.at(lo, bins, t)
    np.maximum.at(hi, bins, t)
    return bins, lo, hi, np.isfinite(lo)


def _hull_pixels(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Which pixels of a region form its straight hull band, without a shadow or wake jutting off one end.

    A hull is a straight band of nearly constant beam; the ship's shadow on the water (cast by its
    superstructure) or a wake leaves the band sideways or narrows. Along the principal axis, slices whose
    mid-line is more than half the median beam off the median mid-line, or that are less than half the median
    beam wide, are outside; the longest run of inside slices (gaps of up to two slices bridged) is the hull.
    """
    u, t, *_ = principal_axes(rr, cc)
    bins, lo, hi, ok = _slices(u, t)
    lo, hi = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    width = hi - lo + 1.0
    mid = (hi + lo) / 2.0
    beam = float(np.median(width[ok]))
    centre = float(np.median(mid[ok]))
    inside = ok & (np.abs(mid - centre) <= beam / 2.0) & (width >= beam / 2.0)
    inside = ndi.binary_closing(inside, structure=np.ones(5, bool)) | inside
    lab, n = ndi.label(inside)
    if n == 0:
        return np.ones(rr.size, dtype=bool)
    sizes = np.bincount(lab)[1:]
    keep_slices = lab == int(np.argmax(sizes)) + 1
    return keep_slices[bins] & (np.abs(t - centre) <= beam)


def _robust_rectangle(rr: np.ndarray, cc: np.ndarray) -> tuple[Polygon, float, float, int]:
    """Oriented rectangle (pixel coordinates) of a region's hull band: its extent along the axis, median beam.

    The hull band (:func:`_hull_pixels`) is found on the region's principal axes, then the axes are measured
    again on the band alone, so a shadow neither lengthens, widens, shifts nor turns the hull.
    """
    sel = _hull_pixels(rr, cc)
    if sel.sum() >= 3:
        rr, cc = rr[sel], cc[sel]
    u, t, x0, y0, major = principal_axes(rr, cc)
    _bins, lo, hi, ok = _slices(u, t)
    beam = float(np.median(hi[ok] - lo[ok])) + 1.0
    mid = float(np.median((hi[ok] + lo[ok]) / 2.0))
    length = float(np.ptp(u)) + 1.0
    umid = (float(u.max()) + float(u.min())) / 2.0
    rect = box(-length / 2.0, -beam / 2.0, length / 2.0, beam / 2.0)
    angle = math.degrees(math.atan2(major[1], major[0]))
    rect = affinity.rotate(rect, angle, origin=(0.0, 0.0))
    # (u, t) -> (x, y): x = u*mx - t*my, y = u*my + t*mx; +0.5 to pixel-square coordinates of the centres
    cx = x0 + umid * major[0] - mid * major[1] + 0.5
    cy = y0 + umid * major[1] + mid * major[0] + 0.5
    return affinity.translate(rect, cx, cy), length, beam, int(rr.size)


def _shadow_on_water(pair: AlignedPair, rr: np.ndarray, cc: np.ndarray) -> str | None:
    """The date at which the water at pixels ``(rr, cc)`` lies in a cast shadow it is not in at the other date.

    A crane's or a building's shadow on the water turns with the sun and leaves a hull-sized patch that is not
    water at one date (too dark) and water at the other. The shaded water keeps only the sky light: every band
    darker, most of all the longest wavelength (:func:`~berthwatch.masks.cast_shadow_date`); a hull that left or
    came changes the bands in the proportions of its own paint.
    """
    if pair.before.bands != pair.after.bands:
        return None
    xb = pair.before.data[:, rr, cc].astype(np.float64)
    xa = pair.after.data[:, rr, cc].astype(np.float64)
    shift = np.median(xa, axis=1) - np.median(xb, axis=1)
    noise = np.maximum(1.4826 * np.median(np.abs(xa - np.median(xa, axis=1, keepdims=True)), axis=1), 1e-6)
    return cast_shadow_date(xb, xa, shift, noise, noise, pair.before.bands)


def _local_rate(flip: np.ndarray, zone: np.ndarray, regions: np.ndarray, window_px: float) -> np.ndarray:
    """Share of the zone's pixels around each pixel that flipped, leaving out the candidate regions."""
    size = max(3, round(window_px) | 1)
    background = zone & ~regions
    flipped = ndi.uniform_filter((flip & background).astype(np.float32), size=size, mode="constant")
    total = ndi.uniform_filter(background.astype(np.float32), size=size, mode="constant")
    return np.where(total > 1e-6, flipped / np.maximum(total, 1e-6), 1.0)


def berth_changes(
    pair: AlignedPair,
    *,
    settings: Settings | None = None,
    flips: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> list[ChangedObject]:
    """Departed and arrived vessels where the water surface changed between the dates (hull-shaped regions).

    Parameters
    ----------
    pair
        The aligned pair.
    settings
        ``settings.match`` (``berth_*``, clutter gate), ``settings.vessel`` (size limits) and ``settings.water``.
    flips
        Precomputed :func:`water_change` of the pair.

    Returns
    -------
    list of :class:`~berthwatch.models.ChangedObject` (kind ``vessel``, ids not yet assigned) whose evidence
    holds ``water_change`` = 1, the region's ``fill`` of its rectangle and ``opposite`` (the share of opposite
    change beside it).
    """
    settings = settings or Settings()
    cfg, vcfg = settings.match, settings.vessel
    gone, came, water = flips if flips is not None else water_change(pair, settings=settings)
    px = pair.before.pixel_size_m
    gs = pair.before.ground_scale
    transform = pair.before.transform
    r = round(cfg.berth_min_beam_m / px / 2.0)  # no opening wider than the narrowest hull (coarse pixels: none)
    opened = (
        {"departed": gone, "arrived": came}
        if r < 1
        else {
            "departed": ndi.binary_opening(gone, structure=morphology.disk(r)),
            "arrived": ndi.binary_opening(came, structure=morphology.disk(r)),
        }
    )
    regions = opened["departed"] | opened["arrived"]
    ring = max(1, round(cfg.berth_pair_ring_m / px))
    shore = max(1, round(cfg.berth_shore_m / px))
    pad = max(ring, shore)
    land = pair.valid & ~water
    # the sea's own flip rate (whitecaps, glint). Not counted: the regions' edges, which the opening shaved off; the
    # two pixels along quays and hulls present at both dates (the mixed pixel, and the one AFTER's resampling
    # spreads the edge over: a sub-pixel registration residual flips them at every edge); specks smaller than half
    # the narrowest beam squared (the per-pixel water classifier's noise on calm water: they could not make a hull)
    sea = (gone | came) & ~ndi.binary_dilation(land, iterations=2)
    speck_px = round(0.5 * cfg.berth_min_beam_m**2 / px**2)
    if speck_px > 1:
        sea = np.asarray(morphology.remove_small_objects(sea, max_size=speck_px - 1))
    rate = _local_rate(
        sea,
        water,
        ndi.binary_dilation(regions, iterations=r + 1),
        cfg.berth_clutter_window_m / px,
    )
    out: list[ChangedObject] = []
    for status, other in (("departed", opened["arrived"]), ("arrived", opened["departed"])):
        lab, _n = ndi.label(opened[status], structure=np.ones((3, 3), bool))
        for k, sl in enumerate(ndi.find_objects(lab), start=1):
            if sl is None:
                continue
            sub = lab[sl] == k
            area_m2 = float(sub.sum()) * px * px
            if area_m2 < vcfg.min_length_m * vcfg.min_width_m:
                continue
            rr, cc = np.nonzero(sub)
            rr, cc = rr + sl[0].start, cc + sl[1].start
            rect_px, length_px, beam_px, n_hull = _robust_rectangle(rr, cc)
            length, beam = length_px * px, beam_px * px
            centre = int(np.median(rr)), int(np.median(cc))
            # the opposite change right beside the region: a shadow or an object that moved sideways
            r0, r1 = max(0, sl[0].start - pad), min(gone.shape[0], sl[0].stop + pad)
            c0, c1 = max(0, sl[1].start - pad), min(gone.shape[1], sl[1].stop + pad)
            here = np.zeros((r1 - r0, c1 - c0), dtype=bool)
            here[rr - r0, cc - c0] = True
            near = ndi.binary_dilation(here, iterations=ring)
            opposite = float((near & other[r0:r1, c0:c1]).sum()) / float(sub.sum())
            reason = ""
            if not (max(vcfg.min_length_m, 3.0 * px) <= length <= vcfg.max_length_m and 0 < beam <= vcfg.max_width_m):
                reason = "size"  # (a hull must also be resolved: at least three pixels long)
            elif not (cfg.min_recover_elongation <= length / beam <= cfg.berth_max_elongation):
                reason = "elongation"
            elif rate[centre] >= cfg.max_recover_clutter:
                reason = "clutter"  # rough or glinting water flips everywhere here
            elif opposite >= cfg.berth_max_opposite:
                reason = "opposite change beside it"
            elif not (ndi.binary_dilation(here, iterations=shore) & land[r0:r1, c0:c1]).any():
                reason = "not at a berth"  # nothing that is not water at either date next to it
            elif _shadow_on_water(pair, rr, cc) == ("before" if status == "departed" else "after"):
                reason = "a cast shadow on the water"  # darker by the sky light only, at the date it is not water
            if reason:
                log.debug("water change at row %d col %d (%.0f x %.0f m): %s", *centre, length, beam, reason)
                continue
            fill = n_hull / max(length_px * beam_px, 1.0)
            geom = pixel_to_crs(rect_px, transform)
            _l, _w, heading, _rect = oriented_measures(geom, ground_scale=gs, crs=pair.before.crs)
            conf = float(np.clip(0.5 + 0.4 * min(fill, 1.0) - opposite, 0.05, 0.9))
            det = Detection(
                geometry=geom,
                kind="vessel",
                confidence=round(conf, 4),
                length_m=length,
                width_m=beam,
                heading_deg=heading if heading < 180.0 else 0.0,
                area_m2=area_m2,
                features={"water_change": 1.0},
            )
            st: Status = "departed" if status == "departed" else "arrived"
            out.append(
                ChangedObject(
                    id="",
                    kind="vessel",
                    status=st,
                    geometry=geom,
                    confidence=det.confidence,
                    length_m=length,
                    width_m=beam,
                    heading_deg=det.heading_deg,
                    area_m2=area_m2,
                    before=det if st == "departed" else None,
                    after=det if st == "arrived" else None,
                    evidence={
                        "water_change": 1.0,
                        "fill": round(min(fill, 1.0), 4),
                        "opposite": round(opposite, 4),
                        "clutter": round(float(rate[centre]), 4),
                    },
                )
            )
    log.debug("berth changes: %d vessels from water change", len(out))
    return out
