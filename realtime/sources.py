"""Frame sources: cameras, network streams, video files (PyAV) and image sequences.

Every source is opened by reading its first frame, so a bad camera index, URL or file fails at
once with a ``SourceError`` naming it. ``live`` tells the pipeline which semantics to use: live
sources (camera, stream, a file played as a camera) keep only the newest frame; file sources
never drop one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from core.errors import InputError
from realtime.errors import SourceError
from realtime.timestamps import BestEffortTimes
from core.images import IMAGE_SUFFIXES, MIN_SIDE, read_image, read_image_flattened

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
STREAM_TIMEOUT_S = 10.0  # a stream URL that opens but never answers gives up after this (FFmpeg's own: 30 s)
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".gif")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


@dataclass
class Frame:
    """One decoded frame: uint8 BGR image, its index and presentation time in seconds."""

    image: np.ndarray
    index: int
    timestamp: float
    captured: float = field(default_factory=time.perf_counter)  # wall clock when read: latency base
    media_time: float | None = None  # time within the file when a looping source plays it again
    pass_start: bool = False  # the first frame after the source was reopened
    pts: int | None = None  # a file's frame: the pts the decoder gave (names it; ``timestamp`` is repaired)

    @property
    def position(self) -> float:
        """Seconds into the media (equals ``timestamp`` unless the source loops)."""
        return self.timestamp if self.media_time is None else self.media_time


def upright_bgr(frame) -> np.ndarray:
    """A decoded PyAV video frame as uint8 BGR, turned upright by its display rotation (as players show it)."""
    image = frame.to_ndarray(format="bgr24")
    turns = round(frame.rotation / 90) % 4  # phones store portrait video landscape plus a display rotation
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def is_camera(spec: str | int | Path) -> bool:
    """A camera index, device path or stream URL: these end when lost, files and folders can loop."""
    text = str(spec)
    return text.isdigit() or text.startswith("/dev/") or text.lower().startswith(STREAM_SCHEMES)


def sane_fps(fps: float | Fraction | None) -> float:
    """Cameras and containers report 0, NaN or absurd rates; fall back to 30."""
    try:
        value = float(fps or 0.0)
    except (TypeError, ZeroDivisionError):
        return DEFAULT_FPS
    return value if math.isfinite(value) and 0.5 < value < 1000 else DEFAULT_FPS


class FrameSource:
    """Base class: ``read()`` returns the next Frame, or None at the end."""

    live: bool = False
    name: str = "?"
    fps: float = DEFAULT_FPS
    size: tuple[int, int] = (0, 0)  # width, height

    def read(self) -> Frame | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def describe(self) -> str:
        kind = "live" if self.live else "file"
        return f"{self.name} ({self.size[0]}x{self.size[1]} @ {self.fps:.3g} fps, {kind})"

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_video(path: Path):
    """A PyAV container of ``path`` with a video stream; a SourceError naming the file otherwise."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SourceError(f"cannot open video {path}: {exc}; is it a video file?") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"{path} has no video stream")
    return container


