"""The project's exception tree.

Every error a user can cause derives from :class:`StylizerError`; ``main.py`` prints its message
as one line and exits non-zero, so the message must say what is wrong and what to do. Each layer
keeps its own: inputs, weights and models here; artifacts and runtimes in ``export/errors.py``;
sources and sinks in ``realtime/errors.py``; clusters in ``cluster/``.
"""


class StylizerError(Exception):
    """Base class for every error the app reports to a user without a traceback."""


class InputError(StylizerError):
    """A user-supplied file, value or option is missing, unreadable or out of range."""


class WeightsError(StylizerError):
    """A checkpoint is missing, corrupted, or does not fit the network."""


class ModelError(StylizerError):
    """An unknown model name, or a model asked for something it does not support."""
