"""Start the desktop app: Qt environment, options from the command line and saved settings, event loop."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

from realtime.errors import SinkError
from gui.qt_env import fix_qt_plugin_path
from gui.settings import GuiSettings, SettingsStore
from models.registry import feed_forward_models

DEFAULT_SIZE = "auto"  # realtime.adaptive.AutoSize: the largest short side this machine keeps up with


def check_display() -> None:
    """Fail with a clear message, not a Qt abort, when there is no screen to open a window on."""
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        raise SinkError(
            "no display found ($DISPLAY is unset): run the GUI on a desktop session, use "
            "'xvfb-run python main.py gui …', or try 'python main.py webcam --no-window'"
        )


def gallery_styles(folder: Path | None) -> list[Path]:
    """The starting gallery: the images in ``folder``, or every style on the search path."""
    from core.errors import InputError
    from models.registry import default_store
    from models.styles import list_styles_on_path
    from gui.gallery import image_paths

    if folder is not None:
        if not folder.is_dir():
            raise InputError(f"styles folder {folder} does not exist; give a folder of style images")
        styles = image_paths([folder])
        if not styles:
            raise InputError(f"styles folder {folder} holds no images (JPEG, PNG…)")
        return styles
    return list_styles_on_path(default_store())


def merge_options(cli: dict, saved: GuiSettings):
    """Command line over saved settings over defaults."""
    from gui.main_window import GuiOptions

    folder = cli.get("styles") or (Path(saved.styles_folder) if saved.styles_folder else None)
    if folder is not None and not Path(folder).is_dir() and not cli.get("styles"):
        folder = None  # the remembered folder is gone: fall back to the search path quietly
    models = feed_forward_models()
    model = cli.get("model") or (saved.model if saved.model in models else None) or "microast"
    return GuiOptions(
        source=cli.get("source", 0),
        styles=gallery_styles(Path(folder) if folder else None),
        styles_folder=Path(folder) if folder else None,
        model=model,
        backend=cli.get("backend") or saved.backend or "auto",
        device=cli.get("device") or "cpu",
        size=cli.get("size")
        if cli.get("size") is not None
        else (saved.size if saved.size is not None else DEFAULT_SIZE),
        output_dir=Path(cli.get("output_dir") or "."),
        loop=cli.get("loop", True),
        temporal=cli.get("temporal") or "flow",
    )


def run_app(cli: dict, settings_path: Path | None = None) -> int:
    """Open the window and run the event loop until it closes; returns the exit code."""
    fix_qt_plugin_path()
    check_display()
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("stylizer")
    settings = SettingsStore(settings_path)
    saved = settings.load()
    options = merge_options(cli, saved)
    window = MainWindow(options, settings, feed_forward_models())
    if saved.geometry is not None:
        window.restoreGeometry(saved.geometry)
    window.show()
    window.start()
    try:
        with close_on_signals(window):
            return app.exec()
    finally:
        window.shutdown()  # already done by closing, unless the loop ended another way


class close_on_signals:  # noqa: N801 - used as a context manager
    """Ctrl-C / SIGTERM close the window (the same clean path as its close button).

    Python runs signal handlers only when the interpreter gets control, which Qt's event loop
    does not give it; ``signal.set_wakeup_fd`` writes to a socket that a QSocketNotifier watches,
    so the handler runs at once without a polling timer.
    """

    def __init__(self, window) -> None:
        self.window = window

    def __enter__(self) -> "close_on_signals":
        from PyQt6.QtCore import QSocketNotifier

        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._wsock.fileno())
        self._notifier = QSocketNotifier(self._rsock.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)
        self._old = {sig: signal.signal(sig, lambda *_: self.window.close()) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _drain(self) -> None:
        try:
            self._rsock.recv(64)
        except OSError:  # nothing left to read: the handler has run already
            pass

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_fd)
        self._notifier.setEnabled(False)
        self._rsock.close()
        self._wsock.close()
