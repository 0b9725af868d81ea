"""Style transfer by optimisation on VGG-19 features.

Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016:
start from an image (content, noise or style) and change its pixels until its VGG-19 features
match the content image at ``conv4_2`` and the Gram matrices of the style image at
``relu1_1 … relu5_1``. Slow (hundreds of VGG passes) but needs no trained decoder.

Our VGG-19 is the original Caffe network (BGR, 0–255, mean subtracted), so activations are
large (relu4_1 ≈ 400 on average); the default weights follow jcjohnson/neural-style, which used
the same network, Gram matrices divided by C·H·W and mean-squared losses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.base import check_image_batch
from core.errors import InputError, StylizerError
from models.vgg import TAPS, VGG19Features

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")

_LOGIT_EPS = 0.01  # start pixels this far from 0 and 1, where the sigmoid's gradient vanishes

ProgressFn = Callable[[int, dict[str, float]], None]


class GatysError(StylizerError):
    """The optimisation diverged (the loss became NaN or infinite)."""


@dataclass
class GatysConfig:
    """Settings of one Gatys optimisation; defaults look right at 512 px in ~300 L-BFGS steps."""

    iterations: int = 300
    optimizer: str = "lbfgs"
    lr: float = 0.05  # adam only: step size in logit units (the image is sigmoid(logits))
    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    style_layers: dict[str, float] = field(default_factory=lambda: {name: 1.0 for name in STYLE_LAYERS})
    content_layer: str = "conv4_2"
    init: str = "content"
    max_size: int = 1024  # longest side optimised; larger content is optimised smaller, then upscaled
    early_stop: float = 1e-3  # stop when the total loss fell by less than this fraction over the window
    early_stop_window: int = 20
    seed: int = 0

    def validate(self) -> "GatysConfig":
        """Raise InputError on a setting that cannot work; returns self."""
        if self.iterations < 1:
            raise InputError(f"gatys needs at least 1 iteration, got {self.iterations}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimiser {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.init not in INITS:
            raise InputError(f"unknown init {self.init!r}; choose one of: {', '.join(INITS)}")
        if min(self.content_weight, self.style_weight, self.tv_weight) < 0:
            raise InputError("gatys loss weights must be 0 or more")
        if self.lr <= 0:
            raise InputError(f"learning rate must be positive, got {self.lr}")
        if not self.style_layers:
            raise InputError("gatys needs at least one style layer")
        unknown = sorted((set(self.style_layers) | {self.content_layer}) - set(TAPS))
        if unknown:
            raise InputError(f"unknown VGG layers {unknown}; choose from {', '.join(TAPS)}")
        if self.max_size and self.max_size < 16:
            raise InputError(f"max_size must be 0 (no limit) or at least 16 px, got {self.max_size}")
        if self.early_stop < 0 or self.early_stop_window < 1:
            raise InputError("early_stop must be 0 or more and early_stop_window at least 1")
        return self


@dataclass
class GatysResult:
    """The optimised image (1, 3, H, W) in [0, 1] at the content's size, and how it got there."""

    image: torch.Tensor
    history: list[dict[str, float]]
    iterations: int
    stopped: str  # "done", "converged" or "cancelled"
    size: tuple[int, int]  # (H, W) actually optimised


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations (N, C, C) divided by C·H·W, so layers and sizes are comparable."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Sum of squared neighbour differences in 0–255 units (as neural-style), a smoothness prior."""
    scaled = image * 255.0
    dh = scaled[..., 1:, :] - scaled[..., :-1, :]
    dw = scaled[..., :, 1:] - scaled[..., :, :-1]
    return dh.pow(2).sum() + dw.pow(2).sum()


def fit_longest(image: torch.Tensor, longest: int) -> torch.Tensor:
    """Downscale (area) so the longest side is at most ``longest``; 0 means no limit."""
    h, w = image.shape[-2:]
    if not longest or max(h, w) <= longest:
        return image
    scale = longest / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image, size=size, mode="area")


