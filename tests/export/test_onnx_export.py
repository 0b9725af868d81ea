"""ONNX export of MicroAST (real weights): export → verify → reload → run, metadata, refusal of bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from export.metadata import app_version, weights_fingerprint
from export.microast_graph import TUNED_VERSION
from export.onnx import export_onnx, load_checked, read_metadata
from export.verify import MIN_PSNR_DB, psnr, sample_frames, verify_onnx
from export.errors import ArtifactError
from core.images import read_image, resize_longest, to_tensor
from realtime.backends.onnxruntime_backend import OnnxRuntimeBackend

SIDES = (101, 150)  # two sizes, neither a multiple of MicroAST's stride of 4


@pytest.fixture(scope="module")
def module_store(shared: Path, tmp_path_factory):
    from models.registry import default_store

    store = default_store()
    store.cache_dir = tmp_path_factory.mktemp("cache")
    store.allow_download = False
    return store


@pytest.fixture(scope="module")
def microast(module_store):
    from models.registry import create_model

    torch.set_num_threads(2)
    return create_model("microast", store=module_store).eval()


@pytest.fixture(scope="module")
def code(microast, style_path):
    return microast.encode_style(to_tensor(resize_longest(read_image(style_path), 128)))


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def artifact(request, microast, code, module_store, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / f"microast-{request.param}.onnx"
    export_onnx(microast, code, path, request.param, sample_hw=(96, 128), checkpoint_sha256="c" * 64)
    verify_onnx(path, microast, code, sample_frames(module_store, SIDES))
    return path


@pytest.fixture(scope="module")
def ort_backend(artifact, microast) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(microast, "cpu", read_metadata(artifact).precision, artifact=artifact)


def test_graph_interface(artifact, code):
    graph = onnx.load(str(artifact)).graph
    names = [i.name for i in graph.input]
    assert names == ["frame", *code.names, "alpha"]
    frame = graph.input[0].type.tensor_type
    assert frame.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in frame.shape.dim]
    assert dims == [1, "height", "width", 3]
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert max(i.version for i in onnx.load(str(artifact)).opset_import if i.domain in ("", "ai.onnx")) >= 17


def test_metadata_round_trip(artifact, microast, code):
    meta = read_metadata(artifact)
    assert meta.model == "microast"
    assert meta.extra["graph"] == TUNED_VERSION  # export's default for MicroAST
    assert meta.weights_sha256 == weights_fingerprint(microast)
    assert meta.checkpoint_sha256 == "c" * 64
    assert meta.precision == artifact.stem.split("-")[1]
    assert meta.opset == 17
    assert meta.code_tensors == {k: list(v.shape) for k, v in code.tensors.items()}
    assert meta.app_version == app_version()
    assert "uint8 BGR NHWC" in meta.input_layout
    # verification figures stored in the file, one per size, above the precision's threshold
    assert len(meta.psnr_db) == len(SIDES)
    assert min(meta.psnr_db.values()) >= MIN_PSNR_DB[meta.precision]


@pytest.mark.parametrize("side", SIDES)
def test_reload_and_run_matches_pytorch(ort_backend, microast, code, content_path, side):
    precision, backend = ort_backend.precision, ort_backend
    frame = resize_longest(read_image(content_path), side)
    out = backend.run(frame, code, alpha=0.7)
    with torch.inference_mode():
        ref = microast.stylize(to_tensor(frame), code, 0.7)[0].clamp(0, 1).mul(255).round().byte()
    ref = ref.permute(1, 2, 0).flip(-1).numpy()
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert psnr(out, ref) >= MIN_PSNR_DB[precision]
    assert psnr(out, frame) < 25  # really stylised, not passed through


def test_op_precision_statistics_stay_fp32(artifact):
    model = onnx.shape_inference.infer_shapes(onnx.load(str(artifact)))
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    kinds = {(n.op_type, types.get(n.output[0])) for n in model.graph.node}
    if read_metadata(artifact).precision == "fp32":  # nothing in an fp32 graph may be half precision
        assert onnx.TensorProto.FLOAT16 not in types.values() and ("Conv", onnx.TensorProto.FLOAT) in kinds
        return
    assert ("ReduceMean", onnx.TensorProto.FLOAT) in kinds and ("ReduceMean", onnx.TensorProto.FLOAT16) not in kinds
    assert ("Sqrt", onnx.TensorProto.FLOAT) in kinds
    assert ("Conv", onnx.TensorProto.FLOAT16) in kinds and ("Conv", onnx.TensorProto.FLOAT) not in kinds


def test_other_weights_refused(artifact, microast, code):
    other = type(microast)()  # same network, random weights: stands for another checkpoint
    with pytest.raises(ArtifactError, match="other microast weights"):
        load_checked(artifact, other)
    with pytest.raises(ArtifactError, match="other microast weights"):
        OnnxRuntimeBackend(other, "cpu", read_metadata(artifact).precision, artifact=artifact)


def test_other_model_refused(artifact, microast):
    meta = read_metadata(artifact)
    with pytest.raises(ArtifactError, match="exported from model 'microast', not 'adain'"):
        meta.check_matches("adain", weights_fingerprint(microast), str(artifact))


def test_wrong_precision_refused(artifact, microast):
    other = "fp16" if read_metadata(artifact).precision == "fp32" else "fp32"
    with pytest.raises(ArtifactError, match=f"but {other} was asked for"):
        OnnxRuntimeBackend(microast, "cpu", other, artifact=artifact)


def test_corrupted_files_refused(artifact, microast, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="not a readable ONNX file"):
        load_checked(truncated, microast)

    tampered = tmp_path / "tampered.onnx"
    proto = onnx.load(str(artifact))
    init = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    raw = bytearray(init.raw_data)
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte in the largest weight: still a valid protobuf
    init.raw_data = bytes(raw)
    onnx.save(proto, str(tampered))
    with pytest.raises(ArtifactError, match="corrupted"):
        load_checked(tampered, microast)

    bare = tmp_path / "bare.onnx"
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    with pytest.raises(ArtifactError, match="no stylizer metadata"):
        read_metadata(bare)

    with pytest.raises(ArtifactError, match="does not exist"):
        read_metadata(tmp_path / "missing.onnx")


def test_cache_never_serves_an_unverified_artifact(microast, code, module_store, tmp_path):
    from export.exporter import cached_onnx, onnx_cache_dir

    path = onnx_cache_dir(tmp_path) / (
        f"microast-{weights_fingerprint(microast)[:16]}-fp32-{TUNED_VERSION}-v{app_version()}.onnx"
    )
    path.parent.mkdir(parents=True)
    export_onnx(microast, code, path, "fp32", sample_hw=(96, 128))  # as left by a run stopped before verification
    assert read_metadata(path).psnr_db == {}
    assert cached_onnx(microast, "fp32", module_store, tmp_path) == path
    assert min(read_metadata(path).psnr_db.values()) >= MIN_PSNR_DB["fp32"]


def test_cache_never_serves_another_graph(microast, code, module_store, tmp_path):
    from export.exporter import cached_onnx

    path = cached_onnx(microast, "fp32", module_store, tmp_path)
    assert read_metadata(path).extra["graph"] == TUNED_VERSION
    # a plain graph left under the tuned graph's name (an older release, a copied file) is exported again
    export_onnx(microast, code, path, "fp32", sample_hw=(96, 128), graph="plain")
    assert read_metadata(path).extra["graph"] == "plain"
    assert cached_onnx(microast, "fp32", module_store, tmp_path) == path
    assert read_metadata(path).extra["graph"] == TUNED_VERSION
    plain = cached_onnx(microast, "fp32", module_store, tmp_path, graph="plain")
    assert plain != path and read_metadata(plain).extra["graph"] == "plain"


def test_failed_verification_leaves_no_artifact(microast, module_store, tmp_path, monkeypatch):
    from export.verify import export_onnx_verified

    monkeypatch.setitem(MIN_PSNR_DB, "fp32", 1000.0)  # no export reaches this: verification must fail
    path = tmp_path / "microast-fp32.onnx"
    with pytest.raises(ArtifactError, match="differs from PyTorch"):
        export_onnx_verified(microast, path, "fp32", module_store, style_size=128)
    assert not path.exists()
