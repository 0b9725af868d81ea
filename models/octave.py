"""Octave-convolution building blocks and AesFA's adaptive octave convolution.

Octave convolution: Chen et al., "Drop an Octave: Reducing Spatial Redundancy in Convolutional
Neural Networks with Octave Convolution", ICCV 2019. A feature map is a pair ``(high, low)``:
the low-frequency half of the channels lives at half the resolution of the high-frequency half.

Adaptive octave convolution (AdaOctConv): Kwon et al., "AesFA: An Aesthetic Feature-Aware
Arbitrary Neural Style Transfer", AAAI 2024, built on AdaConv (Chandran et al., CVPR 2021):
per-style depthwise-spatial and pointwise kernels and biases are predicted from the style's
high- and low-frequency features. Prediction (``KernelPredictor``) runs once per style; the
convolution with those kernels (``AdaConv2d``) runs per frame with the kernels as plain inputs.

Module and attribute names follow the official code (Sooyyoungg/AesFA) so its ``main.pth``
loads strictly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Octave = tuple[torch.Tensor, torch.Tensor]  # (high-frequency, low-frequency at half resolution)
#: the kernels AdaConv2d takes: (spatial, pointwise, bias), each with a leading style-batch axis.
Kernels = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default, as in the official Oct_conv_lreLU


def octave_leaky_relu(x: Octave) -> Octave:
    """LeakyReLU on both frequency bands."""
    return F.leaky_relu(x[0], LEAKY_SLOPE), F.leaky_relu(x[1], LEAKY_SLOPE)


def octave_upsample(x: Octave) -> Octave:
    """Nearest-neighbour ×2 upsampling of both bands."""
    return upsample2(x[0]), upsample2(x[1])


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def split_channels(channels: int, alpha: float) -> tuple[int, int]:
    """(high, low) channel counts for a low-frequency ratio ``alpha``, rounded as the official code."""
    high = int(channels * (1 - alpha))
    return high, channels - high


class OctConv(nn.Module):
    """Octave convolution; ``kind`` is "first" (image → octave), "normal" or "last" (octave → image).

    A "normal" layer whose ``groups`` equals its input channels is depthwise: each band is
    convolved on its own, with no exchange between the frequencies.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        alpha_in: float = 0.5,
        alpha_out: float = 0.5,
        kind: str = "normal",
        freq_ratio: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        if kind not in ("first", "normal", "last"):
            raise ValueError(f"unknown octave convolution kind {kind!r}")
        self.kind = kind
        self.freq_ratio = tuple(freq_ratio)
        h_in, l_in = split_channels(in_channels, alpha_in)
        h_out, l_out = split_channels(out_channels, alpha_out)
        conv = dict(kernel_size=kernel_size, stride=stride, padding=padding, padding_mode="reflect", bias=False)
        self.is_depthwise = groups == in_channels
        if kind == "first":
            self.convh = nn.Conv2d(in_channels, h_out, **conv)
            self.convl = nn.Conv2d(in_channels, l_out, **conv)
        elif kind == "last":
            self.convh = nn.Conv2d(h_in, out_channels, **conv)
            self.convl = nn.Conv2d(l_in, out_channels, **conv)
        else:
            self.L2L = nn.Conv2d(l_in, l_out, groups=math.ceil(alpha_in * groups), **conv)
            if self.is_depthwise:
                self.L2H = None
                self.H2L = None
            else:
                self.L2H = nn.Conv2d(l_in, h_out, groups=groups, **conv)
                self.H2L = nn.Conv2d(h_in, l_out, groups=groups, **conv)
            self.H2H = nn.Conv2d(h_in, h_out, groups=math.ceil(groups - alpha_in * groups), **conv)

    def forward(self, x):
        """Octave (or image for "first") in; octave out, or for "last" ``(image, high part, low part)``."""
        if self.kind == "first":
            return self.convh(x), self.convl(F.avg_pool2d(x, 2))
        high, low = x
        if self.kind == "last":
            out_h = self.convh(high)
            out_l = self.convl(upsample2(low))
            return out_h * self.freq_ratio[0] + out_l * self.freq_ratio[1], out_h, out_l
        if self.is_depthwise:
            return self.H2H(high), self.L2L(low)
        return (self.H2H(high) + self.L2H(upsample2(low)), self.L2L(low) + self.H2L(F.avg_pool2d(high, 2)))


