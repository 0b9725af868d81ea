"""Backends behind one interface: auto selection, torch vs ONNX Runtime on a real video frame, the ONNX cache."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from export.verify import psnr
from models.errors import InputError
from export.errors import ArtifactError, BackendError
from realtime.backends.factory import create_backend


@pytest.fixture(scope="module")
def video_frame(video_path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video_path))
    try:
        for _ in range(48):  # two seconds in: a frame with content, not a fade
            ok, frame = capture.read()
            assert ok
    finally:
        capture.release()
    return cv2.resize(frame, (224, 126), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backend-cache")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choice")
def test_auto_picks_onnxruntime_on_cpu_and_says_why(microast, onnx_cache, caplog):
    with caplog.at_level(logging.INFO, logger="realtime.backends.factory"):
        backend = create_backend("auto", microast, cache_dir=onnx_cache)
    assert backend.info.name == "onnxruntime" and backend.info.device == "cpu"
    assert backend.info.precision == "fp32"
    assert "picked onnxruntime cpu" in backend.selection
    assert "tensorrt CUDA: " in backend.selection and "torch CUDA: no CUDA GPU visible" in backend.selection
    assert any("picked onnxruntime" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choice")
def test_auto_runs_the_tuned_graph_and_device_auto_says_cpu(microast, onnx_cache, caplog):
    from export.microast_graph import TUNED_VERSION
    from realtime.backends.factory import resolve_device

    backend = create_backend("auto", microast, "auto", cache_dir=onnx_cache)
    assert backend.graph == TUNED_VERSION and TUNED_VERSION in str(backend.info)
    try:  # on a CPU with ORT's blocked kernels, the rewrite for them too (export/ort_layout.py)
        from export.ort_layout import block_size

        assert f"{TUNED_VERSION}+nchwc{block_size()} graph" in str(backend.info)
    except ArtifactError:
        assert f"{TUNED_VERSION} graph" in str(backend.info)
    with caplog.at_level(logging.INFO, logger="realtime.backends.factory"):
        assert resolve_device("auto") == "cpu"
    assert any("device auto: picked cpu" in r.getMessage() for r in caplog.records)
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a GPU PyTorch cannot use")
def test_gpu_present_but_unusable_is_named(microast, onnx_cache, monkeypatch, caplog):
    from realtime.backends import factory

    # the device-node probe answers as on a machine whose GPU this (CPU-only) torch cannot drive
    monkeypatch.setattr(factory, "nvidia_gpu_present", lambda: "/dev/nvidia0")
    with caplog.at_level(logging.INFO, logger="realtime.backends.factory"):
        backend = create_backend("auto", microast, cache_dir=onnx_cache)
    assert backend.info.name == "onnxruntime"
    assert "torch CUDA: an NVIDIA GPU is present (/dev/nvidia0) but" in backend.selection
    assert any(r.levelno == logging.WARNING and "GPU is present" in r.getMessage() for r in caplog.records)
    with pytest.raises(BackendError, match="GPU is present"):
        create_backend("torch", microast, "cuda")


def test_torch_and_onnxruntime_give_the_same_frames(microast, code, video_frame, onnx_cache):
    torch_backend = create_backend("torch", microast, "cpu", "fp32")
    ort_backend = create_backend("onnxruntime", microast, "cpu", "fp32", cache_dir=onnx_cache)
    for alpha in (1.0, 0.5):
        a = torch_backend.run(video_frame, code, alpha)
        b = ort_backend.run(video_frame, code, alpha)
        assert a.shape == b.shape == video_frame.shape and a.dtype == b.dtype == np.uint8
        assert psnr(a, b) >= 45
    assert psnr(a, torch_backend.run(video_frame, code, 1.0)) < 40  # alpha changes the picture


def test_onnx_cache_reused(microast, onnx_cache, caplog):
    create_backend("onnxruntime", microast, "cpu", "fp32", cache_dir=onnx_cache)
    files = sorted((onnx_cache / "onnx").glob("*.onnx"))
    assert len(files) == 1 and files[0].name.startswith("microast-")
    stamp = files[0].stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="export.exporter"):
        create_backend("onnxruntime", microast, "cpu", "fp32", cache_dir=onnx_cache)
    assert files[0].stat().st_mtime_ns == stamp
    assert not any("exporting" in r.getMessage() for r in caplog.records)


def test_code_converted_once_per_code_object(microast, code, video_frame, onnx_cache):
    backend = create_backend("onnxruntime", microast, "cpu", "fp32", cache_dir=onnx_cache)
    backend.run(video_frame, code)
    feeds = backend._code_feeds
    backend.run(video_frame, code, 0.3)
    assert backend._code_feeds is feeds
    from models.base import StyleCode

    blended = StyleCode.blend([code, code], [0.5, 0.5])
    backend.run(video_frame, blended)
    assert backend._code_feeds is not feeds


def test_named_backend_never_substituted(microast):
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="tensorrt"):
            create_backend("tensorrt", microast)
        with pytest.raises(BackendError, match="no CUDA GPU"):
            create_backend("onnxruntime", microast, "cuda")
    with pytest.raises(InputError, match="unknown backend 'tflite'"):
        create_backend("tflite", microast)
    with pytest.raises(InputError, match="cpu, cuda or cuda:N"):
        create_backend("torch", microast, "cpu:0")
    with pytest.raises(InputError, match="TensorRT needs --device cuda"):
        create_backend("tensorrt", microast, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_cuda_fp16_matches_cpu_fp32(name, microast, code, video_frame, onnx_cache):
    reference = create_backend("torch", microast, "cpu", "fp32").run(video_frame, code, 1.0)
    try:
        backend = create_backend(name, microast, "cuda", "fp16", cache_dir=onnx_cache)
    except BackendError as exc:
        pytest.skip(f"{name} has no CUDA support here: {exc}")
    out = backend.run(video_frame, code, 1.0)
    assert out.shape == video_frame.shape and psnr(out, reference) >= 35
