"""MicroAST: a micro encoder–decoder for arbitrary style transfer, no VGG at inference.

Wang, Zhao, Zuo, Chen, Xing, Lu, Tang, Wang, "MicroAST: Towards Super-Fast Ultra-Resolution
Arbitrary Style Transfer", AAAI 2023 (code: EndyWon/MicroAST, MIT). A content encoder and a
style encoder of the same tiny design extract two feature levels; a modulator predicts filter
modulation signals from the style features; the decoder applies *dual modulation* — feature
modulation (AdaIN with the style features' mean and std) and filter modulation (the predicted
per-channel weight and bias mixed into its residual blocks) — and upsamples back to an image.

Everything that depends on the style alone is computed once in :meth:`MicroAST.encode_style`;
the per-frame network (:class:`MicroASTFrameNetwork`) is the content encoder plus the decoder.
The module layout mirrors the official state dicts key for key, so they load strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from models.base import StyleCode, StyleModel, check_image_batch
from models.checkpoints import load_checked, read_safetensors, read_torch
from core.errors import InputError
from models.errors import ModelError, WeightsError

#: eps added to the variance, as in the paper's AdaIN (and upstream ``calc_mean_std``).
STATS_EPS = 1e-5
#: the encoders downsample twice by 2 (padded), so the decoder returns ceil(H/4)*4 rows.
STRIDE = 4
ROLES = ("content_encoder", "style_encoder", "modulator", "decoder")
#: where alpha acts: on the output image (default) or, as upstream, on the modulated features.
STRENGTH_MODES = ("image", "features")


def channel_mean_std(feat: torch.Tensor, eps: float = STATS_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std (unbiased variance + eps), shaped (N, C, 1, 1)."""
    # Statistics in float32 even for half-precision features: sums over many pixels overflow fp16.
    var, mean = torch.var_mean(feat.float(), dim=(2, 3), correction=1, keepdim=True)
    return mean.to(feat.dtype), (var + eps).sqrt().to(feat.dtype)


