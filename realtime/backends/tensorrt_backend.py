"""Native TensorRT backend: a built engine run with ``execute_async_v3`` on torch CUDA buffers.

The engine's profile (export/formats.py ``DEFAULT_PROFILE``) covers every size the app makes up to 4K
in either orientation; a frame outside it goes to ``fallback`` (the next backend ``auto`` would
pick, made on first need, with one warning), or is a BackendError when there is none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from core.sizes import FrameSize
from export.formats import DEFAULT_PROFILE, ShapeProfile
from export.metadata import weights_fingerprint
from export.onnx import ALPHA_INPUT, FRAME_INPUT, OUTPUT
from export.tensorrt import TENSORRT_GRAPH, check_engine, gpu_identity, read_engine_metadata, require_tensorrt
from models.base import StyleCode, StyleModel
from export.errors import ArtifactError, BackendError
from realtime.backends.base import Backend, BackendInfo

log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    """Runs a TensorRT engine of the frame graph (uint8 BGR in and out) on the current CUDA device."""

    def __init__(
        self,
        model: StyleModel,
        precision: str = "fp16",
        artifact: Path | None = None,
        cache_dir: Path | None = None,
        profile: ShapeProfile = DEFAULT_PROFILE,
        device_index: int = 0,
        fallback: Callable[[], Backend] | None = None,
    ) -> None:
        super().__init__(model)
        trt = require_tensorrt()
        gpu_identity(index=device_index)  # BackendError without a GPU (or without this one)
        self.device_index = device_index
        if artifact is None:
            from export.exporter import cached_onnx, onnx_cache_dir
            from export.tensorrt import build_engine
            from models.registry import default_store

            # the plain graph (TensorRT fuses itself) in the engine's precision: its types are kept
            onnx_path = cached_onnx(model, precision, default_store(), cache_dir, graph=TENSORRT_GRAPH)
            artifact = build_engine(
                onnx_path, precision, profile, onnx_cache_dir(cache_dir) / "tensorrt", device_index=device_index
            ).engine_path
        artifact = Path(artifact)
        self.meta = read_engine_metadata(artifact.with_suffix(".json"))
        self.meta.check_matches(model.name, weights_fingerprint(model), str(artifact))
        if self.meta.precision != precision:
            raise ArtifactError(
                f"{artifact} was built for {self.meta.precision}, not {precision}; rebuild or ask for "
                f"{self.meta.precision}"
            )
        check_engine(artifact, self.meta, device_index)
        self.precision, self.artifact = precision, artifact
        self.profile = _parse_profile(self.meta.extra.get("profile", ""))
        self._fallback_factory, self._fallback = fallback, None
        lo, hi = self.profile.min, self.profile.max  # the probe frame must be one the engine takes (a custom profile)
        self.probe_size = (min(max(64, lo.width), hi.width), min(max(64, lo.height), hi.height))
        self.device = torch.device("cuda", device_index)
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):  # TensorRT works on the current CUDA device
            self.runtime = trt.Runtime(self._logger)
            self.engine = self.runtime.deserialize_cuda_engine(artifact.read_bytes())
            if self.engine is None:
                raise ArtifactError(f"TensorRT could not deserialise {artifact}; rebuild it")
            self.context = self.engine.create_execution_context()
            if self.context is None:  # it allocates the activations for the profile's largest frame
                raise BackendError(
                    f"TensorRT could not create an execution context for {artifact.name} "
                    f"(GPU memory for frames up to {self.profile.max}?)"
                )
        self.stream = torch.cuda.Stream(self.device)
        self._code_ref: StyleCode | None = None
        self._code_tensors: dict[str, torch.Tensor] = {}
        self._alpha = torch.zeros((), dtype=torch.float32, device=self.device)
        self._output: torch.Tensor | None = None

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(
            "tensorrt", str(self.device), self.precision, f"TensorRT {self.meta.extra.get('tensorrt_version')}"
        )

    def _code(self, code: StyleCode) -> dict[str, torch.Tensor]:
        if self._code_ref is not code:  # codes are immutable: upload each once
            self._code_tensors = {
                k: v.detach().to(self.device, torch.float32).contiguous() for k, v in code.tensors.items()
            }
            self._code_ref = code
        return self._code_tensors

    def run(self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0) -> np.ndarray:
        h, w = frame.shape[:2]
        if not self.profile.contains(FrameSize(w, h)):
            return self._outside_profile(frame, code, alpha)
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            x = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device, non_blocking=True)[None]
            self._alpha.fill_(float(alpha))
            inputs = {FRAME_INPUT: x, ALPHA_INPUT: self._alpha, **self._code(code)}
            for name, tensor in inputs.items():
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            shape = tuple(self.context.get_tensor_shape(OUTPUT))
            if self._output is None or tuple(self._output.shape) != shape:
                self._output = torch.empty(shape, dtype=torch.uint8, device=self.device)
            self.context.set_tensor_address(OUTPUT, self._output.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("TensorRT failed to run the engine; run with -v for its log")
            out = self._output[0].to("cpu", non_blocking=False)
        self.stream.synchronize()
        return out.numpy()

    def _outside_profile(self, frame: np.ndarray, code: StyleCode, alpha: float) -> np.ndarray:
        """A frame the engine cannot take: the fallback backend runs it (one warning), else a BackendError."""
        h, w = frame.shape[:2]
        if self._fallback_factory is None:
            raise BackendError(
                f"frame {w}x{h} is outside the engine's profile ({self.profile}); "
                "rebuild it with 'main.py export --format tensorrt --min/--max'"
            )
        if self._fallback is None:
            self._fallback = self._fallback_factory()
            log.warning(
                "tensorrt: frame %dx%d is outside the engine's profile (%s); such frames run on %s",
                w,
                h,
                self.profile,
                self._fallback.info,
            )
        return self._fallback.run(frame, code, alpha)

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()
            self._fallback = None
        self.context = None
        self.engine = None
        self._code_tensors = {}
        self._output = None


def _parse_profile(text: str) -> ShapeProfile:
    """The profile string stored by build_engine ('min 320x240, opt ..., max ...')."""
    from core.sizes import parse_size

    try:
        parts = dict(p.strip().split(" ") for p in text.split(","))
        return ShapeProfile(parse_size(parts["min"]), parse_size(parts["opt"]), parse_size(parts["max"]))
    except (KeyError, ValueError):
        raise ArtifactError(f"engine metadata has no valid profile ({text!r}); rebuild the engine") from None
