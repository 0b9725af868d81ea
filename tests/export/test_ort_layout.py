"""The graph rewritten for ONNX Runtime's blocked layout computes what its source computes, with no round trips."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.errors import ArtifactError
from export.exporter import cached_onnx
from export.onnx import read_metadata
from export.ort_layout import (
    NCHWC,
    _session,
    block_size,
    cached_blocked_graph,
    ort_optimized,
    reorder_count,
    rewrite_blocked,
)
from export.verify import run_onnx_cpu
from core.images import read_image


def blocked_kernels() -> bool:
    try:
        block_size()
        return True
    except ArtifactError:
        return False


needs_blocked = pytest.mark.skipif(not blocked_kernels(), reason="ONNX Runtime has no NCHWc kernels on this CPU")


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@pytest.fixture(scope="module")
def tuned(microast, tmp_path_factory) -> Path:
    return cached_onnx(microast, "fp32", None, tmp_path_factory.mktemp("cache"))


@pytest.mark.skipif("avx2" not in cpu_flags(), reason="the expected block size is known for x86 with AVX2 or AVX-512")
def test_block_size_is_the_cpus():
    assert block_size() == (16 if "avx512f" in cpu_flags() else 8)


@needs_blocked
def test_tuned_graph_keeps_the_blocked_layout_and_its_frames(tuned, code, content_path, tmp_path):
    import cv2

    optimized = ort_optimized(tuned)
    dest, layout = cached_blocked_graph(tuned, tmp_path)
    rewritten = onnx.load(str(dest))
    # ORT converts around every pad, statistic and product (28 conversions); two stay: the first conv reads the
    # 3-channel frame as it is, and the output leaves in NHWC
    assert reorder_count(optimized) >= 20 and reorder_count(rewritten) <= 2
    pads = [n for n in rewritten.graph.node if n.op_type == "Pad"]
    assert len(pads) >= 13 and sum(1 for n in pads if n.input[1].startswith("blocked_shape")) >= 12
    assert any(n.domain == NCHWC and n.op_type == "Upsample" for n in rewritten.graph.node)
    meta = read_metadata(dest)
    assert (
        meta.extra["layout"] == layout == f"nchwc{block_size()}"
        and meta.extra["graph"] == read_metadata(tuned).extra["graph"]
    )
    image = read_image(content_path)
    frames = [cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA) for h, w in ((97, 64), (181, 243), (360, 640))]
    for want, got in zip(run_onnx_cpu(tuned, code, frames, 0.8), run_onnx_cpu(dest, code, frames, 0.8)):
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@needs_blocked
def test_an_op_without_a_blocked_form_gets_its_nchw_input(tmp_path):
    """Conv → reflect Pad → Conv → Sin (no view) → per-channel Mul → Conv: the rewrite must hand
    Sin a plain tensor, and the result must not change."""
    rng = np.random.default_rng(0)
    b = block_size()
    c = 2 * b

    def weight(name, shape):
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    inits = [
        weight("w1", (c, 3, 3, 3)),
        weight("w2", (c, c, 3, 3)),
        weight("w3", (c, c, 1, 1)),
        weight("scale", (1, c, 1, 1)),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"]),
        helper.make_node("Pad", ["a", "pads"], ["p"], mode="reflect"),
        helper.make_node("Conv", ["p", "w2"], ["b"]),
        helper.make_node("Sin", ["b"], ["l"]),
        helper.make_node("Mul", ["l", "scale"], ["m"]),
        helper.make_node("Conv", ["m", "w3"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    source = tmp_path / "mixed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    rewritten, counts = rewrite_blocked(ort_optimized(source), b)
    assert counts.get("Pad") == 1
    assert any(n.op_type == "Sin" for n in rewritten.graph.node)
    x = rng.normal(0, 1, (1, 3, 23, 31)).astype(np.float32)
    want = _session(source, "all").run(None, {"x": x})[0]
    got = _session(rewritten, "basic").run(None, {"x": x})[0]
    assert np.allclose(got, want, atol=1e-4)


@needs_blocked
def test_cache_serves_a_good_file_and_rebuilds_a_bad_one(tuned, tmp_path, caplog):
    dest, _ = cached_blocked_graph(tuned, tmp_path)
    stamp = dest.stat().st_mtime_ns
    assert cached_blocked_graph(tuned, tmp_path)[0] == dest and dest.stat().st_mtime_ns == stamp
    dest.write_bytes(dest.read_bytes()[: dest.stat().st_size // 2])  # cut short
    with caplog.at_level(logging.WARNING, logger="export.ort_layout"):
        assert cached_blocked_graph(tuned, tmp_path)[0] == dest
    assert any("building it again" in r.getMessage() for r in caplog.records)
    read_metadata(dest)  # whole again


@needs_blocked
def test_cache_never_serves_a_file_made_from_another_graph(microast, tuned, tmp_path, caplog):
    plain = cached_onnx(microast, "fp32", None, tmp_path / "cache", graph="plain")
    other, _ = cached_blocked_graph(plain, tmp_path)
    wanted, _ = cached_blocked_graph(tuned, tmp_path)
    shutil.copyfile(other, wanted)  # the plain graph's rewrite under the tuned graph's name
    with caplog.at_level(logging.WARNING, logger="export.ort_layout"):
        assert cached_blocked_graph(tuned, tmp_path)[0] == wanted
    assert any("another graph or runtime" in r.getMessage() for r in caplog.records)
    assert read_metadata(wanted).extra["graph"] == read_metadata(tuned).extra["graph"]


@needs_blocked
def test_a_rebuild_removes_the_files_of_earlier_runtimes(tuned, tmp_path):
    dest, _ = cached_blocked_graph(tuned, tmp_path)
    old = dest.with_name(f"{tuned.stem}-000000000000-ort1.0.0-nchwc{block_size()}.onnx")  # an older release's file
    other = dest.with_name(f"{tuned.stem}-v2-000000000000-ort1.0.0-nchwc{block_size()}.onnx")  # another artifact's
    shutil.copyfile(dest, old)
    shutil.copyfile(dest, other)
    dest.unlink()
    assert cached_blocked_graph(tuned, tmp_path)[0] == dest
    assert dest.is_file() and not old.exists() and other.is_file()


@needs_blocked
def test_backend_runs_the_rewrite_and_says_so_or_says_why_not(microast, tuned, tmp_path, caplog):
    from realtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(microast, artifact=tuned, cache_dir=tmp_path / "ok")
    assert backend.layout == f"nchwc{block_size()}" and f"+nchwc{block_size()} graph" in str(backend.info)
    assert OnnxRuntimeBackend(microast, artifact=tuned, blocked=False).layout == ""
    blocked_dir = tmp_path / "bad" / "onnx" / "cpu-layout"
    blocked_dir.parent.mkdir(parents=True)
    blocked_dir.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="realtime.backends.onnxruntime_backend"):
        fallback = OnnxRuntimeBackend(microast, artifact=tuned, cache_dir=tmp_path / "bad")
    assert fallback.layout == "" and "+nchwc" not in str(fallback.info)
    assert any("running" in r.getMessage() and "as exported" in r.getMessage() for r in caplog.records)
