"""``flow``: stylised textures that follow the scene, carried along the optical flow of the input.

A *keyframe* is a stylised frame together with a coordinate map from the current frame into it.
Each new frame extends the map along the flow (frame t → t−1) and samples the keyframe once, so
its texture moves with the content and is never resampled twice. Pixels whose history cannot be
trusted (the forward–backward check fails, the content under them changed, or they came into
view) are *invalid*; validity travels with the map.

- Files (``FlowStage``): every frame is stylised. The output is the current keyframe carried to
  the frame where it is valid; elsewhere (newly visible, occluded) the previous output carried one
  frame on, or where even that fails the fresh stylisation, with feathered seams. Every
  ``interval`` frames the fresh stylisation becomes the next keyframe and fades in over a few
  frames, blended so the style keeps its contrast (a plain average would wash it out); so every
  pixel of a keyframe is sampled once, never resampled again and again. ``strength``
  (``--stability``) sets the interval (every frame at 0, about 2.5 s at 1) and how much of the
  carried output fills in over the fresh one. Scene cuts reset.
- Live (``LiveFlowStage``): the network runs in a thread of its own on the newest frame whenever
  it is free; every frame is shown at once as the latest keyframe carried to it (flow at half
  size). A finished keyframe, computed for a frame a few frames back, is brought to the current
  frame by the map accumulated meanwhile and faded in over a few frames (a linear fade: two
  keyframes of nearby frames carry nearly the same texture). ``strength`` sets the fade's length
  (1: four frames, 0: cut over at once).
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from concurrent.futures import Future, ThreadPoolExecutor, wait

import cv2
import numpy as np

from realtime.temporal.base import Infer, TemporalStage
from realtime.temporal.optical_flow import (FlowEstimator, compose, consistent, contrast_blend, feather,
                                            identity_map, inside, linear_blend, sample, to_grey, to_uint8)

log = logging.getLogger(__name__)

CUT_THRESHOLD = 40.0     # mean grey-level change between frames that marks a scene cut
CHANGE_THRESHOLD = 24.0  # grey levels: content under a carried pixel changed (lighting, a turning face)
MIN_COVER = 0.85         # the next keyframe starts early when the current one covers less of the frame
BLEND_MARGIN = 1         # px around a fill region that its (per-pixel) blend reaches
SEAM_RADIUS = 3          # px: invalid regions are widened and their edges faded over ~2x this


class Keyframe:
    """A stylised frame, its input (grey) and the map from the current frame into it, with validity."""

    def __init__(self, styled: np.ndarray, grey: np.ndarray, track_validity: bool = True) -> None:
        h, w = grey.shape
        self.styled = styled
        self.grey = grey
        self.map = identity_map(h, w)
        self.valid = np.ones((h, w), np.float32)
        self.track_validity = track_validity  # live keyframes live a few frames: only their map matters
        self.age = 0

    def advance(self, positions: np.ndarray, reliable: np.ndarray | None) -> None:
        """Carry the map and validity one frame on: ``positions`` = x + flow(t → t−1)."""
        h, w = self.grey.shape
        self.map = compose(self.map, positions)
        self.age += 1
        if not self.track_validity:
            return
        valid = cv2.remap(self.valid, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0)
        keep = (valid > 0.5) & inside(positions, h, w) & inside(self.map, h, w)  # binary: no slow decay by rounding
        if reliable is not None:
            keep &= reliable
        self.valid = keep.astype(np.float32)

    def check_content(self, grey: np.ndarray) -> None:
        """Invalidate pixels whose input no longer looks like the keyframe's input there."""
        carried = sample(self.grey, self.map)
        diff = cv2.absdiff(cv2.blur(carried, (5, 5)), cv2.blur(grey, (5, 5)))
        self.valid *= diff < CHANGE_THRESHOLD

    def render(self) -> np.ndarray:
        """The keyframe's stylisation carried to the current frame (uint8).

        Bicubic: a keyframe is sampled exactly once per frame from the network's own output, and a
        bilinear read half-way between pixels is a low-pass filter that would wash the brush strokes out.
        """
        return cv2.remap(self.styled, self.map, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """The identity map of an h×w frame, made once per size (read-only: callers add flows to it)."""
    grid = identity_map(h, w)
    grid.flags.writeable = False
    return grid


def _without_specks(reliable: np.ndarray) -> np.ndarray:
    """The consistency mask with isolated failures (flow noise in flat regions) removed: only blobs of
    failures (occlusions) may end a pixel's history, which is a product over every frame since the keyframe."""
    failed = cv2.morphologyEx((~reliable).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return failed == 0


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of ``mask`` grown by ``margin`` px, or None when the mask is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)))


