"""Adaptive speed for live sessions: the processing size follows a target keyframe rate, with hysteresis."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LIVE_SIZES = (160, 240, 360, 480, 720)  # short sides the governor moves between


class SizeGovernor:
    """Steps the processing short side down when keyframes come slower than ``0.8 × target`` and up when the
    next size would still reach ``1.2 × target`` (cost taken as proportional to pixels); waits ``settle_s``
    after each change, so one slow frame never makes it hunt."""

    def __init__(self, target_fps: float, settle_s: float = 3.0, sizes: tuple[int, ...] = LIVE_SIZES) -> None:
        self.target = float(target_fps)
        self.settle_s = settle_s
        self.sizes = sizes
        self._since: tuple[float, int] | None = None  # (time, keyframe count) when the current size began

    def observe(self, now: float, keyframes: int, size: int, frame_short: int) -> int | None:
        """A new size to use, or None to keep ``size`` (0 = the frame's own ``frame_short``)."""
        if self._since is None:
            self._since = (now, keyframes)
            return None
        t0, k0 = self._since
        if now - t0 < self.settle_s:
            return None
        rate = (keyframes - k0) / (now - t0)
        current = size or frame_short
        smaller = [s for s in self.sizes if s < current]
        larger = [s for s in self.sizes if current < s <= frame_short]
        new = None
        if rate < 0.8 * self.target and smaller:
            new = smaller[-1]
        elif larger and rate * (current / larger[0]) ** 2 > 1.2 * self.target:
            new = larger[0]
        self._since = (now, keyframes)
        if new is not None:
            log.info("keyframes at %.1f fps for a target of %.1f: processing size %d → %d", rate, self.target,
                     current, new)
        return new
