"""``berthwatch info``: what the reader understood of each raster (date and its source, CRS, bands, masks)."""

from __future__ import annotations

import datetime as dt
import json

import click

from berthwatch.cli._common import handle_errors, main
from berthwatch.io import SceneInfo, scene_info


def _format(info: SceneInfo) -> str:
    epsg = info.crs.to_epsg()
    crs = f"EPSG:{epsg}" if epsg else "custom"
    date = info.date.isoformat()
    if info.acquired is not None:
        date += f" ({info.acquired.isoformat()})"
    bands = ", ".join(
        f"{i} {role}" + (f" [{desc}]" if desc and desc.lower() != role else "")
        for i, (role, desc) in enumerate(zip(info.bands, info.descriptions or (None,) * info.count, strict=False), 1)
    )
    masks = []
    if info.nodata is not None:
        masks.append(f"nodata={info.nodata:g}")
    if info.alpha_band is not None:
        masks.append(f"alpha band {info.alpha_band}")
    masks.append(f"UDM2 {info.udm_path.name}" if info.udm_path else "no UDM2")
    west, south, east, north = info.footprint.bounds
    lines = [
        str(info.path),
        f"  date:        {date}  from {info.date_source}",
        f"  crs:         {crs} ({info.crs_name})",
        f"  pixel size:  {info.pixel_size[0]:.6g} x {info.pixel_size[1]:.6g} CRS units = {info.pixel_size_m:.2f} m",
        f"  size:        {info.width} x {info.height} px, {info.count} band(s) {info.dtype}",
        f"  bands:       {bands}",
        f"  layout:      {info.layout}",
        f"  valid:       {100.0 * info.valid_fraction:.1f} % ({'; '.join(masks)})",
        f"  footprint:   lon {west:.5f} .. {east:.5f}, lat {south:.5f} .. {north:.5f}",
    ]
    if info.warped_to is not None:
        lines.append(f"  read as:     warped to {info.warped_to.to_string()} (square metric pixels; outputs in it)")
    return "\n".join(lines)


@main.command(
    epilog="""\b
Examples:
  berthwatch info sample_tiles/*.tif
  berthwatch info scan.tif --date 2025-01-18
  berthwatch info tiles/*.tif --json > inventory.json
""",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--date",
    "date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    default=None,
    help="Acquisition date YYYY-MM-DD for files that carry none (overrides any date found; applies to every FILE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (one object per file) for scripts.")
@handle_errors
def info(files: tuple[str, ...], date: dt.datetime | None, as_json: bool) -> None:
    """Show how berthwatch reads each FILE: date and where it came from, CRS, pixel size (CRS units and
    metres), size, band roles, layout, valid fraction and whether a Planet UDM2 mask was found.

    Every file is read before anything is printed: if one is unusable, nothing is printed on stdout and
    the command fails with exit code 2 and one line naming that file.
    """
    day = date.date() if date is not None else None
    infos = [scene_info(f, date=day) for f in files]
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
    else:
        click.echo("\n\n".join(_format(i) for i in infos))