def fit_size(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height) keeping its aspect ratio, centred on black bars."""
    width, height = size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    scaled = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = scaled
    return out


def stream_rate(stream) -> Fraction:
    """The frame rate a writer is given for ``stream``: its average rate, else a sane guess."""
    return stream.average_rate or Fraction(sane_fps(stream.average_rate or stream.guessed_rate)).limit_denominator(1001)


def frame_period(stream) -> float:
    """One frame's duration (s) by the stream's average rate: the step for times a file does not give."""
    return 1.0 / sane_fps(stream.average_rate or stream.guessed_rate)


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV; every frame, in order, with a best-effort time. Never trusts the frame count.

    Times come from ``realtime.timestamps.BestEffortTimes`` (increasing even where the file's pts
    are not). A frame whose size differs from the first frame's (a stream that changes resolution
    mid-way) is scaled to fit the first size keeping its aspect ratio, with black bars, and one
    warning: encoders take one size. ``size`` forces that target size (a cluster chunk uses the
    whole file's); ``seek_pts`` starts decoding at the keyframe at or before that pts (times then
    restart their repair there: a chunk takes its times from the plan).
    """

    def __init__(self, path: str | Path, *, seek_pts: int | None = None, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise SourceError(f"video {self.path} does not exist; check the path")
        self._container = open_video(self.path)
        self.resized = 0  # frames fitted to the first frame's size
        try:
            self.stream = self._container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.fps = sane_fps(self.stream.average_rate or self.stream.guessed_rate)
            self.rate = stream_rate(self.stream)
            self.time_base = self.stream.time_base or Fraction(1, 90000)
            self.frame_count_hint = int(self.stream.frames or 0)  # the header's claim; may be wrong
            self.has_audio = bool(self._container.streams.audio)
            if seek_pts is not None:
                self._container.seek(seek_pts, stream=self.stream, backward=True)
            self._times = BestEffortTimes(
                self._container.decode(self.stream), self.time_base, frame_period(self.stream)
            )
            self._index = 0
            self._target = size
            self._pending = self._decode_next()
        except BaseException:
            self._container.close()
            raise
        if self._pending is None:
            self._container.close()
            raise SourceError(f"video {self.path} holds no decodable frames")
        self.size = self._target  # the first frame's (upright) size, or the one asked for
        self.first_time = self._pending.timestamp
        self.last_time: float | None = None  # the latest frame read's time

    @property
    def repairs(self) -> int:
        """Frames whose time was not the file's pts (out of order, missing or stacked)."""
        return self._times.repairs

    def _decode_next(self) -> Frame | None:
        import av

        try:
            frame, t = next(self._times)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise SourceError(f"cannot decode frame {self._index} of {self.path}: {exc}") from exc
        image = upright_bgr(frame)
        if self._target is None:
            self._target = (image.shape[1], image.shape[0])
        elif (image.shape[1], image.shape[0]) != self._target:
            if not self.resized:
                log.warning(
                    "%s changes its frame size at frame %d (%dx%d, the first frames are %dx%d): such "
                    "frames are scaled to fit %dx%d with black bars",
                    self.path.name,
                    self._index,
                    image.shape[1],
                    image.shape[0],
                    *self._target,
                    *self._target,
                )
            self.resized += 1
            image = fit_size(image, self._target)
        out = Frame(image, self._index, t, pts=frame.pts)
        self._index += 1
        return out

    def read(self) -> Frame | None:
        frame, self._pending = self._pending, None
        if frame is not None:
            frame.captured = time.perf_counter()
            self.last_time = frame.timestamp
            self._pending = self._decode_next()
        return frame

    def close(self) -> None:
        self._container.close()


@dataclass(frozen=True)
class VideoScan:
    """What ``scan_video`` found: per frame, in ``VideoFileSource`` order, its pts, time and key flag."""

    time_base: Fraction
    rate: Fraction  # what the writer is given (``VideoFileSource.rate``)
    pts: tuple[int | None, ...]
    times: tuple[float, ...]
    keyframes: tuple[bool, ...]
    size: tuple[int, int]
    resized: int


def scan_video(path: str | Path) -> VideoScan:
    """Decode every frame of ``path`` as ``VideoFileSource`` does, without converting pixels: the cluster's index."""
    import av

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"video {path} does not exist; check the path")
    pts, times, keys = [], [], []
    size, resized = None, 0
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream_rate(stream)
        try:
            for frame, t in BestEffortTimes(container.decode(stream), time_base, frame_period(stream)):
                turns = round(frame.rotation / 90) % 4
                shape = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
                if size is None:
                    size = shape
                elif shape != size:
                    resized += 1
                pts.append(frame.pts)
                times.append(t)
                keys.append(bool(frame.key_frame))
        except av.FFmpegError as exc:
            raise SourceError(f"cannot decode frame {len(pts)} of {path}: {exc}") from exc
    if not pts:
        raise SourceError(f"video {path} holds no decodable frames")
    return VideoScan(time_base, rate, tuple(pts), tuple(times), tuple(keys), size, resized)


class PacedVideoSource(VideoFileSource):
    """A video file played as a camera: paced at its own rate, with live (newest-frame) semantics."""

    live = True

    def __init__(self, path: str | Path, stop: threading.Event | None = None) -> None:
        super().__init__(path)
        self._stop = stop or threading.Event()
        self._start: float | None = None
        self._t0 = 0.0

    def read(self) -> Frame | None:
        frame = self._pending
        if frame is None:
            return None
        if self._start is None:
            self._start, self._t0 = time.perf_counter(), frame.timestamp
        due = self._start + (frame.timestamp - self._t0)
        delay = due - time.perf_counter()
        if delay > 0 and self._stop.wait(delay):  # wakes early when the pipeline stops
            return None
        return super().read()


