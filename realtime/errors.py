"""Errors of the engine's inputs and outputs: cameras, streams and files that cannot be read or written."""

from core.errors import StylizerError


class SourceError(StylizerError):
    """A camera, stream or video file could not be opened or read."""


class SinkError(StylizerError):
    """An output (window, file, virtual camera) could not be opened or written."""