class OctConvAfterUp(nn.Module):
    """Per-band convolution after upsampling (official ``Oct_Conv_aftup``), with biases."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        alpha_in: float = 0.5,
        alpha_out: float = 0.5,
    ) -> None:
        super().__init__()
        # The official block gives the *low* band int(C * alpha) channels (not C - int(C * (1 - alpha))).
        l_in, l_out = int(in_channels * alpha_in), int(out_channels * alpha_out)
        conv = dict(kernel_size=kernel_size, padding=padding, padding_mode="reflect")
        self.conv_h = nn.Conv2d(in_channels - l_in, out_channels - l_out, **conv)
        self.conv_l = nn.Conv2d(l_in, l_out, **conv)

    def forward(self, x: Octave) -> Octave:
        return self.conv_h(x[0]), self.conv_l(x[1])


class KernelPredictor(nn.Module):
    """Predicts one band's AdaConv kernels from that band's pooled style features (per style)."""

    def __init__(
        self, in_channels: int, out_channels: int, n_groups: int, style_channels: int, kernel_size: int
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_groups = n_groups
        self.kernel_size = kernel_size
        pad = math.ceil((kernel_size - 1) / 2)
        self.spatial = nn.Conv2d(
            style_channels, in_channels * out_channels // n_groups, kernel_size, padding=pad, padding_mode="reflect"
        )
        self.pointwise = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(style_channels, out_channels * out_channels // n_groups, 1)
        )
        self.bias = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(style_channels, out_channels, 1))

    def forward(self, style: torch.Tensor) -> Kernels:
        """(B, C, k, k) style features → spatial (B, out, in/g, k, k), pointwise (B, out, out/g, 1, 1), bias (B, out)."""
        b = style.shape[0]
        k = self.kernel_size
        spatial = self.spatial(style).reshape(b, self.out_channels, self.in_channels // self.n_groups, k, k)
        pointwise = self.pointwise(style).reshape(b, self.out_channels, self.out_channels // self.n_groups, 1, 1)
        return spatial, pointwise, self.bias(style).reshape(b, self.out_channels)


def grouped_conv(x: torch.Tensor, weight: torch.Tensor, groups: int, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Convolve with per-sample kernels ``weight`` (B, out, in/g, k, k); B is 1 (shared) or x's batch."""
    if weight.shape[0] == 1:  # one style for the whole batch: a plain convolution (the exported path)
        return F.conv2d(x, weight[0], None if bias is None else bias[0], groups=groups)
    n, c, h, w = x.shape
    # A different kernel per sample: fold the batch into channels and use batch*groups groups.
    out = F.conv2d(
        x.reshape(1, n * c, h, w),
        weight.reshape(-1, *weight.shape[2:]),
        None if bias is None else bias.reshape(-1),
        groups=n * groups,
    )
    return out.reshape(n, -1, out.shape[-2], out.shape[-1])


class AdaConv2d(nn.Module):
    """Instance norm → per-style depthwise-spatial conv → per-style pointwise conv + bias → fixed conv."""

    def __init__(self, in_channels: int, out_channels: int, n_groups: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.n_groups = n_groups
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, padding_mode="reflect"
        )

    def forward(
        self, x: torch.Tensor, spatial: torch.Tensor, pointwise: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        x = F.instance_norm(x)
        k = spatial.shape[-1]
        x = F.pad(x, (math.ceil((k - 1) / 2), (k - 1) // 2) * 2, mode="reflect")
        x = grouped_conv(x, spatial, self.n_groups)
        x = grouped_conv(x, pointwise, self.n_groups, bias)
        return self.conv(x)


class AdaOctConv(nn.Module):
    """AesFA's aesthetic feature-aware adaptive octave convolution (one decoder stage)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group_div: int,
        style_channels: int,
        kernel_size: tuple[int, int, int],
        stride: int,
        padding: int,
        oct_groups: int,
        alpha_in: float,
        alpha_out: float,
        kind: str = "normal",
    ) -> None:
        super().__init__()
        self.kind = kind
        h_in, l_in = split_channels(in_channels, alpha_in)
        style_h, style_l = split_channels(style_channels, alpha_in)
        self.kernelPredictor_h = KernelPredictor(h_in, h_in, h_in // group_div, style_h, kernel_size[0])
        self.kernelPredictor_l = KernelPredictor(l_in, l_in, l_in // group_div, style_l, kernel_size[1])
        self.AdaConv_h = AdaConv2d(h_in, h_in, h_in // group_div)
        self.AdaConv_l = AdaConv2d(l_in, l_in, l_in // group_div)
        self.OctConv = OctConv(
            in_channels, out_channels, kernel_size[2], stride, padding, oct_groups, alpha_in, alpha_out, kind
        )

    def predict(self, style: Octave) -> tuple[Kernels, Kernels]:
        """The per-style part: kernels for the high band from the style's high band, likewise low."""
        return self.kernelPredictor_h(style[0]), self.kernelPredictor_l(style[1])

    def forward(self, x: Octave, kernels_h: Kernels, kernels_l: Kernels, alpha: torch.Tensor | float = 1.0) -> Octave:
        """The per-frame part; ``alpha`` < 1 mixes the adaptive conv's output with its content input."""
        high = self.AdaConv_h(x[0], *kernels_h)
        low = self.AdaConv_l(x[1], *kernels_l)
        if not (isinstance(alpha, float) and alpha == 1.0):
            # Strength, as AdaIN's t = a*styled + (1-a)*content features (the official code has none).
            high = alpha * high + (1 - alpha) * x[0]
            low = alpha * low + (1 - alpha) * x[1]
        out = self.OctConv(octave_leaky_relu((high, low)))
        return out if self.kind == "last" else octave_leaky_relu(out)