class CaptureSource(FrameSource):
    """A camera (index or device path) or network stream via OpenCV; reconnects a few times when lost."""

    live = True

    def __init__(
        self,
        spec: int | str,
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        retries: int = 3,
        retry_delay: float = 0.5,
        stop: threading.Event | None = None,
    ) -> None:
        self.spec = spec
        self.name = f"camera {spec}" if isinstance(spec, int) or str(spec).startswith("/dev/") else str(spec)
        self.requested = (width, height, fps)
        self.retries = retries
        self.retry_delay = retry_delay
        self._stop = stop or threading.Event()
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._t0 = time.perf_counter()
        self._first: np.ndarray | None = None
        self.lost_message = ""
        try:
            self._open()
            if self._first is None:
                raise SourceError(
                    f"cannot read from {self.name}: it opened but gave no frame; check that it is free and streaming"
                )
        except SourceError as exc:
            self.close()
            if not self._is_local_camera():
                raise
            from realtime.cameras import cameras_hint

            # name the cameras that do open, so the user need not guess indices (the probe takes at most ~3 s)
            raise SourceError(f"{exc}; {cameras_hint(self.spec)}") from None

    def _is_local_camera(self) -> bool:
        return isinstance(self.spec, int) or str(self.spec).startswith("/dev/")

    def _open(self) -> None:
        from realtime.cameras import quiet_opencv

        stream = isinstance(self.spec, str) and self.spec.lower().startswith(STREAM_SCHEMES)
        # OpenCV logs a WARN/ERROR block per backend that fails on a missing camera; our one line says it better
        with quiet_opencv() if not log.isEnabledFor(logging.DEBUG) else contextlib.nullcontext():
            cap = _responsive(lambda: _open_capture(self.spec)) if stream else cv2.VideoCapture(self.spec)
        if not cap.isOpened():
            cap.release()
            what = "camera" if self._is_local_camera() else "source"
            if stream:
                raise SourceError(
                    f"cannot open {self.spec}: no answer within {STREAM_TIMEOUT_S:g} s; check the URL "
                    "and that the server is streaming"
                )
            raise SourceError(
                f"cannot open {what} {self.spec}"
                if self._is_local_camera()
                else f"cannot open {what} {self.spec}; check the URL"
            )
        width, height, fps = self.requested
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer stale frames queued inside the driver
        ok, image = _responsive(cap.read) if stream else cap.read()
        self._cap = cap
        if ok and image is not None:
            self._first = image
            self.size = (image.shape[1], image.shape[0])
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
        if width and (width, height) != self.size:
            log.info("%s: asked for %dx%d, got %dx%d", self.name, width, height, *self.size)

    def read(self) -> Frame | None:
        image, self._first = self._first, None
        attempts = 0
        while image is None:
            ok, image = self._cap.read() if self._cap is not None else (False, None)
            if ok and image is not None:
                break
            image = None
            attempts += 1
            if attempts > self.retries:
                self.lost_message = f"{self.name} was lost after {self.retries} reconnection attempts"
                log.warning(self.lost_message)
                return None
            log.warning("%s gave no frame; reconnecting (%d/%d)", self.name, attempts, self.retries)
            if self._stop.wait(self.retry_delay):
                return None
            self.close()
            try:
                self._open()
                image, self._first = self._first, None
            except SourceError as exc:
                log.warning("%s", exc)
        frame = Frame(image, self._index, time.perf_counter() - self._t0)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _open_capture(url: str) -> cv2.VideoCapture:
    """A stream URL through OpenCV's FFmpeg backend, giving up after ``STREAM_TIMEOUT_S`` to open or read."""
    ms = int(STREAM_TIMEOUT_S * 1000)
    return cv2.VideoCapture(
        url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    )


def _responsive(call: Callable):
    """``call()`` in a helper thread, so the caller's thread still runs signal handlers (SIGTERM, Ctrl-C) meanwhile.

    A blocking OpenCV call holds the thread that made it until it returns; Python runs handlers only
    between bytecodes of the main thread. Interrupted, the helper is left to end on its own timeout.
    """
    result: list = []
    errors: list = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    helper = threading.Thread(target=run, name="stream-open", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.1)  # wakes for signals; join() without a timeout would not
    if errors:
        raise errors[0]
    return result[0]


