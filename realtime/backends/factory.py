"""``create_backend``: one entry point for the pipeline, the CLI and the GUI, with ``auto`` selection.

``auto`` tries the candidates fastest first — TensorRT, ONNX Runtime CUDA, PyTorch CUDA,
ONNX Runtime CPU, PyTorch CPU — and logs which one it picked and why each faster one was
skipped. A candidate is picked only once it has stylised one small frame (a GPU that this
build has no kernels for, a cuDNN that fails to load, an out-of-memory: all show on the first
run, not at construction); any exception falls through to the next one, with its reason.
A named backend that cannot run is a one-line error, never a quiet substitute.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from models.base import StyleModel
from core.errors import InputError, StylizerError
from export.errors import BackendError
from realtime.backends.base import Backend
from realtime.backends.ort_packages import nvidia_gpu_present, ort_package_problem

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16")


@dataclass(frozen=True)
class Candidate:
    """One (backend, device) pair ``auto`` may try."""

    backend: str
    device: str  # "cpu" or "cuda"

    def __str__(self) -> str:
        return f"{self.backend} {self.device.upper() if self.device == 'cpu' else 'CUDA'}"


AUTO_ORDER = (
    Candidate("tensorrt", "cuda"),
    Candidate("onnxruntime", "cuda"),
    Candidate("torch", "cuda"),
    Candidate("onnxruntime", "cpu"),
    Candidate("torch", "cpu"),
)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_unavailable_reason() -> str:
    """Why CUDA cannot be used: no GPU at all, or a GPU that is there but unusable (and why)."""
    import torch

    present = nvidia_gpu_present()
    if present is None:
        return "no CUDA GPU visible"
    if torch.version.cuda is None:
        return (
            f"an NVIDIA GPU is present ({present}) but this PyTorch build has no CUDA (torch {torch.__version__}); "
            "install a CUDA build of torch"
        )
    return (
        f"an NVIDIA GPU is present ({present}) but PyTorch cannot use it (torch.cuda.is_available() is False with "
        f"CUDA {torch.version.cuda}: driver too old, or CUDA_VISIBLE_DEVICES hides it)"
    )


def resolve_device(device: str) -> str:
    """A torch device for code that runs PyTorch directly (stills): ``auto`` is cuda when usable, else cpu, logged."""
    if device != "auto":
        return device
    if cuda_available():
        log.info("device auto: picked cuda (a CUDA GPU is visible to PyTorch)")
        return "cuda"
    reason = cuda_unavailable_reason()
    log.log(logging.WARNING if "GPU is present" in reason else logging.INFO, "device auto: picked cpu (%s)", reason)
    return "cpu"


@dataclass(frozen=True)
class BuildOptions:
    """What every backend's constructor may take beyond the model, device and precision."""

    artifact: Path | None = None
    cache_dir: Path | None = None
    index: int = 0  # the N of cuda:N
    live: bool = False
    fallback: Callable[[], Backend] | None = None  # TensorRT: frames outside the engine's profile go here


def _cuda_reason(device: str) -> str | None:
    """Why PyTorch's CUDA cannot serve ``device`` (None: it can, or the device is the CPU)."""
    return cuda_unavailable_reason() if device == "cuda" and not cuda_available() else None


def _onnxruntime_reason(device: str) -> str | None:
    # ONNX Runtime drives CUDA itself: a CPU-only torch beside onnxruntime-gpu must not hide it
    if device == "cuda" and nvidia_gpu_present() is None:
        return "no CUDA GPU visible"
    from realtime.backends.onnxruntime_backend import PROVIDERS, available_providers

    provider = PROVIDERS["cuda" if device == "cuda" else "cpu"]
    if provider not in available_providers():
        problem = ort_package_problem(gpu=device == "cuda")
        return f"onnxruntime has no {provider}" + (f" ({problem})" if problem else "")
    return None


def _tensorrt_reason(device: str) -> str | None:
    reason = _cuda_reason(device)
    if reason is None and importlib.util.find_spec("tensorrt") is None:
        return "TensorRT (python package tensorrt) not installed"
    return reason


def _build_torch(model: StyleModel, device: str, precision: str, options: BuildOptions) -> Backend:
    from realtime.backends.torch_backend import TorchBackend

    return TorchBackend(model, f"cuda:{options.index}" if device == "cuda" else "cpu", precision)


def _build_onnxruntime(model: StyleModel, device: str, precision: str, options: BuildOptions) -> Backend:
    from realtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    # Live sessions share the cores with capture and flow propagation: threads that spin between ops
    # would take them (ntu-size live at 360 px: 10-11 -> 14 keyframes/s without spinning, every frame shown).
    return OnnxRuntimeBackend(
        model,
        device,
        precision,
        artifact=options.artifact,
        cache_dir=options.cache_dir,
        device_id=options.index,
        spinning=not options.live,
    )


def _build_tensorrt(model: StyleModel, device: str, precision: str, options: BuildOptions) -> Backend:
    from realtime.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(
        model,
        precision,
        artifact=options.artifact,
        cache_dir=options.cache_dir,
        device_index=options.index,
        fallback=options.fallback,
    )


