"""What an ONNX frame graph must satisfy to be built by TensorRT: uint8 only at its borders.

TensorRT 10's ONNX parser accepts uint8 tensors only as network inputs or outputs or in a Cast;
a Gather or Transpose on uint8 fails the whole build. A pure graph check, so it runs without TensorRT.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

#: Ops TensorRT's parser allows on uint8 tensors (Shape reads only the dimensions).
UINT8_OK = frozenset({"Cast", "Shape"})


def uint8_ops(model: onnx.ModelProto) -> list[str]:
    """Nodes (``op_type name``) other than Cast/Shape that read or write a uint8 tensor."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({t.name: t.data_type for t in g.initializer})
    bad = []
    for node in g.node:
        if node.op_type in UINT8_OK:
            continue
        if any(types.get(name) == TensorProto.UINT8 for name in [*node.input, *node.output] if name):
            bad.append(f"{node.op_type} {node.name}")
    return bad
