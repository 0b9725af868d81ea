"""The PyQt6 desktop app: live view, style gallery, controls, recording and keyframe preview.

Import :mod:`gui.qt_env` (done by :func:`gui.app.run_app`) before creating a
``QApplication``: opencv-python points Qt at its own bundled Qt5 plugins on import.
"""
