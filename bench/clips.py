"""Small, deterministic test clips for the temporal benchmarks: a slow pan and a static camera with walkers.

Both are generated from the photos in ``shared/images/content`` (any BGR image will do) with
sub-pixel motion (``cv2.warpAffine``, Lanczos), so no frame is an integer shift of another and the
flow has real work to do. ``pan_frames`` and ``walker_frames`` yield frames; ``write_frames``
encodes them (x264, near-lossless by default so the clip's own warping error stays low).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 480, 30
PAN_SPEED = 1.7  # px per frame: deliberately not an integer
WALKER_SPEEDS = (2.0, 4.0)  # px per frame, drawn per sprite


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to cover width×height (aspect kept), centre-cropped to it."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    big = cv2.resize(image, size, interpolation=interp)
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


def _shift(
    image: np.ndarray, dx: float, dy: float, size: tuple[int, int], border: int = cv2.BORDER_REFLECT
) -> np.ndarray:
    """``image`` translated by (dx, dy) px (sub-pixel), cut to ``size`` = (width, height)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, size, flags=cv2.INTER_LANCZOS4, borderMode=border)


def pan_frames(
    photo: np.ndarray, frames: int, width: int = WIDTH, height: int = HEIGHT, speed: float = PAN_SPEED
) -> Iterator[np.ndarray]:
    """A camera panning right over ``photo`` at ``speed`` px/frame (the scene moves left), uint8 BGR."""
    if frames < 1 or speed < 0:
        raise ValueError("frames must be >= 1 and speed >= 0")
    travel = int(np.ceil(speed * (frames - 1))) + 4  # margin: Lanczos reads 4 px around each sample
    canvas = cover(photo, width + travel, height + 8)
    for i in range(frames):
        yield _shift(canvas, -(2.0 + speed * i), -4.0, (width, height))