@dataclass(frozen=True)
class BackendKind:
    """One row of the backend table: why it cannot run on a device here (cheap checks only; None: it may), and
    how to make one. Each builder imports its backend's module (one backend per file) when called."""

    name: str
    unavailable: Callable[[str], str | None]
    build: Callable[[StyleModel, str, str, BuildOptions], Backend]


KINDS: dict[str, BackendKind] = {
    k.name: k
    for k in (
        BackendKind("torch", _cuda_reason, _build_torch),
        BackendKind("onnxruntime", _onnxruntime_reason, _build_onnxruntime),
        BackendKind("tensorrt", _tensorrt_reason, _build_tensorrt),
    )
}
BACKENDS = ("auto", *KINDS)


def unavailable_reason(candidate: Candidate) -> str | None:
    """Why ``candidate`` cannot run here (cheap checks only), or None when it may."""
    return KINDS[candidate.backend].unavailable(candidate.device)


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` means fp16 on a GPU and fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "fp16" if device == "cuda" else "fp32"
    return precision


def probe(backend: Backend) -> None:
    """Stylise one small frame (``backend.probe_size``, 64×64: big enough for every model's strides);
    BackendError when the result is not a stylised frame of the same size."""
    import numpy as np
    import torch

    from export.verify import test_pattern
    from core.images import to_tensor

    model = backend.model
    w, h = backend.probe_size
    frame = test_pattern(h, w, seed=7)
    with torch.inference_mode():
        code = model.encode_style(to_tensor(test_pattern(64, 64, seed=8), model.device))
    out = backend.run(frame, code, 1.0)
    if not isinstance(out, np.ndarray) or out.shape != frame.shape or out.dtype != np.uint8:
        raise BackendError(
            f"a {w}x{h} test frame came back as {getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        )
    if out.min() == out.max():  # NaNs and overflows come out as one flat colour
        raise BackendError(f"a {w}x{h} test frame came back blank ({int(out.min())} everywhere)")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _start(candidate: Candidate, model: StyleModel, precision: str, options: BuildOptions) -> Backend:
    """``candidate`` built and probed with one frame; closed again when the probe fails."""
    backend = KINDS[candidate.backend].build(
        model, candidate.device, resolve_precision(precision, candidate.device), options
    )
    try:
        probe(backend)
    except BaseException:
        backend.close()
        raise
    return backend


def create_backend(
    name: str,
    model: StyleModel,
    device: str = "auto",
    precision: str = "auto",
    artifact: Path | None = None,
    cache_dir: Path | None = None,
    live: bool = False,
) -> Backend:
    """A ready backend. ``name`` in auto|torch|onnxruntime|tensorrt; ``device`` auto|cpu|cuda[:N];
    ``precision`` auto|fp32|fp16; ``live``: tuned to share the CPU (a live session), not for throughput.
    ``backend.selection`` says what was picked and why."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    dev, _, index = device.partition(":")
    if dev not in ("auto", "cpu", "cuda") or (index and not (dev == "cuda" and index.isdigit())):
        raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    candidates = [c for c in AUTO_ORDER if name in ("auto", c.backend) and dev in ("auto", c.device)]
    if not candidates:
        raise InputError(f"backend {name} does not run on {device}; TensorRT needs --device cuda")
    options = BuildOptions(artifact, cache_dir, int(index or 0), live)
    return _first_that_runs(name, candidates, model, precision, options)


def _first_that_runs(
    name: str, candidates: list[Candidate], model: StyleModel, precision: str, options: BuildOptions
) -> Backend:
    named = name != "auto" or len(candidates) == 1
    skipped: list[str] = []
    for i, candidate in enumerate(candidates):
        reason = unavailable_reason(candidate)
        if reason is None:
            fallback = None
            if not named and candidate.backend == "tensorrt" and candidates[i + 1 :]:
                # frames outside the engine's profile go to what auto would have picked next (made on first need)
                rest = candidates[i + 1 :]
                rest_options = replace(options, artifact=None, fallback=None)
                fallback = lambda: _first_that_runs("auto", rest, model, precision, rest_options)  # noqa: E731
            try:
                backend = _start(candidate, model, precision, replace(options, fallback=fallback))
            except StylizerError as exc:
                if named:
                    raise
                reason = f"failed to start: {exc}"
            except Exception as exc:  # noqa: BLE001 - a driver, library or memory failure: the next one may run
                if named:
                    raise BackendError(f"backend {candidate} failed to start: {_one_line(exc)}") from exc
                reason = f"failed to start: {_one_line(exc)}"
            else:
                why = "the fastest available" if not skipped else "skipped " + "; ".join(skipped)
                backend.selection = f"{name}: picked {backend.info} ({why})"
                # an unusable GPU deserves more than an info line: the user may think it is in use
                gpu_unusable = any("GPU is present" in s or "failed to start" in s for s in skipped)
                log.log(logging.WARNING if gpu_unusable else logging.INFO, "backend %s", backend.selection)
                if candidate.backend == "onnxruntime":  # it runs now; a doubled install breaks at the next upgrade
                    problem = ort_package_problem()
                    if problem:
                        log.warning("onnxruntime: %s", problem)
                return backend
            log.warning("backend %s %s; trying the next one", candidate, reason)
        skipped.append(f"{candidate}: {reason}")
    raise BackendError(f"no {name} backend can run here ({'; '.join(skipped)})")
