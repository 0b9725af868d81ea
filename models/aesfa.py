"""AesFA: Kwon et al., "AesFA: An Aesthetic Feature-Aware Arbitrary Neural Style Transfer", AAAI 2024.

Three networks, named as in the official code (Sooyyoungg/AesFA, MIT) so its ``main.pth``
(a dict ``{netE, netS, netG}``) loads strictly:

- ``netE`` content encoder and ``netS`` style encoder: the same octave-convolution encoder
  (stride 4 for the high band, 8 for the low band), trained separately;
- ``netG`` decoder: three AdaOctConv stages whose kernels are predicted from the style's pooled
  high/low-frequency features (3×3), then octave upsampling back to the image.

Split for real time: :meth:`AesFA.encode_style` runs ``netS`` *and* every kernel predictor once
per style; the code holds the 18 predicted tensors (3 stages × 2 bands × spatial, pointwise,
bias). The per-frame network (``netE`` + the rest of ``netG``) takes them as plain inputs.
Kernels are linear in the pooled style features, so a weighted sum of codes equals the code of
the blended features; high-band kernels depend only on the style's high band, which is what
:func:`mix_frequencies` uses (the paper's "style blending" of two styles' frequencies).

Conventions: the networks work on ImageNet-normalised RGB (as the official test code feeds
them); the frame network takes and returns RGB in [0, 1] and normalises inside. Sizes are padded
(reflect) to a multiple of 8 and the output is cropped back. ``alpha`` (strength): the official
code has none. ``strength="features"`` (default): each AdaOctConv stage outputs
``alpha * adaptive(x) + (1 - alpha) * x``, AdaIN's feature interpolation; ``"image"``: the output
is ``alpha * stylised + (1 - alpha) * content``, as MicroAST's default. Both are exactly the
official model at alpha = 1; which looks better in between could not be checked (no trained
weights yet: the official decoder was trained at alpha = 1 only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.base import StyleCode, StyleModel, check_image_batch
from models.checkpoints import problems as key_problems
from models.checkpoints import read_safetensors, read_torch
from models.errors import ModelError, WeightsError
from models.octave import AdaOctConv, Octave, OctConv, OctConvAfterUp, octave_leaky_relu, octave_upsample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRENGTH_MODES = ("features", "image")
STRIDE = 8  # the low band of the encoder's output is at 1/8 of the input size
NETS = ("netE", "netS", "netG")
STAGES = ("d1", "d2", "d3")
PARTS = ("spatial", "pointwise", "bias")
#: names of the style-code tensors, in the order the frame network takes them.
CODE_NAMES = tuple(f"{stage}_{band}_{part}" for stage in STAGES for band in ("h", "l") for part in PARTS)


@dataclass(frozen=True)
class AesFAConfig:
    """Network widths; the defaults are the official ``Config`` (and its ``main.pth``)."""

    nf: int = 64
    alpha_in: float = 0.5
    alpha_out: float = 0.5
    style_kernel: int = 3
    freq_ratio: tuple[float, float] = (1.0, 1.0)


class Encoder(nn.Module):
    """Octave-convolution encoder (content ``netE`` and style ``netS`` share this shape)."""

    def __init__(self, config: AesFAConfig = AesFAConfig()) -> None:
        super().__init__()
        nf, a_in, a_out, sk = config.nf, config.alpha_in, config.alpha_out, config.style_kernel
        oct_ = dict(alpha_in=a_in, alpha_out=a_out)
        self.conv = nn.Conv2d(3, nf, kernel_size=7, padding=3)
        self.OctConv1_1 = OctConv(nf, nf, 3, stride=2, padding=1, groups=64, kind="first", **oct_)
        self.OctConv1_2 = OctConv(nf, 2 * nf, 1, **oct_)
        self.OctConv1_3 = OctConv(2 * nf, 2 * nf, 3, padding=1, **oct_)
        self.OctConv2_1 = OctConv(2 * nf, 2 * nf, 3, stride=2, padding=1, groups=128, **oct_)
        self.OctConv2_2 = OctConv(2 * nf, 4 * nf, 1, **oct_)
        self.OctConv2_3 = OctConv(4 * nf, 4 * nf, 3, padding=1, **oct_)
        self.pool_h = nn.AdaptiveAvgPool2d(sk)
        self.pool_l = nn.AdaptiveAvgPool2d(sk)

    def features(self, x: torch.Tensor) -> list[Octave]:
        """The octave features after each of the two stages (the last is the content code)."""
        out = self.conv(x)
        for layer in (self.OctConv1_1, self.OctConv1_2, self.OctConv1_3):
            out = octave_leaky_relu(layer(out))
        first = out
        for layer in (self.OctConv2_1, self.OctConv2_2, self.OctConv2_3):
            out = octave_leaky_relu(layer(out))
        return [first, out]

    def pool(self, feature: Octave) -> Octave:
        """Pooled (k×k) high and low style features: what the kernel predictors read."""
        return self.pool_h(feature[0]), self.pool_l(feature[1])

    def forward(self, x: torch.Tensor) -> Octave:
        return self.features(x)[-1]


class Decoder(nn.Module):
    """``netG``: three adaptive octave stages, upsampling ×2 after the first two."""

    def __init__(self, config: AesFAConfig = AesFAConfig()) -> None:
        super().__init__()
        nf, a_in, a_out, sk = config.nf, config.alpha_in, config.alpha_out, config.style_kernel
        oct_ = dict(alpha_in=a_in, alpha_out=a_out)
        kernel = (sk, sk, 3)
        style_channels = 4 * nf
        self.AdaOctConv1_1 = AdaOctConv(4 * nf, 4 * nf, 1, style_channels, kernel, 1, 1, 4 * nf, a_in, a_out)
        self.OctConv1_2 = OctConv(4 * nf, 2 * nf, 1, **oct_)
        self.oct_conv_aftup_1 = OctConvAfterUp(2 * nf, 2 * nf, **oct_)
        self.AdaOctConv2_1 = AdaOctConv(2 * nf, 2 * nf, 2, style_channels, kernel, 1, 1, 2 * nf, a_in, a_out)
        self.OctConv2_2 = OctConv(2 * nf, nf, 1, **oct_)
        self.oct_conv_aftup_2 = OctConvAfterUp(nf, nf, **oct_)
        self.AdaOctConv3_1 = AdaOctConv(nf, nf, 4, style_channels, kernel, 1, 1, nf, a_in, a_out)
        self.OctConv3_2 = OctConv(nf, nf // 2, 1, kind="last", freq_ratio=config.freq_ratio, **oct_)
        self.conv4 = nn.Conv2d(nf // 2, 3, kernel_size=1)

    @property
    def stages(self) -> tuple[AdaOctConv, AdaOctConv, AdaOctConv]:
        return self.AdaOctConv1_1, self.AdaOctConv2_1, self.AdaOctConv3_1

    def predict_kernels(self, style: Octave) -> list[torch.Tensor]:
        """The per-style part of every AdaOctConv: 18 tensors in :data:`CODE_NAMES` order."""
        out: list[torch.Tensor] = []
        for stage in self.stages:
            kernels_h, kernels_l = stage.predict(style)
            out.extend(kernels_h)
            out.extend(kernels_l)
        return out

    def forward_bands(
        self, content: Octave, kernels: Sequence[torch.Tensor], alpha: torch.Tensor | float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoded image and its high- and low-frequency parts (ImageNet-normalised space)."""
        k = list(kernels)
        out = self.AdaOctConv1_1(content, tuple(k[0:3]), tuple(k[3:6]), alpha)
        out = self.oct_conv_aftup_1(octave_upsample(self.OctConv1_2(out)))
        out = self.AdaOctConv2_1(out, tuple(k[6:9]), tuple(k[9:12]), alpha)
        out = self.oct_conv_aftup_2(octave_upsample(self.OctConv2_2(out)))
        out = self.AdaOctConv3_1(out, tuple(k[12:15]), tuple(k[15:18]), alpha)
        image, high, low = self.OctConv3_2(out)
        return self.conv4(image), self.conv4(high), self.conv4(low)

    def forward(
        self, content: Octave, kernels: Sequence[torch.Tensor], alpha: torch.Tensor | float = 1.0
    ) -> torch.Tensor:
        return self.forward_bands(content, kernels, alpha)[0]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] → ImageNet-normalised, the networks' input convention."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x * std + mean


