"""The interface of a temporal stage, and the stage that does nothing (``off``).

A stage sits at processing resolution between inference and upscaling. It receives the frame and
an ``infer`` callable instead of a finished stylisation, so a stage may reuse earlier results and
skip inference on frames between keyframes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]  # uint8 BGR frame → uint8 BGR stylisation of the same size


class TemporalStage:
    """Turns a stream of frames into a stream of stylised frames; ``reset`` forgets the past."""

    name = "?"
    strength: float = 0.0

    def reset(self) -> None:
        """Forget every earlier frame (the output's identity changed, or the scene did)."""

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:  # pragma: no cover - interface
        """The stylised version of ``frame`` (uint8 BGR at processing size)."""
        raise NotImplementedError

    def quiesce(self) -> None:
        """Wait until no inference started by this stage is still running (before its backend closes)."""

    def close(self) -> None:
        """Release threads or buffers."""


class OffStage(TemporalStage):
    """Every frame stylised on its own."""

    name = "off"

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:
        return infer(frame)
