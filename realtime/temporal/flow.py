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

One stage for both kinds of camera: where a pixel did not move (``still.py``: a still camera, and there
every pixel but the figures walking through it) its flow is exactly 0, so the map stays the identity and
the keyframe's pixel is shown as it is, frame after frame; a new keyframe keeps the old one's pixels
there while their input stays the same (``held``), and fades in only where the two differ. Still pixels
are thus held (without ``hold``'s averaging, which blurs the style away) and moving ones tracked.

The live stage, which shows every camera frame by carrying keyframes, is in ``live.py``.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.temporal.base import Infer, TemporalStage
from realtime.temporal.optical_flow import (
    FlowEstimator,
    compose,
    consistent,
    contrast_blend,
    feather,
    grid,
    identity_map,
    inside,
    is_cut,
    linear_blend,
    sample,
    to_grey,
    to_uint8,
)

CHANGE_THRESHOLD = 24.0  # grey levels: content under a carried pixel changed (lighting, a turning face)
HOLD_CHANGE = 10.0  # grey levels (5×5 mean): a still pixel is held while its input stays this close to its keyframe's
MIN_COVER = 0.85  # the next keyframe starts early when the current one covers less of the frame
BLEND_MARGIN = 1  # px around a fill region that its (per-pixel) blend reaches
SEAM_RADIUS = 3  # px: invalid regions are widened and their edges faded over ~2x this


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
        valid = cv2.remap(
            self.valid, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
        )
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


def _without_specks(reliable: np.ndarray) -> np.ndarray:
    """The consistency mask with isolated failures (flow noise in flat regions) removed: only blobs of
    failures (occlusions) may end a pixel's history, which is a product over every frame since the keyframe."""
    failed = cv2.morphologyEx((~reliable).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return failed == 0


def held(mapping: np.ndarray, grey: np.ndarray, key_grey: np.ndarray) -> np.ndarray:
    """Where a keyframe's pixel still stands where it was stylised: its map (current frame → keyframe, same size as
    ``grey``) is the identity there and the input there is within ``HOLD_CHANGE`` of the keyframe's (bool)."""
    h, w = grey.shape
    offset = cv2.absdiff(mapping, grid(h, w))
    at_home = cv2.inRange(offset, (0.0, 0.0), (1e-3, 1e-3)) > 0
    unchanged = cv2.absdiff(cv2.blur(grey, (5, 5)), cv2.blur(key_grey, (5, 5))) <= HOLD_CHANGE
    return at_home & unchanged


def fade_where_different(new: np.ndarray, old: np.ndarray, ramp: float) -> np.ndarray:
    """``new`` faded in over ``old`` (float images) by ``ramp``, keeping contrast, only where they differ: where a
    keyframe holds the previous one's pixels the output stays exactly as it was."""
    differ = cv2.absdiff(new, old).max(axis=2) > 0
    box = _box(differ, 8)  # the contrast blend reads 7 px around each pixel
    if box is None:
        return old
    out = old.copy()
    part = contrast_blend(new[box], old[box], np.full(differ[box].shape, ramp, np.float32))
    out[box] = np.where(differ[box][..., None], part, old[box])
    return out


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of ``mask`` grown by ``margin`` px, or None when the mask is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (
        slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
        slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)),
    )


class FlowStage(TemporalStage):
    """Files: carried keyframes (fresh network results, faded in), fills carried from the last output."""

    name = "flow"

    def __init__(
        self, strength: float = 0.85, preset: str = "medium", flow_scale: float = 0.625, fade_frames: int = 10
    ) -> None:
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
        return max(1, int(1 + 60 * self.strength**2))

    def step(self, frame: np.ndarray, infer: Infer) -> np.ndarray:
        grey = to_grey(frame)
        fresh = infer(frame)
        previous, self._previous = self._previous, grey
        if self._key is None or previous is None or previous.shape != grey.shape or self.strength <= 0:
            return self._restart(fresh, grey)
        if is_cut(grey, previous):
            self.cuts += 1
            return self._restart(fresh, grey)
        backward, forward = self._flow.both(grey, previous)
        positions = grid(*grey.shape) + backward
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
            out = fade_where_different(new, out, ramp)
            if ramp >= 1.0:
                self._key, self._incoming = self._incoming, None
        elif self._key.age >= self.interval or float(self._key.valid.mean()) < MIN_COVER:
            # carried from the next frame on; what stood still since the current keyframe keeps its pixels
            self._incoming, self._fade = Keyframe(self._hold_still(self._key, fresh, grey), grey), 0
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

    @staticmethod
    def _hold_still(key: Keyframe, fresh: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """The next keyframe's image: ``fresh``, but the current keyframe's own pixels where the scene stood still
        since it (its map still the identity, valid, the input there unchanged): a still camera's background
        keeps one stylisation, never re-rolled by the network's noise (feathered seams)."""
        still = held(key.map, grey, key.grey) & (key.valid > 0)
        if not still.any():
            return fresh
        weight = feather(still, SEAM_RADIUS)
        return to_uint8(linear_blend(key.render().astype(np.float32), fresh.astype(np.float32), weight))

    def _restart(self, fresh: np.ndarray, grey: np.ndarray) -> np.ndarray:
        self._flow.reset()
        self._key, self._incoming = Keyframe(fresh, grey), None
        self._output = fresh.astype(np.float32)
        self.keyframes += 1
        return fresh
