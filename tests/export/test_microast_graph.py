"""The tuned MicroAST frame graph computes the plain graph's function: in PyTorch, and exported to ONNX Runtime."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from export.microast_graph import TUNED_VERSION, TunedMicroASTGraph, phase_kernel, wide_groups
from export.onnx import FrameGraph, export_onnx, frame_graph, read_metadata
from export.verify import MIN_PSNR_DB, psnr, run_onnx_cpu
from export.errors import ArtifactError
from core.images import read_image

#: odd sides, neither a multiple of the network's stride of 4 nor of the phase conv's factor
ODD_SIZES = ((97, 64), (181, 243), (360, 640))  # (height, width)


@pytest.fixture(scope="module")
def frames(content_path) -> list[np.ndarray]:
    import cv2

    image = read_image(content_path)
    return [cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA) for h, w in ODD_SIZES]


@pytest.fixture(scope="module")
def reference(microast, code, frames) -> list[np.ndarray]:
    graph = FrameGraph(copy.deepcopy(microast.frame_network())).eval()
    tensors = list(code.tensors.values())
    with torch.inference_mode():
        return [graph(torch.from_numpy(f)[None], *tensors, torch.tensor(0.8))[0].numpy() for f in frames]


@pytest.fixture(scope="module")
def tuned_onnx(microast, code, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tuned") / "microast-tuned.onnx"
    export_onnx(microast, code, path, "fp32", sample_hw=(96, 128))
    return path


@pytest.mark.parametrize("factor", [2, 4])
def test_phase_kernel_is_the_same_convolution(factor):
    torch.manual_seed(0)
    weight, x = torch.randn(3, 16, 9, 9), torch.randn(1, 16, 24 + 8, 36 + 8)  # sides multiples of 4, padded by 4
    direct = F.conv2d(x, weight)
    phases = F.conv2d(x, phase_kernel(weight, factor), stride=factor)
    restored = F.pixel_shuffle(phases, factor)
    assert restored.shape == direct.shape
    assert torch.allclose(restored, direct, atol=1e-4)


@pytest.mark.parametrize("in_ch,out_ch,stride", [(16, 32, 2), (32, 64, 2), (64, 32, 1)])
def test_wide_groups_is_the_same_convolution(in_ch, out_ch, stride):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(in_ch, out_ch, 3, stride, groups=min(in_ch, out_ch))  # 1 in/2 out, or 2 in/1 out
    x = torch.randn(1, in_ch, 21, 30)
    wide = wide_groups(conv)
    groups = in_ch // wide.shape[1]
    assert groups < conv.groups and wide.shape[1] >= 16 and (out_ch // groups) >= 16
    assert torch.allclose(F.conv2d(x, wide, conv.bias, stride, groups=groups), conv(x), atol=1e-5)


def test_tuned_module_matches_plain_in_pytorch(microast, code, frames, reference):
    tuned = TunedMicroASTGraph(copy.deepcopy(microast.frame_network())).eval()
    with torch.inference_mode():
        for f, ref in zip(frames, reference):
            out = tuned(torch.from_numpy(f)[None], *code.tensors.values(), torch.tensor(0.8))[0].numpy()
            assert out.shape == ref.shape and out.dtype == np.uint8
            # fp32 rounding differs (folded scales, reordered sums): a few pixels one level off, nothing more
            assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
            assert psnr(out, ref) >= 60


def test_tuned_onnx_matches_pytorch_on_odd_sizes(tuned_onnx, code, frames, reference):
    assert read_metadata(tuned_onnx).extra["graph"] == TUNED_VERSION
    for f, ref, out in zip(frames, reference, run_onnx_cpu(tuned_onnx, code, frames, 0.8)):
        assert out.shape == f.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2
        assert psnr(out, ref) >= max(MIN_PSNR_DB["fp32"], 60)
        assert psnr(out, f) < 25  # stylised, not passed through


def test_plain_graph_still_exportable(microast, code, tmp_path):
    path = tmp_path / "plain.onnx"
    export_onnx(microast, code, path, "fp32", sample_hw=(96, 128), graph="plain")
    assert read_metadata(path).extra["graph"] == "plain"
    with pytest.raises(ArtifactError, match="does not exist for microast"):
        frame_graph(microast, "tuned-0")
