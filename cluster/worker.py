"""What runs on a worker: build the stylizer once, then stylise and encode chunk after chunk.

A chunk goes through the engine as the one-process run does: decoded by ``VideoFileSource``
(from the keyframe before it, frames fitted to the file's first size), stylised by
``FrameStylizer``, encoded by ``VideoFileWriter`` at the times of the plan's index (the same
best-effort times ``VideoFileSource`` gives one process).

``ChunkWorker`` is a plain class; ``cluster.job`` makes it a Ray actor (one per GPU, or a share of
the CPUs), so the model and backend load once per worker, not once per chunk. Each chunk gets a
fresh ``FrameStylizer`` on that backend, so no temporal state leaks from one chunk into the next;
its warm-up frames build the state up again. The style codes come from the driver
(``StylizerSpec.prepare``), so every worker renders with the very same code.
"""

from __future__ import annotations

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

from cluster.plan import Chunk, VideoIndex
from realtime.errors import SourceError
from realtime.sources import VideoFileSource
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
    styles: tuple[Any, ...]  # StyleImage with a thumbnail: workers need its name and digest, not pixels
    codes: dict[tuple[str, int], Any]  # (style digest, style size) → StyleCode, encoded on the driver
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "auto"
    params: Any = None  # realtime.stylizer.StylizerParams, the temporal mode included
    checkpoint: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    style_size: int = 512

    @classmethod
    def prepare(
        cls,
        model: str,
        styles: list[str],
        backend: str = "torch",
        device: str = "cpu",
        precision: str = "auto",
        params: Any = None,
        checkpoint: str | None = None,
        files: dict[str, Path] | None = None,
        style_size: int = 512,
    ) -> "StylizerSpec":
        """Check the inputs, load the style images and encode them once, here on the driver (CPU)."""
        from models.registry import create_model, default_store, require_feed_forward
        from models.styles import StyleCodeCache, StyleImage, find_style

        require_feed_forward(model, "the cluster runs one on every frame")
        store = default_store()
        images = tuple(StyleImage.load(find_style(s, store)) for s in styles)
        net = create_model(
            model, checkpoint=checkpoint, store=store, files=files, device="cpu"
        ).eval()  # as load_backend
        cache = StyleCodeCache()
        codes = {(im.digest, style_size): cache.get(net, im, style_size).to("cpu") for im in images}
        # The codes are all a worker renders with; a 2 MB painting per actor would only slow its start
        # (and Ray keeps arguments over 100 kB in its object store, which actor restarts then depend on).
        thumbs = tuple(replace(im, bgr=cv2.resize(im.bgr, (32, 32), interpolation=cv2.INTER_AREA)) for im in images)
        return cls(model, thumbs, codes, backend, device, precision, params, checkpoint, dict(files or {}), style_size)

    def fingerprint(self) -> str:
        """What the rendering depends on (for resuming): not the pixels, their digests."""
        return repr(
            (
                self.model,
                [s.digest for s in self.styles],
                self.backend,
                self.device,
                self.precision,
                self.params,
                self.checkpoint,
                sorted((k, str(v)) for k, v in self.files.items()),
                self.style_size,
            )
        )

    def build_backend(self, threads: int) -> Any:
        import torch

        from realtime.stylizer import load_backend

        torch.set_num_threads(max(1, threads))  # workers share a machine: no more threads than CPUs given
        return load_backend(self.model, self.backend, self.device, self.precision, self.checkpoint, self.files or None)

    def new_stylizer(self, backend: Any) -> FrameProcessor:
        from realtime.stylizer import FrameStylizer

        return FrameStylizer(
            backend, list(self.styles), self.params, cache=_shipped_cache(self.codes), style_size=self.style_size
        )


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
class ChunkFrames:
    """The index's word on a chunk: the pts of its frames from its keyframe on, the times of its own, the size."""

    pts: tuple[int | None, ...]  # frames ``chunk.key`` .. ``chunk.stop - 1``, as the decoder names them
    times: tuple[float, ...]  # frames ``chunk.start`` .. ``chunk.stop - 1``: where the writer puts them
    size: tuple[int, int]  # the file's first frame size: frames of another size are fitted to it
    last: bool = False  # the chunk ends the index: the input must end there too

    @classmethod
    def of(cls, index: VideoIndex, chunk: Chunk) -> "ChunkFrames":
        return cls(
            tuple(index.pts[chunk.key : chunk.stop]),
            tuple(index.times[chunk.start : chunk.stop]),
            index.size,
            chunk.stop == index.frames,
        )


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

    def run(
        self, chunk: Chunk, source: str | bytes, encode: EncodeSpec, frames: ChunkFrames, board: Any = None
    ) -> ChunkResult:
        """Stylise and encode ``chunk`` of ``source`` (a path, or the file's bytes); returns the chunk file."""
        started = time.perf_counter()
        stylizer = self.spec.new_stylizer(self.backend)
        with tempfile.TemporaryDirectory(prefix="stylizer-chunk-") as tmp:
            if isinstance(source, bytes):  # a remote cluster: the input came through Ray's object store
                (Path(tmp) / "input").write_bytes(source)
                source = str(Path(tmp) / "input")
            path = Path(tmp) / f"{chunk.name}{encode.suffix}"
            writer = VideoFileWriter(path, encode.rate, replace(encode.options, audio=False))
            warm = written = decoded = 0
            last_report = time.perf_counter()
            try:
                for n, image, decoded in decode_chunk(source, chunk, frames):
                    out = stylizer.process(image)  # warm-up frames too: they build the temporal state
                    if n < chunk.start:
                        warm += 1
                        continue
                    writer.write(out, frames.times[n - chunk.start])
                    written += 1
                    if board is not None and time.perf_counter() - last_report > REPORT_EVERY:
                        board.report.remote(chunk.index, written)
                        last_report = time.perf_counter()
            finally:
                writer.close(complete=True)
            if (warm, written) != (chunk.warmup, chunk.frames):
                raise SourceError(
                    f"chunk {chunk.index}: decoded {warm} warm-up and {written} frames, the plan says "
                    f"{chunk.warmup} and {chunk.frames}; the input's index does not match its frames"
                )
            data = path.read_bytes()
        if board is not None:
            board.report.remote(chunk.index, written)
        return ChunkResult(
            chunk.index,
            data,
            written,
            warm,
            decoded,
            time.perf_counter() - started,
            self.worker,
            socket.gethostname(),
            os.getpid(),
            self.restarted,
        )


