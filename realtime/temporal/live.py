"""``flow`` live: every camera frame shown at once, as the latest keyframe carried along the flow.

The network runs in a thread of its own on the newest frame whenever it is free. Every frame is
shown as the latest keyframe (a stylised frame) carried to it by a coordinate map from the current
frame into the keyframe; each frame extends the map along the flow (frame t → t−1).

Propagation is cheap because everything that runs per frame runs at *flow resolution* (half the
processing size: a quarter of its pixels) except one remap: the flow itself, the scene-cut and
still-pixel tests and the composition of the maps. The map (smooth, so a bilinear upscale loses
nothing) is scaled up to processing size and the keyframe sampled from it once; the stylizer
upscales that once to the frame's size.

A finished keyframe, computed for a frame a few frames back, is brought to the current frame by
the map accumulated meanwhile and faded in over a few frames. The fade happens in the new
keyframe's own coordinates: the network output of the keyframe shown when its frame was sent off
is sampled into them once, at arrival (the map between the two is known then), and each frame of
the fade blends two uint8 images of one size before the one remap. Never a blend is resampled
(a keyframe may arrive before the last fade ended): repeated resampling would blur the strokes.
Where the old keyframe has nothing (newly visible) or shows something else (its input there no
longer looks like the new keyframe's: a person walked on), the new one shows at once: a fade
there would be a half-transparent ghost. Where the scene stood still from the old keyframe's frame to
the new one's (a still camera's background: zero flow, ``still.py``), the new keyframe takes the old one's
pixels, so the background keeps one stylisation instead of the network's noise at every keyframe.
``strength`` sets the fade's length (1: four frames, 0: cut over at once).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

import cv2
import numpy as np

from realtime.temporal.base import Infer, TemporalStage
from realtime.temporal.flow import CHANGE_THRESHOLD, held
from realtime.temporal.optical_flow import (
    FlowEstimator,
    compose,
    feather,
    grid,
    identity_map,
    inside,
    is_cut,
    to_grey,
)

log = logging.getLogger(__name__)


class LiveKey:
    """A keyframe: the network's stylisation of one frame (processing size) and the map from the current
    frame into it (flow resolution, in flow-resolution pixels)."""

    def __init__(self, styled: np.ndarray, grey: np.ndarray) -> None:
        self.styled = styled  # the network's output, uint8 BGR
        self.shown = styled  # what is sampled: the output, or during its fade-in a blend with the keyframe before
        self.grey = grey  # its frame's grey at flow resolution
        self.map = identity_map(*grey.shape)
        self.base: tuple[LiveKey, np.ndarray] | None = None  # the key shown when this frame was sent off, its map then

    def advance(self, positions: np.ndarray) -> None:
        """Carry the map one frame on: ``positions`` = x + flow(t → t−1), at flow resolution."""
        self.map = compose(self.map, positions)


def full_map(low: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow-resolution map scaled up to ``size`` = (width, height), read as positions in an image of that size.

    Pixel centres: low-res x maps to (x + ½)·s − ½; that affine step runs on the small map, and the
    bilinear upscale of a map that is affine in x reproduces it exactly (at the outermost pixel, to
    within a pixel, the same every frame).
    """
    w, h = size
    lh, lw = low.shape[:2]
    sx, sy = w / lw, h / lh
    scaled = low * np.float32([sx, sy]) + np.float32([(sx - 1) / 2, (sy - 1) / 2])
    return cv2.resize(scaled, (w, h), interpolation=cv2.INTER_LINEAR)


