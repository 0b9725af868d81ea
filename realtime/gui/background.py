"""Run slow setup work (model loading, style encoding) off the GUI thread, results back as signals."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from models.errors import StylizerError

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = pyqtSignal(object)
    failed = pyqtSignal(str)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self.fn, self.signals = fn, signals

    def run(self) -> None:
        try:
            result = self.fn()
        except StylizerError as exc:
            self._emit(self.signals.failed, str(exc))
        except Exception as exc:  # report, never crash the app from a pool thread
            log.exception("background task failed")
            self._emit(self.signals.failed, f"{type(exc).__name__}: {exc}")
        else:
            self._emit(self.signals.done, result)

    @staticmethod
    def _emit(signal, value: object) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the window closed while this task ran: nobody is left to tell
            log.debug("background task finished after its window closed")


class BackgroundTasks:
    """A private thread pool; with one thread, tasks run one at a time in submission order."""

    def __init__(self, threads: int = 1) -> None:
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(threads)
        self._signals: set[_Signals] = set()  # kept alive until each task reports

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[str], None]) -> None:
        """Run ``fn()`` in the pool; ``on_done(result)`` or ``on_error(message)`` run on the GUI thread."""
        signals = _Signals()
        self._signals.add(signals)
        signals.done.connect(on_done)
        signals.failed.connect(on_error)
        signals.done.connect(lambda _: self._signals.discard(signals))
        signals.failed.connect(lambda _: self._signals.discard(signals))
        self.pool.start(_Task(fn, signals))

    def pending(self) -> int:
        return len(self._signals)

    def wait(self, timeout_ms: int = 1000) -> bool:
        """Drop queued tasks and wait for the running one; True when the pool is idle."""
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)
