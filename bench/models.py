"""``main.py bench models``: per model, backend and frame size, ms/frame (median, p95), fps and peak memory.

Each run: build the backends through ``create_backend`` (as the app does; ``onnxruntime:plain``
and ``onnxruntime:tuned`` run those graphs as exported, without the blocked-layout rewrite, to show
each step against the plain graph), warm
each up and measure its memory, then time them *interleaved* — one frame each, round-robin — so
load drift on a shared machine hits every variant alike. Models without real weights here are
built with random-init weights and labelled so: timing does not depend on weight values.
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.sizes import FrameSize
from core.errors import InputError, StylizerError
from models.errors import WeightsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    """What to measure."""

    models: tuple[str, ...] = ("microast",)
    backends: tuple[str, ...] = ("torch", "onnxruntime:plain", "onnxruntime:tuned", "onnxruntime")
    sizes: tuple[FrameSize, ...] = (FrameSize(320, 240), FrameSize(640, 480), FrameSize(1280, 720))
    precision: str = "auto"
    device: str = "auto"
    warmup: int = 2
    iters: int = 10
    cache_dir: Path | None = None


@dataclass
class BenchResult:
    """One (model, backend, size) measurement; ``error`` is set instead when it could not run."""

    model: str
    weights: str  # "official" or "random-init"
    backend: str  # BackendInfo as text: name, device, precision, provider
    size: str
    median_ms: float = float("nan")
    p95_ms: float = float("nan")
    fps: float = float("nan")
    peak_mem_mb: float | None = None
    memory_kind: str = ""  # "RSS delta" (CPU) or "cuda max allocated"
    iters: int = 0
    error: str = ""


def current_rss_mb() -> float:
    """Resident set size now (Linux /proc), else the peak so far from getrusage."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: "5" resets the high-water mark
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """VmHWM of this process (since start or the last reset), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def load_bench_model(name: str):
    """(model, weights label): the real checkpoint when found, else random-init weights (logged)."""
    import importlib

    from models.registry import create_model, default_store, model_config

    store = default_store()
    store.allow_download = False
    try:
        return create_model(name, store=store).eval(), "official"
    except WeightsError as exc:
        config = model_config(name)
        module, cls = config.constructor.split(":")
        log.warning("bench: %s weights not found (%s); timing random-init weights", name, str(exc).split(";")[0])
        return getattr(importlib.import_module(module), cls)().eval(), "random-init"


def bench_frame(size: FrameSize) -> np.ndarray:
    """A real photo (or a test pattern) resized to ``size``, uint8 BGR."""
    import cv2

    from export.verify import sample_frames
    from models.registry import default_store

    frame = sample_frames(default_store(), (max(size.width, size.height),))[0]
    return cv2.resize(frame, (size.width, size.height), interpolation=cv2.INTER_AREA)


def parse_backends(text: str) -> tuple[str, ...]:
    """``'torch,onnxruntime:plain,onnxruntime'`` → names; ``:GRAPH`` picks an ONNX graph variant."""
    from export.microast_graph import GRAPH_VARIANTS
    from realtime.backends.factory import BACKENDS

    names = tuple(b.strip() for b in text.split(",") if b.strip())
    bad = [
        b
        for b in names
        if b.partition(":")[0] not in BACKENDS
        or (":" in b and (b.partition(":")[0] != "onnxruntime" or b.partition(":")[2] not in GRAPH_VARIANTS))
    ]
    if bad or not names:
        raise InputError(
            f"unknown backend {', '.join(bad) or '(none)'}; choose from: {', '.join(BACKENDS)}, "
            f"or onnxruntime:GRAPH with GRAPH in {', '.join(GRAPH_VARIANTS)}"
        )
    return names


def warm_up(backend, frame: np.ndarray, code, warmup: int) -> tuple[float | None, str]:
    """Run ``warmup`` frames (at least one); the peak memory they took in MB and what kind of memory that is."""
    import torch

    on_cuda = backend.info.device.startswith("cuda")
    if on_cuda and backend.info.name == "torch":
        torch.cuda.reset_peak_memory_stats()
    base_rss = current_rss_mb()  # before the first frame at this size: its buffers count as the frame's memory
    has_hwm = reset_peak_rss()
    peak_rss = base_rss
    for _ in range(max(1, warmup)):
        backend.run(frame, code, 1.0)
        peak_rss = max(peak_rss, current_rss_mb())
    if on_cuda:
        if backend.info.name == "torch":
            return torch.cuda.max_memory_allocated() / 2**20, "cuda max allocated"
        return None, "n/a (not a torch allocation)"
    hwm = peak_rss_mb() if has_hwm else None
    if hwm is not None:
        return max(0.0, hwm - base_rss), "peak RSS delta"
    return peak_rss - base_rss, "RSS delta (sampled)"


#: untimed pause before each timed frame: torch's OpenMP and ORT's thread pools spin a while after a run,
#: and a pool still spinning would steal cores from the next backend's frame.
SETTLE_S = 0.03


def time_interleaved(backends: list, frame: np.ndarray, code, iters: int) -> list[list[float]]:
    """Per-frame ms for each backend, one frame each in turn (returns host arrays, so GPU work is done)."""
    times: list[list[float]] = [[] for _ in backends]
    for _ in range(iters):
        for i, backend in enumerate(backends):
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            backend.run(frame, code, 1.0)
            times[i].append((time.perf_counter() - start) * 1000.0)
    return times


def build_bench_backend(spec: str, model, config: "BenchConfig"):
    """``create_backend`` for a name, or ONNX Runtime on a named graph variant for ``onnxruntime:GRAPH``."""
    from realtime.backends.factory import create_backend

    name, _, graph = spec.partition(":")
    if not graph:
        return create_backend(name, model, config.device, config.precision, cache_dir=config.cache_dir)
    from realtime.backends.factory import resolve_precision
    from realtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    device = "cuda" if config.device.startswith("cuda") else "cpu"
    # a named graph runs as exported (ORT's own optimisation only): the steps before the blocked-layout rewrite
    return OnnxRuntimeBackend(
        model,
        device,
        resolve_precision(config.precision, device),
        cache_dir=config.cache_dir,
        graph=graph,
        blocked=False,
    )


def run_benchmarks(config: BenchConfig) -> list[BenchResult]:
    """Every (model, backend, size) of ``config``; a backend that cannot start is reported, not fatal."""
    import torch

    from core.images import resize_longest, to_tensor

    results: list[BenchResult] = []
    for name in config.models:
        model, label = load_bench_model(name)
        style = bench_frame(FrameSize(256, 256))
        with torch.inference_mode():
            code = model.encode_style(to_tensor(resize_longest(style, 256)))
        backends = []
        for backend_name in config.backends:
            try:
                backends.append(build_bench_backend(backend_name, model, config))
            except StylizerError as exc:
                log.warning("bench: %s %s unavailable: %s", name, backend_name, exc)
                results.extend(BenchResult(name, label, backend_name, str(s), error=str(exc)) for s in config.sizes)
        # sizes outside, backends inside and interleaved frame by frame: fair under load drift
        for size in config.sizes:
            frame = bench_frame(size)
            ready, memories = [], []
            for backend in backends:
                try:
                    memories.append(warm_up(backend, frame, code, config.warmup))
                    ready.append(backend)
                except (StylizerError, RuntimeError, MemoryError) as exc:  # e.g. out of memory at 1080p
                    results.append(BenchResult(name, label, str(backend.info), str(size), error=str(exc)[:200]))
            for backend, times, (memory, kind) in zip(
                ready, time_interleaved(ready, frame, code, config.iters), memories
            ):
                median = statistics.median(times)
                results.append(
                    BenchResult(
                        name,
                        label,
                        str(backend.info),
                        str(size),
                        round(median, 2),
                        round(float(np.percentile(times, 95)), 2),
                        round(1000.0 / median, 2),
                        None if memory is None else round(memory, 1),
                        kind,
                        len(times),
                    )
                )
                log.info("bench: %s %s %s: %.1f ms median", name, backend.info, size, median)
        for backend in backends:
            backend.close()
    return results


def format_table(results: list[BenchResult]) -> str:
    """A fixed-width table, one row per result, with ORT's speed-up over torch where both ran."""
    header = (
        f"{'model':9s} {'weights':11s} {'backend':62s} {'size':>9s} {'median ms':>10s} {'p95 ms':>9s} "
        f"{'fps':>7s} {'peak MB':>8s}"
    )
    rows = [header, "-" * len(header)]
    for r in results:
        if r.error:
            rows.append(f"{r.model:9s} {r.weights:11s} {r.backend[:62]:62s} {r.size:>9s}  unavailable: {r.error[:80]}")
            continue
        mem = "n/a" if r.peak_mem_mb is None else f"{r.peak_mem_mb:.1f}"
        rows.append(
            f"{r.model:9s} {r.weights:11s} {r.backend[:62]:62s} {r.size:>9s} {r.median_ms:10.1f} "
            f"{r.p95_ms:9.1f} {r.fps:7.2f} {mem:>8s}"
        )
    rows.extend(speedups(results))
    return "\n".join(rows)


