"""Command-line interface: a thin click layer over the library. The only place that prints or sets up logging.

Each subcommand lives in its own module and is registered below.
"""

from __future__ import annotations

from berthwatch.cli._common import main

# Subcommand modules register themselves on ``main`` when imported (one line each).
from berthwatch.cli import info as _info  # noqa: F401  isort: skip
from berthwatch.cli import detect as _detect  # noqa: F401  isort: skip
from berthwatch.cli import compare as _compare  # noqa: F401  isort: skip
from berthwatch.cli import evaluate as _evaluate  # noqa: F401  isort: skip
from berthwatch.cli import batch as _batch  # noqa: F401  isort: skip

__all__ = ["main"]
