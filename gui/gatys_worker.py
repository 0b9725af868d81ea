"""Gatys optimisation of one keyframe in a background thread, with progress, cancel and one torch thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from gui.threads import ThreadWorker

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


class GatysWorker(ThreadWorker):
    """Runs :class:`models.gatys.Gatys` on a job in its own thread; ``result`` carries the uint8 BGR image."""

    what = "keyframe preview"

    def __init__(self, job: KeyframeJob, models: GatysModelHolder | None = None) -> None:
        super().__init__()
        self.job = job
        self.models = models or GatysModelHolder()

    def work(self) -> np.ndarray | None:
        import torch

        from models.gatys import GatysConfig
        from realtime.keyframe import KeyframeOptions, gatys_keyframe

        torch.set_num_threads(self.job.torch_threads)  # per-thread setting in this worker's thread
        job = self.job
        weights = {
            k: v
            for k, v in (("content_weight", job.content_weight), ("style_weight", job.style_weight))
            if v is not None
        }
        options = KeyframeOptions(
            size=job.size, style_size=job.style_size, gatys=GatysConfig(iterations=job.iterations, **weights)
        )
        model = self.models.get(job.device)
        if self.aborted:  # cancelled while the VGG weights were loading
            return None
        image, _ = gatys_keyframe(
            model, job.content, job.style, options, progress=self._report, should_stop=lambda: self.aborted
        )
        return image

    def _report(self, step: int, losses: dict) -> None:
        self.progress.emit((int(step), {k: float(v) for k, v in losses.items()}))
