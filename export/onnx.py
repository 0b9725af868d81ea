"""PyTorch → ONNX: a model's per-frame network wrapped with its pre- and post-processing.

The graph takes the OpenCV frame as it comes (uint8 BGR, NHWC) and returns one (uint8 BGR NHWC),
so a backend's hot path is a single ``session.run``. Style code tensors and alpha are graph
inputs named after the StyleCode's tensors: one file serves every style, blend and strength.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import tempfile
import time
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from export.metadata import ArtifactMetadata, weights_fingerprint
from core.atomic import atomic_write
from models.base import StyleCode, StyleModel
from export.errors import ArtifactError

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
FRAME_INPUT = "frame"
ALPHA_INPUT = "alpha"
OUTPUT = "stylized"
#: ``extra["uint8"]`` of exports whose graph has uint8 only in its first and last Cast (TensorRT can parse them);
#: earlier plain graphs reordered colours on uint8 tensors.
UINT8_AT_BORDERS = "borders"


class FrameGraph(nn.Module):
    """``forward(frame uint8 BGR NHWC, *code_tensors, alpha) -> uint8 BGR NHWC``: what gets exported.

    uint8 appears only in the first and the last Cast: TensorRT's ONNX parser takes uint8 as a network
    input or output or in a Cast, nothing else, so colour reorder and layout change run on floats.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("bgr_rgb", torch.tensor([2, 1, 0]), persistent=False)

    def forward(self, frame: torch.Tensor, *code_and_alpha: torch.Tensor) -> torch.Tensor:
        *code, alpha = code_and_alpha
        x = frame.to(torch.float32).permute(0, 3, 1, 2).index_select(1, self.bgr_rgb) / 255.0
        y = self.network(x, *code, alpha)
        y = torch.round(y.clamp(0.0, 1.0) * 255.0).index_select(1, self.bgr_rgb).permute(0, 2, 3, 1)
        return y.to(torch.uint8)


def graph_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of the graph (nodes and weights, not the metadata): catches corrupted weights."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def default_graph(model: StyleModel) -> str:
    """The graph formulation export uses for ``model`` by default: the tuned one where there is one."""
    from export.microast_graph import TUNED_VERSION

    return TUNED_VERSION if model.name == "microast" else "plain"


def frame_graph(model: StyleModel, graph: str = "plain") -> nn.Module:
    """The fp32 CPU module to export: ``plain`` wraps the network as written, ``tuned-N`` is MicroAST's rewrite."""
    from export.microast_graph import TUNED_VERSION, TunedMicroASTGraph

    # a copy: .to()/.float() work in place, and the caller's model may live on a GPU or in fp16
    network = copy.deepcopy(model.frame_network()).to("cpu").float().eval()
    if graph == "plain":
        return FrameGraph(network).eval()
    if graph in ("tuned", TUNED_VERSION) and model.name == "microast":
        return TunedMicroASTGraph(network).eval()
    raise ArtifactError(
        f"graph variant {graph!r} does not exist for {model.name}; use plain"
        + (f" or {TUNED_VERSION}" if model.name == "microast" else "")
    )


def _export_fp32(
    model: StyleModel, code: StyleCode, path: Path, opset: int, sample_hw: tuple[int, int], graph_variant: str = "plain"
) -> None:
    graph = frame_graph(model, graph_variant)
    h, w = sample_hw
    frame = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8)
    code_tensors = [t.detach().to("cpu", torch.float32) for t in code.tensors.values()]
    alpha = torch.tensor(1.0)
    names = [FRAME_INPUT, *code.names, ALPHA_INPUT]
    with warnings.catch_warnings():
        # The tracer warns about Python ints taken from shapes; dynamic sizes are verified afterwards.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            (frame, *code_tensors, alpha),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=[OUTPUT],
            do_constant_folding=True,
            dynamic_axes={FRAME_INPUT: {1: "height", 2: "width"}, OUTPUT: {1: "height", 2: "width"}},
        )


def save_with_metadata(model: onnx.ModelProto, meta: ArtifactMetadata, path: Path) -> None:
    """Write ``model`` with ``meta`` in its metadata_props, atomically (temp file, rename)."""
    del model.metadata_props[:]
    props = meta.to_props()
    props["stylizer.graph_sha256"] = graph_digest(model)
    onnx.helper.set_model_props(model, props)
    atomic_write(path, lambda tmp: onnx.save_model(model, tmp))


def export_onnx(
    model: StyleModel,
    code: StyleCode,
    path: Path,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    sample_hw: tuple[int, int] = (256, 320),
    checkpoint_sha256: str = "",
    graph: str | None = None,
) -> ArtifactMetadata:
    """Export ``model``'s frame graph to ``path`` (fp32 or fp16) and return its metadata (not yet verified).

    ``graph``: the formulation (None: :func:`default_graph`); recorded as ``extra["graph"]``.
    """
    from export.fp16 import convert_to_fp16

    start = time.perf_counter()
    path = Path(path)
    graph = default_graph(model) if graph is None else graph
    if graph == "tuned":
        graph = default_graph(model)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "fp32.onnx"
        _export_fp32(model, code, raw, opset, sample_hw, graph)
        proto = onnx.load(raw)
    if precision == "fp16":
        proto = convert_to_fp16(proto)
    elif precision != "fp32":
        raise ArtifactError(f"ONNX export supports fp32 and fp16, not {precision!r}")
    meta = ArtifactMetadata(
        model=model.name,
        weights_sha256=weights_fingerprint(model),
        precision=precision,
        opset=opset,
        code_tensors={k: list(v.shape) for k, v in code.tensors.items()},
        checkpoint_sha256=checkpoint_sha256,
        extra={"graph": graph, "uint8": UINT8_AT_BORDERS},
    )
    save_with_metadata(proto, meta, path)
    onnx.checker.check_model(str(path), full_check=True)
    log.info(
        "onnx: exported %s %s (%s graph) to %s (%.1f MB) in %.1f s; checker passed",
        model.name,
        precision,
        graph,
        path,
        path.stat().st_size / 1e6,
        time.perf_counter() - start,
    )
    return meta


def read_metadata(path: Path) -> ArtifactMetadata:
    """The metadata of an ONNX artifact; ArtifactError if the file is missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ONNX file {path} does not exist; export it with 'python main.py export'")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError... for a damaged protobuf
        raise ArtifactError(f"{path} is not a readable ONNX file ({type(exc).__name__}); re-export it") from None
    props = {p.key: p.value for p in proto.metadata_props}
    meta = ArtifactMetadata.from_props(props, str(path))
    if props.get("stylizer.graph_sha256") != graph_digest(proto):
        raise ArtifactError(f"{path} is corrupted (its graph does not match the checksum stored in it); re-export it")
    return meta


def load_checked(path: Path, model: StyleModel, code_shapes: dict[str, list[int]] | None = None) -> ArtifactMetadata:
    """Metadata of ``path`` after checking that it was exported from this very ``model``."""
    meta = read_metadata(path)
    meta.check_matches(model.name, weights_fingerprint(model), str(path), code_shapes)
    return meta
