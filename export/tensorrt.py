"""ONNX → TensorRT engine (TensorRT 10 Python API), with an engine cache and a timing cache.

The engine is built from the verified fp32 ONNX frame graph. With fp16, TensorRT picks fp16
kernels, except for the statistics layers (reductions, sqrt, pow), which are pinned to fp32 as in
the fp16 ONNX export. The cache key is the ONNX file's hash + GPU + TensorRT version + precision
+ profile, so an engine is rebuilt only when one of them changes. ``tensorrt`` is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from export.formats import ShapeProfile
from export.metadata import ArtifactMetadata
from export.onnx import FRAME_INPUT, read_metadata
from export.errors import ArtifactError, BackendError
from models.weights import sha256_of

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30
TIMING_CACHE = "timing.cache"


def require_tensorrt(alternative: str = "--backend onnxruntime"):
    """The ``tensorrt`` module, or a one-line BackendError saying how to get it (or ``alternative``)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendError("TensorRT is not installed; pip install tensorrt (needs an NVIDIA GPU and driver), "
                           f"or use {alternative}") from None
    return trt


def gpu_identity(alternative: str = "--backend onnxruntime") -> str:
    """The CUDA GPU's name and compute capability; BackendError (suggesting ``alternative``) without one."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError(f"TensorRT needs a CUDA GPU, and none is visible; use {alternative}")
    major, minor = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()} sm_{major}{minor}"


def has_fast_fp16() -> bool:
    """Tensor-core fp16 (compute capability 7.0 and later)."""
    import torch

    return torch.cuda.get_device_capability() >= (7, 0)


def engine_cache_key(onnx_sha256: str, gpu: str, trt_version: str, precision: str, profile: ShapeProfile) -> str:
    """What an engine depends on, hashed: a change in any part means a rebuild."""
    text = json.dumps({"onnx": onnx_sha256, "gpu": gpu, "tensorrt": trt_version, "precision": precision,
                       "profile": str(profile)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EngineArtifact:
    """A built engine and its JSON side file (metadata of the ONNX graph + what TensorRT used)."""

    engine_path: Path
    meta_path: Path
    metadata: ArtifactMetadata


def engine_paths(onnx_path: Path, key: str, out_dir: Path) -> tuple[Path, Path]:
    stem = f"{Path(onnx_path).stem}-{key[:16]}"
    return out_dir / f"{stem}.engine", out_dir / f"{stem}.json"


def _keep_statistics_fp32(trt, network) -> int:
    """Pin reductions, sqrt and pow to fp32 (normalisation statistics overflow or lose digits in fp16)."""
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in (trt.LayerType.REDUCE, trt.LayerType.NORMALIZATION):
            is_stat = True
        elif layer.type == trt.LayerType.UNARY:
            layer.__class__ = trt.IUnaryLayer  # get_layer hands out ILayer; the subclass exposes .op
            is_stat = layer.op == trt.UnaryOperation.SQRT
        elif layer.type == trt.LayerType.ELEMENTWISE:
            layer.__class__ = trt.IElementWiseLayer
            is_stat = layer.op == trt.ElementWiseOperation.POW
        else:
            is_stat = False
        if is_stat:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned += 1
    return pinned


def _write_atomic(path: Path, data: bytes) -> None:
    """Temporary file beside ``path``, the user's umask, renamed when complete (``models.atomic``)."""
    from models.atomic import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def build_engine(onnx_path: Path, precision: str, profile: ShapeProfile, out_dir: Path,
                 rebuild: bool = False) -> EngineArtifact:
    """The engine for ``onnx_path``: from the cache when its key matches, else built (minutes) and cached."""
    trt = require_tensorrt()
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    onnx_meta = read_metadata(onnx_path)
    if onnx_meta.precision != "fp32":
        raise ArtifactError(f"{onnx_path} is {onnx_meta.precision}; TensorRT engines are built from the fp32 "
                            "ONNX graph (TensorRT chooses the fp16 kernels itself)")
    gpu = gpu_identity()
    key = engine_cache_key(sha256_of(onnx_path), gpu, trt.__version__, precision, profile)
    engine_path, meta_path = engine_paths(onnx_path, key, out_dir)
    if engine_path.is_file() and meta_path.is_file() and not rebuild:
        log.info("tensorrt: engine cache hit %s", engine_path)
        return EngineArtifact(engine_path, meta_path, read_engine_metadata(meta_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "fp16":
        if not has_fast_fp16():  # platform_has_fast_fp16 is deprecated since TensorRT 10.5: ask CUDA
            raise BackendError(f"{gpu} has no fast fp16; build with --precision fp32")
        config.set_flag(trt.BuilderFlag.FP16)
        pinned = _keep_statistics_fp32(trt, network)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        log.info("tensorrt: fp16 with %d statistics layers pinned to fp32", pinned)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(FRAME_INPUT, *[(1, s.height, s.width, 3) for s in (profile.min, profile.opt, profile.max)])
    config.add_optimization_profile(opt_profile)
    timing_path = out_dir / TIMING_CACHE
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"TensorRT failed to build an engine from {onnx_path}; run with -v for its log")
    _write_atomic(engine_path, bytes(serialized))
    _write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
    meta = replace(onnx_meta, precision=precision, extra={
        **onnx_meta.extra, "format": "tensorrt", "tensorrt_version": trt.__version__, "gpu": gpu,
        "profile": str(profile), "onnx_sha256": sha256_of(onnx_path), "cache_key": key,
        "precision_used": precision, "engine_sha256": sha256_of(engine_path)})
    _write_atomic(meta_path, meta.to_json().encode())
    log.info("tensorrt: built %s (%s, %s) in %.0f s, %.1f MB", engine_path.name, precision, profile,
             time.perf_counter() - start, engine_path.stat().st_size / 1e6)
    return EngineArtifact(engine_path, meta_path, meta)


def read_engine_metadata(meta_path: Path) -> ArtifactMetadata:
    """The JSON side file of an engine; ArtifactError if missing or damaged."""
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        raise ArtifactError(f"{meta_path} (the engine's metadata) is missing; rebuild the engine with 'main.py export'")
    return ArtifactMetadata.from_json(meta_path.read_text(), str(meta_path))


def check_engine(engine_path: Path, meta: ArtifactMetadata) -> None:
    """ArtifactError unless the engine file is the one built here, for this GPU and TensorRT."""
    trt = require_tensorrt()
    if meta.extra.get("engine_sha256") != sha256_of(engine_path):
        raise ArtifactError(f"{engine_path} is corrupted or was replaced (hash differs); rebuild it")
    if meta.extra.get("tensorrt_version") != trt.__version__ or meta.extra.get("gpu") != gpu_identity():
        raise ArtifactError(f"{engine_path} was built for {meta.extra.get('gpu')} / TensorRT "
                            f"{meta.extra.get('tensorrt_version')}; rebuild it on this machine")
