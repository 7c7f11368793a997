"""Exception hierarchy.

Every error berthwatch raises on purpose derives from :class:`BerthwatchError`. Subclasses also derive from
the builtin they resemble (``OSError`` for unreadable files, ``ValueError`` for bad content), as rasterio does.
Messages are one line and name the file and the values involved. Never match on message text: match on class.
"""

from __future__ import annotations

from pathlib import Path


class BerthwatchError(Exception):
    """Root of all berthwatch errors. ``path`` names the offending file when there is one."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        full = f"{self.path}: {message}" if self.path else message
        super().__init__(full)


class InputError(BerthwatchError, ValueError):
    """Input content that berthwatch cannot use."""


class NotARasterError(BerthwatchError, OSError):
    """The file does not exist, is empty, or is not a raster GDAL can open."""


class EmptyFileError(NotARasterError):
    """The file has zero bytes."""


class TruncatedRasterError(NotARasterError):
    """The raster opened but its pixel data cannot be read in full (truncated or corrupt)."""


class MissingCRSError(InputError):
    """The raster has no coordinate reference system."""


class UnsupportedTransformError(InputError):
    """The raster's geotransform is rotated or sheared (or missing)."""


class NoValidDataError(InputError):
    """The raster holds no valid pixels after applying nodata, alpha, internal masks and UDM2."""


class UnsupportedBandsError(InputError):
    """The band layout cannot be interpreted (e.g. 2 bands, or unknown descriptions)."""


class MissingDateError(InputError):
    """No acquisition date could be found for the raster."""


class SidecarError(InputError):
    """A metadata sidecar (XML/JSON/UDM2) is malformed or unsafe."""


class NoOverlapError(InputError):
    """Two scenes do not overlap enough to be compared."""


class AlignmentError(BerthwatchError, RuntimeError):
    """Co-registration failed or gave a shift beyond the allowed bound."""


class ConfigError(InputError):
    """Settings file or option values are invalid."""


class VectorInputError(InputError):
    """A GeoJSON input (AOI, predictions, truth) is unreadable or of the wrong shape."""


class OutputError(BerthwatchError, OSError):
    """The output folder cannot be written."""


class SchedulerError(BerthwatchError, ConnectionError):
    """The dask scheduler given to :func:`berthwatch.batch.run` cannot be reached (or is not a scheduler address)."""
