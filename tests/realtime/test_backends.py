"""Backends behind one interface: auto selection, torch vs ONNX Runtime on a real video frame, the ONNX cache."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from export.verify import MIN_PSNR_DB, psnr
from core.errors import InputError
from export.errors import ArtifactError, BackendError
from realtime.backends.factory import create_backend


@pytest.fixture(scope="module")
def video_frame_full(video_path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video_path))
    try:
        for _ in range(48):  # two seconds in: a frame with content, not a fade
            ok, frame = capture.read()
            assert ok
    finally:
        capture.release()
    return frame


@pytest.fixture(scope="module")
def video_frame(video_frame_full) -> np.ndarray:
    return cv2.resize(video_frame_full, (224, 126), interpolation=cv2.INTER_AREA)


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


def _tampered(src: Path, dst: Path, edit) -> Path:
    """A copy of the artifact ``src`` with ``edit(graph)`` applied, its checksum and metadata kept valid:
    a file that loads, then fails or goes wrong only when a frame runs."""
    import onnx

    from export.onnx import read_metadata, save_with_metadata

    proto = onnx.load(str(src))
    edit(proto.graph)
    save_with_metadata(proto, read_metadata(src), dst)
    return dst


def _gather_index_out_of_range(graph) -> None:
    """The code's Gather (which level of mean/std) asks for level 7 of 2: ORT fails at run time, not at load."""
    from onnx import numpy_helper

    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    gather = next(n for n in graph.node if n.op_type == "Gather" and n.input[0] == "mean")
    value = next(a for a in constants[gather.input[1]].attribute if a.name == "value")
    value.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(value.t) * 0 + 7))


def _zero_last_conv(graph) -> None:
    """The last convolution's weights and bias set to 0: every output pixel the same (black)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    last = [n for n in graph.node if n.op_type == "Conv"][-1]
    for name in last.input[1:]:
        inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]) * 0, name))


@pytest.mark.parametrize(
    "edit, why", [(_gather_index_out_of_range, "InvalidArgument"), (_zero_last_conv, "came back blank")]
)
def test_auto_probes_a_frame_and_falls_through(edit, why, microast, onnx_cache, tmp_path, caplog):
    from export.exporter import cached_onnx
    from models.registry import default_store

    good = cached_onnx(microast, "fp32", default_store(), onnx_cache)
    bad = _tampered(good, tmp_path / "tampered.onnx", edit)
    with caplog.at_level(logging.WARNING, logger="realtime.backends.factory"):
        backend = create_backend("auto", microast, "cpu", "fp32", artifact=bad)
    assert backend.info.name == "torch"  # the next candidate, which ran its probe frame
    assert "onnxruntime CPU: failed to start: " in backend.selection and why in backend.selection
    assert any("trying the next one" in r.getMessage() for r in caplog.records)
    # named, the same failure is one line, not a substitute and not ORT's own exception type
    with pytest.raises(BackendError, match="failed to start|came back blank"):
        create_backend("onnxruntime", microast, "cpu", "fp32", artifact=bad)
    ok = create_backend("onnxruntime", microast, "cpu", "fp32", artifact=good)  # the untampered file passes
    assert ok.info.name == "onnxruntime" and "the fastest available" in ok.selection


def _dist_info(folder: Path, name: str, version: str) -> None:
    """An installed distribution's metadata as pip writes it (what importlib.metadata reads)."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_ort_package_problem_names_a_doubled_install_and_the_fix(tmp_path):
    from realtime.backends.ort_packages import installed_ort_distributions, ort_package_problem

    assert ort_package_problem(gpu=False) is None  # this environment: onnxruntime alone (the [cpu] extra)
    both = tmp_path / "both"
    _dist_info(both, "onnxruntime", "1.22.0")
    _dist_info(both, "onnxruntime-gpu", "1.22.0")
    _dist_info(both, "numpy", "2.0.0")
    assert installed_ort_distributions([str(both)]) == ["onnxruntime", "onnxruntime-gpu"]
    problem = ort_package_problem([str(both)], gpu=True)
    assert "onnxruntime and onnxruntime-gpu" in problem and "\n" not in problem
    assert problem.endswith("pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu")
    none = tmp_path / "none"
    none.mkdir()
    assert 'pip install "stylizer[cpu]"' in ort_package_problem([str(none)], gpu=False)
    gpu_only = tmp_path / "gpu"
    _dist_info(gpu_only, "onnxruntime-gpu", "1.22.0")
    assert ort_package_problem([str(gpu_only)], gpu=True) is None


