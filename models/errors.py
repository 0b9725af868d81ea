"""The models' errors: checkpoints and model names (the root, ``StylizerError``, is in ``core/errors.py``)."""

from core.errors import StylizerError


class WeightsError(StylizerError):
    """A checkpoint is missing, corrupted, or does not fit the network."""


class ModelError(StylizerError):
    """An unknown model name, or a model asked for something it does not support."""
