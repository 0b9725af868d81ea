"""Reading, resizing and writing images, and converting between OpenCV frames and tensors.

Tensors are float RGB in [0, 1], shape (1, 3, H, W). Frames are OpenCV's uint8 BGR (H, W, 3).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from core.atomic import atomic_write, disk_of, is_disk_full
from core.errors import InputError

MIN_SIDE = 16
MAX_PIXELS = 80_000_000  # beyond this a decode alone needs gigabytes; ask for --size instead
log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def read_image(path: str | Path) -> np.ndarray:
    """Any common image file as uint8 BGR (H, W, 3): grey, alpha and 16-bit are converted; a note is logged
    where transparent parts were flattened onto white."""
    image, flattened = read_image_flattened(path)
    if flattened:  # the output has no alpha: say where the see-through parts went
        log.warning("%s has transparent parts: they are flattened onto white", Path(path).name)
    return image


def read_image_flattened(path: str | Path) -> tuple[np.ndarray, bool]:
    """:func:`read_image` without the note: the image, and whether it had transparent parts (flattened onto
    white). For callers that read many images and say it once (an image sequence)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"image {path} is a folder; give an image file")
    if not path.is_file():
        raise InputError(f"image {path} does not exist; check the path")
    data = np.fromfile(path, dtype=np.uint8)
    # JPEG has no alpha, so read it the way that applies its EXIF orientation (phone photos stand
    # upright); other formats keep their alpha channel, which IMREAD_UNCHANGED alone returns.
    is_jpeg = data[:2].tobytes() == b"\xff\xd8"
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if is_jpeg else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise InputError(f"{path} is not a readable image (corrupt or unsupported format); use JPEG or PNG")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{path} has {image.dtype} pixels; convert it to 8- or 16-bit")
    flattened = False
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] in (2, 4):  # grey + alpha, BGRA
        colour, alpha = image[..., :-1], image[..., -1]
        flattened = bool(alpha.min() < 255)
        image = _over_white(cv2.cvtColor(colour, cv2.COLOR_GRAY2BGR) if colour.shape[2] == 1 else colour, alpha)
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InputError(f"{path} is {w}x{h} px; images need at least {MIN_SIDE} px per side")
    if h * w > MAX_PIXELS:
        raise InputError(f"{path} is {w}x{h} px, too large to process; downscale it first")
    return np.ascontiguousarray(image), flattened


def _over_white(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    return (bgr.astype(np.float32) * a + 255.0 * (1.0 - a)).round().astype(np.uint8)


def resize_longest(image: np.ndarray, longest: int, multiple: int = 1) -> np.ndarray:
    """Scale so the longest side is ``longest`` px (0 keeps the size); sides rounded to ``multiple``."""
    h, w = image.shape[:2]
    scale = longest / max(h, w) if longest else 1.0
    nh = max(multiple, int(round(h * scale / multiple)) * multiple)
    nw = max(multiple, int(round(w * scale / multiple)) * multiple)
    if (nh, nw) == (h, w):
        return image
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_CUBIC
    return cv2.resize(image, (nw, nh), interpolation=interp)


def resize_short(image: np.ndarray, short: int, upscale: bool = True) -> np.ndarray:
    """Scale so the shorter side is ``short`` px (0 keeps the size); ``upscale=False`` only ever shrinks (the
    engine: a larger frame would only cost time)."""
    h, w = image.shape[:2]
    if not short or short == min(h, w) or (short > min(h, w) and not upscale):
        return image
    scale = short / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def to_tensor(bgr: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 BGR (H, W, 3) → float RGB (1, 3, H, W) in [0, 1]."""
    rgb = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).to(device)
    return rgb.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_bgr(image: torch.Tensor) -> np.ndarray:
    """float RGB (1, 3, H, W) → uint8 BGR (H, W, 3), clamped."""
    rgb = image[0].detach().float().clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(rgb[..., ::-1])


def load_image(path: str | Path, longest: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Read an image file as a (1, 3, H, W) tensor, optionally scaled to ``longest`` px."""
    return to_tensor(resize_longest(read_image(path), longest), device)


def save_image(image: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write a tensor or BGR frame; the format follows the suffix. Errors name the path."""
    path = Path(path)
    bgr = to_bgr(image) if isinstance(image, torch.Tensor) else image
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"cannot write {path}: unknown image type '{suffix}'; use .png or .jpg")
    if not path.parent.exists():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    ok, encoded = cv2.imencode(suffix, bgr)
    if not ok:
        raise InputError(f"cannot encode {path} as {suffix}")
    try:  # beside the target, renamed when whole: an existing image is never left half-overwritten
        atomic_write(path, encoded.tofile)
    except OSError as exc:
        if is_disk_full(exc):
            raise InputError(f"cannot write {path}: no space left on {disk_of(path)}") from exc
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc
    return path
