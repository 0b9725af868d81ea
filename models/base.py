"""The two-step interface every feed-forward model shares.

``code = model.encode_style(style)`` runs once per style; ``model.stylize(content, code, alpha)``
runs per frame. Images are float tensors, RGB in [0, 1], shape (N, 3, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.errors import InputError
from models.errors import ModelError


@dataclass(frozen=True)
class StyleCode:
    """A style encoded for one model: named tensors that the per-frame network takes as inputs.

    Every model's code is linear in the sense that matters for blending: a weighted sum of codes
    is the code of the interpolated style (mean/std for AdaIN, modulation parameters for
    MicroAST, predicted kernels for AesFA), so blending and strength need no re-encoding.
    """

    model: str
    tensors: dict[str, torch.Tensor]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "StyleCode":
        return StyleCode(self.model, {k: v.to(device=device, dtype=dtype) for k, v in self.tensors.items()})

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    @staticmethod
    def blend(codes: list["StyleCode"], weights: list[float] | None = None) -> "StyleCode":
        """The weighted sum of codes of one model; weights are normalised to sum to one."""
        if not codes:
            raise InputError("blending needs at least one style")
        if len({c.model for c in codes}) != 1:
            raise ModelError("cannot blend style codes of different models")
        if weights is None:
            weights = [1.0] * len(codes)
        if len(weights) != len(codes):
            raise InputError(f"got {len(weights)} style weights for {len(codes)} styles; give one per style")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise InputError("style weights must be non-negative and not all zero")
        total = float(sum(weights))
        names = codes[0].names
        blended = {name: sum(c.tensors[name] * (w / total) for c, w in zip(codes, weights)) for name in names}
        return StyleCode(codes[0].model, blended)


class StyleModel(nn.Module):
    """Base class of the feed-forward models."""

    name: str = "?"
    #: every input side is padded/cropped internally, so any size works; this is the minimum.
    min_size: int = 16

    def encode_style(self, style: torch.Tensor) -> StyleCode:  # pragma: no cover - interface
        raise NotImplementedError

    def stylize(self, content: torch.Tensor, code: StyleCode, alpha: float = 1.0) -> torch.Tensor:
        """Stylise a batch of content images with one style code; alpha in [0, 1] is strength."""
        return self.frame_network()(content, *code.tensors.values(), torch.tensor(float(alpha)))

    def frame_network(self) -> nn.Module:  # pragma: no cover - interface
        """The per-frame network: ``forward(content, *code_tensors, alpha) -> image``; exported."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def check_image_batch(x: torch.Tensor, what: str, min_size: int = 16) -> None:
    """Shape check at a public boundary: (N, 3, H, W) float."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"{what} must be an (N, 3, H, W) RGB tensor, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise InputError(f"{what} is {x.shape[-1]}x{x.shape[-2]} px; it needs at least {min_size} px per side")