class ImageSequenceSource(FrameSource):
    """A folder of images (sorted by name), a glob pattern, or a printf pattern such as frame_%04d.png."""

    def __init__(self, spec: str | Path, fps: float = 25.0) -> None:
        self.name = str(spec)
        self.fps = sane_fps(fps)
        self.paths = _sequence_paths(Path(spec))
        if not self.paths:
            raise SourceError(f"no images found for {spec}; give a folder of images or a pattern like img_%04d.png")
        self._index = 0
        self._flattened = False  # said once for the sequence, not once per frame
        first = self._load(0)
        self.size = (first.shape[1], first.shape[0])
        self._first: np.ndarray | None = first

    def _load(self, i: int) -> np.ndarray:
        try:
            image, flattened = read_image_flattened(self.paths[i])
        except Exception as exc:  # report which image of the sequence is bad
            raise SourceError(f"image {i} of {self.name} ({self.paths[i].name}) is unreadable: {exc}") from exc
        if flattened and not self._flattened:
            self._flattened = True
            log.warning(
                "%s has transparent parts (first: %s): they are flattened onto white", self.name, self.paths[i].name
            )
        return image

    def read(self) -> Frame | None:
        if self._index >= len(self.paths):
            return None
        image, self._first = (self._first, None) if self._first is not None else (self._load(self._index), None)
        if image.shape[:2] != (self.size[1], self.size[0]):  # encoders need one size: fit to the first
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = Frame(image, self._index, self._index / self.fps)
        self._index += 1
        return frame


class PacedImageSequenceSource(ImageSequenceSource):
    """Images played as a camera: paced at ``fps``, with live (newest-frame) semantics."""

    live = True

    def __init__(self, spec: str | Path, fps: float = 25.0, stop: threading.Event | None = None) -> None:
        super().__init__(spec, fps)
        self._stop = stop or threading.Event()
        self._start: float | None = None

    def read(self) -> Frame | None:
        if self._start is None:
            self._start = time.perf_counter()
        # The end is paced too: a looping player that reopens the sequence (the GUI with one still
        # image) would otherwise spin through open/read/end with no pause between frames.
        delay = self._start + self._index / self.fps - time.perf_counter()
        if delay > 0 and self._stop.wait(delay):  # wakes early when the pipeline stops
            return None
        return super().read() if self._index < len(self.paths) else None


class LoopingSource(FrameSource):
    """Plays a file, folder or image again from its start when it ends (the desktop app's live view).

    Indices and timestamps keep increasing across passes; ``Frame.media_time`` is the time within
    the file and ``Frame.pass_start`` marks the first frame of each new pass.
    """

    def __init__(self, opener: Callable[[], FrameSource]) -> None:
        self._opener = opener
        self.source = opener()
        self.live, self.name, self.fps, self.size = (
            self.source.live,
            self.source.name,
            self.source.fps,
            self.source.size,
        )
        self.passes = 1
        self.lost_message = ""
        self._offset = 0.0
        self._last = -1.0 / self.fps
        self._index = 0

    def read(self) -> Frame | None:
        frame = self.source.read()
        if frame is None:
            self.lost_message = getattr(self.source, "lost_message", "")
            if self.lost_message:
                return None
            self.source.close()
            self.source = self._opener()
            self.passes += 1
            self._offset = self._last + 1.0 / self.fps
            frame = self.source.read()
            if frame is None:  # stopped while reopening, or the file vanished
                return None
            frame.pass_start = True
        frame.media_time = frame.timestamp
        frame.timestamp += self._offset
        frame.index, self._index = self._index, self._index + 1
        self._last = frame.timestamp
        return frame

    def close(self) -> None:
        self.source.close()


