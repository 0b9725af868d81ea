"""The interface every inference backend implements.

A backend runs one model's per-frame network: ``run(frame, code, alpha)`` takes an OpenCV frame
(uint8 BGR, H×W×3) and returns the stylised frame of the same size and type. Keeping uint8 at
the boundary lets exported graphs do the conversions on the device, off the Python hot path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from models.base import StyleCode, StyleModel


@dataclass(frozen=True)
class BackendInfo:
    """What is really running: shown in overlays and benchmark tables."""

    name: str  # "torch", "onnxruntime", "tensorrt"
    device: str  # "cpu", "cuda:0", provider name...
    precision: str  # "fp32" or "fp16"
    detail: str = ""  # e.g. the ONNX Runtime execution provider actually used

    def __str__(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        return f"{self.name} {self.device} {self.precision}{extra}"


class Backend(ABC):
    """Runs one model's per-frame network on frames."""

    #: (width, height) of the frame ``auto``'s probe runs (realtime.backends.factory.probe)
    probe_size: tuple[int, int] = (64, 64)

    def __init__(self, model: StyleModel) -> None:
        self.model = model  # still used for style encoding (once per style, in PyTorch)
        self.selection = ""  # set by realtime.backends.factory: what was picked and why

    @property
    @abstractmethod
    def info(self) -> BackendInfo: ...

    @abstractmethod
    def run(self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0) -> np.ndarray:
        """Stylise one uint8 BGR frame; returns a uint8 BGR frame of the same size."""

    def close(self) -> None:
        """Release device memory and sessions."""