def pad_to_stride(x: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Reflect-pad bottom/right to a multiple of ``stride`` (traceable: sizes stay symbolic in ONNX)."""
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (stride - h % stride) % stride
    pad_w = (stride - w % stride) % stride
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")


class AesFAFrameNetwork(nn.Module):
    """Per frame: ``forward(content, *18 code tensors, alpha) -> image``, RGB [0, 1] in and out."""

    def __init__(self, content_encoder: Encoder, decoder: Decoder, strength: str = "features") -> None:
        super().__init__()
        if strength not in STRENGTH_MODES:
            raise ModelError(f"unknown AesFA strength mode {strength!r}; choose one of: {', '.join(STRENGTH_MODES)}")
        self.netE = content_encoder
        self.netG = decoder
        self.strength = strength

    def forward(self, content: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        if len(args) != len(CODE_NAMES) + 1:
            raise ModelError(f"the AesFA frame network takes {len(CODE_NAMES)} code tensors and alpha, got {len(args)}")
        kernels, alpha = args[:-1], args[-1]
        h, w = content.shape[-2], content.shape[-1]
        x = normalize(pad_to_stride(content))
        alpha = alpha.to(x.dtype)
        if self.strength == "features":
            return denormalize(self.netG(self.netE(x), kernels, alpha))[..., :h, :w]
        out = denormalize(self.netG(self.netE(x), kernels))[..., :h, :w]
        return alpha * out + (1 - alpha) * content


class AesFA(StyleModel):
    """AesFA with the two-step interface: ``encode_style`` once per style, the frame network per frame."""

    name = "aesfa"

    def __init__(self, config: AesFAConfig = AesFAConfig(), strength: str = "features") -> None:
        super().__init__()
        if strength not in STRENGTH_MODES:
            raise ModelError(f"unknown AesFA strength mode {strength!r}; choose one of: {', '.join(STRENGTH_MODES)}")
        self.config = config
        self.strength = strength
        self.netE = Encoder(config)
        self.netS = Encoder(config)
        self.netG = Decoder(config)
        self.eval()

    # -- style -------------------------------------------------------------------------------
    def style_features(self, style: torch.Tensor) -> Octave:
        """The style encoder's pooled high- and low-frequency features for RGB [0, 1] images."""
        return self.netS.pool(self.netS(normalize(pad_to_stride(style))))

    def code_from_features(self, features: Octave) -> StyleCode:
        """Run every kernel predictor on pooled style features (a batch of styles → batched code)."""
        return StyleCode(self.name, dict(zip(CODE_NAMES, self.netG.predict_kernels(features))))

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor) -> StyleCode:
        """Encode one style image (1, 3, H, W) RGB [0, 1] into its per-style kernels (no autograd)."""
        check_image_batch(style, "style image", self.min_size)
        return self.code_from_features(self.style_features(style.to(self.device)))

    # -- frames ------------------------------------------------------------------------------
    def frame_network(self) -> nn.Module:
        return AesFAFrameNetwork(self.netE, self.netG, self.strength)

    def stylize(self, content: torch.Tensor, code: StyleCode, alpha: float = 1.0) -> torch.Tensor:
        check_image_batch(content, "content image", self.min_size)
        if code.model != self.name:
            raise ModelError(f"this style was encoded for model {code.model!r}, not {self.name!r}; encode it again")
        return super().stylize(content, code, alpha)

    # -- weights -----------------------------------------------------------------------------
    @classmethod
    def from_files(
        cls, files: Mapping[str, Path], config: AesFAConfig | None = None, strength: str = "features"
    ) -> "AesFA":
        """Build from role "main": the official ``main.pth`` or our fp16 ``.safetensors``."""
        if "main" not in files:
            raise WeightsError("AesFA needs its 'main' checkpoint (main.pth or an AesFA .safetensors file)")
        model = cls(config or AesFAConfig(), strength)
        model.load_nets(read_checkpoint(Path(files["main"])))
        return model

    def load_nets(self, nets: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Load ``{netE, netS, netG}`` state dicts, checking every key and shape first."""
        problems = []
        for net in NETS:
            if net not in nets:
                problems.append(f"no {net}")
                continue
            problems.extend(key_problems(getattr(self, net).state_dict(), nets[net], f"{net}."))
        if problems:
            shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
            raise WeightsError(
                f"AesFA checkpoint does not fit the network ({shown}); "
                "use the official main.pth or a file written by 'main.py train aesfa'"
            )
        for net in NETS:
            getattr(self, net).load_state_dict({k: v.float() for k, v in nets[net].items()}, strict=True)

    def flat_state(self, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
        """All weights keyed ``netE.…``/``netS.…``/``netG.…``: the layout of our .safetensors files."""
        return {
            f"{net}.{k}": v.detach().to(dtype).contiguous().cpu()
            for net in NETS
            for k, v in getattr(self, net).state_dict().items()
        }

    def save_safetensors(self, path: Path, metadata: dict[str, str] | None = None) -> Path:
        """Write the weights as fp16 safetensors (about 6.4 MB at the default widths)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(self.flat_state(), str(path), metadata={"model": self.name, **(metadata or {})})
        return path


def read_checkpoint(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """``{netE, netS, netG}`` state dicts from ``main.pth`` (extra entries such as optimiser states
    are ignored) or from a ``.safetensors`` file with ``net.``-prefixed keys."""
    if not path.is_file():
        raise WeightsError(f"AesFA checkpoint {path} does not exist; check the path")
    if path.suffix == ".safetensors":
        flat, _ = read_safetensors(path, "AesFA checkpoint", "write it again with 'main.py train aesfa'")
        nets: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in flat.items():
            net, _, rest = key.partition(".")
            nets.setdefault(net, {})[rest] = value
        unknown = sorted(set(nets) - set(NETS))
        if unknown:
            raise WeightsError(f"{path} has weights for unknown networks {unknown}; it is not an AesFA file")
        return nets
    raw = read_torch(path, "AesFA checkpoint", "download main.pth again", tensors_only=False)
    if not isinstance(raw, dict) or not all(isinstance(raw.get(n), dict) for n in NETS):
        raise WeightsError(f"{path} is not an AesFA main.pth: it needs the entries {', '.join(NETS)}")
    return {n: raw[n] for n in NETS}


def mix_frequencies(code_high: StyleCode, code_low: StyleCode) -> StyleCode:
    """A code with the high-frequency kernels of one style and the low-frequency kernels of another."""
    for code in (code_high, code_low):
        if code.model != AesFA.name:
            raise ModelError(f"frequency mixing needs AesFA style codes, got one for {code.model!r}")
    mixed = {name: (code_high if "_h_" in name else code_low).tensors[name] for name in CODE_NAMES}
    return StyleCode(AesFA.name, mixed)