def _sequence_paths(spec: Path) -> list[Path]:
    if spec.is_dir():
        return sorted(p for p in spec.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if spec.is_file() and spec.suffix.lower() in IMAGE_SUFFIXES:
        return [spec]  # one still image: a one-frame sequence
    text = str(spec)
    if re.search(r"%0?\d*d", text):
        paths, i = [], 0
        while i < 2 or paths:  # image sequences may start at 0 or 1
            p = Path(text % i)
            if p.is_file():
                paths.append(p)
            elif paths:
                break
            i += 1
        return paths
    if any(ch in text for ch in "*?["):
        return sorted(p for p in spec.parent.glob(spec.name) if p.suffix.lower() in IMAGE_SUFFIXES)
    return []


def open_source(
    spec: str | int | Path,
    *,
    as_camera: bool = False,
    width: int = 0,
    height: int = 0,
    fps: float = 0.0,
    stop: threading.Event | None = None,
    loop: bool = False,
) -> FrameSource:
    """Open a camera index/path, stream URL, video file or image sequence; ``as_camera`` paces files live.

    ``loop`` plays files, folders and images again from the start when they end (cameras never loop).
    """
    if loop and not is_camera(spec):
        return LoopingSource(lambda: open_source(spec, as_camera=as_camera, fps=fps, stop=stop))
    text = str(spec)
    if isinstance(spec, int) or text.isdigit():
        return CaptureSource(int(text), width, height, fps, stop=stop)
    if text.lower().startswith(STREAM_SCHEMES):
        return CaptureSource(text, width, height, fps, stop=stop)
    path = Path(text).expanduser()
    if text.startswith("/dev/"):
        if not path.exists():
            from realtime.cameras import cameras_hint

            raise SourceError(f"camera device {text} does not exist; {cameras_hint()}")
        return CaptureSource(text, width, height, fps, stop=stop)
    pattern = not path.is_file() and ("%" in text or any(ch in text for ch in "*?["))
    if path.is_dir() or pattern or (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        if as_camera:  # paced like a camera, or the live pipeline would drop all but the last images
            return PacedImageSequenceSource(path, fps or 25.0, stop)
        return ImageSequenceSource(path, fps or 25.0)
    if not path.exists():
        raise SourceError(f"source {text} does not exist: not a camera index, URL, file or folder")
    return PacedVideoSource(path, stop) if as_camera else VideoFileSource(path)


def grab_frame(path: str | Path, at: float | None = None) -> np.ndarray:
    """An image file as uint8 BGR, or the frame of a video shown at ``at`` seconds (default 0)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist; give an image or video file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if at:
            raise InputError(f"{path} is an image; --at only applies to videos")
        return read_image(path)
    return read_video_frame(path, at or 0.0)


def read_video_frame(path: str | Path, at: float = 0.0) -> np.ndarray:
    """The frame on screen at ``at`` seconds, decoded with PyAV (seek, then decode forward)."""
    import av

    path = Path(path)
    if not math.isfinite(at) or at < 0:
        raise InputError(f"--at must be 0 or more seconds, got {at}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path} is neither a readable image nor a video ({exc}); use JPEG, PNG or MP4") from exc
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream; give an image or video file")
        stream = container.streams.video[0]
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        period = 1.0 / float(rate) if rate else 0.04
        start = float(stream.start_time * time_base) if stream.start_time is not None and time_base else 0.0
        try:
            if at > 0 and time_base:
                # Seek to the keyframe before the target, then decode forward to it.
                container.seek(int((at + start) / time_base), stream=stream, backward=True)
            frame = _frame_at(container.decode(stream), at + start, period)
        except av.FFmpegError as exc:
            raise SourceError(f"cannot decode {path} at {at:.3f} s: {exc}") from exc
        except OverflowError:  # a seek target beyond int64 time stamps is past any video's end
            frame = None
    if frame is None:
        raise InputError(f"--at {at:g} s is past the end of {path}; choose an earlier time")
    image = upright_bgr(frame)
    if min(image.shape[:2]) < MIN_SIDE:
        raise InputError(f"{path} is {image.shape[1]}x{image.shape[0]} px; frames need at least {MIN_SIDE} px per side")
    return image


def _frame_at(frames, target: float, period: float):
    """The frame on screen at ``target`` s: the last one starting at or before it; None past the end."""
    shown = None
    for frame in frames:
        t = float(frame.time) if frame.time is not None else 0.0
        if t > target + 1e-6:
            return shown if shown is not None else frame  # a frame after the target: the previous one shows
        shown = frame
    if shown is not None and target < float(shown.time or 0.0) + period:
        return shown  # the last frame, still within its display time
    return None
