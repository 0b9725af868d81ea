"""Colour preservation: keep the content's colours, take the stylised luminance.

Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016), luminance-only
transfer: the output's Y channel (BT.601) with the content's Cb/Cr. Cheap enough per frame.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_RGB_TO_Y = (0.299, 0.587, 0.114)
_Y = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # BT.601 luma weights in BGR order


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(1)
    return (_RGB_TO_Y[0] * r + _RGB_TO_Y[1] * g + _RGB_TO_Y[2] * b).unsqueeze(1)


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Replace the luminance of ``content`` with that of ``stylized`` (both RGB in [0, 1])."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    return (content + (luminance(stylized) - luminance(content))).clamp(0.0, 1.0)


def preserve_color_bgr(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The content's colours with the stylised luminance, on uint8 BGR frames (the engine's path)."""
    c = content.astype(np.float32)
    delta = (stylized.astype(np.float32) - c) @ _Y
    return np.clip(c + delta[..., None] + 0.5, 0, 255).astype(np.uint8)
