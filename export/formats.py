"""The table of export formats: what each one writes, what it needs, which precisions it allows and the function
that makes it.

Shaped after ultralytics' ``export_formats``: one row per format, so argument checks, help texts and the export
itself (``export.exporter.export_artifact`` calls the row's function) come from data instead of if/elif chains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from core.errors import InputError
from core.sizes import FrameSize

if TYPE_CHECKING:
    from export.exporter import ExportRequest
    from models.base import StyleModel
    from models.weights import WeightStore

#: A format's export function: (model, request, store) -> the artifact's path. Each imports its heavy
#: modules (PyTorch, ONNX, TensorRT) when called, so the table stays cheap for argument checks and help.
ExportFn = Callable[["StyleModel", "ExportRequest", "WeightStore | None"], Path]


@dataclass(frozen=True)
class ExportFormat:
    """One artifact format."""

    name: str
    suffix: str
    needs_gpu: bool
    precisions: tuple[str, ...]
    description: str
    export: ExportFn


def artifact_name(model: StyleModel, precision: str, suffix: str) -> str:
    return f"{model.name}-{precision}{suffix}"


def _export_onnx(model: StyleModel, request: ExportRequest, store: WeightStore | None) -> Path:
    """The verified ONNX graph, named ``<model>-<precision>.onnx``."""
    from export.verify import export_onnx_verified

    path = request.out_dir / artifact_name(model, request.precision, ".onnx")
    return export_onnx_verified(
        model,
        path,
        request.precision,
        store,
        request.opset,
        request.style_size,
        request.checkpoint_sha256,
        request.graph,
    )


def _export_tensorrt(model: StyleModel, request: ExportRequest, store: WeightStore | None) -> Path:
    """A TensorRT engine built from the verified ONNX graph (which stays beside it)."""
    from export.tensorrt import TENSORRT_GRAPH, build_engine, require_tensorrt
    from export.verify import export_onnx_verified

    require_tensorrt()  # fail before the ONNX step when TensorRT is absent
    # The engine keeps the verified ONNX graph's types (fp32 statistics in the fp16 graph): same precision.
    onnx_path = request.out_dir / artifact_name(model, request.precision, ".onnx")
    # TensorRT fuses and picks kernels itself: it gets the network as written
    export_onnx_verified(
        model,
        onnx_path,
        request.precision,
        store,
        request.opset,
        request.style_size,
        request.checkpoint_sha256,
        request.graph or TENSORRT_GRAPH,
    )
    return build_engine(onnx_path, request.precision, request.profile, request.out_dir, retry_failed=True).engine_path


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "onnx",
            ".onnx",
            False,
            ("fp32", "fp16"),
            "ONNX graph with uint8 BGR frames in and out, dynamic height/width, style code as inputs",
            _export_onnx,
        ),
        ExportFormat(
            "tensorrt",
            ".engine",
            True,
            ("fp16", "fp32"),
            "TensorRT engine built from the ONNX graph, with optimisation profiles (needs an NVIDIA GPU)",
            _export_tensorrt,
        ),
    )
}

PRECISIONS = ("fp32", "fp16")


def export_format(name: str) -> ExportFormat:
    """The row for ``name``, or a one-line error listing the choices."""
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown export format {name!r}; choose one of: {', '.join(FORMATS)}") from None


def check_precision(fmt: ExportFormat, precision: str) -> str:
    """``precision`` if ``fmt`` allows it, else a one-line error."""
    if precision not in fmt.precisions:
        raise InputError(f"{fmt.name} export supports {', '.join(fmt.precisions)}, not {precision!r}")
    return precision


@dataclass(frozen=True)
class ShapeProfile:
    """The min/opt/max frame sizes an engine is optimised for (TensorRT optimisation profile)."""

    min: FrameSize
    opt: FrameSize
    max: FrameSize

    def __post_init__(self) -> None:
        for side in ("width", "height"):
            lo, mid, hi = (getattr(s, side) for s in (self.min, self.opt, self.max))
            if not lo <= mid <= hi:
                raise InputError(f"profile {side}s must satisfy min <= opt <= max, got {lo}, {mid}, {hi}")

    def contains(self, size: FrameSize) -> bool:
        return self.min.width <= size.width <= self.max.width and self.min.height <= size.height <= self.max.height

    def __str__(self) -> str:
        return f"min {self.min}, opt {self.opt}, max {self.max}"


#: Frame sizes a TensorRT engine takes unless told otherwise: from the smallest working image the app makes
#: (16 px sides: ``image --size`` under 320, the live governor's 160 px steps) to 4K in either orientation
#: (``--size 0`` on 2160p video, portrait video); tuned for 720p.
DEFAULT_PROFILE = ShapeProfile(FrameSize(16, 16), FrameSize(1280, 720), FrameSize(3840, 3840))
