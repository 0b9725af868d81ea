"""ONNX → TensorRT engine (TensorRT 10 Python API), with an engine cache and a timing cache.

The engine is built from the verified ONNX frame graph of the same precision, as a strongly typed
network: every layer runs in the type the graph gives it, so an fp16 engine keeps the statistics
(and the squares and pixel counts that feed them) in fp32 exactly as the fp16 ONNX export does, which
was verified against PyTorch at 1080p and 4K. (TensorRT 11 dropped the FP16 builder flag and
precision constraints for this mode.) The graph must have uint8 only at its borders
(export/graph_check.py). The cache key is the ONNX file's hash + GPU + TensorRT version +
precision + profile, so an engine is rebuilt only when one of them changes; a failed build is
remembered under the same key and not retried at every launch. ``tensorrt`` is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from export.formats import ShapeProfile
from export.metadata import ArtifactMetadata
from export.onnx import FRAME_INPUT, read_metadata
from export.errors import ArtifactError, BackendError
from export.graph_check import uint8_ops
from models.weights import sha256_of

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30
#: The frame-graph formulation engines are built from: the network as written (TensorRT fuses and picks
#: kernels itself; the tuned graph's rewrites are for ONNX Runtime's CPU kernels).
TENSORRT_GRAPH = "plain"


def require_tensorrt(alternative: str = "--backend onnxruntime"):
    """The ``tensorrt`` module, or a one-line BackendError saying how to get it (or ``alternative``)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendError(
            f"TensorRT is not installed; pip install tensorrt (needs an NVIDIA GPU and driver), or use {alternative}"
        ) from None
    return trt


def gpu_identity(alternative: str = "--backend onnxruntime", index: int = 0) -> str:
    """CUDA GPU ``index``'s name and compute capability; BackendError (suggesting ``alternative``) without one."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError(f"TensorRT needs a CUDA GPU, and none is visible; use {alternative}")
    if index >= torch.cuda.device_count():
        raise BackendError(f"there is no cuda:{index} (this machine has {torch.cuda.device_count()} CUDA GPU(s))")
    major, minor = torch.cuda.get_device_capability(index)
    return f"{torch.cuda.get_device_name(index)} sm_{major}{minor}"


def has_fast_fp16(index: int = 0) -> bool:
    """Tensor-core fp16 (compute capability 7.0 and later) on CUDA GPU ``index``."""
    import torch

    return torch.cuda.get_device_capability(index) >= (7, 0)


def engine_cache_key(onnx_sha256: str, gpu: str, trt_version: str, precision: str, profile: ShapeProfile) -> str:
    """What an engine depends on, hashed: a change in any part means a rebuild."""
    text = json.dumps(
        {"onnx": onnx_sha256, "gpu": gpu, "tensorrt": trt_version, "precision": precision, "profile": str(profile)},
        sort_keys=True,
    )
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


def _write_atomic(path: Path, data: bytes) -> None:
    """Temporary file beside ``path``, the user's umask, renamed when complete (``core.atomic``)."""
    from core.atomic import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def timing_cache_path(out_dir: Path, gpu: str, trt_version: str) -> Path:
    """One timing cache per GPU and TensorRT version: TensorRT refuses (or mis-times with) another's."""
    key = hashlib.sha256(json.dumps([gpu, trt_version]).encode()).hexdigest()[:16]
    return out_dir / f"timing-{key}.cache"