def changed(grey: np.ndarray, mapping: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Where ``grey`` carried along ``mapping`` no longer looks like ``current`` (bool, flow resolution, widened
    by a pixel): what a keyframe shows there belongs to something that has moved on."""
    carried = cv2.remap(grey, mapping, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = cv2.absdiff(cv2.blur(carried, (3, 3)), cv2.blur(current, (3, 3)))
    return cv2.dilate((diff > CHANGE_THRESHOLD).view(np.uint8), np.ones((3, 3), np.uint8)) > 0


def render(image: np.ndarray, low: np.ndarray, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """``image`` (processing size) sampled along the flow-resolution map ``low``: the one remap of a frame."""
    h, w = image.shape[:2]
    return cv2.remap(image, full_map(low, (w, h)), None, interpolation, borderMode=cv2.BORDER_REPLICATE)


class LiveFlowStage(TemporalStage):
    """Live: the network runs asynchronously; every frame is the latest keyframe carried along the flow."""

    name = "flow"

    def __init__(
        self,
        strength: float = 0.85,
        fade_frames: int = 4,
        flow_scale: float = 0.5,
        interpolation: int = cv2.INTER_CUBIC,
        show_changed: bool = True,
        hold_still: bool = True,
    ) -> None:
        self.strength = strength
        self.hold_still = hold_still  # still pixels keep the previous keyframe's stylisation
        self.show_changed = show_changed  # the new keyframe at once where the old one shows something else
        self.interpolation = interpolation
        self.fade_frames = fade_frames
        self.flow_scale = flow_scale
        self._flow = FlowEstimator("ultrafast", 1.0, flow_scale)  # run on greys already at flow resolution
        self._lock = threading.Lock()  # guards what the keyframe thread hands over
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyframe")
        self._generation = 0
        self._key: LiveKey | None = None
        self._fade_from: np.ndarray | None = None  # the previous keyframe in the current one's coordinates
        self._fade = 0
        self._busy = False
        self._future: Future | None = None
        self._job_key: LiveKey | None = None  # the frame being stylised; its map follows the frames shown meanwhile
        self._ready: LiveKey | None = None  # a finished keyframe, not yet picked up by step()
        self._newest: tuple[np.ndarray, Infer] | None = None  # frame and infer of the last step
        self._previous: np.ndarray | None = None  # grey of the previous frame at flow resolution
        self.keyframes = 0
        self.cuts = 0

    def reset(self) -> None:
        with self._lock:
            self._generation += 1  # a keyframe still being computed belongs to the old look: drop it
            self._key = self._job_key = self._ready = self._newest = None
            self._fade_from = None
            self._previous = None

    def _small_grey(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        size = (max(8, round(w * self.flow_scale)), max(8, round(h * self.flow_scale)))
        return cv2.resize(to_grey(frame), size, interpolation=cv2.INTER_AREA)

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:
        grey = self._small_grey(frame)
        previous, self._previous = self._previous, grey
        if (
            self._key is None
            or previous is None
            or previous.shape != grey.shape
            or self._key.styled.shape != frame.shape
        ):
            return self._restart(frame, grey, infer)
        if is_cut(grey, previous):
            self.cuts += 1
            return self._restart(frame, grey, infer)
        positions = grid(*grey.shape) + self._flow(grey, previous)
        with self._lock:
            for key in (self._key, self._job_key, self._ready):
                if key is not None:
                    key.advance(positions)
            ready, self._ready = self._ready, None
            self._newest = (frame, infer)
            if not self._busy:
                self._launch()
        if ready is not None:
            self._arrive(ready)
        if self._fade_from is not None:
            self._fade_step()
        return render(self._key.shown, self._key.map, self.interpolation)

    def _arrive(self, key: LiveKey) -> None:
        """A finished keyframe takes over; the one shown when its frame was sent off fades out in its coordinates."""
        base, key.base = key.base, None
        if base is not None:
            self._hold_still(key, *base)
        with self._lock:  # the keyframe thread reads the shown key when it sends the next frame off
            self._key = key
        steps = max(0, round(self.fade_frames * self.strength))
        if base is None or steps == 0:
            self._fade_from = None
            return
        old, old_map = base
        h, w = key.styled.shape[:2]
        # the old keyframe's own output, not its blend: a fade must never resample an earlier fade
        faded = render(old.styled, old_map, self.interpolation)
        # The new keyframe shows at once where the old one has nothing (it came into view) or shows
        # something else (a person walked on): fading over those would be a half-transparent ghost.
        fresh = ~inside(old_map, *old.map.shape[:2])
        if self.show_changed:
            fresh |= changed(old.grey, old_map, key.grey)
        if fresh.any():
            mask = cv2.resize(fresh.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            np.copyto(faded, key.styled, where=mask[..., None].astype(bool))
        self._fade_from, self._fade = faded, 0

    def _hold_still(self, key: LiveKey, old: LiveKey, old_map: np.ndarray) -> None:
        """Where the scene stood still between the old keyframe's frame and the new one's (the map between them the
        identity, the input unchanged), the new keyframe takes the old one's pixels: a still camera's background
        keeps one stylisation instead of the network's frame-to-frame noise (seams feathered at flow resolution)."""
        if not self.hold_still:
            return
        still = held(old_map, key.grey, old.grey)
        if not still.any():
            return
        h, w = key.styled.shape[:2]
        weight = cv2.resize(feather(still, 1), (w, h), interpolation=cv2.INTER_LINEAR)
        key.styled = key.shown = cv2.blendLinear(old.styled, key.styled, weight, 1.0 - weight)

    def _fade_step(self) -> None:
        self._fade += 1
        steps = max(1, round(self.fade_frames * self.strength))
        ramp = min(1.0, self._fade / steps)
        key = self._key
        if ramp >= 1.0:
            key.shown, self._fade_from = key.styled, None
        else:
            key.shown = cv2.addWeighted(key.styled, ramp, self._fade_from, 1.0 - ramp, 0.0)

    def _restart(self, frame: np.ndarray, grey: np.ndarray, infer: Infer) -> np.ndarray:
        """No keyframe to carry (start, reset, scene cut): stylise this frame now."""
        styled = infer(frame)
        with self._lock:
            self._generation += 1
            self._key, self._job_key, self._ready = LiveKey(styled, grey), None, None
            self._flow.reset()
            self._fade_from = None
            self._newest = None
        self.keyframes += 1
        return styled

    def _launch(self) -> None:
        """Stylise the newest frame in the keyframe thread (called with the lock held)."""
        if self._newest is None or self._previous is None:
            self._busy = False
            return
        frame, infer = self._newest
        self._newest = None
        self._busy = True
        key = LiveKey(np.empty(0, np.uint8), self._previous)  # identity map at that frame; steps advance it
        latest = self._ready or self._key  # a finished keyframe not yet picked up is what will be on screen
        if latest is not None:
            key.base = (latest, latest.map)  # compose() makes a new map each frame: this one stays as it is
        self._job_key = key
        generation = self._generation
        try:
            self._future = self._pool.submit(self._run, infer, frame, key, generation)
        except RuntimeError:  # closed: the session is ending
            self._busy, self._job_key = False, None

    def _run(self, infer: Infer, frame: np.ndarray, key: LiveKey, generation: int) -> None:
        """In the keyframe thread: stylise, hand the result over and start on the newest frame at once.

        The hand-over runs here rather than in a future's done-callback: a callback added to a future
        that is already done runs at once in the adding thread, which holds the lock.
        """
        try:
            styled = infer(frame)
        except Exception as exc:  # a failed keyframe: keep carrying the last one, try the next frame
            log.warning("keyframe failed: %s", exc)
            styled = None
        with self._lock:
            if generation == self._generation and self._job_key is key:
                self._job_key = None
                if styled is not None:
                    key.styled = key.shown = styled
                    self._ready = key
                    self.keyframes += 1
                self._launch()
            else:  # from before a reset: nothing to hand over; the new generation starts its own job
                self._busy = False

    def quiesce(self) -> None:
        future = self._future
        if future is not None:
            wait([future], timeout=60)

    def close(self) -> None:
        """Stop and wait for a keyframe still being computed (at most one network run): the backend
        it runs on is closed next, and must not be freed under it."""
        self.reset()
        self._pool.shutdown(wait=True, cancel_futures=True)
