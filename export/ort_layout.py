"""ONNX Runtime's blocked layout kept between its convolutions: the CPU graph rewritten for this machine.

ORT's CPU provider runs convolutions in a blocked layout ("NCHWc": channels in blocks of ``b`` = 8 on
AVX2, 16 on AVX-512, innermost), and converts back to NCHW (``ReorderOutput``) around every op it has
no blocked kernel for, then back again (``ReorderInput``). In MicroAST's graph those ops are the
reflection pads (one per 3×3 conv), the AdaIN statistics, the style modulation products and the first
Resize: 13 round trips of full tensors per frame. Yet a blocked (N, C, H, W) tensor *is* a plain
(N, C/b, H, W, b) tensor, and those ops do not mind the layout when given that view: a Pad pads axes 2
and 3, a ReduceMean reduces them, a per-channel vector becomes (1, C/b, 1, 1, b), elementwise ops are
elementwise, and a Resize becomes ORT's own blocked ``Upsample``. The views are Reshapes, which cost
nothing.

:func:`rewrite_blocked` does that to the graph ORT optimised for this machine (saved with
``optimized_model_filepath``); any op it does not know gets its NCHW input back as before.
:func:`cached_blocked_graph` builds the result once per artifact, ORT version and block size, checks
it against the graph it came from on two odd-sized frames, and keeps it in the user cache. The file
is hardware-specific, like every model ORT saves at its highest optimisation level.

Measured (MicroAST tuned graph, ORT 1.32, 2 threads, block size 16, ``bench models``, 2026-12-01): 28
layout conversions per frame → 2 (the 3-channel input and the NHWC output); 640×480 91 → 73 ms, 1280×720
264 → 217 ms (0.80×, 0.82×). Checked under emulation for AVX2 (block size 8) as well.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnx import numpy_helper

from export.errors import ArtifactError
from export.onnx import FRAME_INPUT, read_metadata, save_with_metadata

log = logging.getLogger(__name__)

NCHWC = "com.microsoft.nchwc"
#: elementwise ops that run on a blocked view unchanged
UNARY = frozenset({"Relu", "Sqrt", "Neg", "Abs", "Exp", "Reciprocal", "Sigmoid", "Tanh", "Identity"})
BINARY = frozenset({"Add", "Sub", "Mul", "Div"})
#: frame sizes (height, width) the rewritten graph is checked at: odd, so no side is a multiple of a stride
CHECK_SIZES = ((75, 101), (122, 166))
#: the largest difference (uint8 levels) allowed between the rewritten graph and its source: ORT fuses
#: the two differently, so a few pixels round the other way
CHECK_MAX_LEVELS = 1


def _session(model: onnx.ModelProto | Path, level: str = "basic", threads: int = 1, optimized_path: Path | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # ORT warns about every initializer a rewrite leaves unused
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def block_size() -> int:
    """ORT's NCHWc block size on this CPU, read from what its ``ReorderInput`` does to a known tensor.

    ArtifactError where ORT has no blocked kernels here (no NCHWc ops, or none of the known sizes).
    """
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64, 2, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    graph = helper.make_graph(
        [
            helper.make_node("ReorderInput", ["x"], ["r"], domain=NCHWC),
            helper.make_node("Reshape", ["r", "flat"], ["y"]),
        ],
        "block_probe",
        [x],
        [y],
        initializer=[numpy_helper.from_array(np.array([-1], np.int64), "flat")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(NCHWC, 1)])
    try:
        session = _session(model, "none")
    except Exception as exc:  # ORT raises its own types; a build without NCHWc kernels has no such op
        raise ArtifactError(f"ONNX Runtime here has no blocked (NCHWc) kernels: {str(exc).splitlines()[0]}") from None
    data = np.arange(64 * 6, dtype=np.float32).reshape(1, 64, 2, 3)
    out = session.run(None, {"x": data})[0]
    for b in (4, 8, 16, 32):
        if np.array_equal(out, data.reshape(1, 64 // b, b, 2, 3).transpose(0, 1, 3, 4, 2).ravel()):
            return b
    raise ArtifactError(
        "ONNX Runtime's blocked layout here is not one this rewrite knows; running the graph as exported"
    )


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _probe_feeds(session, hw: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for ``session``: a textured uint8 frame of size ``hw``, code tensors drawn at random (std > 0)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        if inp.name == FRAME_INPUT:
            h, w = hw
            yy, xx = np.mgrid[0:h, 0:w]
            base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx * yy) % 256], -1)
            frame = np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            feeds[inp.name] = frame[None]
            continue
        sides = iter(hw)  # named dimensions (height, width) take the probe size, in order
        shape = [d if isinstance(d, int) else next(sides, 1) for d in inp.shape]
        values = np.abs(rng.normal(0.5, 0.3, shape)) + 0.05 if "std" in inp.name else rng.normal(0.0, 0.5, shape)
        feeds[inp.name] = np.asarray(values if shape else 0.8, np.float32)
    return feeds


def _probe_shapes(model: onnx.ModelProto, names: list[str]) -> dict[str, tuple[int, ...]]:
    """The shapes of float tensors ``names`` in one run of ``model`` (added as outputs for it)."""
    if not names:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(
        helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names if n not in have
    )
    session = _session(probe, "none")
    outs = session.run(names, _probe_feeds(session, CHECK_SIZES[0]))
    return {n: tuple(o.shape) for n, o in zip(names, outs)}


@dataclass
class _Rewriter:
    """One pass over an ORT-optimised graph, in its (topological) node order."""

    model: onnx.ModelProto
    b: int
    nodes: list = field(default_factory=list)
    consts: dict = field(default_factory=dict)
    view: dict = field(default_factory=dict)  # NCHW name -> (5-D view name, "spatial" | "vec", channels)
    logical: dict = field(default_factory=dict)  # NCHW name -> its blocked 4-D tensor
    pending: dict = field(default_factory=dict)  # NCHW name -> the ReorderOutput that made it, if still needed
    ready: set = field(default_factory=set)  # NCHW names that exist in the new graph
    made: set = field(default_factory=set)
    counts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        g = self.model.graph
        self.init = {i.name: i for i in g.initializer}
        self.ready = {i.name for i in g.input} | set(self.init)
        inferred = onnx.shape_inference.infer_shapes(self.model)
        types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.input]}
        floats = sorted(
            {
                i
                for n in g.node
                if n.domain == "" and n.op_type in BINARY
                for i in n.input
                if i and i not in self.init and types.get(i, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT
            }
        )
        self.shapes = _probe_shapes(self.model, floats)

    # -- helpers ---------------------------------------------------------------------------------
    def emit(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, domain=domain, **attrs))

    def const(self, values: list[int]) -> str:
        name = "blocked_shape_" + "_".join(str(int(v)).replace("-", "m") for v in values)
        if name not in self.consts:
            self.consts[name] = numpy_helper.from_array(np.array(values, np.int64), name)
        return name

    def set_view(self, name: str, kind: str, channels: int) -> str:
        self.view[name] = (name + "__blocked", kind, channels)
        return name + "__blocked"

    def blocked4(self, name: str) -> str:
        """The blocked 4-D tensor behind view ``name`` (what ORT's blocked kernels take)."""
        if name not in self.logical:
            view, _, c = self.view[name]
            self.emit("Reshape", [view, self.const([0, c, 0, 0])], [name + "__nchwc"])
            self.logical[name] = name + "__nchwc"
        return self.logical[name]

    def materialize(self, name: str) -> None:
        """Make NCHW tensor ``name`` exist again for an op that needs the plain layout."""
        if name in self.ready:
            return
        if name in self.pending:
            self.nodes.append(self.pending.pop(name))
        else:
            view, kind, c = self.view[name]
            if kind == "vec":  # (N, C/b, 1, 1, b) holds the channels in order
                self.emit("Reshape", [view, self.const([0, c, 1, 1])], [name])
            else:
                self.emit("ReorderOutput", [self.blocked4(name)], [name], domain=NCHWC, channels=c, channels_last=0)
        self.ready.add(name)

    def vector(self, name: str, channels: int) -> str | None:
        """A per-channel operand of a binary op, as a view; None when it is not one."""
        shape = tuple(self.init[name].dims) if name in self.init else self.shapes.get(name)
        if shape is None:
            return None
        if int(np.prod(shape)) == 1:
            return name  # a scalar broadcasts against any layout
        if len(shape) >= 3 and shape[-3] == channels and int(np.prod(shape)) == channels:
            out = name + "__blocked_vec"
            if out not in self.made:
                self.made.add(out)
                self.materialize(name)
                self.emit("Reshape", [name, self.const([1, channels // self.b, 1, 1, self.b])], [out])
            return out
        return None

    # -- one node ------------------------------------------------------------------------------
    def translate(self, n: onnx.NodeProto, a: dict) -> bool:
        """Emit ``n`` on blocked views; False when it cannot be (it then runs on NCHW as before)."""
        op, ins = n.op_type, list(n.input)
        in_view = [i in self.view for i in ins]
        if n.domain != "" or not any(in_view) or (not in_view[0] and op not in BINARY):
            return False
        if op == "Pad" and not any(in_view[1:]) and len(ins) > 1 and ins[1] in self.init:
            pads = numpy_helper.to_array(self.init[ins[1]])
            if len(pads) != 8 or pads[[0, 1, 4, 5]].any() or len(ins) > 3:
                return False
            view, kind, c = self.view[ins[0]]
            pads10 = [0, 0, int(pads[2]), int(pads[3]), 0, 0, 0, int(pads[6]), int(pads[7]), 0]
            self.emit(
                "Pad",
                [view, self.const(pads10), *ins[2:]],
                [self.set_view(n.output[0], kind, c)],
                mode=a.get("mode", "constant"),
            )
            return True
        if op == "Concat" and all(in_view) and a.get("axis") == 1 and all(self.view[i][1] == "spatial" for i in ins):
            self.emit(
                "Concat",
                [self.view[i][0] for i in ins],
                [self.set_view(n.output[0], "spatial", sum(self.view[i][2] for i in ins))],
                axis=1,
            )
            return True
        if op in UNARY:
            view, kind, c = self.view[ins[0]]
            self.emit(op, [view], [self.set_view(n.output[0], kind, c)])
            return True
        if op == "ReduceMean" and len(ins) == 1 and list(a.get("axes", [])) == [2, 3] and a.get("keepdims", 1) == 1:
            view, _, c = self.view[ins[0]]
            self.emit(op, [view], [self.set_view(n.output[0], "vec", c)], axes=[2, 3], keepdims=1)
            return True
        if op in BINARY:
            channels = {self.view[i][2] for i in ins if i in self.view}
            if len(channels) != 1:
                return False
            c = channels.pop()
            operands = [self.view[i][0] if i in self.view else self.vector(i, c) for i in ins]
            if None in operands:
                return False
            kind = "spatial" if any(self.view[i][1] == "spatial" for i in ins if i in self.view) else "vec"
            self.emit(op, operands, [self.set_view(n.output[0], kind, c)])
            return True
        if op == "Resize" and len(ins) == 3 and ins[2] in self.init and self.view[ins[0]][1] == "spatial":
            scales = numpy_helper.to_array(self.init[ins[2]])
            mode, coords = a.get("mode", "nearest"), a.get("coordinate_transformation_mode", "half_pixel")
            if (
                len(scales) != 4
                or scales[0] != 1
                or scales[1] != 1
                or not float(scales[2]).is_integer()
                or not float(scales[3]).is_integer()
                or mode not in ("linear", "nearest")
                or coords not in ("half_pixel", "asymmetric")
                or (mode == "nearest" and a.get("nearest_mode", "floor") != "floor")
            ):
                return False
            c = self.view[ins[0]][2]
            up = n.output[0] + "__nchwc"
            self.emit(
                "Upsample",
                [self.blocked4(ins[0])],
                [up],
                domain=NCHWC,
                scales=[1, 1, int(scales[2]), int(scales[3])],
                mode=mode,
                coordinate_transformation_mode=coords,
            )
            self.logical[n.output[0]] = up
            self.emit(
                "Reshape", [up, self.const([0, c // self.b, 0, 0, self.b])], [self.set_view(n.output[0], "spatial", c)]
            )
            return True
        if op == "Shape" and self.view[ins[0]][1] == "spatial":
            self.emit("Shape", [self.blocked4(ins[0])], list(n.output), **a)
            return True
        return False

    def run(self) -> tuple[onnx.ModelProto, dict[str, int]]:
        g = self.model.graph
        for n in g.node:
            a = _attrs(n)
            key = None
            if (
                n.domain == NCHWC
                and n.op_type == "ReorderOutput"
                and not a.get("channels_last", 0)
                and a.get("channels", 0) % self.b == 0
            ):
                c = a["channels"]
                self.emit(
                    "Reshape",
                    [n.input[0], self.const([0, c // self.b, 0, 0, self.b])],
                    [self.set_view(n.output[0], "spatial", c)],
                )
                self.logical[n.output[0]] = n.input[0]
                self.pending[n.output[0]] = n
                key = "ReorderOutput"
            elif (
                n.domain == NCHWC
                and n.op_type == "ReorderInput"
                and n.input[0] in self.view
                and not a.get("channels_last", 0)
                and self.view[n.input[0]][1] == "spatial"
            ):
                view, _, c = self.view[n.input[0]]
                self.emit("Reshape", [view, self.const([0, c, 0, 0])], [n.output[0]])
                key = "ReorderInput"
            elif self.translate(n, a):
                key = n.op_type
            if key:
                self.counts[key] = self.counts.get(key, 0) + 1
                continue
            for i in n.input:
                if i in self.view:
                    self.materialize(i)
            self.nodes.append(n)
            self.ready.update(n.output)
        for o in g.output:
            if o.name in self.view:
                self.materialize(o.name)
        del g.node[:]
        g.node.extend(self.nodes)
        used = {i for n in self.nodes for i in n.input}
        kept = [t for t in [*g.initializer, *self.consts.values()] if t.name in used]
        del g.initializer[:]
        g.initializer.extend(kept)
        return self.model, self.counts


def rewrite_blocked(optimized: onnx.ModelProto, b: int) -> tuple[onnx.ModelProto, dict[str, int]]:
    """``optimized`` (a graph ORT saved after its NCHWc pass) with its layout round trips replaced by views.

    Returns the new graph and how many ops of each type moved onto the blocked layout.
    """
    model = onnx.ModelProto()
    model.CopyFrom(optimized)
    return _Rewriter(model, b).run()


def reorder_count(model: onnx.ModelProto) -> int:
    """Layout conversions (ReorderInput/ReorderOutput) left in a graph."""
    return sum(1 for n in model.graph.node if n.domain == NCHWC and n.op_type in ("ReorderInput", "ReorderOutput"))


def check_same(reference, rewritten: onnx.ModelProto) -> float:
    """Run ``rewritten`` and the ``reference`` session on :data:`CHECK_SIZES` frames; the largest difference
    in uint8 levels, or ArtifactError."""
    candidate = _session(rewritten, "basic")
    worst = 0.0
    for seed, hw in enumerate(CHECK_SIZES):
        feeds = _probe_feeds(reference, hw, seed)
        want, got = reference.run(None, feeds)[0], candidate.run(None, feeds)[0]
        if want.shape != got.shape:
            raise ArtifactError(f"the blocked-layout graph gives {got.shape} for {hw}, its source {want.shape}")
        worst = max(worst, float(np.abs(want.astype(np.float64) - got.astype(np.float64)).max()))
    if worst > CHECK_MAX_LEVELS:
        raise ArtifactError(f"the blocked-layout graph differs from its source by {worst:g} levels")
    return worst


def _optimize(source: Path):
    """(session, graph): ``source`` in ORT's CPU provider, and the graph it optimised to, NCHWc pass included."""
    with tempfile.TemporaryDirectory() as tmp:
        optimized_path = Path(tmp) / "optimized.onnx"
        session = _session(source, "all", optimized_path=optimized_path)
        return session, onnx.load(str(optimized_path))


def ort_optimized(source: Path) -> onnx.ModelProto:
    """``source`` as ORT's CPU provider optimises it on this machine, NCHWc pass included."""
    return _optimize(source)[1]


def layout_name(b: int) -> str:
    return f"nchwc{b}"


def build_blocked_graph(source: Path, dest: Path, b: int, source_digest: str) -> dict[str, int]:
    """Optimise ``source`` for this CPU, rewrite it onto views of block size ``b``, check it against
    ``source`` as ORT runs it, and save it to ``dest``; how many ops of each type moved."""
    import onnxruntime as ort

    meta = read_metadata(source)
    reference, optimized = _optimize(source)
    before = reorder_count(optimized)
    rewritten, counts = rewrite_blocked(optimized, b)
    worst = check_same(reference, rewritten)
    extra = {**meta.extra, "layout": layout_name(b), "layout_source": source_digest, "onnxruntime": ort.__version__}
    save_with_metadata(rewritten, replace(meta, extra=extra), dest)
    log.info(
        "onnxruntime: %s rewritten for blocked layout %d: %d -> %d layout conversions, max diff %g level(s)",
        source.name,
        b,
        before,
        reorder_count(rewritten),
        worst,
    )
    return counts


def cached_blocked_graph(source: Path, cache_dir: Path) -> tuple[Path, str]:
    """The blocked-layout graph of ``source`` for this machine and its layout name (``nchwc16``...),
    from ``cache_dir`` or built there now.

    ArtifactError when it cannot be made here (the caller then runs ``source`` as it is).
    """
    import onnxruntime as ort

    b = block_size()
    digest = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}.get(
        "stylizer.graph_sha256", ""
    )
    if not digest:
        raise ArtifactError(f"{source} carries no graph checksum; re-export it")
    layout = layout_name(b)
    dest = Path(cache_dir) / f"{source.stem}-{digest[:12]}-ort{ort.__version__}-{layout}.onnx"
    if dest.is_file():
        try:
            extra = read_metadata(dest).extra
            if (
                extra.get("layout_source") == digest
                and extra.get("onnxruntime") == ort.__version__
                and extra.get("layout") == layout
            ):
                return dest, layout
            log.warning("onnxruntime: %s was made from another graph or runtime; building it again", dest)
        except ArtifactError as exc:
            log.warning("onnxruntime: %s; building it again", exc)
    dest.parent.mkdir(parents=True, exist_ok=True)
    build_blocked_graph(source, dest, b, digest)
    # files of earlier graphs or runtimes of this very artifact name (not of "model-v2" for "model")
    mine = re.compile(rf"{re.escape(source.stem)}-[0-9a-f]{{12}}-ort[^-/]+-nchwc\d+\.onnx")
    for stale in dest.parent.glob(f"{source.stem}-*.onnx"):
        if stale != dest and mine.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
            log.info("onnxruntime: removed %s (made from another graph or runtime)", stale.name)
    return dest, layout
