"""Errors of exported artifacts and of the runtimes that run them.

``BackendError`` is here rather than in ``realtime/backends``: exporting a TensorRT engine needs
the same runtime as running one, and export sits below realtime in the layers.
"""

from core.errors import StylizerError


class ArtifactError(StylizerError):
    """An exported artifact (ONNX file, TensorRT engine) is missing, corrupt or mismatched."""


class BackendError(StylizerError):
    """An inference backend or runtime is not available on this machine or failed to load."""
