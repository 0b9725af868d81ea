"""The warping-error metric against synthetic shifts with known answers, and the VGG losses."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.clips import cover, pan_frames
from bench.metrics import Correspondence, FlowEstimator, StyleLosses, flow_gradient_sq, valid_mask, warp, warping_error


@pytest.fixture(scope="module")
def photo(content_path):
    return cv2.imread(str(content_path))


@pytest.fixture(scope="module")
def pan(photo):
    return list(pan_frames(photo, 12, 320, 240, speed=1.7))


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """A painterly stand-in: smoothed noise at two scales (different every seed)."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    fine = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.2)
    return cv2.addWeighted(coarse, 0.5, fine, 0.5, 0)


def test_flow_follows_a_known_subpixel_shift(photo):
    a = cover(photo, 320, 240)
    b = cv2.warpAffine(
        a, np.float32([[1, 0, -2.5], [0, 1, 1.25]]), (320, 240), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT
    )  # b(x) = a(x + (2.5, -1.25))
    flow = FlowEstimator().flow(b, a)  # b(x) ≈ a(x + flow)
    inner = flow[20:-20, 20:-20].reshape(-1, 2)
    assert np.median(inner, axis=0) == pytest.approx([2.5, -1.25], abs=0.1)
    back = warp(a, flow)
    diff = np.abs(back[20:-20, 20:-20].astype(np.float32) - b[20:-20, 20:-20])
    assert diff.mean() < 3.0  # the shifted image warps back within tolerance (8-bit levels)


def test_correctly_warped_output_has_near_zero_error_and_a_swimming_one_a_large_one(pan):
    h, w = pan[0].shape[:2]
    canvas = _texture(h, w + 40, seed=1)
    stuck = list(pan_frames(canvas, len(pan), w, h, speed=1.7))  # a texture glued to the scene: moves with it
    swimming = [_texture(h, w, seed=10 + i) for i in range(len(pan))]  # a new texture every frame
    good = warping_error(pan, stuck, gap=5)
    bad = warping_error(pan, swimming, gap=5)
    assert good["output"] < 0.005 and good["output_long"] < 0.005
    assert bad["output"] > 20 * good["output"] and bad["output_long"] > 20 * good["output_long"]
    assert good["input"] == bad["input"] < 0.005  # the input's own figure is the same for both outputs
    shuffled = warping_error(pan, [stuck[i] for i in np.random.default_rng(0).permutation(len(stuck))], gap=5)
    assert shuffled["output"] > 5 * good["output"]


def test_occluded_pixels_are_masked():
    # a square slides 6 px right over a still background: uncovered background behind it has no match
    rng = np.random.default_rng(3)
    bg = cv2.GaussianBlur(rng.integers(0, 256, (120, 160), dtype=np.uint8), (0, 0), 1.5)
    fg = cv2.GaussianBlur(rng.integers(0, 256, (120, 160), dtype=np.uint8), (0, 0), 1.5)
    a, b = bg.copy(), bg.copy()
    a[40:80, 40:80] = fg[40:80, 40:80]
    b[40:80, 46:86] = fg[40:80, 40:80]
    c = Correspondence.between(FlowEstimator(), b, a)  # on frame b: where does a come from
    assert c.mask[50:70, 90:110].mean() > 0.8  # still background: trusted
    assert c.mask[50:70, 55:75].mean() > 0.8  # inside the moving square: trusted
    assert c.mask[45:75, 40:46].mean() < 0.5  # uncovered strip (a showed the square there): masked


def test_boundary_and_fb_masks_follow_the_definitions():
    flow = np.zeros((20, 20, 2), np.float32)
    flow[:, 10:, 0] = 3.0  # a motion boundary at column 10
    g = flow_gradient_sq(flow)
    assert g[:, 9].min() == pytest.approx(9.0) and g[:, :9].max() == 0
    consistent = valid_mask(flow, -flow)  # back flow cancels: only the boundary and the outside fall
    assert not consistent[:, 9].any()
    assert consistent[:, :9].all() and consistent[:, 10:16].all()
    assert not consistent[:, 17:].any()  # x + 3 falls outside the 20 px frame
    inconsistent = valid_mask(flow, flow)  # |F + G|² = 36 > 0.01 · 18 + 0.5
    assert not inconsistent[:, 10:].any()


def test_style_loss_prefers_the_stylised_frame(photo, style_path):
    style = cv2.imread(str(style_path))
    losses = StyleLosses(style, size=128, style_size=256)
    frame = cover(photo, 170, 128)
    content_plain, style_plain = losses(frame, frame)
    styled = cover(style, 170, 128)  # the painting itself has the painting's statistics
    _, style_styled = losses(styled, frame)
    assert style_styled < 0.5 * style_plain
    assert content_plain > 0 and np.isfinite(content_plain)