class Gatys(nn.Module):
    """Gatys et al. (CVPR 2016) image optimisation on the Caffe VGG-19; no checkpoints."""

    name = "gatys"
    min_size = 16

    def __init__(self) -> None:
        super().__init__()
        self.vgg = VGG19Features("relu5_1")

    @property
    def device(self) -> torch.device:
        return next(self.vgg.parameters()).device

    def losses(
        self,
        image: torch.Tensor,
        content_target: torch.Tensor,
        style_targets: dict[str, torch.Tensor],
        config: GatysConfig,
    ) -> dict[str, torch.Tensor]:
        """The weighted content, style and TV losses of ``image`` and their sum."""
        taps = tuple(dict.fromkeys((config.content_layer, *config.style_layers)))
        feats = self.vgg(image, taps)
        content = F.mse_loss(feats[config.content_layer], content_target)
        style = sum(
            weight * F.mse_loss(gram_matrix(feats[name]), style_targets[name])
            for name, weight in config.style_layers.items()
        )
        tv = total_variation(image)
        weighted = {
            "content": config.content_weight * content,
            "style": config.style_weight * style,
            "tv": config.tv_weight * tv,
        }
        weighted["total"] = weighted["content"] + weighted["style"] + weighted["tv"]
        return weighted

    def _start(self, content: torch.Tensor, style: torch.Tensor, config: GatysConfig) -> torch.Tensor:
        if config.init == "content":
            return content.clone()
        if config.init == "style":
            return F.interpolate(style, size=content.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        # Mid-grey white noise: extreme pixels would start where the sigmoid is flat.
        noise = 0.25 + 0.5 * torch.rand(content.shape, generator=generator)
        return noise.to(content.device, content.dtype)

    def optimize(
        self,
        content: torch.Tensor,
        style: torch.Tensor,
        config: GatysConfig | None = None,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GatysResult:
        """Optimise an image to have ``content``'s content and ``style``'s style (both (1, 3, H, W) in [0, 1]).

        A step is one loss evaluation (one VGG forward and backward pass), so ``config.iterations``
        bounds the cost; L-BFGS line searches spend some of them. ``progress(step, losses)`` is
        called after every step; ``should_stop()`` is polled before every step and ends the run
        early. The image with the lowest loss seen is returned.
        """
        config = (config or GatysConfig()).validate()
        check_image_batch(content, "content", self.min_size)
        check_image_batch(style, "style", self.min_size)
        if content.shape[0] != 1 or style.shape[0] != 1:
            raise InputError("gatys optimises one content image with one style image at a time")
        device = self.device
        full_size = tuple(content.shape[-2:])
        # Inputs may come from inference mode (GUI, style cache): clone them into ordinary tensors.
        with torch.inference_mode(False), torch.enable_grad():
            content = fit_longest(
                content.detach().to(device).float().clone(memory_format=torch.contiguous_format), config.max_size
            )
            style = fit_longest(
                style.detach().to(device).float().clone(memory_format=torch.contiguous_format), config.max_size
            )
            if tuple(content.shape[-2:]) != full_size:
                log.warning(
                    "gatys: optimising at %dx%d instead of %dx%d (max_size %d), then upscaling",
                    content.shape[-1],
                    content.shape[-2],
                    full_size[1],
                    full_size[0],
                    config.max_size,
                )
            return self._run(content, style, config, full_size, progress, should_stop)

    def _run(
        self,
        content: torch.Tensor,
        style: torch.Tensor,
        config: GatysConfig,
        full_size: tuple[int, int],
        progress: ProgressFn | None,
        should_stop: Callable[[], bool] | None,
    ) -> GatysResult:
        with torch.no_grad():
            content_target = self.vgg(content, (config.content_layer,))[config.content_layer]
            style_targets = {name: gram_matrix(f) for name, f in self.vgg(style, tuple(config.style_layers)).items()}
        # Optimise logits: sigmoid keeps every pixel in (0, 1) without clamping, which would
        # break L-BFGS's line search and curvature pairs.
        start = self._start(content, style, config)
        logits = torch.logit(start.clamp(_LOGIT_EPS, 1.0 - _LOGIT_EPS)).requires_grad_(True)
        if config.optimizer == "lbfgs":
            optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
                [logits],
                lr=1.0,
                max_iter=config.iterations,
                max_eval=config.iterations,
                history_size=100,
                tolerance_grad=0.0,
                tolerance_change=0.0,
                line_search_fn="strong_wolfe",
            )
        else:
            optimizer = torch.optim.Adam([logits], lr=config.lr)

        history: list[dict[str, float]] = []
        running_min: list[float] = []
        best = start

        def closure() -> torch.Tensor:
            # One call = one VGG pass = one step; stopping is raised from here because L-BFGS
            # runs many steps inside a single optimizer.step().
            nonlocal best
            if len(history) >= config.iterations:
                raise _Stop("done")
            if should_stop is not None and should_stop():
                raise _Stop("cancelled")
            optimizer.zero_grad(set_to_none=True)
            image = torch.sigmoid(logits)
            losses = self.losses(image, content_target, style_targets, config)
            total = float(losses["total"].detach())
            if not math.isfinite(total):
                raise GatysError(
                    f"gatys diverged at step {len(history) + 1} (loss {total}); "
                    "lower the style weight or use the adam optimiser"
                )
            losses["total"].backward()
            history.append({k: float(v.detach()) for k, v in losses.items()})
            if not running_min or total < running_min[-1]:
                best = image.detach().clone()
            running_min.append(min(total, running_min[-1]) if running_min else total)
            if progress is not None:
                progress(len(history), history[-1])
            if self._converged(running_min, config):
                raise _Stop("converged")
            return losses["total"]

        try:
            while True:  # L-BFGS may end a step() early (no descent direction); Adam does one per call
                optimizer.step(closure)
        except _Stop as stop:
            stopped = stop.reason
        log.debug("gatys: %s after %d steps", stopped, len(history))
        result = best
        if tuple(result.shape[-2:]) != full_size:
            result = F.interpolate(result, size=full_size, mode="bicubic", align_corners=False)
        return GatysResult(result.clamp(0.0, 1.0), history, len(history), stopped, tuple(content.shape[-2:]))

    @staticmethod
    def _converged(running_min: list[float], config: GatysConfig) -> bool:
        """True when the best loss fell by less than ``early_stop`` (relative) over the window."""
        window = config.early_stop_window
        if not config.early_stop or len(running_min) <= window:
            return False
        old, new = running_min[-window - 1], running_min[-1]
        return old > 0 and (old - new) / old < config.early_stop


class _Stop(Exception):
    """Raised inside the loss closure to end the optimisation; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
