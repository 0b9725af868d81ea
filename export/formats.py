"""The table of export formats: what each one writes, what it needs and which precisions it allows.

Shaped after ultralytics' ``export_formats``: one row per format, so argument checks and help
texts come from data instead of if/elif chains.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError
from core.sizes import FrameSize


@dataclass(frozen=True)
class ExportFormat:
    """One artifact format."""

    name: str
    suffix: str
    needs_gpu: bool
    precisions: tuple[str, ...]
    description: str


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "onnx",
            ".onnx",
            False,
            ("fp32", "fp16"),
            "ONNX graph with uint8 BGR frames in and out, dynamic height/width, style code as inputs",
        ),
        ExportFormat(
            "tensorrt",
            ".engine",
            True,
            ("fp16", "fp32"),
            "TensorRT engine built from the ONNX graph, with optimisation profiles (needs an NVIDIA GPU)",
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