def test_extras_resolve_to_one_onnx_runtime():
    import re
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]

    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> list[str]:
        """Distribution names, with the project's own extras (``stylizer[cpu,test]``) expanded."""
        out = []
        for r in requirements:
            name = re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower()
            if name == project["name"]:
                for extra in re.search(r"\[(.*)\]", r).group(1).split(","):
                    out += names(extras[extra.strip()])
            else:
                out.append(name)
        return out

    def runtimes(requirements: list[str]) -> list[str]:
        return [n for n in names(requirements) if n.startswith("onnxruntime")]

    assert runtimes(project["dependencies"]) == []
    for combination in (["cpu"], ["gpu"], ["dev"], ["gpu", "test"], ["cpu", "test"]):  # the installs documented
        assert len(runtimes([r for e in combination for r in extras[e]])) == 1, combination
    gpu = extras["gpu"]
    assert any(r.startswith("tensorrt") and "<11" in r for r in gpu)
    assert any(r.startswith("onnxruntime-gpu") and "<" in r for r in gpu)  # a CUDA 12 build, not whatever is new


def test_tensorrt_profile_covers_the_sizes_the_app_makes():
    from core.sizes import FrameSize
    from export.formats import DEFAULT_PROFILE
    from realtime.adaptive import LIVE_SIZES

    sizes = [
        (1920, 1080),
        (1080, 1920),
        (3840, 2160),
        (2160, 3840),
        (2560, 1440),
        (1440, 2560),
        (100, 67),
        (16, 16),
        (320, 180),
    ]
    sizes += [(s * 16 // 9, s) for s in LIVE_SIZES] + [(s, s * 16 // 9) for s in LIVE_SIZES]
    sizes += [(s * 4 // 3, s) for s in LIVE_SIZES]
    for w, h in sizes:
        assert DEFAULT_PROFILE.contains(FrameSize(w, h)), (w, h)


def _cuda_backend_or_fail(name: str, model, precision: str, cache_dir: Path):
    """On a machine with a GPU, a backend that cannot start is a failure, not a skip."""
    if name == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
        pytest.skip('TensorRT is not installed (pip install ".[gpu]")')
    try:
        return create_backend(name, model, "cuda", precision, cache_dir=cache_dir)
    except BackendError as exc:
        pytest.fail(f"{name} cannot run on this GPU: {exc}")


@pytest.fixture(scope="module")
def frame_1080p(video_frame_full) -> np.ndarray:
    return cv2.resize(video_frame_full, (1920, 1080), interpolation=cv2.INTER_CUBIC)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("name", ["torch", "onnxruntime", "tensorrt"])
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_cuda_matches_cpu_fp32_at_1080p(name, precision, microast, code, frame_1080p, onnx_cache):
    """What the app runs on a GPU (TensorRT: the plain graph, via the factory) on a 1080p frame."""
    reference = create_backend("torch", microast, "cpu", "fp32").run(frame_1080p, code, 1.0)
    backend = _cuda_backend_or_fail(name, microast, precision, onnx_cache)
    out = backend.run(frame_1080p, code, 1.0)
    assert out.shape == frame_1080p.shape and out.std() > 10
    # fp16 against fp32: the export's fp16 threshold; fp32 on a GPU (TF32 convolutions) a little under fp32's
    assert psnr(out, reference) >= MIN_PSNR_DB["fp16"] if precision == "fp16" else 40