def _soft_mask(width: int, height: int, feather: float) -> np.ndarray:
    """An ellipse filling width×height with Gaussian-feathered edges, float32 in [0, 1]."""
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(
        mask,
        (width // 2, height // 2),
        (int(width / 2 - 2 * feather), int(height / 2 - 2 * feather)),
        0,
        0,
        360,
        1.0,
        -1,
    )
    return cv2.GaussianBlur(mask, (0, 0), feather)


def walker_frames(
    background: np.ndarray,
    texture: np.ndarray,
    frames: int,
    width: int = WIDTH,
    height: int = HEIGHT,
    walkers: int = 4,
    seed: int = 0,
    speeds: tuple[float, float] = WALKER_SPEEDS,
) -> Iterator[np.ndarray]:
    """A static camera on ``background`` with ``walkers`` soft-edged textured figures crossing it.

    Each figure is a patch of ``texture`` (an ellipse about a sixth of the frame wide and half its
    height) walking horizontally at a random 2–4 px/frame with a slight vertical sway, wrapping
    round at the frame edges; deterministic for a given ``seed``.
    """
    if frames < 1 or walkers < 0:
        raise ValueError("frames must be >= 1 and walkers >= 0")
    rng = np.random.default_rng(seed)
    bg = cover(background, width, height).astype(np.float32)
    tex = cover(texture, width * 2, height * 2)
    sw, sh = max(8, width // 6), max(16, height // 2)
    alpha = _soft_mask(sw, sh, feather=max(1.0, sw / 16))
    sprites = []
    for k in range(walkers):
        y0, x0 = int(rng.integers(0, tex.shape[0] - sh)), int(rng.integers(0, tex.shape[1] - sw))
        v = float(rng.uniform(*speeds)) * (1 if k % 2 == 0 else -1)
        sprites.append(
            {
                "patch": tex[y0 : y0 + sh, x0 : x0 + sw].astype(np.float32),
                "x": float(rng.uniform(0, width)),
                "y": float(rng.uniform(0.1 * height, height - sh - 0.05 * height)),
                "v": v,
                "phase": float(rng.uniform(0, 2 * np.pi)),
            }
        )
    span = width + sw  # a figure leaving one edge comes back at the other
    for i in range(frames):
        out = bg.copy()
        for s in sprites:
            x = (s["x"] + s["v"] * i) % span - sw
            y = s["y"] + 3.0 * np.sin(s["phase"] + i * 0.15)  # a little bob, so the motion is not purely 1-D
            a = _shift(alpha, x, y, (width, height), cv2.BORDER_CONSTANT)[..., None]
            p = _shift(s["patch"], x, y, (width, height), cv2.BORDER_REPLICATE)
            out = out * (1 - a) + p * a
        yield np.clip(out + 0.5, 0, 255).astype(np.uint8)


def write_frames(path: Path, frames: Iterable[np.ndarray], fps: float = FPS, crf: int = 10) -> Path:
    """Encode BGR frames to ``path`` with x264 (``crf`` 10: close to lossless, small enough)."""
    from realtime.video_writer import VideoFileWriter, VideoOptions

    writer = VideoFileWriter(path, fps, VideoOptions(preset="veryfast", crf=crf, audio=False))
    try:
        for i, frame in enumerate(frames):
            writer.write(frame, i / fps)
    finally:
        writer.close()
    return Path(path)


def content_photo(name: str) -> np.ndarray:
    """A photo from the content images on the search path (e.g. ``chicago``), uint8 BGR."""
    from core.errors import InputError
    from core.images import read_image
    from models.registry import default_store

    for root in default_store().search_path:
        for candidate in (
            Path(root) / "content" / f"{name}.jpg",
            Path(root).parent / "images" / "content" / f"{name}.jpg",
        ):
            if candidate.is_file():
                return read_image(candidate)
    raise InputError(
        f"content photo {name}.jpg not found on the search path; set STYLIZER_PATH to include shared/images"
    )


def make_pan_clip(
    path: Path,
    frames: int = 90,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: float = FPS,
    speed: float = PAN_SPEED,
    photo: str = "chicago",
) -> Path:
    """Write the slow-pan clip (``photo`` panned ``speed`` px/frame) to ``path``."""
    return write_frames(path, pan_frames(content_photo(photo), frames, width, height, speed), fps)


def make_walkers_clip(
    path: Path,
    frames: int = 90,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: float = FPS,
    background: str = "tubingen",
    texture: str = "astronaut",
    walkers: int = 4,
) -> Path:
    """Write the static-camera clip (``texture`` figures walking over ``background``) to ``path``."""
    return write_frames(
        path, walker_frames(content_photo(background), content_photo(texture), frames, width, height, walkers), fps
    )


def handheld_frames(
    photo: np.ndarray, frames: int, width: int = WIDTH, height: int = HEIGHT, seed: int = 0, noise: float = 3.0
) -> Iterator[np.ndarray]:
    """A handheld camera over ``photo``: a slow drift with jitter (a random walk of position and a little
    rotation), motion blur along each frame's own motion, and sensor noise; deterministic for ``seed``."""
    if frames < 1:
        raise ValueError("frames must be >= 1")
    rng = np.random.default_rng(seed)
    margin = 48
    canvas = cover(photo, width + 2 * margin, height + 2 * margin)
    pos, vel, angle = np.zeros(2), np.array([1.2, 0.3]), 0.0
    for _ in range(frames):
        step = vel + rng.normal(0.0, 1.0, 2)  # a drift plus the hand's tremor, px per frame
        pos = np.clip(pos + step, -margin + 4, margin - 4)
        angle = float(np.clip(angle + rng.normal(0.0, 0.08), -1.5, 1.5))  # degrees
        m = cv2.getRotationMatrix2D((width / 2 + margin, height / 2 + margin), angle, 1.0)
        m[:, 2] -= (margin + pos[0], margin + pos[1])
        image = cv2.warpAffine(canvas, m, (width, height), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
        length = int(round(float(np.hypot(*step))))
        if length >= 2:  # the shutter is open while the hand moves: blur along the motion
            k = length | 1
            d = step / np.hypot(*step) * (k - 1) / 2
            kernel = np.zeros((k, k), np.float32)
            c = k // 2
            cv2.line(
                kernel,
                (int(round(c - d[0])), int(round(c - d[1]))),
                (int(round(c + d[0])), int(round(c + d[1]))),
                1.0,
                1,
            )
            image = cv2.filter2D(image, -1, kernel / kernel.sum())
        yield add_noise(image, noise, rng)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` with Gaussian sensor noise of ``sigma`` grey levels."""
    if sigma <= 0:
        return image
    return np.clip(image + rng.normal(0.0, sigma, image.shape).astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def make_handheld_clip(
    path: Path,
    frames: int = 90,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: float = FPS,
    photo: str = "chicago",
    crf: int = 26,
) -> Path:
    """Write the handheld clip to ``path``, compressed as a phone would (x264 ``crf`` 26)."""
    return write_frames(path, handheld_frames(content_photo(photo), frames, width, height), fps, crf=crf)


def make_street_clip(
    path: Path,
    frames: int = 90,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: float = FPS,
    background: str = "hoovertowernight",
    person: str = "astronaut",
    crf: int = 26,
) -> Path:
    """A still camera with people-like figures (regions cut from a real photo of a person) crossing a real
    background, with sensor noise and x264 compression (``crf`` 26): what a street camera sends."""
    rng = np.random.default_rng(1)
    walking = walker_frames(
        content_photo(background), content_photo(person), frames, width, height, walkers=3, seed=3, speeds=(3.0, 6.0)
    )
    return write_frames(path, (add_noise(f, 2.0, rng) for f in walking), fps, crf=crf)
