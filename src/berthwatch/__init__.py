"""berthwatch: object-level change detection for seaports from dated satellite images."""

from __future__ import annotations

import logging

from berthwatch.errors import BerthwatchError
from berthwatch.models import (
    AlignedPair,
    Alignment,
    ChangedObject,
    ChangeSet,
    Detection,
    DetectionResult,
    Scene,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AlignedPair",
    "Alignment",
    "BerthwatchError",
    "ChangeSet",
    "ChangedObject",
    "Detection",
    "DetectionResult",
    "Scene",
    "__version__",
]
