"""The graphs the TensorRT path builds from: uint8 only in Casts and Shapes (TensorRT 10's ONNX parser
refuses uint8 anywhere else), for all three models and both precisions. A pure graph check: no TensorRT."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from export.graph_check import uint8_ops
from export.onnx import export_onnx
from export.tensorrt import TENSORRT_GRAPH


@pytest.mark.parametrize("name", ["microast", "adain", "aesfa"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_source_graph_has_uint8_only_at_its_borders(name, precision, model_and_code, tmp_path):
    model, code = model_and_code(name)
    path = tmp_path / f"{name}-{precision}.onnx"
    export_onnx(model, code, path, precision, sample_hw=(64, 96), graph=TENSORRT_GRAPH)
    proto = onnx.load(str(path))
    # uint8 frames in and out: the check below has something to look at
    assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert uint8_ops(proto) == []


def test_uint8_ops_finds_a_uint8_transpose():
    frame = helper.make_tensor_value_info("frame", TensorProto.UINT8, [1, 4, 4, 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 4, 4])
    nodes = [
        helper.make_node("Transpose", ["frame"], ["t"], perm=[0, 3, 1, 2], name="nchw"),
        helper.make_node("Cast", ["t"], ["out"], to=TensorProto.FLOAT, name="to_float"),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [frame], [out]))
    assert uint8_ops(model) == ["Transpose nchw"]
    nodes = [
        helper.make_node("Cast", ["frame"], ["f"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Transpose", ["f"], ["out"], perm=[0, 3, 1, 2], name="nchw"),
    ]
    assert uint8_ops(helper.make_model(helper.make_graph(nodes, "g", [frame], [out]))) == []


def test_cache_exports_again_a_plain_graph_from_before(model_and_code, export_store, tmp_path):
    from dataclasses import replace

    from export.exporter import cached_onnx
    from export.onnx import UINT8_AT_BORDERS, read_metadata, save_with_metadata

    model, _ = model_and_code("microast")
    path = cached_onnx(model, "fp32", export_store, tmp_path, graph=TENSORRT_GRAPH)
    meta = read_metadata(path)
    assert meta.extra["uint8"] == UINT8_AT_BORDERS
    # as an earlier release left it: no marker (its graph reordered colours on uint8 tensors)
    save_with_metadata(onnx.load(str(path)), replace(meta, extra={"graph": "plain"}), path)
    assert cached_onnx(model, "fp32", export_store, tmp_path, graph=TENSORRT_GRAPH) == path
    assert read_metadata(path).extra["uint8"] == UINT8_AT_BORDERS
