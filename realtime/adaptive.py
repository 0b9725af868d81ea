"""Adaptive speed for live sessions: the processing size follows the machine's measured costs, with hysteresis.

Two governors share one interface (``observe`` once per shown frame, a new size or None):

- ``SizeGovernor`` (``--target-fps F``): keyframes at about F per second.
- ``AutoSize`` (``--size auto``, the live default): the largest size at which every camera frame is
  shown *and* keyframes come at least ``MIN_KEYFRAME_FPS`` times a second. It measures two costs at
  the size in use: the keyframe rate (the network runs back to back in its own thread) and the
  share of wall time the per-frame work (resize, propagation, upscale) takes of the frames'
  arrival; both are taken as proportional to the processing size's pixels to predict the other
  sizes. The first choice comes after about a second; later ones after ``settle_s`` each, stepping
  down as soon as either figure fails and up only with a margin, so it does not hunt.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LIVE_SIZES = (160, 240, 360, 480, 720)  # short sides the governors move between
MIN_KEYFRAME_FPS = 8.0  # keyframes per second below which moving things visibly lag behind their texture
MAX_BUSY = 0.8  # per-frame work as a share of the frame interval above which frames start to drop
AUTO_START = 360  # the size the first second is measured at (a frame with a shorter side starts there)


class SizeGovernor:
    """Steps the processing short side down when keyframes come slower than ``0.8 × target`` and up when the
    next size would still reach ``1.2 × target`` (cost taken as proportional to pixels); waits ``settle_s``
    after each change, so one slow frame never makes it hunt."""

    reason = ""

    def __init__(self, target_fps: float, settle_s: float = 3.0, sizes: tuple[int, ...] = LIVE_SIZES) -> None:
        self.target = float(target_fps)
        self.settle_s = settle_s
        self.sizes = sizes
        self._since: tuple[float, int] | None = None  # (time, keyframe count) when the current size began

    def observe(self, now: float, keyframes: int, size: int, frame_short: int, busy_s: float = 0.0) -> int | None:
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
        self.reason = f"keyframes {rate:.1f}/s for a target of {self.target:g}"
        if new is not None:
            log.info(
                "keyframes at %.1f fps for a target of %.1f: processing size %d → %d", rate, self.target, current, new
            )
        return new


class AutoSize:
    """``--size auto``: the largest size that shows every frame with keyframes at ≥ ``min_keyframes``/s.

    ``observe`` gets the keyframe count so far and the seconds the last frame's own work took
    (``busy_s``); the share of wall time spent that way, ``busy``, is what decides whether frames
    drop (the stylizer thread must be idle part of each frame interval to keep up with the camera).
    """

    def __init__(
        self,
        min_keyframes: float = MIN_KEYFRAME_FPS,
        max_busy: float = MAX_BUSY,
        first_s: float = 1.0,
        settle_s: float = 3.0,
        sizes: tuple[int, ...] = LIVE_SIZES,
    ) -> None:
        self.min_keyframes = min_keyframes
        self.max_busy = max_busy
        self.first_s = first_s
        self.settle_s = settle_s
        self.sizes = sizes
        self.reason = "auto: measuring the first second"
        self._since: tuple[float, int] | None = None  # (time, keyframe count) when the current size began
        self._busy = 0.0  # seconds of per-frame work since then
        self._decided = 0  # choices made so far

    def start_size(self, frame_short: int) -> int:
        """The size the first second runs at."""
        return min(AUTO_START, frame_short)

    def observe(self, now: float, keyframes: int, size: int, frame_short: int, busy_s: float = 0.0) -> int | None:
        """A new size to use, or None to keep ``size`` (0 = the frame's own ``frame_short``)."""
        if self._since is None:
            self._since, self._busy = (now, keyframes), 0.0
            return None
        self._busy += busy_s
        t0, k0 = self._since
        span = now - t0
        if span < (self.first_s if self._decided == 0 else self.settle_s) or keyframes - k0 < 2:
            return None
        current = size or frame_short
        rate, busy = (keyframes - k0) / span, self._busy / span
        candidates = [s for s in self.sizes if s <= frame_short] or [frame_short]
        fits = [s for s in candidates if self._fits(s, current, rate, busy, margin=s > current)]
        if self._decided == 0:  # the first choice may jump: it is made from the costs just measured
            new = fits[-1] if fits else candidates[0]
        elif not self._fits(current, current, rate, busy, margin=False):
            lower = [s for s in candidates if s < current]
            new = max([s for s in fits if s < current] or lower[:1] or [current])
        else:
            higher = [s for s in fits if s > current]
            new = higher[0] if higher else current
        self._decided += 1
        self._since, self._busy = (now, keyframes), 0.0
        why = (
            f"keyframes {rate:.1f}/s (≥ {self.min_keyframes:g}), frame work {busy:.0%} of the time "
            f"(≤ {self.max_busy:.0%}) at {current} px"
        )
        if new == current:
            larger = [s for s in candidates if s > current]
            self.reason = f"auto {current} px: {why}" + (f"; {larger[0]} px would not keep up" if larger else "")
            return None
        self.reason = f"auto {new} px (from {current}): {why}"
        log.info("%s", self.reason)
        return new

    def _fits(self, size: int, current: int, rate: float, busy: float, margin: bool) -> bool:
        """Whether ``size`` is predicted to keep both figures, from the rate and busy share at ``current``."""
        k = (size / current) ** 2  # cost ∝ pixels
        slack = 1.15 if margin else 1.0  # moving up needs room to spare: a wrong guess drops frames
        return rate / k >= self.min_keyframes * slack and busy * k * slack <= self.max_busy