def build_engine(
    onnx_path: Path,
    precision: str,
    profile: ShapeProfile,
    out_dir: Path,
    rebuild: bool = False,
    device_index: int = 0,
    retry_failed: bool = False,
) -> EngineArtifact:
    """The engine for ``onnx_path`` on CUDA GPU ``device_index``: from the cache when its key matches, else
    built (minutes) and cached. A failed build is remembered; ``rebuild`` or ``retry_failed`` try again."""
    import torch

    trt = require_tensorrt()
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    onnx_meta = read_metadata(onnx_path)
    if onnx_meta.precision != precision:
        raise ArtifactError(
            f"{onnx_path} is {onnx_meta.precision}; a {precision} engine is built from the "
            f"{precision} ONNX graph (its types are kept: a strongly typed network)"
        )
    gpu = gpu_identity(index=device_index)
    key = engine_cache_key(sha256_of(onnx_path), gpu, trt.__version__, precision, profile)
    engine_path, meta_path = engine_paths(onnx_path, key, out_dir)
    failed_path = engine_path.with_suffix(".failed")
    if engine_path.is_file() and meta_path.is_file() and not rebuild:
        log.info("tensorrt: engine cache hit %s", engine_path)
        return EngineArtifact(engine_path, meta_path, read_engine_metadata(meta_path))
    if failed_path.is_file() and not (rebuild or retry_failed):
        raise ArtifactError(
            f"an earlier TensorRT build for this graph, GPU and TensorRT failed "
            f"({failed_path.read_text().strip()}); not retried: delete {failed_path} to try again"
        )
    if precision == "fp16" and not has_fast_fp16(device_index):  # platform_has_fast_fp16 is deprecated: ask CUDA
        raise BackendError(f"{gpu} has no fast fp16; use --precision fp32")
    bad = uint8_ops(onnx.load(str(onnx_path)))
    if bad:  # TensorRT's parser would refuse them; say so before minutes of work
        raise ArtifactError(f"{onnx_path} has uint8 ops TensorRT cannot parse ({', '.join(bad[:4])}); re-export it")
    out_dir.mkdir(parents=True, exist_ok=True)
    log.warning(
        "tensorrt: building a %s engine for %s on %s; this can take minutes (once: it is cached)",
        precision,
        onnx_path.name,
        gpu,
    )
    start = time.perf_counter()
    timing_path = timing_cache_path(out_dir, gpu, trt.__version__)
    try:
        with torch.cuda.device(device_index):  # TensorRT builds for the current CUDA device
            serialized, timing = _build_serialized(trt, onnx_path, profile, timing_path)
    except Exception as exc:  # remembered, so that auto does not pay for it at every launch
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        _write_atomic(failed_path, reason.encode())
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"TensorRT failed to build an engine from {onnx_path}: {reason}") from None
    _write_atomic(engine_path, serialized)
    _write_atomic(timing_path, timing)
    meta = replace(
        onnx_meta,
        precision=precision,
        extra={
            **onnx_meta.extra,
            "format": "tensorrt",
            "tensorrt_version": trt.__version__,
            "gpu": gpu,
            "profile": str(profile),
            "onnx_sha256": sha256_of(onnx_path),
            "cache_key": key,
            "precision_used": precision,
            "engine_sha256": sha256_of(engine_path),
        },
    )
    _write_atomic(meta_path, meta.to_json().encode())
    log.info(
        "tensorrt: built %s (%s, %s) in %.0f s, %.1f MB",
        engine_path.name,
        precision,
        profile,
        time.perf_counter() - start,
        engine_path.stat().st_size / 1e6,
    )
    return EngineArtifact(engine_path, meta_path, meta)


def _build_serialized(trt, onnx_path: Path, profile: ShapeProfile, timing_path: Path) -> tuple[bytes, bytes]:
    """(engine, timing cache) bytes: ``onnx_path`` parsed into a strongly typed network and built."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # strongly typed: layers run in the graph's own types (fp32 statistics in an fp16 graph); explicit batch
    # is the only mode in TensorRT 10
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(FRAME_INPUT, *[(1, s.height, s.width, 3) for s in (profile.min, profile.opt, profile.max)])
    config.add_optimization_profile(opt_profile)
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"TensorRT failed to build an engine from {onnx_path}; run with -v for its log")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())


def read_engine_metadata(meta_path: Path) -> ArtifactMetadata:
    """The JSON side file of an engine; ArtifactError if missing or damaged."""
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        raise ArtifactError(f"{meta_path} (the engine's metadata) is missing; rebuild the engine with 'main.py export'")
    return ArtifactMetadata.from_json(meta_path.read_text(), str(meta_path))


def check_engine(engine_path: Path, meta: ArtifactMetadata, device_index: int = 0) -> None:
    """ArtifactError unless the engine file is the one built here, for this GPU and TensorRT."""
    trt = require_tensorrt()
    if meta.extra.get("engine_sha256") != sha256_of(engine_path):
        raise ArtifactError(f"{engine_path} is corrupted or was replaced (hash differs); rebuild it")
    if meta.extra.get("tensorrt_version") != trt.__version__ or meta.extra.get("gpu") != gpu_identity(
        index=device_index
    ):
        raise ArtifactError(
            f"{engine_path} was built for {meta.extra.get('gpu')} / TensorRT "
            f"{meta.extra.get('tensorrt_version')}; rebuild it on this machine"
        )
