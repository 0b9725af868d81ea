"""Best-effort presentation times for decoded frames: increasing, never two frames at (almost) one time.

A decoder hands frames out in presentation order, but the times they carry are only as good as the
file's. DivX/Xvid-era AVIs (MPEG-4 part 2 with packed B-frames) and some remuxed files give the
right frames with their pts swapped in pairs (1, 2, 3, 5, 4, 6, 8, 7 …); Matroska and AVI give no
dts to fall back on. Like a player, we take the times as a set and hand them out in order: the
frames are held in a short look-ahead window and each one leaving it gets the smallest pts in the
window. A frame without a pts takes its dts (moved onto the pts timeline by the first frame's
pts - dts), else the previous time plus one frame. A time not after the previous one by at least
``min_gap`` (a millisecond, or a quarter frame at over 250 fps: a broken file, a timestamp reset)
becomes the previous time plus one frame, so the writer never stacks frames microseconds apart.
The gap is absolute, not a share of the average frame: a variable-rate screen recording averaging
5 fps has bursts 16 ms apart that must stay where they are. ``repairs`` counts the frames whose
time was changed.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

WINDOW = 4  # frames held back: deeper than the swaps real files show (one pair, or a B-frame pyramid)


class BestEffortTimes:
    """Iterate ``(frame, seconds)`` over decoded PyAV frames with repaired, strictly increasing times."""

    def __init__(self, frames: Iterable[Any], time_base: Fraction, period: float, window: int = WINDOW) -> None:
        self._frames = iter(frames)
        self.time_base = Fraction(time_base)
        self.period = float(period)
        self.min_gap = min(self.period / 4, 0.001)
        self.window = max(1, window)
        self._queue: deque = deque()
        self._times: list[int] = []  # min-heap of the queued frames' pts
        self._offset: int | None = None  # pts - dts of the first frame that has both
        self._last: float | None = None
        self._ended = False
        self.repairs = 0
        self.first_repair: int | None = None  # output index of the first frame whose time was changed
        self._out = 0

    def __iter__(self) -> Iterator[tuple[Any, float]]:
        return self

    def _fill(self) -> None:
        while not self._ended and len(self._queue) < self.window:
            try:
                frame = next(self._frames)
            except StopIteration:
                self._ended = True
                return
            if self._offset is None and frame.pts is not None and frame.dts is not None:
                self._offset = frame.pts - frame.dts
            self._queue.append(frame)
            if frame.pts is not None:
                heapq.heappush(self._times, frame.pts)

    def __next__(self) -> tuple[Any, float]:
        self._fill()
        if not self._queue:
            raise StopIteration
        frame = self._queue.popleft()
        if frame.pts is not None:
            pts = heapq.heappop(self._times)  # the earliest time in the window: this frame is shown first
        elif frame.dts is not None:
            pts = frame.dts + (self._offset or 0)
        else:
            pts = None
        t = float(pts * self.time_base) if pts is not None else None
        if t is None or (self._last is not None and t < self._last + self.min_gap):
            t = (self._last + self.period) if self._last is not None else 0.0
            changed = True
        else:
            changed = pts != frame.pts
        if changed:
            if self.first_repair is None:
                log.info("frame %d: its timestamp (%s) is out of order; using %.4f s", self._out, frame.pts, t)
                self.first_repair = self._out
            self.repairs += 1
        self._last = t
        self._out += 1
        return frame, t