def _is_cut(grey: np.ndarray, previous: np.ndarray) -> bool:
    return float(cv2.absdiff(grey, previous).mean()) > CUT_THRESHOLD


class FlowStage(TemporalStage):
    """Files: carried keyframes (fresh network results, faded in), fills carried from the last output."""

    name = "flow"

    def __init__(self, strength: float = 0.85, preset: str = "fast", flow_scale: float = 0.5,
                 fade_frames: int = 10) -> None:
        self.strength = strength
        self.fade_frames = fade_frames
        self._flow = FlowEstimator(preset, flow_scale)
        self._key: Keyframe | None = None
        self._incoming: Keyframe | None = None  # the next keyframe while it fades in
        self._fade = 0
        self._output: np.ndarray | None = None  # the previous output (float), for pixels no keyframe covers
        self._previous: np.ndarray | None = None  # grey of the previous frame
        self.cuts = 0
        self.keyframes = 0

    def reset(self) -> None:
        self._key = self._incoming = None
        self._output = self._previous = None

    @property
    def interval(self) -> int:
        """Frames between keyframes: 1 at strength 0, about 2.5 s of 24 fps video at 1."""
        return max(1, int(1 + 60 * self.strength ** 2))

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:
        grey = to_grey(frame)
        fresh = infer(frame)
        previous, self._previous = self._previous, grey
        if self._key is None or previous is None or previous.shape != grey.shape or self.strength <= 0:
            return self._restart(fresh, grey)
        if _is_cut(grey, previous):
            self.cuts += 1
            return self._restart(fresh, grey)
        backward, forward = self._flow(grey, previous), self._flow(previous, grey)
        positions = _grid(*grey.shape) + backward
        reliable = _without_specks(consistent(backward, forward, positions))
        h, w = grey.shape
        fill_weight = feather(reliable & inside(positions, h, w), SEAM_RADIUS) * self.strength

        def fallback(box: tuple[slice, slice]) -> np.ndarray:
            """Where no keyframe reaches: the previous output carried one frame on (thin strips, briefly),
            else the fresh stylisation. Only inside ``box``, the part of the frame that needs it."""
            carried = cv2.remap(self._output, positions[box], None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            return linear_blend(carried, fresh[box].astype(np.float32), fill_weight[box])

        for key in (self._key, self._incoming):
            if key is not None:
                key.advance(positions, reliable)
                key.check_content(grey)
        out = self._compose(self._key, fallback)
        if self._incoming is not None:
            self._fade += 1
            ramp = min(1.0, self._fade / self.fade_frames)
            new = self._compose(self._incoming, fallback)
            out = contrast_blend(new, out, np.full((h, w), ramp, np.float32))
            if ramp >= 1.0:
                self._key, self._incoming = self._incoming, None
        elif self._key.age >= self.interval or float(self._key.valid.mean()) < MIN_COVER:
            self._incoming, self._fade = Keyframe(fresh, grey), 0  # carried from the next frame on
            self.keyframes += 1
        self._output = out
        return to_uint8(out)

    @staticmethod
    def _compose(key: Keyframe, fallback) -> np.ndarray:
        """The keyframe carried to this frame, with the fallback filling (feathered) where it is not valid."""
        out = key.render().astype(np.float32)
        weight = feather(key.valid, SEAM_RADIUS)
        box = _box(weight < 1.0, BLEND_MARGIN)
        if box is not None:
            out[box] = linear_blend(out[box], fallback(box), weight[box])
        return out

    def _restart(self, fresh: np.ndarray, grey: np.ndarray) -> np.ndarray:
        self._key, self._incoming = Keyframe(fresh, grey), None
        self._output = fresh.astype(np.float32)
        self.keyframes += 1
        return fresh


class LiveFlowStage(TemporalStage):
    """Live: the network runs asynchronously; every frame is the latest keyframe carried along the flow."""

    name = "flow"

    def __init__(self, strength: float = 0.85, fade_frames: int = 4, flow_scale: float = 0.5) -> None:
        self.strength = strength
        self.fade_frames = fade_frames
        self._flow = FlowEstimator("ultrafast", flow_scale)
        self._lock = threading.Lock()  # guards what the keyframe thread hands over
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyframe")
        self._generation = 0
        self._key: Keyframe | None = None
        self._incoming: Keyframe | None = None  # a finished keyframe being faded in
        self._fade = 0
        self._busy = False
        self._future: Future | None = None
        self._job_key: Keyframe | None = None  # the frame being stylised; its map follows the frames shown meanwhile
        self._ready: Keyframe | None = None    # a finished keyframe, not yet picked up by step()
        self._newest: tuple[np.ndarray, np.ndarray, Infer] | None = None  # frame, grey, infer of the last step
        self._previous: np.ndarray | None = None
        self.keyframes = 0
        self.cuts = 0

    def reset(self) -> None:
        with self._lock:
            self._generation += 1  # a keyframe still being computed belongs to the old look: drop it
            self._key = self._incoming = self._job_key = self._ready = self._newest = None
            self._previous = None

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:
        grey = to_grey(frame)
        previous, self._previous = self._previous, grey
        if self._key is None or previous is None or previous.shape != grey.shape:
            return self._restart(frame, grey, infer)
        if _is_cut(grey, previous):
            self.cuts += 1
            return self._restart(frame, grey, infer)
        positions = _grid(*grey.shape) + self._flow(grey, previous)
        with self._lock:
            for key in (self._key, self._incoming, self._job_key, self._ready):
                if key is not None:
                    key.advance(positions, None)
            ready, self._ready = self._ready, None
            self._newest = (frame, grey, infer)
            if not self._busy:
                self._launch()
        if ready is not None:
            if self._incoming is not None:  # a fade still running: the newer keyframe takes its place
                self._key = self._incoming
            self._incoming, self._fade = ready, 0
        out = self._key.render()
        if self._incoming is not None:
            out = self._fade_in(out)
        return out

    def _restart(self, frame: np.ndarray, grey: np.ndarray, infer: Infer) -> np.ndarray:
        """No keyframe to carry (start, reset, scene cut): stylise this frame now."""
        styled = infer(frame)
        with self._lock:
            self._generation += 1
            self._key, self._incoming, self._job_key, self._ready = Keyframe(styled, grey, False), None, None, None
            self._newest = None
        self.keyframes += 1
        return styled

    def _launch(self) -> None:
        """Stylise the newest frame in the keyframe thread (called with the lock held)."""
        if self._newest is None:
            self._busy = False
            return
        frame, grey, infer = self._newest
        self._newest = None
        self._busy = True
        key = Keyframe(np.empty(0, np.uint8), grey, False)  # identity map at that frame; steps advance it
        self._job_key = key
        generation = self._generation
        try:
            future = self._pool.submit(infer, frame)
        except RuntimeError:  # closed: the session is ending
            self._busy, self._job_key = False, None
            return
        self._future = future
        future.add_done_callback(lambda done: self._finished(done, key, generation))

    def _finished(self, done: Future, key: Keyframe, generation: int) -> None:
        """In the keyframe thread: hand the result over and start on the newest frame at once."""
        try:
            styled = done.result()
        except Exception as exc:  # a failed keyframe: keep carrying the last one, try the next frame
            log.warning("keyframe failed: %s", exc)
            styled = None
        with self._lock:
            if generation == self._generation and self._job_key is key:
                self._job_key = None
                if styled is not None:
                    key.styled = styled
                    self._ready = key
                    self.keyframes += 1
                self._launch()
            elif generation == self._generation:
                self._busy = False
            else:  # from before a reset: nothing to hand over; the new generation starts its own job
                self._busy = False

    def _fade_in(self, old: np.ndarray) -> np.ndarray:
        new_key = self._incoming
        self._fade += 1
        steps = max(1, round(self.fade_frames * self.strength))
        ramp = min(1.0, self._fade / steps)
        h, w = new_key.grey.shape
        ok_new, ok_old = inside(new_key.map, h, w), inside(self._key.map, h, w)
        new = new_key.render()
        if ok_new.all() and ok_old.all():  # the usual case: one weight for the whole frame
            out = cv2.addWeighted(new, ramp, old, 1.0 - ramp, 0.0)
        else:  # new content wins where the old keyframe has none, the old one where the new has none
            new_f, old_f = ok_new.astype(np.float32), ok_old.astype(np.float32)
            weight = np.maximum(ramp * new_f, new_f * (1.0 - old_f))
            out = to_uint8(linear_blend(new.astype(np.float32), old.astype(np.float32), weight))
        if ramp >= 1.0:
            self._key, self._incoming = new_key, None
        return out

    def quiesce(self) -> None:
        future = self._future
        if future is not None:
            wait([future], timeout=60)

    def close(self) -> None:
        """Stop and wait for a keyframe still being computed (at most one network run): the backend
        it runs on is closed next, and must not be freed under it."""
        self.reset()
        self._pool.shutdown(wait=True, cancel_futures=True)
