"""``berthwatch batch FOLDER --out DIR``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from berthwatch.cli._common import (
    EXIT_BATCH_FAILURES,
    build_settings,
    handle_errors,
    main,
    quiet,
    settings_options,
)


@main.command(
    epilog="""\b
Examples:
  berthwatch batch tiles/ --out out/batch
  berthwatch batch tiles/ --out out/batch --mode first --workers 2
  berthwatch batch tiles/ --out out/batch --reference 2025-01-18
  berthwatch batch tiles/ --out out/batch --scheduler tcp://scheduler-host:8786
\b
Running the same command again skips pairs already complete (their folder holds summary.json).
Exit codes: 0 all done; 1 some tile or pair failed (see batch.json / index.html); 2 bad usage or input.
"""
)
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--mode",
    type=click.Choice(["consecutive", "first", "reference"]),
    default=None,
    help="Pairs per place: each date against the previous one (consecutive, default), against the first date, "
    "or against --reference.",
)
@click.option("--reference", default=None, metavar="YYYY-MM-DD", help="Compare every date against this date.")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None, help="Local worker processes [cores].")
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run on an existing dask.distributed scheduler (e.g. tcp://host:8786) instead of local processes.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Leave out files or folders matching this pattern (relative path or name; repeatable).",
)
@click.option(
    "--dates",
    "dates_csv",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV with columns path,date giving dates for files that carry none.",
)
@click.option(
    "--min-overlap",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True),
    default=0.3,
    show_default=True,
    help="Tiles are one place when their footprints overlap by this share of the smaller one.",
)
@click.option("--aoi", default=None, type=click.Path(dir_okay=False), help="GeoJSON polygon(s) of the port area.")
@click.option("--overwrite", is_flag=True, help="Compare again pairs already complete.")
@settings_options
@handle_errors
def batch(
    folder: str,
    out: str,
    mode: str | None,
    reference: str | None,
    workers: int | None,
    scheduler: str | None,
    exclude: tuple[str, ...],
    dates_csv: str | None,
    min_overlap: float,
    aoi: str | None,
    overwrite: bool,
    config: str | None,
    set_: tuple[str, ...],
) -> None:
    """Compare every place in FOLDER date after date, in parallel.

    Finds rasters recursively (*.tif, *.tiff, *.jp2, *.vrt; not UDM2 masks nor berthwatch outputs), groups
    tiles of the same place by footprint overlap, orders them by date and compares pairs of dates. Writes one
    compare folder per pair ({place}_{before}_{after}/), timeseries.csv, timeseries.png, batch.json and
    index.html into OUT. A bad tile or a failed pair is recorded and the batch carries on.
    """
    from tqdm import tqdm

    from berthwatch import batch as lib

    if mode == "reference" and reference is None:
        raise click.UsageError("--mode reference needs --reference YYYY-MM-DD")
    if reference is not None and mode not in (None, "reference"):
        raise click.UsageError(f"--reference cannot be combined with --mode {mode}")
    settings = build_settings(config, set_)
    dates = lib.read_dates_csv(dates_csv) if dates_csv else None
    out_path = Path(out)
    silent = quiet()
    # dask's own INFO chatter (scheduler and nanny start/stop) only with -vv; importing distributed sets its
    # loggers from dask's config, so import it first
    import distributed  # noqa: F401

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    with tqdm(
        total=100, desc="reading tiles", bar_format="{desc}: {percentage:3.0f}%|{bar}|", disable=silent,
        file=sys.stderr, leave=False,
    ) as bar:  # fmt: skip

        def tiles_progress(message: str, fraction: float) -> None:
            bar.n = round(100 * fraction)
            bar.refresh()

        the_plan = lib.plan(
            folder,
            mode=mode or ("reference" if reference else "consecutive"),
            reference=reference,
            exclude=(out_path, *exclude),
            dates=dates,
            min_overlap=min_overlap,
            progress=tiles_progress,
        )
    if not silent:
        click.echo(
            f"{len(the_plan.places)} place(s), {len(the_plan.pairs)} pair(s) to compare; "
            f"{len(the_plan.failures)} tile(s) unreadable",
            err=True,
        )
    failed = 0
    with tqdm(total=len(the_plan.pairs), desc="pairs", unit="pair", disable=silent, file=sys.stderr) as bar:

        def on_pair(outcome: lib.PairOutcome) -> None:
            nonlocal failed
            failed += outcome.status == "failed"
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)

        result = lib.run(
            the_plan,
            out_path,
            settings=settings,
            workers=workers,
            scheduler=scheduler,
            aoi=aoi,
            overwrite=overwrite,
            on_pair=on_pair,
        )
    click.echo(
        f"{len(result.outcomes)} pair(s): {result.count('ok')} compared, {result.count('skipped')} already complete, "
        f"{result.count('failed')} failed"
    )
    for f in result.failures:
        where = f"pair {f.pair}" if f.pair else f.path
        click.echo(f"failed: {where} [{f.stage}] {f.error}: {f.reason}")
    for s in the_plan.skipped:
        if not s.reason.startswith("UDM2"):
            click.echo(f"left out: {s.path}: {s.reason}")
    click.echo(f"outputs: {result.out_dir / lib.INDEX_HTML}")
    if not result.ok:
        click.get_current_context().exit(EXIT_BATCH_FAILURES)