def speedups(results: list[BenchResult]) -> list[str]:
    """Ratios measured in the same run: each ONNX Runtime graph against torch eager, the tuned graph against the plain."""
    lines = []
    ok = [r for r in results if not r.error]
    for r in ok:
        if not r.backend.startswith("onnxruntime"):
            continue
        device = r.backend.split()[1]
        graph = r.backend.rsplit(", ", 1)[-1][: -len(" graph")] if r.backend.endswith(" graph") else "graph"
        for t in ok:
            if (t.model, t.size) != (r.model, r.size):
                continue
            if t.backend.startswith(f"torch {device}"):
                lines.append(
                    f"{r.model} {r.size} {device}: onnxruntime ({graph}) {t.median_ms / r.median_ms:.2f}x "
                    f"the speed of torch eager ({r.median_ms:.0f} vs {t.median_ms:.0f} ms)"
                )
            if (
                t.backend.startswith(f"onnxruntime {device}")
                and t.backend.endswith("plain graph")
                and not r.backend.endswith("plain graph")
                and t.backend.split(",")[0] == r.backend.split(",")[0]
            ):
                lines.append(
                    f"{r.model} {r.size} {device}: {graph} takes {r.median_ms / t.median_ms:.2f}x the time "
                    f"of the plain graph ({r.median_ms:.0f} vs {t.median_ms:.0f} ms, "
                    f"{t.median_ms / r.median_ms:.2f}x the speed)"
                )
    return lines


def write_json(results: list[BenchResult], path: Path, config: BenchConfig) -> None:
    """Results plus the machine they were measured on (a PyTorch-only install has no ONNX Runtime version)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        ort_version = version("onnxruntime")
    except PackageNotFoundError:
        try:
            ort_version = version("onnxruntime-gpu")
        except PackageNotFoundError:
            ort_version = None
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    data = {
        "machine": machine,
        "config": {
            **asdict(config),
            "sizes": [str(s) for s in config.sizes],
            "cache_dir": str(config.cache_dir) if config.cache_dir else None,
        },
        "results": [asdict(r) for r in results],
    }
    Path(path).write_text(json.dumps(data, indent=2, default=str))