def decode_chunk(source: str | Path, chunk: Chunk, frames: ChunkFrames) -> Iterator[tuple[int, np.ndarray, int]]:
    """(frame number, upright BGR image, frames decoded so far) of the chunk's warm-up and own frames.

    Decoded by ``VideoFileSource`` from the keyframe the plan names. Frames are counted from there
    and each one's pts is checked against the index. Where the seek lands elsewhere (MPEG-TS seeks
    by byte and can land a GOP late; an open GOP starts with frames the index does not have there)
    the chunk is decoded from the file's start instead: slower, the same frames.
    """
    first = chunk.start - chunk.warmup
    seek = chunk.seek_pts if chunk.key > 0 else None
    source_ = VideoFileSource(source, seek_pts=seek, size=frames.size)
    try:
        position = chunk.key if seek is not None else 0
        frame = source_.read()
        if seek is not None and (frame is None or frame.pts != frames.pts[0]):
            source_.close()
            source_ = VideoFileSource(source, size=frames.size)
            position, frame = 0, source_.read()
        decoded = 0
        while frame is not None and position < chunk.stop:
            decoded += 1
            if position >= chunk.key and frame.pts != frames.pts[position - chunk.key]:
                raise SourceError(
                    f"chunk {chunk.index}: frame {position} was decoded with pts {frame.pts}, the index "
                    f"says {frames.pts[position - chunk.key]}; the input decodes differently each time"
                )
            if position >= first:
                yield position, frame.image, decoded
            position += 1
            frame = source_.read()
        if position < chunk.stop:
            raise SourceError(
                f"chunk {chunk.index}: the input ended at frame {position}, the plan says it has {chunk.stop}"
            )
        if frames.last and frame is not None:  # an index short of frames would drop the film's end silently
            raise SourceError(
                f"chunk {chunk.index}: the input has frames after frame {chunk.stop - 1} (pts "
                f"{frame.pts}), where the index ends; the input decodes differently each time"
            )
    finally:
        source_.close()


def _was_restarted() -> bool:
    import sys

    ray = sys.modules.get("ray")  # never start Ray here: outside an actor there is nothing to ask
    if ray is None or not ray.is_initialized():
        return False
    try:
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # not inside an actor
        return False
