"""The thin orchestrator: validate a request, run the format row's export function, report.

Also the ONNX cache the ONNX Runtime backend uses when it is given a model, not an artifact.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from export.formats import DEFAULT_PROFILE, ExportFormat, ShapeProfile, check_precision, export_format
from export.metadata import app_version, weights_fingerprint
from models.base import StyleModel
from core.errors import InputError
from models.weights import WeightStore, default_cache_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRequest:
    """What to export; checked by :func:`check_request` before any work."""

    format: str = "onnx"
    precision: str = "fp32"
    out_dir: Path = Path(".")
    opset: int = 17
    profile: ShapeProfile = DEFAULT_PROFILE
    style_size: int = 256
    checkpoint_sha256: str = ""
    graph: str | None = None  # frame-graph formulation; None: the model's default (MicroAST: tuned)


def check_request(request: ExportRequest) -> ExportFormat:
    """The request's format row, or a one-line InputError for a bad format, precision, opset or folder."""
    fmt = export_format(request.format)
    check_precision(fmt, request.precision)
    if not 17 <= request.opset <= 21:
        raise InputError(f"opset {request.opset} is not supported; use 17 to 21")
    if request.out_dir.exists() and not request.out_dir.is_dir():
        raise InputError(f"output {request.out_dir} is a file; give a folder")
    if request.style_size < 64:
        raise InputError(f"--style-size {request.style_size} is too small; use at least 64 px")
    return fmt


def export_artifact(model: StyleModel, request: ExportRequest, store: WeightStore | None = None) -> Path:
    """Run ``request`` for ``model``; returns the artifact's path. Every step logs time, size and outcome."""
    fmt = check_request(request)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path = fmt.export(model, request, store)
    log.info(
        "export: %s %s %s done in %.1f s: %s (%.1f MB)",
        model.name,
        fmt.name,
        request.precision,
        time.perf_counter() - start,
        path,
        path.stat().st_size / 1e6,
    )
    return path


def onnx_cache_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "onnx"


def cached_onnx(
    model: StyleModel,
    precision: str,
    store: WeightStore | None = None,
    cache_dir: Path | None = None,
    graph: str | None = None,
) -> Path:
    """The verified ONNX file for ``model`` in the user cache, exported on first use.

    ``graph``: the formulation (None: the model's default); part of the file name and checked in
    the metadata, so a cache never serves an older or different graph.
    """
    from export.errors import ArtifactError
    from export.onnx import UINT8_AT_BORDERS, default_graph, read_metadata
    from export.verify import large_sizes_verified

    graph = default_graph(model) if graph in (None, "tuned") else graph
    key = weights_fingerprint(model)[:16]
    path = onnx_cache_dir(cache_dir) / f"{model.name}-{key}-{precision}-{graph}-v{app_version()}.onnx"
    if path.is_file():
        try:
            meta = read_metadata(path)
            meta.check_matches(model.name, weights_fingerprint(model), str(path))
            if not meta.psnr_db:  # verification records its figures; none means it never passed
                raise ArtifactError(f"{path} was never verified against PyTorch")
            if meta.extra.get("graph", "plain") != graph:
                raise ArtifactError(f"{path} holds the {meta.extra.get('graph', 'plain')} graph, not {graph}")
            if precision == "fp16" and not large_sizes_verified(meta.psnr_db):  # exports before the 1080p overflow fix
                raise ArtifactError(f"{path} was verified on small frames only (fp16 may be black at 1080p)")
            if graph == "plain" and meta.extra.get("uint8") != UINT8_AT_BORDERS:  # before the TensorRT-parsable one
                raise ArtifactError(f"{path} holds an older graph (uint8 ops TensorRT cannot parse)")
            log.debug("onnx cache hit: %s", path)
            return path
        except ArtifactError as exc:
            log.warning("onnx cache: %s; exporting again", exc)
    log.info(
        "onnx cache: exporting %s %s (%s graph) to %s (first use of these weights)", model.name, precision, graph, path
    )
    from export.verify import export_onnx_verified

    return export_onnx_verified(model, path, precision, store, graph=graph)
