"""One small worker pattern for every background job of the app (after superqt's ``_qthreading``).

A ``ThreadWorker`` runs ``work()`` in its own QThread and reports through signals, which Qt
delivers on the GUI thread: ``progress`` while it runs, then ``result`` (or ``cancelled`` when it
was aborted, or ``errored`` with a one-line message), then always ``ended``. ``abort()`` asks it
to stop; ``join(timeout)`` aborts and waits. ``TaskQueue`` runs functions one at a time, in order,
each in such a worker (model loading, style encoding).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal

from core.errors import StylizerError

log = logging.getLogger(__name__)


class ThreadWorker(QObject):
    """Runs :meth:`work` in a QThread of its own; subclasses implement ``work`` and check ``aborted``."""

    progress = pyqtSignal(object)
    result = pyqtSignal(object)
    cancelled = pyqtSignal()
    errored = pyqtSignal(str)
    ended = pyqtSignal()

    what = "background job"  # how an unexpected failure is introduced to the user

    def __init__(self) -> None:
        super().__init__()
        self._abort = threading.Event()
        self.thread: QThread | None = None

    def work(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def on_abort(self) -> None:
        """Called (from any thread) when asked to stop: wake whatever ``work`` waits on."""

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self) -> QThread:
        self.thread = QThread()
        self.thread.setObjectName(type(self).__name__)
        self.moveToThread(self.thread)
        self.thread.started.connect(self._run)
        # Direct: quit from the worker thread itself, so a GUI thread blocked in join() is released.
        self.ended.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.start()
        return self.thread

    def abort(self) -> None:
        self._abort.set()
        self.on_abort()

    def join(self, timeout_ms: int = 1000) -> bool:
        """Abort and wait; True when the thread ended within ``timeout_ms``.

        A step that cannot be interrupted (one frame, one optimiser step) may outlast the timeout:
        then wait for it anyway, since Qt aborts the process when a running QThread is destroyed.
        """
        self.abort()
        if self.thread is None or self.thread.wait(timeout_ms):
            return True
        log.warning("%s is finishing a step; waiting for it", self.what)
        self.thread.wait(60_000)
        return False

    def _run(self) -> None:
        try:
            value = self.work()
        except StylizerError as exc:
            self._emit(self.errored, str(exc))
        except Exception as exc:  # a bug in a background job must reach the user, not kill the app
            log.exception("%s failed", self.what)
            self._emit(self.errored, f"{self.what} failed: {type(exc).__name__}: {exc}")
        else:
            if self.aborted:
                self._emit(self.cancelled)
            else:
                self._emit(self.result, value)
        finally:
            self._emit(self.ended)

    @staticmethod
    def _emit(signal, *value: object) -> None:
        try:
            signal.emit(*value)
        except RuntimeError:  # the window closed while this job ran: nobody is left to tell
            log.debug("a background job finished after its window closed")


class FunctionWorker(ThreadWorker):
    """A worker around one function call."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn

    def work(self) -> Any:
        return self.fn()


class TaskQueue:
    """Functions run one at a time in submission order, each in a FunctionWorker; results on the GUI thread."""

    def __init__(self, name: str = "background job") -> None:
        self.name = name
        self._queue: deque[FunctionWorker] = deque()
        self._current: FunctionWorker | None = None
        self._ending: list[FunctionWorker] = []  # kept until their QThread has finished: Qt aborts otherwise

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[str], None]) -> None:
        """Run ``fn()`` after the tasks before it; ``on_done(result)`` or ``on_error(message)`` follow."""
        worker = FunctionWorker(fn)
        worker.what = self.name
        worker.result.connect(on_done)
        worker.errored.connect(on_error)
        worker.ended.connect(self._next)
        self._queue.append(worker)
        if self._current is None:
            self._next()

    def pending(self) -> int:
        return len(self._queue) + (self._current is not None)

    def _next(self) -> None:
        if self._current is not None:
            self._ending.append(self._current)
        self._ending = [w for w in self._ending if w.thread is not None and not w.thread.isFinished()]
        self._current = self._queue.popleft() if self._queue else None
        if self._current is not None:
            self._current.start()

    def wait(self, timeout_ms: int = 1000) -> bool:
        """Drop queued tasks and wait for the running one; True when it ended in time."""
        self._queue.clear()
        workers = self._ending + ([self._current] if self._current is not None else [])
        return all(w.thread is None or w.thread.wait(timeout_ms) for w in workers)