def feature_modulation(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    """AdaIN (Huang & Belongie, ICCV 2017): the content features re-normalised to the style's statistics."""
    mean, std = channel_mean_std(content)
    return (content - mean) / std * style_std + style_mean


class ReflectionConv(nn.Module):
    """Reflection padding then convolution (Johnson et al., ECCV 2016), grouped for depthwise layers."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv_layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_layer(self.pad(x))


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a ReLU between and an identity shortcut (He et al., CVPR 2016)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = ReflectionConv(channels, channels, 3)
        self.conv2 = ReflectionConv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class FilterModulatedResidualBlock(ResidualBlock):
    """MicroAST's filter modulation: each conv output becomes ``weight * conv(x) + bias * x``.

    ``weight`` and ``bias`` are the per-channel signals the modulator predicts from the style,
    so the style steers the decoder's filters, not only its features' statistics.
    """

    def forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = F.relu(weight * self.conv1(x) + bias * x)
        return x + weight * self.conv2(h) + bias * h


class MicroEncoder(nn.Module):
    """MicroAST's micro encoder: a 9×9 stem, two depthwise-separable stride-2 stages, two residual blocks.

    Returns the features after the first residual block (``enc1``) and after the second
    (``enc2``), both with 64 channels at a quarter of the input size (rounded up).
    """

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(
            ReflectionConv(3, 16, 9),
            nn.ReLU(),
            ReflectionConv(16, 32, 3, stride=2, groups=16),
            nn.ReLU(),  # depthwise ×2, downsample
            ReflectionConv(32, 32, 1),
            nn.ReLU(),  # pointwise
            ReflectionConv(32, 64, 3, stride=2, groups=32),
            nn.ReLU(),
            ReflectionConv(64, 64, 1),
            nn.ReLU(),
            ResidualBlock(64),
        )
        self.enc2 = nn.Sequential(ResidualBlock(64))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shallow = self.enc1(x)
        return shallow, self.enc2(shallow)


class Modulator(nn.Module):
    """MicroAST's modulator: a depthwise 3×3 conv and global pooling per signal, from each style level."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        for name in ("weight1", "bias1", "weight2", "bias2"):
            self.add_module(
                name, nn.Sequential(ReflectionConv(channels, channels, 3, groups=channels), nn.AdaptiveAvgPool2d(1))
            )

    def forward(self, shallow: torch.Tensor, deep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Filter weights and biases, each (N, 2, C, 1, 1): index 0 from the shallow level, 1 from the deep."""
        weight = torch.stack((self.weight1(shallow), self.weight2(deep)), dim=1)
        bias = torch.stack((self.bias1(shallow), self.bias2(deep)), dim=1)
        return weight, bias


class MicroDecoder(nn.Module):
    """MicroAST's micro decoder: two dual-modulated residual blocks, then two ×2 bilinear upsampling stages."""

    def __init__(self) -> None:
        super().__init__()
        self.dec1 = FilterModulatedResidualBlock(64)
        self.dec2 = FilterModulatedResidualBlock(64)
        self.dec3 = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear"),
            ReflectionConv(64, 32, 3, groups=32),
            nn.ReLU(),
            ReflectionConv(32, 32, 1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear"),
            ReflectionConv(32, 16, 3, groups=16),
            nn.ReLU(),
            ReflectionConv(16, 16, 1),
            nn.ReLU(),
            ReflectionConv(16, 3, 9),
        )

    def forward(
        self,
        deep: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        filter_weight: torch.Tensor,
        filter_bias: torch.Tensor,
        alpha: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode deep content features with a style code's tensors (level 1 = deep, 0 = shallow).

        ``alpha`` (None = full style) mixes the feature modulation with the unmodulated features,
        exactly as upstream does; filter modulation always applies.
        """
        x = feature_modulation(deep, mean[1], std[1])
        if alpha is not None:
            x = alpha * x + (1 - alpha) * deep
        h = self.dec1(x, filter_weight[1], filter_bias[1])
        x = feature_modulation(h, mean[0], std[0])
        if alpha is not None:
            x = alpha * x + (1 - alpha) * h
        x = self.dec2(x, filter_weight[0], filter_bias[0])
        return self.dec3(x)


class MicroASTFrameNetwork(nn.Module):
    """The per-frame part: content encoder + decoder; ``forward(content, mean, std, filter_weight, filter_bias, alpha)``.

    ``strength`` says where alpha acts. ``"image"`` (default) mixes the full stylisation with the
    content image, so alpha=0 returns the content and the strength is monotonic. ``"features"``
    is upstream's feature-level mix; it equals ``"image"`` at alpha=1, but the official decoder
    was trained at alpha=1 only and returns saturated colour fields for 0 < alpha < 1 and an
    orange-tinted image at alpha=0 (the content encoder's features are far smaller than the
    style statistics it was trained to decode), so it is kept for reproducing upstream only.
    """

    def __init__(self, content_encoder: MicroEncoder, decoder: MicroDecoder, strength: str = "image") -> None:
        super().__init__()
        if strength not in STRENGTH_MODES:
            raise ModelError(f"unknown MicroAST strength mode {strength!r}; choose one of: {', '.join(STRENGTH_MODES)}")
        self.content_encoder = content_encoder
        self.decoder = decoder
        self.strength = strength

    def forward(
        self,
        content: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        filter_weight: torch.Tensor,
        filter_bias: torch.Tensor,
        alpha: torch.Tensor,
    ) -> torch.Tensor:
        _, deep = self.content_encoder(content)
        if self.strength == "features":
            out = self.decoder(deep, mean, std, filter_weight, filter_bias, alpha)
        else:
            out = self.decoder(deep, mean, std, filter_weight, filter_bias)
        # The decoder returns ceil(side/4)*4 px; the extra rows/columns are at the bottom/right.
        # A negative pad crops them: unlike slicing, it exports without a guard that specialises
        # the graph on whether the side is a multiple of 4.
        out = F.pad(out, (0, content.shape[-1] - out.shape[-1], 0, content.shape[-2] - out.shape[-2]))
        if self.strength == "features":
            return out
        return alpha * out + (1 - alpha) * content


class MicroAST(StyleModel):
    """MicroAST (Wang et al., AAAI 2023) behind the two-step interface.

    Style code tensors, each (2, 64, 1, 1) with index 0 = shallow level, 1 = deep level:
    ``mean`` and ``std`` of the style encoder's features (feature modulation) and the
    modulator's ``filter_weight`` and ``filter_bias`` (filter modulation). A weighted sum of codes
    interpolates AdaIN's target statistics (its output is affine in mean and std) and the
    per-channel filter signals, which is what blending styles means for this network.
    ``strength`` ("image" or "features") says where alpha acts; see :class:`MicroASTFrameNetwork`.
    """

    name = "microast"

    def __init__(self, strength: str = "image") -> None:
        super().__init__()
        self.style_encoder = MicroEncoder()
        self.modulator = Modulator()
        self.frame = MicroASTFrameNetwork(MicroEncoder(), MicroDecoder(), strength)

    def components(self) -> dict[str, nn.Module]:
        """The four trained parts, keyed by their checkpoint roles."""
        return {
            "content_encoder": self.frame.content_encoder,
            "style_encoder": self.style_encoder,
            "modulator": self.modulator,
            "decoder": self.frame.decoder,
        }

    @classmethod
    def from_files(cls, files: dict[str, Path], strength: str = "image") -> "MicroAST":
        """Build from the four official state dicts, checking every key and shape; ``strength`` as in the frame network."""
        missing_roles = [r for r in ROLES if r not in files]
        if missing_roles:
            raise WeightsError(
                f"MicroAST needs checkpoint files for {', '.join(missing_roles)}; "
                "give them all (e.g. --weights decoder=PATH)"
            )
        model = cls(strength)
        for role, module in model.components().items():
            load_strict(module, Path(files[role]), role)
        model.requires_grad_(False)
        return model.eval()

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor) -> StyleCode:
        """The style's feature statistics and filter-modulation signals at both levels."""
        check_image_batch(style, "style image", self.min_size)
        if style.shape[0] != 1:
            raise InputError(f"encode one style image at a time, got a batch of {style.shape[0]}")
        shallow, deep = self.style_encoder(style)
        weight, bias = self.modulator(shallow, deep)
        stats = [channel_mean_std(f) for f in (shallow, deep)]
        return StyleCode(
            self.name,
            {
                "mean": torch.cat([m for m, _ in stats]),
                "std": torch.cat([s for _, s in stats]),
                "filter_weight": weight[0],
                "filter_bias": bias[0],
            },
        )

    def stylize(self, content: torch.Tensor, code: StyleCode, alpha: float = 1.0) -> torch.Tensor:
        """Stylise a batch of content images; any size of at least ``min_size`` px per side."""
        check_image_batch(content, "content image", self.min_size)
        if code.model != self.name:
            raise InputError(f"this style was encoded for {code.model}, not {self.name}; encode it again")
        return super().stylize(content, code, alpha)

    def frame_network(self) -> MicroASTFrameNetwork:
        return self.frame


def load_strict(module: nn.Module, path: Path, role: str) -> None:
    """Load the official ``role`` checkpoint into ``module``, reporting missing, unexpected and mis-shaped keys.

    ``path`` is either that role's official ``.pth.tar`` or a ``.safetensors`` file holding every role,
    keyed ``<role>.<key>`` (the bundled copy, ``models/weights/microast_official.safetensors``).
    """
    if Path(path).suffix == ".safetensors":
        tensors, _ = read_safetensors(Path(path), "MicroAST checkpoint", "reinstall the package or delete the file")
        prefix = role + "."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    else:
        state = read_torch(path, f"MicroAST {role} checkpoint", "download the official file again")
    load_checked(module, state, f"MicroAST {role} checkpoint {path}", f"is it the official {role} file?")
