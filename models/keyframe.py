"""Keyframe preview: one frame of an image or video, stylised by Gatys optimisation.

The library behind ``main.py preview`` and the GUI's keyframe dialog: grab a frame (an image
file, or a video frame at a time in seconds), optimise it against a style image, and
optionally put a feed-forward result beside it for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.base import StyleModel
from models.errors import InputError, SourceError
from models.gatys import Gatys, GatysConfig, GatysResult, ProgressFn
from models.images import IMAGE_SUFFIXES, MIN_SIDE, read_image, resize_longest, to_bgr, to_tensor


def grab_frame(path: str | Path, at: float | None = None) -> np.ndarray:
    """An image file as uint8 BGR, or the frame of a video shown at ``at`` seconds (default 0)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist; give an image or video file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if at:
            raise InputError(f"{path} is an image; --at only applies to videos")
        return read_image(path)
    return read_video_frame(path, at or 0.0)


def read_video_frame(path: str | Path, at: float = 0.0) -> np.ndarray:
    """The frame on screen at ``at`` seconds, decoded with PyAV (seek, then decode forward)."""
    import av

    path = Path(path)
    if not math.isfinite(at) or at < 0:
        raise InputError(f"--at must be 0 or more seconds, got {at}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path} is neither a readable image nor a video ({exc}); use JPEG, PNG or MP4") from exc
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream; give an image or video file")
        stream = container.streams.video[0]
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        period = 1.0 / float(rate) if rate else 0.04
        start = float(stream.start_time * time_base) if stream.start_time is not None and time_base else 0.0
        try:
            if at > 0 and time_base:
                # Seek to the keyframe before the target, then decode forward to it.
                container.seek(int((at + start) / time_base), stream=stream, backward=True)
            frame = _frame_at(container.decode(stream), at + start, period)
        except av.FFmpegError as exc:
            raise SourceError(f"cannot decode {path} at {at:.3f} s: {exc}") from exc
        except OverflowError:  # a seek target beyond int64 time stamps is past any video's end
            frame = None
    if frame is None:
        raise InputError(f"--at {at:g} s is past the end of {path}; choose an earlier time")
    image = frame.to_ndarray(format="bgr24")
    turns = round(frame.rotation / 90) % 4  # phones store portrait video landscape plus a display rotation
    if turns:
        image = np.rot90(image, turns)  # upright, as players (and the video source) show it
    if min(image.shape[:2]) < MIN_SIDE:
        raise InputError(f"{path} is {image.shape[1]}x{image.shape[0]} px; frames need at least {MIN_SIDE} px per side")
    return np.ascontiguousarray(image)


def _frame_at(frames, target: float, period: float):
    """The frame on screen at ``target`` s: the last one starting at or before it; None past the end."""
    shown = None
    for frame in frames:
        t = float(frame.time) if frame.time is not None else 0.0
        if t > target + 1e-6:
            return shown if shown is not None else frame  # a frame after the target: the previous one shows
        shown = frame
    if shown is not None and target < float(shown.time or 0.0) + period:
        return shown  # the last frame, still within its display time
    return None


@dataclass
class KeyframeOptions:
    """How to stylise a keyframe: sizes are the longest side in px (0 keeps the image)."""

    size: int = 512
    style_size: int = 512
    gatys: GatysConfig = field(default_factory=GatysConfig)


def gatys_keyframe(model: Gatys, content: np.ndarray, style: np.ndarray, options: KeyframeOptions,
                   progress: ProgressFn | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, GatysResult]:
    """Optimise a BGR frame against a BGR style image; returns the BGR result and the run's record."""
    content_t = to_tensor(resize_longest(content, options.size), model.device)
    style_t = to_tensor(resize_longest(style, options.style_size), model.device)
    result = model.optimize(content_t, style_t, options.gatys, progress=progress, should_stop=should_stop)
    return to_bgr(result.image), result


def feed_forward_keyframe(model: StyleModel, content: np.ndarray, style: np.ndarray, size: int,
                          style_size: int) -> np.ndarray:
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
        right = cv2.resize(right, (max(1, round(right.shape[1] * h / right.shape[0])), h),
                           interpolation=cv2.INTER_AREA)
    spacer = np.full((h, gap, 3), 255, np.uint8)
    return np.concatenate([left, spacer, right], axis=1)
