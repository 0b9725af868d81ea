"""A still image, the library call behind ``main.py image``: on a backend or in PyTorch.

Feed-forward models run on a backend (``stylize_still_on``): the style code is encoded (and blended) in
PyTorch once, as for video; the image then goes through the backend's per-frame graph like one video frame
(uint8 BGR in and out), so ``--backend auto`` gives a still image the same fast path as a video. Masked
two-style images stay on PyTorch (``stylize_still``): their blend happens inside the network, which the
exported graphs do not take. Gatys optimises the image (``gatys_still``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from core.checks import unit
from core.color import preserve_color, preserve_color_bgr
from core.errors import InputError
from core.images import read_image, resize_longest, to_tensor
from models.base import StyleCode, StyleModel
from models.errors import ModelError
from models.styles import StyleCodeCache, StyleImage
from realtime.backends.base import Backend


@dataclass
class StillOptions:
    """What ``main.py image`` asks for; sizes are the longest side in px, 0 keeps the image."""

    alpha: float = 1.0
    preserve_color: bool = False
    size: int = 512
    style_size: int = 512
    style_weights: list[float] | None = None
    mask: Path | None = None
    gatys: dict = field(default_factory=dict)  # GatysConfig fields, for the gatys model only


def check_alpha(alpha: float) -> float:
    return unit(alpha, "alpha")


def load_mask(path: Path, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """A grey mask resized to ``shape`` (H, W): 1 = first style, 0 = second style."""
    grey = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(grey).to(device).float().div(255.0)[None, None]


def style_codes(
    model: StyleModel, style_paths: list[Path], options: StillOptions, cache: StyleCodeCache | None = None
) -> list[StyleCode]:
    """One style code per style image, encoded at ``options.style_size``."""
    cache = cache or StyleCodeCache()
    return [cache.get(model, StyleImage.load(p), options.style_size) for p in style_paths]


def blended_code(codes: list[StyleCode], options: StillOptions) -> StyleCode:
    """The codes mixed by ``options.style_weights`` (one code as it is)."""
    return StyleCode.blend(codes, options.style_weights) if len(codes) > 1 else codes[0]


def stylize_still(
    model: StyleModel,
    content_path: Path,
    style_paths: list[Path],
    options: StillOptions,
    cache: StyleCodeCache | None = None,
) -> torch.Tensor:
    """Stylise one image with a feed-forward model; returns (1, 3, H, W) RGB in [0, 1]."""
    check_alpha(options.alpha)
    content = to_tensor(resize_longest(read_image(content_path), options.size), model.device)
    codes = style_codes(model, style_paths, options, cache)
    with torch.inference_mode():
        if options.mask is not None:
            if len(codes) != 2:
                raise InputError(f"--mask splits the image between exactly two styles; got {len(codes)}")
            mask = load_mask(options.mask, content.shape[-2:], content.device)
            if hasattr(model, "stylize_masked"):
                out = model.stylize_masked(content, codes, mask, options.alpha)
            else:  # any model: mix the two stylisations pixel by pixel
                out = mask * model.stylize(content, codes[0], options.alpha) + (1 - mask) * model.stylize(
                    content, codes[1], options.alpha
                )
        else:
            out = model.stylize(content, blended_code(codes, options), options.alpha)
        if options.preserve_color:
            out = preserve_color(out, content)
    return out.clamp(0, 1)


def gatys_still(
    model, content_path: Path, style_paths: list[Path], options: StillOptions, progress=None
) -> torch.Tensor:
    """Stylise one image by optimisation (``models.gatys``)."""
    from models.gatys import GatysConfig

    if len(style_paths) != 1 or options.mask is not None:
        raise ModelError("gatys takes exactly one style and no mask")
    content = to_tensor(resize_longest(read_image(content_path), options.size), model.device)
    style = to_tensor(resize_longest(read_image(style_paths[0]), options.style_size), model.device)
    config = GatysConfig(**options.gatys)
    result = model.optimize(content, style, config, progress=progress)
    out = result.image
    if options.alpha < 1.0:
        out = options.alpha * out + (1 - options.alpha) * content
    if options.preserve_color:
        out = preserve_color(out, content)
    return out.clamp(0, 1)


def stylize_still_on(
    backend: Backend,
    model: StyleModel,
    content_path: Path,
    style_paths: list[Path],
    options: StillOptions,
    cache: StyleCodeCache | None = None,
) -> np.ndarray:
    """Stylise one image on ``backend``; returns uint8 BGR at the content's working size."""
    check_alpha(options.alpha)
    frame = resize_longest(read_image(content_path), options.size)
    code = blended_code(style_codes(model, style_paths, options, cache), options)
    out = backend.run(frame, code, options.alpha)
    if options.preserve_color:
        out = preserve_color_bgr(out, frame)
    return out
