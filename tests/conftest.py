"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TILES = ROOT / "sample_tiles"


def _real_data_dir() -> Path:
    env = os.environ.get("BERTHWATCH_REAL_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/data/real when present (CI has it beside the clone); tests using it skip otherwise."""
    path = _real_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path}")
    return path


@pytest.fixture(scope="session")
def sample_tiles() -> Path:
    return SAMPLE_TILES
