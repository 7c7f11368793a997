"""Shared CLI plumbing: the root group, error handling (exit 2, one line), logging, settings options."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from berthwatch import __version__
from berthwatch.config import Settings, load_settings
from berthwatch.errors import BerthwatchError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_BATCH_FAILURES = 1
EXIT_BAD_INPUT = 2


class BerthwatchCLIError(click.ClickException):
    """A BerthwatchError at the CLI boundary: one line on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"berthwatch: error: {self.format_message()}", err=True)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Examples:
  berthwatch info sample_tiles/*.tif
  berthwatch detect sample_tiles/20250118_081523_ssc7_u0001_visual.tif --out out/detect
  berthwatch compare BEFORE.tif AFTER.tif --out out/tartus
  berthwatch batch tiles/ --out out/batch
""",
)
@click.version_option(__version__, prog_name="berthwatch")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug); shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bars.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """berthwatch: what changed in a port between dated satellite images, object by object.

    Vessels departed, arrived or stayed; quay equipment (vehicles, containers) loaded away or appeared;
    with change maps, reports and annotated images.
    """
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet


def handle_errors(func: F) -> F:
    """Turn BerthwatchError into a one-line message and exit code 2 (traceback only with -v)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BerthwatchError as exc:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and (ctx.find_root().obj or {}).get("verbose"):
                logging.getLogger("berthwatch").exception("error")
            raise BerthwatchCLIError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def settings_options(func: F) -> F:
    """--config FILE and repeated --set section.key=value."""
    func = click.option(
        "--set",
        "set_",
        multiple=True,
        metavar="SECTION.KEY=VALUE",
        help="Override one setting, e.g. --set vessel.min_length_m=12 (repeatable).",
    )(func)
    func = click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML settings file ([vessel], [equipment], [water], [align], [match] tables).",
    )(func)
    return func


def memory_option(func: F) -> F:
    """--max-memory GIB: the working-memory budget of detection, as a tile size."""
    return click.option(
        "--max-memory",
        "max_memory",
        type=click.FloatRange(min=0.0, min_open=True),
        default=None,
        metavar="GIB",
        help="Working memory for detection in GiB (default 5.5). Larger scenes are detected tile by tile, "
        "with overlapping margins; results do not depend on it.",
    )(func)


def tile_pixels(max_memory: float | None) -> int | None:
    """Largest detection tile (pixels) for a memory budget in GiB; None keeps the library default."""
    from berthwatch.tiling import BYTES_PER_PIXEL

    return None if max_memory is None else max(1, int(max_memory * 1024**3 / BYTES_PER_PIXEL))


def build_settings(config: str | None, set_: tuple[str, ...]) -> Settings:
    return load_settings(config, list(set_))


def quiet(ctx: click.Context | None = None) -> bool:
    ctx = ctx or click.get_current_context(silent=True)
    return bool(ctx and (ctx.find_root().obj or {}).get("quiet"))
