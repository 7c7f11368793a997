"""``berthwatch detect IMAGE --out DIR``."""

from __future__ import annotations

import click

from berthwatch.cli._common import (
    build_settings,
    handle_errors,
    main,
    memory_option,
    quiet,
    settings_options,
    tile_pixels,
)
from berthwatch.cli._progress import stage_bar


@main.command(
    epilog="""\b
Examples:
  berthwatch detect sample_tiles/20250118_081523_ssc7_u0001_visual.tif --out out/detect
  berthwatch detect s2.tif --date 2023-04-26 --set vessel.min_length_m=20 --out out/s2
  berthwatch detect big.tif --max-memory 2 --out out/big
"""
)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--date", default=None, metavar="YYYY-MM-DD", help="Acquisition date if the file carries none.")
@click.option("--aoi", default=None, type=click.Path(dir_okay=False), help="GeoJSON polygon(s) of the port area.")
@memory_option
@settings_options
@handle_errors
def detect(
    image: str,
    out: str,
    date: str | None,
    aoi: str | None,
    max_memory: float | None,
    config: str | None,
    set_: tuple[str, ...],
) -> None:
    """Single-date inventory: vessels (incl. alongside quays) and quay equipment in one image.

    Writes objects.geojson, objects.csv, summary.json and annotated.png into OUT.
    """
    from berthwatch.pipeline import detect_file

    settings = build_settings(config, set_)
    with stage_bar("detect", disable=quiet()) as progress:
        res = detect_file(
            image,
            out,
            date=date,
            settings=settings,
            aoi=aoi,
            max_tile_pixels=tile_pixels(max_memory),
            progress=progress,
        )
    dets = res.result.detections
    n_v = sum(d.kind == "vessel" for d in dets)
    n_e = sum(d.kind == "equipment" for d in dets)
    s = res.result.scene
    click.echo(f"{s.name} ({s.date.isoformat()}, {s.pixel_size_m:.2f} m pixels): {n_v} vessels, {n_e} equipment")
    for note in res.result.notes:
        click.echo(f"note: {note}")
    click.echo(f"outputs: {res.out_dir}")
