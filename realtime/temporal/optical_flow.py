"""Optical-flow primitives for the temporal stages: DIS flow, coordinate maps, warps, reliability.

Conventions (OpenCV's): ``flow = calc(a, b)`` gives a(x) ≈ b(x + flow(x)). To bring frame t−1's
result onto frame t, compute the flow from t to t−1 and sample at x + flow. A *map* is an HxWx2
float32 array of absolute sample positions (``cv2.remap``'s map1), so maps compose: the map of
frame t into a keyframe is the previous map sampled at x + flow, and the keyframe is sampled once
per frame from it (repeated resampling of already-warped images would blur them).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from realtime.temporal.still import StillPixels

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


CUT_THRESHOLD = 40.0  # mean grey-level change between frames that marks a scene cut


def to_grey(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def is_cut(grey: np.ndarray, previous: np.ndarray) -> bool:
    """Whether two consecutive greys are different shots (a mean change over ``CUT_THRESHOLD``)."""
    return float(cv2.absdiff(grey, previous).mean()) > CUT_THRESHOLD


class FlowEstimator:
    """DIS optical flow at a reduced scale (flow returned at full size, in full-size pixels), 0 where nothing moved."""

    def __init__(self, preset: str = "fast", scale: float = 1.0, given_scale: float = 1.0) -> None:
        self.scale = scale
        self.given_scale = (
            given_scale  # the greys given are this fraction of the processing size (live: flow resolution)
        )
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.still = StillPixels()
        self.moving: np.ndarray | None = None  # the last pair's moving pixels, at DIS resolution

    def reset(self) -> None:
        """Forget the camera's state (a new shot)."""
        self.still.reset()

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow with a(x) ≈ b(x + flow(x)) for two uint8 grey images of one size; HxWx2 float32."""
        return self.both(a, b, backward_too=False)[0]

    def both(self, a: np.ndarray, b: np.ndarray, backward_too: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The flows a → b and (``backward_too``) b → a, each 0 where a pixel did not move (``StillPixels``).

        Where nothing moved the flow is exactly 0: DIS returns up to a pixel or two of noise there, which
        would make still textures swim. The test runs at DIS's own (reduced) resolution, before the flows
        are scaled up, and one mask serves both directions (a still pixel is at one place in both frames).
        """
        h, w = a.shape[:2]
        if self.scale != 1.0:
            size = (max(8, round(w * self.scale)), max(8, round(h * self.scale)))
            a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
            b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
        flows = [self._dis.calc(a, b, None)]
        if backward_too:
            flows.append(self._dis.calc(b, a, None))
        self.moving = self.still.moving(a, b, flows[0], a.shape[1] / w * self.given_scale)
        keep = self.moving.view(np.uint8)
        out = []
        for flow in flows:
            flow = cv2.bitwise_and(flow, flow, mask=keep) if not self.moving.all() else flow
            if self.scale != 1.0:
                small_w, small_h = a.shape[1], a.shape[0]
                flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
                flow[..., 0] *= w / small_w
                flow[..., 1] *= h / small_h
            out.append(flow)
        return out[0], (out[1] if backward_too else None)


def identity_map(h: int, w: int) -> np.ndarray:
    """The map that samples every pixel at itself."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


@lru_cache(maxsize=4)
def grid(h: int, w: int) -> np.ndarray:
    """The identity map of an h×w frame, made once per size (read-only: callers add flows to it)."""
    g = identity_map(h, w)
    g.flags.writeable = False
    return g


def sample(
    image: np.ndarray, positions: np.ndarray, border: int = cv2.BORDER_REPLICATE, value: float = 0.0
) -> np.ndarray:
    """``image`` read at ``positions`` (HxWx2, absolute), bilinear."""
    return cv2.remap(image, positions, None, cv2.INTER_LINEAR, borderMode=border, borderValue=value)


def follow(grid: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Absolute positions x + flow(x)."""
    return grid + flow


