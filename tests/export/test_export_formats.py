"""The format table, size/profile parsing, request checks and the TensorRT parts that need no GPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from export.exporter import ExportRequest, check_request
from core.sizes import FrameSize, parse_size, parse_sizes
from export.formats import DEFAULT_PROFILE, FORMATS, ShapeProfile
from export.tensorrt import engine_cache_key, engine_paths
from core.errors import InputError
from export.errors import BackendError

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_format_table():
    assert FORMATS["onnx"].suffix == ".onnx" and not FORMATS["onnx"].needs_gpu
    assert FORMATS["tensorrt"].suffix == ".engine" and FORMATS["tensorrt"].needs_gpu
    assert "fp16" in FORMATS["onnx"].precisions and "fp16" in FORMATS["tensorrt"].precisions


def test_parse_sizes():
    assert parse_size("640x480") == FrameSize(640, 480)
    assert parse_sizes("320x240, 1920X1080") == [FrameSize(320, 240), FrameSize(1920, 1080)]
    for bad in ("640", "640x", "ax480", "8x8", "99999x480", "-3x4"):
        with pytest.raises(InputError, match="size"):
            parse_size(bad)
    with pytest.raises(InputError, match="at least one size"):
        parse_sizes(" , ")


def test_profile_order_checked():
    p = ShapeProfile(FrameSize(320, 240), FrameSize(640, 480), FrameSize(1280, 720))
    assert p.contains(FrameSize(640, 360)) and not p.contains(FrameSize(1920, 1080))
    with pytest.raises(InputError, match="min <= opt <= max"):
        ShapeProfile(FrameSize(640, 480), FrameSize(320, 240), FrameSize(1280, 720))
    assert DEFAULT_PROFILE.contains(FrameSize(1920, 1080))


@pytest.mark.parametrize(
    "request_kw, message",
    [
        ({"format": "tflite"}, "unknown export format 'tflite'"),
        ({"format": "onnx", "precision": "int8"}, "supports fp32, fp16, not 'int8'"),
        ({"opset": 11}, "opset 11 is not supported"),
        ({"style_size": 8}, "too small"),
    ],
)
def test_bad_requests_refused_before_work(request_kw, message):
    with pytest.raises(InputError, match=message):
        check_request(ExportRequest(**request_kw))


def test_request_output_must_be_a_folder(tmp_path: Path):
    file = tmp_path / "x.onnx"
    file.write_text("")
    with pytest.raises(InputError, match="is a file"):
        check_request(ExportRequest(out_dir=file))


def test_engine_cache_key_depends_on_every_part():
    base = ("a" * 64, "NVIDIA H100 sm_90", "10.3.0", "fp16", DEFAULT_PROFILE)
    key = engine_cache_key(*base)
    assert key == engine_cache_key(*base)  # stable
    other_profile = ShapeProfile(FrameSize(320, 240), FrameSize(640, 480), FrameSize(640, 480))
    variants = [
        ("b" * 64, *base[1:]),
        (base[0], "NVIDIA A100 sm_80", *base[2:]),
        (*base[:2], "10.4.0", *base[3:]),
        (*base[:3], "fp32", base[4]),
        (*base[:4], other_profile),
    ]
    keys = {engine_cache_key(*v) for v in variants}
    assert key not in keys and len(keys) == len(variants)
    engine, meta = engine_paths(Path("/x/microast-fp32.onnx"), key, Path("/out"))
    assert engine == Path(f"/out/microast-fp32-{key[:16]}.engine") and meta.suffix == ".json"


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_tensorrt_absent_is_a_clear_error():
    from export.tensorrt import require_tensorrt

    with pytest.raises(BackendError, match="TensorRT is not installed"):
        require_tensorrt()


@pytest.mark.skipif(HAS_TENSORRT and torch.cuda.is_available(), reason="TensorRT and a GPU are here")
def test_cli_tensorrt_export_without_tensorrt_suggests_an_export_option(tmp_path, capsys):
    import main

    assert main.main(["export", "--format", "tensorrt", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--format onnx" in err and "--backend" not in err, err


def test_cli_export_rejects_bad_arguments(capsys, tmp_path, monkeypatch):
    import main

    monkeypatch.chdir(tmp_path)  # "unused" is relative: never the working tree

    assert main.main(["export", "--model", "gatys", "-o", "unused"]) == 2
    assert "no per-frame network" in capsys.readouterr().err
    assert main.main(["export", "--format", "onnx", "--min", "9000x10", "-o", "unused"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert not Path("unused").exists()


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installed")
def test_tensorrt_engine_matches_pytorch(tmp_path: Path, shared, content_path, style_path):
    import cv2

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from export.verify import export_onnx_verified
    from export.tensorrt import TENSORRT_GRAPH, build_engine
    from export.verify import MIN_PSNR_DB, psnr
    from core.images import read_image, resize_longest, to_tensor
    from models.registry import create_model, default_store
    from realtime.backends.tensorrt_backend import TensorRTBackend

    model = create_model("microast").eval()
    # what the app builds from: the plain graph, in the engine's precision (verified at 1080p and 4K)
    onnx_path = export_onnx_verified(
        model, tmp_path / "microast-fp16.onnx", "fp16", default_store(), graph=TENSORRT_GRAPH
    )
    first = build_engine(onnx_path, "fp16", DEFAULT_PROFILE, tmp_path)
    again = build_engine(onnx_path, "fp16", DEFAULT_PROFILE, tmp_path)
    assert again.engine_path == first.engine_path and first.metadata.extra["precision_used"] == "fp16"
    backend = TensorRTBackend(model, "fp16", artifact=first.engine_path)
    code = model.encode_style(to_tensor(resize_longest(read_image(style_path), 256)))
    for w, h in ((1920, 1080), (1080, 1920)):
        frame = cv2.resize(read_image(content_path), (w, h), interpolation=cv2.INTER_CUBIC)
        with torch.inference_mode():
            ref = model.stylize(to_tensor(frame), code)[0].clamp(0, 1).mul(255).round().byte()
        out = backend.run(frame, code)
        assert out.std() > 10 and psnr(out, ref.permute(1, 2, 0).flip(-1).numpy()) >= MIN_PSNR_DB["fp16"]
