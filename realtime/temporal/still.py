"""Which pixels did not move: a still camera's background is held exactly, not tracked.

DIS returns a pixel or more of noise where a frame is flat or noisy (a night sky, a dark wall, sensor
noise after compression); carried along it, a still background's texture swims, and every frame's
resampling washes its strokes out. So the flow is set to exactly 0 where a pixel did not move: a map
composed with zero flow is read at whole pixels (lossless) and a keyframe sampled from it shows the
same pixels frame after frame.

A pixel is still when the camera is still (the median flow of the frame is under ``CAMERA_PX``; it
stays judged still until the median passes twice that: hysteresis, so a slow drift does not flip the
decision every frame) and its blurred grey level did not change by more than ``RESIDUAL`` (noise and
compression; a person walking changes far more). Moving pixels are grown into whole regions
(closing, then a little dilation): the flat inside of a walking figure changes little from frame to
frame but moves with its edges. On a moving camera only pixels whose grey level and flow both
stayed put are still (the flow is left as it is everywhere else).
"""

from __future__ import annotations

import cv2
import numpy as np

STILL_GREY = 1  # grey levels: on a moving camera, a pixel that changed by at most this ...
STILL_FLOW = 0.35  # ... and whose flow is under this many px, did not move
CAMERA_PX = 0.25  # processing px per frame: a median flow under this is a still camera
RESIDUAL = 3.0  # grey levels (5×5 mean): a still camera's pixel that changed more is moving (at least; more with noise)
CLOSE_PX, GROW_PX = 21, 5  # px at flow resolution: moving regions closed (fill figures) and grown by


class StillPixels:
    """Per pixel, moving or not, for pairs of consecutive greys at flow resolution (stateful: camera hysteresis)."""

    def __init__(self, residual: float = RESIDUAL, camera_px: float = CAMERA_PX) -> None:
        self.residual = residual
        self.camera_px = camera_px
        self.camera_still = True
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (CLOSE_PX, CLOSE_PX))
        self._grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (GROW_PX, GROW_PX))

    def reset(self) -> None:
        self.camera_still = True

    def moving(self, current: np.ndarray, previous: np.ndarray, flow: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Where ``current`` moved against ``previous`` (uint8 greys, one size; ``flow`` current → previous in
        their pixels, ``scale`` = their width over the processing width); bool."""
        sub = flow[::4, ::4].reshape(-1, 2)
        camera = float(np.hypot(*np.median(sub, axis=0))) / scale  # in processing px
        limit = self.camera_px * (2.0 if self.camera_still else 1.0)
        self.camera_still = camera < limit
        if not self.camera_still:
            limit = STILL_FLOW * scale
            tiny = (cv2.absdiff(current, previous) <= STILL_GREY) & (
                np.einsum("ijk,ijk->ij", flow, flow) < limit * limit
            )
            return ~tiny
        residual = cv2.absdiff(cv2.blur(current, (5, 5)), cv2.blur(previous, (5, 5)))
        # the noise floor: most of a still camera's frame did not move, so the median change is noise
        floor = 3.0 * float(np.median(residual[::2, ::2])) + 1.5
        seeds = (residual > max(self.residual, floor)).view(np.uint8)
        regions = cv2.morphologyEx(seeds, cv2.MORPH_CLOSE, self._close)
        contours, _ = cv2.findContours(regions, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(regions, contours, -1, 1, cv2.FILLED)  # the flat inside of a figure moves with it
        return cv2.dilate(regions, self._grow) > 0
