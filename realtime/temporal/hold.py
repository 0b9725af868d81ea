"""``hold``: less flicker in stylised video without optical flow.

Feed-forward style nets answer small input changes (sensor noise, compression) with large output
changes, so static regions shimmer. Where the input did not change beyond a noise threshold we
hold the previous output (an exponential moving average); where it did change, the new output
wins. A large mean change (a scene cut) resets the history so nothing from the old shot bleeds
into the new one. Strength 0 is off; 1 holds static pixels completely.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.checks import unit
from realtime.temporal.base import Infer, TemporalStage


class HoldStage(TemporalStage):
    """Blends each stylised frame with the previous output where the input stayed the same."""

    name = "hold"

    def __init__(self, strength: float = 0.0, threshold: float = 12.0, cut_threshold: float = 30.0) -> None:
        self.strength = check_strength(strength)
        self.threshold = threshold  # grey levels: input changes below this count as noise
        self.cut_threshold = cut_threshold  # mean grey-level change that marks a scene cut
        self._prev_input: np.ndarray | None = None
        self._prev_output: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        self._prev_input = None
        self._prev_output = None

    def set_strength(self, strength: float) -> None:
        self.strength = check_strength(strength)
        if self.strength == 0.0:
            self.reset()

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:
        return self.apply(frame, infer(frame))

    def apply(self, content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """Stabilise ``stylized`` (uint8 BGR) given the ``content`` frame it came from (same size)."""
        if self.strength <= 0.0:
            return stylized
        # Blurred grey input: the change map should follow objects, not pixel noise.
        grey = cv2.GaussianBlur(cv2.cvtColor(content, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)
        out = stylized.astype(np.float32)
        prev_in, prev_out = self._prev_input, self._prev_output
        if prev_in is None or prev_in.shape != grey.shape or prev_out is None or prev_out.shape != out.shape:
            self._prev_input, self._prev_output = grey, out
            return stylized
        diff = np.abs(grey - prev_in)
        if float(diff.mean()) > self.cut_threshold:
            self.cuts += 1
            self._prev_input, self._prev_output = grey, out
            return stylized
        # 1 where the input is unchanged, falling to 0 at twice the noise threshold.
        hold = np.clip(2.0 - diff / self.threshold, 0.0, 1.0)
        hold = cv2.GaussianBlur(hold, (7, 7), 0) * self.strength
        blended = out + (prev_out - out) * hold[..., None]
        self._prev_input, self._prev_output = grey, blended
        return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def check_strength(strength: float) -> float:
    return unit(strength, "stability strength")
