"""What runs on a worker: build the stylizer once, then stylise and encode chunk after chunk.

``ChunkWorker`` is a plain class; ``cluster.job`` makes it a Ray actor (one per GPU, or a share of
the CPUs), so the model and backend load once per worker, not once per chunk. Each chunk gets a
fresh ``FrameStylizer`` on that backend, so no temporal state leaks from one chunk into the next;
its warm-up frames build the state up again. The style codes come from the driver
(``StylizerSpec.prepare``), so every worker renders with the very same code.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Protocol

import cv2
import numpy as np

from cluster.plan import Chunk
from realtime.errors import SourceError
from realtime.video_writer import VideoFileWriter, VideoOptions

REPORT_EVERY = 0.5  # seconds between progress reports to the driver


class FrameProcessor(Protocol):
    def process(self, frame: np.ndarray) -> np.ndarray: ...


class WorkerSpec(Protocol):
    """How a worker makes its stylizer: a backend once per worker, a stylizer per chunk."""

    def build_backend(self, threads: int) -> Any: ...

    def new_stylizer(self, backend: Any) -> FrameProcessor: ...


@dataclass(frozen=True)
class StylizerSpec:
    """Everything a worker needs to build the one-machine run's ``FrameStylizer``, style codes included."""

    model: str
    styles: tuple[Any, ...]         # StyleImage with a thumbnail: workers need its name and digest, not pixels
    codes: dict[tuple[str, int], Any]  # (style digest, style size) → StyleCode, encoded on the driver
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "auto"
    params: Any = None              # realtime.stylizer.StylizerParams, the temporal mode included
    checkpoint: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    style_size: int = 512

    @classmethod
    def prepare(cls, model: str, styles: list[str], backend: str = "torch", device: str = "cpu",
                precision: str = "auto", params: Any = None, checkpoint: str | None = None,
                files: dict[str, Path] | None = None, style_size: int = 512) -> "StylizerSpec":
        """Check the inputs, load the style images and encode them once, here on the driver (CPU)."""
        from models.errors import InputError
        from models.registry import create_model, default_store, model_config
        from models.styles import StyleCodeCache, StyleImage, find_style

        if not model_config(model).feed_forward:
            raise InputError(f"model {model} is not feed-forward and cannot run on video; use microast, adain or aesfa")
        store = default_store()
        images = tuple(StyleImage.load(find_style(s, store)) for s in styles)
        net = create_model(model, checkpoint=checkpoint, store=store, files=files, device="cpu").eval()  # as load_backend
        cache = StyleCodeCache()
        codes = {(im.digest, style_size): cache.get(net, im, style_size).to("cpu") for im in images}
        # The codes are all a worker renders with; a 2 MB painting per actor would only slow its start
        # (and Ray keeps arguments over 100 kB in its object store, which actor restarts then depend on).
        thumbs = tuple(replace(im, bgr=cv2.resize(im.bgr, (32, 32), interpolation=cv2.INTER_AREA)) for im in images)
        return cls(model, thumbs, codes, backend, device, precision, params, checkpoint, dict(files or {}),
                   style_size)

    def fingerprint(self) -> str:
        """What the rendering depends on (for resuming): not the pixels, their digests."""
        return repr((self.model, [s.digest for s in self.styles], self.backend, self.device, self.precision,
                     self.params, self.checkpoint, sorted((k, str(v)) for k, v in self.files.items()),
                     self.style_size))

    def build_backend(self, threads: int) -> Any:
        import torch

        from realtime.stylizer import load_backend

        torch.set_num_threads(max(1, threads))  # workers share a machine: no more threads than CPUs given
        return load_backend(self.model, self.backend, self.device, self.precision, self.checkpoint,
                            self.files or None)

    def new_stylizer(self, backend: Any) -> FrameProcessor:
        from realtime.stylizer import FrameStylizer

        return FrameStylizer(backend, list(self.styles), self.params, cache=_shipped_cache(self.codes),
                             style_size=self.style_size)


def _shipped_cache(codes: dict[tuple[str, int], Any]):
    """A style-code cache that answers with the driver's codes (moved to the model's device)."""
    from models.styles import StyleCodeCache

    class ShippedCodes(StyleCodeCache):
        def __bool__(self) -> bool:  # empty as an LRU, but FrameStylizer must not swap it for a new one
            return True

        def get(self, model, style, style_size=512):
            code = codes.get((style.digest, style_size))
            if code is None:  # a style added later: encode it here
                return super().get(model, style, style_size)
            return code.to(model.device)

    return ShippedCodes()


