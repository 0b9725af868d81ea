"""The root of the project's exception tree.

Every error a user can cause derives from :class:`StylizerError`; ``main.py`` prints its message
as one line and exits non-zero, so the message must say what is wrong and what to do. Each layer
keeps its own below this root: weights and models in ``models/errors.py``; artifacts and runtimes in
``export/errors.py``; sources and sinks in ``realtime/errors.py``; clusters in ``cluster/``.
"""


class StylizerError(Exception):
    """Base class for every error the app reports to a user without a traceback."""


class InputError(StylizerError):
    """A user-supplied file, value or option is missing, unreadable or out of range."""