def compose(mapping: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``mapping`` read at ``positions``: chains frame t → t−1 (positions) with t−1 → keyframe (mapping).

    Positions beyond the edge read the edge's value (no sentinel is mixed into the bilinear reads);
    callers mark those pixels invalid with ``inside(positions, ...)``.
    """
    return cv2.remap(mapping, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def inside(mapping: np.ndarray, h: int, w: int) -> np.ndarray:
    """Where a map points into an h×w image (bool)."""
    return cv2.inRange(mapping, (-0.5, -0.5), (w - 0.5, h - 0.5)) > 0


def consistent(backward: np.ndarray, forward: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Forward–backward check: |F_b + F_f(x + F_b)|² ≤ 0.01(|F_b|² + |F_f(x + F_b)|²) + 0.5 (bool).

    ``backward`` is the flow t → t−1, ``forward`` t−1 → t, ``positions`` = x + backward.
    Pixels that fail are occluded or badly matched: their history cannot be trusted.
    """
    fwd = cv2.remap(forward, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    bu, bv = cv2.split(backward)
    fu, fv = cv2.split(fwd)
    err = cv2.magnitude(bu + fu, bv + fv)
    bound = cv2.magnitude(bu, bv) ** 2 + cv2.magnitude(fu, fv) ** 2
    return err * err <= 0.01 * bound + 0.5


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """A soft version of a 0..1 mask: eroded by ``radius`` then blurred, so seams fade over ~2·radius px."""
    m = mask.astype(np.float32)
    if radius <= 0:
        return m
    k = 2 * radius + 1
    # The frame's edge is no seam: count what lies beyond it as valid, or the border would always swim.
    m = cv2.erode(m, np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1.0)
    return cv2.blur(m, (k, k), borderType=cv2.BORDER_REPLICATE)


def contrast_blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray, radius: int = 7) -> np.ndarray:
    """Blend float images ``a`` (weight ``weight``) and ``b`` keeping their texture contrast.

    A plain average of two different textures lowers their local variance (a washed-out look).
    Here local means are blended linearly and the detail around them is rescaled by
    1/sqrt(w² + (1−w)² + 2w(1−w)ρ), ρ being the measured correlation of the two details: the
    result keeps the inputs' contrast (variance-preserving blending, as in Heitz & Neyret's
    by-example noise, corrected for correlated inputs: two stylisations of the same content are
    far from independent, and assuming they were would sharpen, frame after frame). At w = 0 or
    1 it returns b or a exactly.
    """
    k = (2 * radius + 1, 2 * radius + 1)
    w = weight if weight.ndim == 2 else weight[..., 0]
    mean_a, mean_b = cv2.blur(a, k), cv2.blur(b, k)
    da, db = cv2.subtract(a, mean_a), cv2.subtract(b, mean_b)
    sa, sb = da[::4, ::4], db[::4, ::4]  # a global statistic: a sixteenth of the pixels is plenty
    rho = float(np.clip(np.sum(sa * sb) / (np.sqrt(np.sum(sa * sa) * np.sum(sb * sb)) + 1e-6), 0.0, 1.0))
    norm = cv2.sqrt(w * w + (1.0 - w) * (1.0 - w) + 2.0 * rho * w * (1.0 - w))
    wa, wb = cv2.merge([w / norm] * 3), cv2.merge([(1.0 - w) / norm] * 3)  # detail weights
    # mean_b + w·(mean_a − mean_b) + wa·da + wb·db, as few full passes as cv2 allows
    out = cv2.add(cv2.multiply(wa, da), cv2.multiply(wb, db))
    out = cv2.add(out, mean_b)
    return cv2.add(out, cv2.multiply(cv2.merge([w] * 3), cv2.subtract(mean_a, mean_b)))


def linear_blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """b + w·(a − b) for float images: for seams and fills, where both sides carry one texture."""
    w = weight if weight.ndim == 2 else weight[..., 0]
    return cv2.add(b, cv2.multiply(cv2.merge([w] * 3), cv2.subtract(a, b)))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
