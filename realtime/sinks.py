"""Where stylised frames go: a video file, a recorder switched on and off, a virtual camera.

Sinks run in the pipeline's output thread. A video file is the job: its failure ends the run. A
recorder or virtual camera is ``optional``: when it fails it turns itself off and the live
session goes on. Windows are front ends (``cli/window.py``, ``gui/``), not sinks.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path

from typing import Callable

import cv2
import numpy as np

from realtime.errors import SinkError
from realtime.sources import Frame
from realtime.video_writer import VideoFileWriter, VideoOptions

log = logging.getLogger(__name__)


class Sink:
    """Receives every stylised frame in order, in the output thread."""

    name = "sink"
    optional = False  # True: a failure turns this sink off instead of ending the run

    def write(self, frame: Frame, image: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def fail(self, exc: Exception) -> None:
        """An optional sink's write failed: release what it holds and stop until asked again."""

    def close(self, complete: bool = True) -> None:
        """Finalise; ``complete`` is False when the run was cut short."""


class VideoFileSink(Sink):
    """Every frame into a video file, at the source's times, with the source's audio."""

    def __init__(
        self,
        path: str | Path,
        rate: Fraction | float,
        options: VideoOptions | None = None,
        audio_from: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"
        self.writer = VideoFileWriter(path, rate, options, audio_from=audio_from)

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.writer.write(image, frame.timestamp)

    @property
    def output(self):
        """The writer's ``PartFile``; ``output.kept`` says where the frames are once closed."""
        return self.writer.output

    def close(self, complete: bool = True) -> None:
        """Complete: replaces the output. Cut short: takes the output's name only if no such file exists."""
        self.writer.close(complete)


class RecorderSink(Sink):
    """A recording started and stopped while running (``r``, the record button); one file per take.

    A take starts at the current frame. From a file source, ``audio_from`` is the file: its audio is
    copied from the take's first frame on, and the take ends when the file plays again from the top
    (the audio would not follow). ``on_change(recording, path)`` reports every start and stop.
    """

    optional = True

    def __init__(
        self,
        path: str | Path,
        rate: float,
        options: VideoOptions | None = None,
        start: bool = False,
        audio_from: str | Path | None = None,
        on_change: Callable[[bool, Path], None] | None = None,
        replace: bool | None = None,
    ) -> None:
        self.base = Path(path)
        # The rule of `video -o`: a name the user gave (start=True, --record) is replaced when the
        # first take ends; other takes get fresh names and never replace a file.
        self.replace = start if replace is None else replace
        self.rate = rate
        self.options = options or VideoOptions()
        self.audio_from = audio_from
        self.on_change = on_change
        self.name = f"recorder {self.base}"
        self.files: list[Path] = []
        self._lock = threading.Lock()
        self._want = start
        self._requested: Path | None = None  # the next take's file, when the caller chose it
        self._writer: VideoFileWriter | None = None
        self._t0 = 0.0

    @property
    def recording(self) -> bool:
        with self._lock:
            return self._want

    def toggle(self) -> bool:
        """Ask to start or stop; applied at the next frame. Returns the new wish."""
        with self._lock:
            self._want = not self._want
            return self._want

    def start(self, path: Path | None = None) -> None:
        """Start a take at the next frame, into ``path`` if given."""
        with self._lock:
            self._want, self._requested = True, Path(path) if path is not None else None

    def stop(self) -> None:
        with self._lock:
            self._want = False

    def _next_path(self) -> Path:
        if self._requested is not None:
            path, self._requested = self._requested, None
            return path
        if not self.files and (self.replace or not self.base.exists()):
            return self.base
        return stamped_path(self.base.parent, self.base.stem, self.base.suffix)

    def write(self, frame: Frame, image: np.ndarray) -> None:
        want = self.recording
        if self._writer is not None and (not want or (frame.pass_start and self.audio_from is not None)):
            self._finish()
            if want:  # the file restarted under a take with its audio: that take is complete
                self.stop()
                return
        if want and self._writer is None:
            path = self._next_path()
            self._t0 = frame.timestamp
            audio_start = frame.position if self.audio_from is not None else 0.0
            self._writer = VideoFileWriter(
                path,
                Fraction(self.rate).limit_denominator(1001),
                self.options,
                audio_from=self.audio_from,
                audio_start=audio_start,
                trim_audio=True,
            )
            self.files.append(path)
            log.info("recording to %s", path)
            if self.on_change:
                self.on_change(True, path)
        if self._writer is not None:
            self._writer.write(image, frame.timestamp - self._t0)

    def _finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
                log.info("recorded %d frames to %s", writer.frames, writer.path)
            finally:
                if self.on_change:
                    self.on_change(False, writer.path)

    def fail(self, exc: Exception) -> None:
        self.stop()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close(complete=False)
            except Exception as close_exc:  # the disk that failed the write may fail the close too
                log.warning("closing %s after a failure: %s", writer.path, close_exc)
            if self.on_change:
                self.on_change(False, writer.path)

    def close(self, complete: bool = True) -> None:
        self._finish()


class VirtualCameraSink(Sink):
    """Frames to a virtual webcam through pyvirtualcam (v4l2loopback, OBS, Unity Capture).

    Opened on the first frame after it is switched on, at that frame's size; ``open_now`` opens it
    at once with a given size, so a command line that asks for it fails before any work.
    """

    optional = True

    def __init__(
        self,
        fps: float,
        device: str | None = None,
        enabled: bool = True,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.fps = fps
        self.device = device
        self.on_change = on_change
        self.name = "virtual camera"
        self.camera = None
        self.size = (0, 0)
        self._enabled = enabled

    @staticmethod
    def check_available() -> None:
        """Raise SinkError when no virtual camera can be opened here."""
        VirtualCameraSink(30).open_now(64, 64).close()

    def open_now(self, width: int, height: int) -> "VirtualCameraSink":
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError("virtual camera needs pyvirtualcam: pip install pyvirtualcam") from None
        try:
            self.camera = pyvirtualcam.Camera(
                width, height, self.fps, fmt=pyvirtualcam.PixelFormat.BGR, device=self.device
            )
        except Exception as exc:  # pyvirtualcam raises RuntimeError and others when no device exists
            raise SinkError(f"no virtual camera device available ({exc}); on Linux load v4l2loopback") from exc
        self.name = f"virtual camera {self.camera.device}"
        self.size = (width, height)
        if self.on_change:
            self.on_change(True)
        return self

    def set_enabled(self, on: bool) -> None:
        """Switch on or off; applied at the next frame."""
        self._enabled = bool(on)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def write(self, frame: Frame, image: np.ndarray) -> None:
        if not self._enabled:
            if self.camera is not None:
                self.close()
            return
        if self.camera is None:
            self.open_now(image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
        self.camera.send(image)

    def fail(self, exc: Exception) -> None:
        self._enabled = False
        self.close()

    def close(self, complete: bool = True) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            camera.close()
            if self.on_change:
                self.on_change(False)


def stamped_path(folder: Path, prefix: str, suffix: str) -> Path:
    """``folder/prefix-YYYYmmdd-HHMMSS<suffix>``, numbered ``-2``, ``-3``… when that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(folder) / f"{prefix}-{stamp}{suffix}"
    n = 2
    while path.exists():
        path = Path(folder) / f"{prefix}-{stamp}-{n}{suffix}"
        n += 1
    return path


def save_snapshot(image: np.ndarray, folder: Path, path: Path | None = None) -> Path:
    """Write a PNG of ``image`` to ``path``, or to a time-stamped name in ``folder``."""
    from core.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    return save_image(image, path or stamped_path(folder, "snapshot", ".png"))
