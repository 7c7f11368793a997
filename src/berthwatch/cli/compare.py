"""``berthwatch compare BEFORE AFTER --out DIR``."""

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

PLURAL = {"vessel": "vessels", "equipment": "equipment"}


@main.command(
    epilog="""\b
Examples:
  berthwatch compare sample_tiles/20250118_081523_ssc7_u0001_visual.tif \\
                     sample_tiles/20250127_082011_ssc9_u0002_visual.tif --out out/tartus
  berthwatch compare a.tif b.tif --before-date 2024-05-01 --after-date 2024-05-09 --out out/ab
  berthwatch compare a.tif b.tif --aoi port.geojson --set vessel.min_length_m=15 --out out/ab
  berthwatch compare big_a.tif big_b.tif --max-memory 3 --out out/big
"""
)
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--before-date", default=None, metavar="YYYY-MM-DD", help="Date of BEFORE if the file has none.")
@click.option("--after-date", default=None, metavar="YYYY-MM-DD", help="Date of AFTER if the file has none.")
@click.option("--aoi", default=None, type=click.Path(dir_okay=False), help="GeoJSON polygon(s) of the port area.")
@memory_option
@settings_options
@handle_errors
def compare(
    before: str,
    after: str,
    out: str,
    before_date: str | None,
    after_date: str | None,
    aoi: str | None,
    max_memory: float | None,
    config: str | None,
    set_: tuple[str, ...],
) -> None:
    """Compare two dated images of a port: what departed, arrived or stayed.

    Writes objects.geojson, objects.csv, summary.json, change_map.tif, before.png, after.png, overview.png,
    report.md and report.html into OUT (atomically: a failed run leaves nothing half-written).
    """
    from berthwatch.pipeline import compare_files

    settings = build_settings(config, set_)
    with stage_bar("compare", disable=quiet()) as progress:
        result = compare_files(
            before,
            after,
            out,
            before_date=before_date,
            after_date=after_date,
            settings=settings,
            aoi=aoi,
            max_tile_pixels=tile_pixels(max_memory),
            progress=progress,
        )
    counts = result.changes.counts()
    b, a = result.pair.before_source, result.pair.after_source
    click.echo(f"{b.name} ({b.date.isoformat()}) -> {a.name} ({a.date.isoformat()})")
    al = result.pair.alignment
    state = "applied" if al.applied else ("FLAGGED: " + al.message if al.flagged else "not applied")
    click.echo(
        f"alignment: shift {al.shift_px[0]:+.2f} rows {al.shift_px[1]:+.2f} cols, "
        f"residual {al.residual_px:.2f} px ({state})"
    )
    for kind, by_status in counts.items():
        parts = ", ".join(f"{n} {s}" for s, n in by_status.items())
        click.echo(f"{PLURAL.get(kind, kind):<11} {parts}")
    changed = [o for o in result.changes.objects if o.kind == "vessel" and o.status in ("departed", "arrived")]
    for o in changed:
        click.echo(f"  {o.id} {o.status}: {o.length_m:.0f} m x {o.width_m:.0f} m, heading {o.heading_deg:.0f} deg")
    for note in result.changes.notes:
        click.echo(f"note: {note}")
    click.echo(f"outputs: {result.out_dir}")
