"""ONNX Runtime backend: the exported frame graph in one ``session.run`` per frame.

Execution providers: CPU, CUDA (with IO binding so the code tensors stay on the GPU) and
TensorRT (ORT's own engine builder, with its engine cache). Given a model instead of an artifact,
the graph is exported once into the user cache and reused: on the CPU the tuned formulation
(export/microast_graph.py for MicroAST), for ORT's TensorRT provider the network as written. On the
CPU an fp32 graph then runs rewritten for ORT's blocked layout on this machine (export/ort_layout.py,
cached beside it; ``blocked=False`` runs it as exported), or as exported with a warning saying why not.

CPU session settings were chosen by measurement (640×480 MicroAST, 2 cores, 2026-12-01): all cores
of the affinity mask, spinning on (the graph alone was 20 % slower without it; end to end, ``video``
on a 640×480 clip with decoding and encoding beside it, 10.3 fps either way), memory arena and memory
pattern on (without them 35 % / 25 % slower); one thread was 1.7× slower. Inputs are passed as numpy
views (ORT reads them in place); outputs are fresh arrays, since callers keep earlier frames.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from export.onnx import ALPHA_INPUT, FRAME_INPUT, load_checked
from models.base import StyleCode, StyleModel
from export.errors import ArtifactError, BackendError
from realtime.backends.base import Backend, BackendInfo

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers on this machine ([] when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def cpu_threads() -> int:
    """Cores this process may use: ORT's default counts every core of the machine, not the affinity mask."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxRuntimeBackend(Backend):
    """Runs an exported (or auto-exported) frame graph with ONNX Runtime."""

    def __init__(
        self,
        model: StyleModel,
        provider: str = "cpu",
        precision: str = "fp32",
        artifact: Path | None = None,
        cache_dir: Path | None = None,
        device_id: int = 0,
        graph: str | None = None,
        threads: int | None = None,
        spinning: bool = True,
        blocked: bool = True,
    ) -> None:
        super().__init__(model)
        try:
            import onnxruntime as ort
        except ImportError:
            from realtime.backends.ort_packages import ort_package_problem

            raise BackendError(ort_package_problem() or "onnxruntime cannot be imported") from None
        if provider not in PROVIDERS:
            raise BackendError(f"unknown ONNX Runtime provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")
        if PROVIDERS[provider] not in ort.get_available_providers():
            raise BackendError(
                f"ONNX Runtime here has no {PROVIDERS[provider]} (has {', '.join(ort.get_available_providers())});"
                " install onnxruntime-gpu with CUDA, or use the cpu provider"
            )
        if precision == "fp16" and provider == "cpu":
            log.warning("onnxruntime: fp16 on the CPU provider runs, but usually slower than fp32")
        # ORT's TensorRT provider gets the graph of the asked precision, kept as typed (no trt_fp16_enable): the
        # fp16 graph holds its statistics in fp32, which TensorRT's own fp16 choice would not
        graph_precision = precision
        if artifact is None:
            from export.exporter import cached_onnx
            from models.registry import default_store

            if provider == "tensorrt":
                from export.tensorrt import TENSORRT_GRAPH

                graph = TENSORRT_GRAPH  # TensorRT fuses and picks kernels itself
            artifact = cached_onnx(model, graph_precision, default_store(), cache_dir, graph=graph)
        self.meta = load_checked(Path(artifact), model)
        if self.meta.precision != graph_precision:
            raise ArtifactError(
                f"{artifact} is {self.meta.precision}, but {graph_precision} was asked for; "
                f"export a {graph_precision} artifact or ask for {self.meta.precision}"
            )
        self.provider, self.precision, self.artifact = provider, precision, Path(artifact)
        self.device_id = device_id
        self.graph = self.meta.extra.get("graph", "plain")
        self.layout = ""  # "nchwc16" etc. when running the graph rewritten for ORT's blocked layout
        session_path, level = self.artifact, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if provider == "cpu" and graph_precision == "fp32" and blocked:
            session_path, self.layout = self._blocked_graph(cache_dir)
            if self.layout:  # already optimised for this CPU; a second pass only undoes views
                level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if provider == "cpu":
            options.intra_op_num_threads = threads or cpu_threads()
            options.inter_op_num_threads = 1
            options.enable_cpu_mem_arena = True
            options.enable_mem_pattern = True
        # On a GPU the CPU threads only wait for the device: spinning there takes cores from decoding and flow.
        allow_spinning = spinning and provider == "cpu"
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if allow_spinning else "0")
        providers: list = [PROVIDERS["cpu"]]
        if provider == "cuda":
            providers.insert(0, (PROVIDERS["cuda"], {"device_id": device_id, "cudnn_conv_algo_search": "EXHAUSTIVE"}))
        elif provider == "tensorrt":
            trt_cache = self.artifact.parent / "ort_trt_cache"
            providers[0:0] = [
                (
                    PROVIDERS["tensorrt"],
                    {
                        "device_id": device_id,
                        "trt_fp16_enable": False,
                        "trt_engine_cache_enable": True,
                        "trt_timing_cache_enable": True,
                        "trt_engine_cache_path": str(trt_cache),
                    },
                ),
                (PROVIDERS["cuda"], {"device_id": device_id}),
            ]
        try:
            self.session = ort.InferenceSession(str(session_path), options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/RuntimeException types
            raise ArtifactError(f"ONNX Runtime cannot load {session_path}: {str(exc).splitlines()[0]}") from None
        used = self.session.get_providers()[0]
        if used != PROVIDERS[provider]:  # ORT falls back to CPU quietly when a GPU provider fails to start
            raise BackendError(
                f"ONNX Runtime could not start {PROVIDERS[provider]} (got {used}); check the CUDA/TensorRT installation"
            )
        self.code_names = list(self.meta.code_tensors)
        self._code_ref: StyleCode | None = None
        self._code_feeds: dict[str, object] = {}
        self._binding = self.session.io_binding() if provider != "cpu" else None
        self._feeds: dict[str, object] = {}

    def _blocked_graph(self, cache_dir: Path | None) -> tuple[Path, str]:
        """(path, layout) of the artifact rewritten for ORT's blocked layout on this CPU (export/ort_layout.py);
        the artifact and "" where that cannot be made."""
        from export.exporter import onnx_cache_dir
        from export.ort_layout import cached_blocked_graph

        try:
            return cached_blocked_graph(self.artifact, onnx_cache_dir(cache_dir) / "cpu-layout")
        except Exception as exc:  # an optimisation, never a reason to stop: say why and run the artifact
            log.warning(
                "onnxruntime: running %s as exported (slower): no blocked-layout graph here: %s: %s",
                self.artifact.name,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            return self.artifact, ""

    @property
    def info(self) -> BackendInfo:
        device = "cpu" if self.provider == "cpu" else f"cuda:{self.device_id}"
        graph = f"{self.graph}+{self.layout}" if self.layout else self.graph
        return BackendInfo("onnxruntime", device, self.precision, f"{self.session.get_providers()[0]}, {graph} graph")

    def _code(self, code: StyleCode) -> dict[str, object]:
        """The code as numpy arrays (CPU) or OrtValues on the GPU, converted once per code object."""
        if self._code_ref is not code:
            if list(code.tensors) != self.code_names:
                raise ArtifactError(f"{self.artifact} takes code tensors {self.code_names}, got {list(code.tensors)}")
            arrays = {k: np.ascontiguousarray(v.detach().to("cpu").float().numpy()) for k, v in code.tensors.items()}
            if self._binding is not None:
                import onnxruntime as ort

                arrays = {k: ort.OrtValue.ortvalue_from_numpy(a, "cuda", self.device_id) for k, a in arrays.items()}
            self._code_feeds, self._code_ref = arrays, code
        return self._code_feeds

    def run(self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0) -> np.ndarray:
        ref = self._code_ref
        feeds = self._code(code)
        batch = np.ascontiguousarray(frame)[None]  # a view: ORT reads contiguous numpy input in place
        alpha_array = np.array(alpha, dtype=np.float32)
        if self._binding is None:
            if ref is not code or not self._feeds:  # one feed dict per code, not one per frame
                self._feeds = dict(feeds)
            self._feeds[FRAME_INPUT], self._feeds[ALPHA_INPUT] = batch, alpha_array
            # a fresh output array per frame: callers keep earlier frames (display queues, temporal blending)
            return self.session.run(None, self._feeds)[0][0]
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input(FRAME_INPUT, batch)  # uploaded once; the graph converts on the GPU
        binding.bind_cpu_input(ALPHA_INPUT, alpha_array)
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.session.get_outputs()[0].name, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0][0]

    def close(self) -> None:
        self._code_feeds = {}
        self._feeds = {}
        self._binding = None
        self.session = None
