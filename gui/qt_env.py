"""Make PyQt6 find its own platform plugins even when OpenCV was imported first.

opencv-python ships Qt5 and, on ``import cv2``, sets ``QT_QPA_PLATFORM_PLUGIN_PATH`` to its
bundled Qt5 plugins; PyQt6 then fails to load a platform plugin ("could not load the Qt platform
plugin"). Importing cv2 here first and pointing the variable back at PyQt6's plugins fixes that
whatever the import order elsewhere.
"""

from __future__ import annotations

import os

import cv2  # noqa: F401  - imported for its side effect on the environment, which we then undo


def fix_qt_plugin_path() -> str:
    """Point ``QT_QPA_PLATFORM_PLUGIN_PATH`` at PyQt6's plugins; returns the path set."""
    from PyQt6.QtCore import QLibraryInfo

    plugins = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] = os.path.join(plugins, "platforms")
    os.environ.pop("QT_QPA_FONTDIR", None)  # cv2 may point this at its own fonts folder too
    return os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]
