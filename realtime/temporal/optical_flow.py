"""Optical-flow primitives for the temporal stages: DIS flow, coordinate maps, warps, reliability.

Conventions (OpenCV's): ``flow = calc(a, b)`` gives a(x) ≈ b(x + flow(x)). To bring frame t−1's
result onto frame t, compute the flow from t to t−1 and sample at x + flow. A *map* is an HxWx2
float32 array of absolute sample positions (``cv2.remap``'s map1), so maps compose: the map of
frame t into a keyframe is the previous map sampled at x + flow, and the keyframe is sampled once
per frame from it (repeated resampling of already-warped images would blur them).
"""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


STILL_GREY = 1  # grey levels: a pixel that changed by at most this ...
STILL_FLOW = 0.35  # ... and whose flow is under this many px, did not move


def to_grey(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


class FlowEstimator:
    """DIS optical flow at a reduced scale (flow returned at full size, in full-size pixels)."""

    def __init__(self, preset: str = "fast", scale: float = 1.0) -> None:
        self.scale = scale
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow with a(x) ≈ b(x + flow(x)) for two uint8 grey images of one size; HxWx2 float32.

        Where a pixel's grey level did not change (a still camera's background), the flow is 0:
        DIS returns a few tenths of a pixel of noise there, which would make still textures shimmer.
        The test runs at DIS's own (reduced) resolution, before the flow is scaled up: at full size
        the masking alone cost more than the flow (numpy boolean indexing of a 640×480×2 array).
        """
        h, w = a.shape[:2]
        if self.scale != 1.0:
            size = (max(8, round(w * self.scale)), max(8, round(h * self.scale)))
            a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
            b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
        flow = self._dis.calc(a, b, None)
        limit = STILL_FLOW * a.shape[1] / w  # in the pixels DIS worked in
        moving = (cv2.absdiff(a, b) > STILL_GREY) | (np.einsum("ijk,ijk->ij", flow, flow) >= limit * limit)
        flow *= moving[..., None]
        if self.scale != 1.0:
            small_w, small_h = a.shape[1], a.shape[0]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= w / small_w
            flow[..., 1] *= h / small_h
        return flow


def identity_map(h: int, w: int) -> np.ndarray:
    """The map that samples every pixel at itself."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


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
