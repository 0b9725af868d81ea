"""Convert an fp32 ONNX graph to fp16 while keeping normalisation statistics in fp32.

Instance statistics (mean, variance, std over H×W) are where fp16 fails: a sum of squares over a
large frame overflows 65504 and small variances lose their digits. So the reductions and the
element-wise ops that feed only them (the ``x - mean``, its square, ``+ eps``, ``sqrt``) stay
fp32, and Casts are inserted at the borders; everything else (convolutions, activations,
resizes) runs in fp16. The same idea as onnxconverter-common's ``op_block_list``, with the
blocked region grown backwards so that squares are taken in fp32 too.

Casts of int32/int64 tensors to float are always fp32 too: the pixel count H·W of an unbiased
variance (``var · n / (n − 1)``) comes from the frame's Shape as int64, and in fp16 it is inf above
65504 px per feature map (about 1 MP frames for MicroAST), which made every pixel 0. (A uint8
frame's Cast is not one of them: 0..255 is exact in fp16.)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16

#: Ops whose results are statistics: always fp32.
STAT_OPS = frozenset(
    {
        "ReduceMean",
        "ReduceSum",
        "ReduceSumSquare",
        "ReduceL2",
        "ReduceLogSumExp",
        "Sqrt",
        "Pow",
        "InstanceNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "BatchNormalization",
    }
)
#: Element-wise ops that join the fp32 region when every consumer of their result is in it.
ELEMENTWISE = frozenset({"Sub", "Mul", "Add", "Div", "Neg", "Abs", "Sqrt", "Pow", "Reciprocal"})
#: Inputs that ONNX requires to be float32 whatever the data type (op, input index).
FP32_INPUTS = frozenset({("Resize", 1), ("Resize", 2), ("Upsample", 1)})
#: Ops that accept any input type.
ANY_INPUT = frozenset({"Cast", "Shape", "Size", "CastLike"})


#: Integer types whose values (shapes, pixel counts) may exceed fp16's range once cast to float.
WIDE_INTS = frozenset({TensorProto.INT32, TensorProto.INT64, TensorProto.UINT32, TensorProto.UINT64})


def is_count_cast(node: onnx.NodeProto, types: dict[str, int]) -> bool:
    """A Cast of a wide integer tensor (a shape, a pixel count) to float."""
    return (
        node.op_type == "Cast"
        and any(a.name == "to" and a.i == FLOAT for a in node.attribute)
        and types.get(node.input[0]) in WIDE_INTS
    )


def fp32_region(graph: onnx.GraphProto, types: dict[str, int] | None = None) -> set[int]:
    """Indices of the nodes that must stay fp32: statistics, wide-integer Casts (given ``types``) and what
    feeds only them."""
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    graph_outputs = {o.name for o in graph.output}
    keep = {i for i, n in enumerate(graph.node) if n.op_type in STAT_OPS or (types and is_count_cast(n, types))}
    changed = True
    while changed:
        changed = False
        for i, node in enumerate(graph.node):
            if i in keep or node.op_type not in ELEMENTWISE:
                continue
            users = [u for out in node.output for u in consumers.get(out, [])]
            if users and all(u in keep for u in users) and not graph_outputs.intersection(node.output):
                keep.add(i)
                changed = True
    return keep


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A new model computing in fp16 except the statistics; graph inputs and outputs keep their types."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    types = _tensor_types(model)
    keep = fp32_region(graph, types)
    if any(types.get(o.name) == FLOAT for o in graph.output):
        raise ValueError("fp16 conversion expects non-float graph outputs (the frame graph returns uint8)")

    def wanted(node_index: int, node: onnx.NodeProto, input_index: int) -> int:
        if (node.op_type, input_index) in FP32_INPUTS or node_index in keep:
            return FLOAT
        return FLOAT16

    # Which float constants (initializers, Constant nodes) some consumer wants in fp16.
    wants16: set[str] = set()
    for i, node in enumerate(graph.node):
        for j, name in enumerate(node.input):
            if node.op_type not in ANY_INPUT and wanted(i, node, j) == FLOAT16:
                wants16.add(name)

    new_type = dict(types)
    for init in graph.initializer:
        if init.data_type == FLOAT and init.name in wants16:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
            new_type[init.name] = FLOAT16
    for i, node in enumerate(graph.node):
        float_outputs = [o for o in node.output if types.get(o) == FLOAT]
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            if value is not None and value.t.data_type == FLOAT and node.output[0] in wants16:
                value.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(value.t).astype(np.float16)))
                new_type[node.output[0]] = FLOAT16
            continue
        if i in keep or not float_outputs:
            continue
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                attr.i = FLOAT16
            elif node.op_type == "ConstantOfShape" and attr.name == "value" and attr.t.data_type == FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16)))
        for out in float_outputs:
            new_type[out] = FLOAT16

    # Casts at the borders between the fp16 and fp32 regions (one per tensor and direction).
    nodes: list[onnx.NodeProto] = []
    casts: dict[tuple[str, int], str] = {}
    for i, node in enumerate(graph.node):
        for j, name in enumerate(node.input):
            have = new_type.get(name)
            if not name or node.op_type in ANY_INPUT or have not in (FLOAT, FLOAT16):
                continue
            want = wanted(i, node, j)
            if have == want:
                continue
            key = (name, want)
            if key not in casts:
                casts[key] = f"{name}__as_{'fp32' if want == FLOAT else 'fp16'}"
                nodes.append(helper.make_node("Cast", [name], [casts[key]], to=want, name=casts[key]))
            node.input[j] = casts[key]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)
