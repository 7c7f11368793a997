"""Atomic output folders: write everything into a temporary sibling, move into place at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from berthwatch.errors import OutputError


@contextmanager
def atomic_output_dir(out_dir: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it replaces ``out_dir``; on error it vanishes.

    A failed run therefore leaves ``out_dir`` as it was before (absent, or the previous complete result).
    """
    out = Path(out_dir)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder ({exc.strerror})", path=parent) from exc
    if out.exists() and not out.is_dir():
        raise OutputError("output path exists and is not a folder", path=out)
    if out.exists() and not overwrite:
        raise OutputError("output folder exists (use --overwrite)", path=out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    try:
        yield tmp
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.replace(out, trash / "old")
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
