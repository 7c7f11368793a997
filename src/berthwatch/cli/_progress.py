"""Progress bars for the CLI (tqdm on stderr), fed by the library's ``progress(stage, fraction)`` callbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def stage_bar(desc: str, *, disable: bool) -> Iterator[Callable[[str, float], None]]:
    """A 0–100 % bar whose postfix names the current stage."""
    # disable=None: tqdm shows the bar only on a terminal, so logs and captured stderr stay clean
    bar = tqdm(
        total=100,
        desc=desc,
        unit="%",
        disable=True if disable else None,
        leave=False,
        bar_format="{l_bar}{bar}| {postfix}",
    )

    def update(stage: str, fraction: float) -> None:
        bar.set_postfix_str(stage)
        bar.update(max(0, round(fraction * 100) - bar.n))

    try:
        yield update
    finally:
        bar.close()
