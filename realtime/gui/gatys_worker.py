"""Gatys optimisation of one keyframe in a QThread, with progress, cancel and one torch thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal

from models.errors import StylizerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyframeJob:
    """One keyframe to optimise: frames are uint8 BGR; size is the longest side in px."""

    content: np.ndarray
    style: np.ndarray
    iterations: int = 100
    size: int = 256
    style_size: int = 256
    content_weight: float | None = None  # None: GatysConfig's default
    style_weight: float | None = None
    device: str = "cpu"
    torch_threads: int = 1  # on a 2-core machine one thread leaves the other for the live view


class GatysModelHolder:
    """Builds the Gatys VGG once (it takes seconds) and hands the same model to every keyframe job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, object] = {}

    def get(self, device: str):
        from models.gatys import Gatys

        with self._lock:
            if device not in self._models:
                self._models[device] = Gatys().to(device).eval()
            return self._models[device]


class GatysWorker(QObject):
    """Runs :class:`models.gatys.Gatys` on a job; lives in its own QThread (see :meth:`start`)."""

    progress = pyqtSignal(int, dict)  # step, losses
    finished = pyqtSignal(object)  # uint8 BGR result
    cancelled = pyqtSignal()
    errored = pyqtSignal(str)

    def __init__(self, job: KeyframeJob, models: GatysModelHolder | None = None) -> None:
        super().__init__()
        self.job = job
        self.models = models or GatysModelHolder()
        self._stop = threading.Event()
        self.thread: QThread | None = None

    def start(self) -> QThread:
        """Move to a new thread and run; the thread quits when the job ends."""
        self.thread = QThread()
        self.thread.setObjectName("gatys-keyframe")
        self.moveToThread(self.thread)
        self.thread.started.connect(self.run)
        for signal in (self.finished, self.cancelled, self.errored):
            # Direct: quit from the worker thread itself, so a GUI thread blocked in wait() is released.
            signal.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.start()
        return self.thread

    def cancel(self) -> None:
        self._stop.set()

    @property
    def is_cancelled(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout_ms: int = 2000) -> bool:
        """Cancel and wait for the thread to end; True when it did."""
        self.cancel()
        return self.thread is None or self.thread.wait(timeout_ms)

    def run(self) -> None:
        import torch

        torch.set_num_threads(self.job.torch_threads)  # per-thread setting in this worker's thread
        try:
            image = self._optimize()
            if image is None:
                self.cancelled.emit()
                return
        except StylizerError as exc:
            self.errored.emit(str(exc))
            return
        except Exception as exc:  # a bug in a background job must reach the user, not kill the app
            log.exception("keyframe preview failed")
            self.errored.emit(f"keyframe preview failed: {exc}")
            return
        if self._stop.is_set():
            self.cancelled.emit()
        else:
            self.finished.emit(image)

    def _optimize(self) -> np.ndarray | None:
        from models.gatys import GatysConfig
        from models.keyframe import KeyframeOptions, gatys_keyframe

        job = self.job
        weights = {k: v for k, v in (("content_weight", job.content_weight), ("style_weight", job.style_weight))
                   if v is not None}
        options = KeyframeOptions(size=job.size, style_size=job.style_size,
                                  gatys=GatysConfig(iterations=job.iterations, **weights))
        model = self.models.get(job.device)
        if self._stop.is_set():  # cancelled while the VGG weights were loading
            return None
        image, _ = gatys_keyframe(model, job.content, job.style, options, progress=self._report,
                                  should_stop=self._stop.is_set)
        return image

    def _report(self, step: int, losses: dict) -> None:
        self.progress.emit(int(step), {k: float(v) for k, v in losses.items()})