@dataclass(frozen=True)
class EncodeSpec:
    """The encoder settings every chunk is written with: the one-machine run's, codec resolved once."""

    rate: Fraction
    options: VideoOptions
    suffix: str = ".mp4"  # chunk container: MP4 keeps 1/90000 timestamps exactly


@dataclass(frozen=True)
class ChunkResult:
    """One finished chunk: the encoded file's bytes and what the worker saw."""

    chunk: int
    data: bytes
    frames: int
    warmup: int
    decoded: int
    seconds: float
    worker: int
    host: str
    pid: int
    restarted: bool


class ChunkWorker:
    """A worker: one backend for its life, one chunk at a time (a Ray actor in ``cluster.job``)."""

    def __init__(self, spec: WorkerSpec, worker: int, threads: int = 1) -> None:
        import av  # noqa: F401  (loaded while the worker starts, not inside its first chunk's time)

        self.spec = spec
        self.worker = worker
        self.backend = spec.build_backend(threads)
        self.restarted = _was_restarted()

    def pid(self) -> int:
        return os.getpid()

    def run(self, chunk: Chunk, source: str | bytes, encode: EncodeSpec, board: Any = None) -> ChunkResult:
        """Stylise and encode ``chunk`` of ``source`` (a path, or the file's bytes); returns the chunk file."""
        started = time.perf_counter()
        stylizer = self.spec.new_stylizer(self.backend)
        with tempfile.TemporaryDirectory(prefix="stylizer-chunk-") as tmp:
            path = Path(tmp) / f"{chunk.name}{encode.suffix}"
            writer = VideoFileWriter(path, encode.rate, replace(encode.options, audio=False))
            warm = written = decoded = 0
            last_report = time.perf_counter()
            try:
                for pts, t, image, n in decode_chunk(source, chunk):
                    decoded = n
                    out = stylizer.process(image)  # warm-up frames too: they build the temporal state
                    if pts < chunk.start_pts:
                        warm += 1
                        continue
                    writer.write(out, t)
                    written += 1
                    if board is not None and time.perf_counter() - last_report > REPORT_EVERY:
                        board.report.remote(chunk.index, written)
                        last_report = time.perf_counter()
            finally:
                writer.close(complete=True)
            if (warm, written) != (chunk.warmup, chunk.frames):
                raise SourceError(f"chunk {chunk.index}: decoded {warm} warm-up and {written} frames, the plan says "
                                  f"{chunk.warmup} and {chunk.frames}; the input's index does not match its frames")
            data = path.read_bytes()
        if board is not None:
            board.report.remote(chunk.index, written)
        return ChunkResult(chunk.index, data, written, warm, decoded, time.perf_counter() - started, self.worker,
                           socket.gethostname(), os.getpid(), self.restarted)


def decode_chunk(source: str | bytes, chunk: Chunk) -> Iterator[tuple[int, float, np.ndarray, int]]:
    """(pts, seconds, upright BGR image, frames decoded so far) of the chunk's warm-up and own frames."""
    import av

    opened = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    with opened as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if chunk.start - chunk.warmup > 0:
            # Backward: the keyframe at or before; frames before the first warm-up frame are dropped below.
            container.seek(chunk.seek_pts, stream=stream, backward=True)
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts is None or frame.pts < chunk.first_pts:
                    continue
                if frame.pts > chunk.last_pts:
                    break
                if decoded == 1 and frame.pts > chunk.first_pts:
                    raise SourceError(f"chunk {chunk.index}: seeking landed after its first frame; "
                                      "the input's keyframe index is wrong (remux it: ffmpeg -i IN -c copy OUT)")
                image = frame.to_ndarray(format="bgr24")
                turns = round(frame.rotation / 90) % 4  # as realtime.sources.VideoFileSource: shown upright
                if turns:
                    image = np.ascontiguousarray(np.rot90(image, turns))
                yield frame.pts, float(frame.time), image, decoded
        except av.FFmpegError as exc:
            raise SourceError(f"chunk {chunk.index}: cannot decode the input: {exc}") from exc


def _was_restarted() -> bool:
    import sys

    ray = sys.modules.get("ray")  # never start Ray here: outside an actor there is nothing to ask
    if ray is None or not ray.is_initialized():
        return False
    try:
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # not inside an actor
        return False
