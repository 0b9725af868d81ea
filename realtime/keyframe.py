"""Keyframe preview: one frame of an image or video, stylised by Gatys optimisation.

The library behind ``main.py preview`` and the GUI's keyframe dialog: optimise a frame (grabbed by
``realtime.sources.grab_frame``) against a style image, and optionally put a feed-forward result
beside it for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from models.base import StyleModel
from models.gatys import Gatys, GatysConfig, GatysResult, ProgressFn
from core.images import resize_longest, to_bgr, to_tensor


@dataclass
class KeyframeOptions:
    """How to stylise a keyframe: sizes are the longest side in px (0 keeps the image)."""

    size: int = 512
    style_size: int = 512
    gatys: GatysConfig = field(default_factory=GatysConfig)


def gatys_keyframe(
    model: Gatys,
    content: np.ndarray,
    style: np.ndarray,
    options: KeyframeOptions,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, GatysResult]:
    """Optimise a BGR frame against a BGR style image; returns the BGR result and the run's record."""
    content_t = to_tensor(resize_longest(content, options.size), model.device)
    style_t = to_tensor(resize_longest(style, options.style_size), model.device)
    result = model.optimize(content_t, style_t, options.gatys, progress=progress, should_stop=should_stop)
    return to_bgr(result.image), result


def feed_forward_keyframe(
    model: StyleModel, content: np.ndarray, style: np.ndarray, size: int, style_size: int
) -> np.ndarray:
    """The same frame through a feed-forward model, for a side-by-side comparison."""
    with torch.inference_mode():
        code = model.encode_style(to_tensor(resize_longest(style, style_size), model.device))
        out = model.stylize(to_tensor(resize_longest(content, size), model.device), code, 1.0)
    return to_bgr(out.clamp(0, 1))


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two BGR images next to each other on white, the right one scaled to the left's height."""
    import cv2

    h = left.shape[0]
    if right.shape[0] != h:
        right = cv2.resize(right, (max(1, round(right.shape[1] * h / right.shape[0])), h), interpolation=cv2.INTER_AREA)
    spacer = np.full((h, gap, 3), 255, np.uint8)
    return np.concatenate([left, spacer, right], axis=1)
