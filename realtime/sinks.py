"""Where stylised frames go: a video file, a toggleable recorder, a virtual camera, an OpenCV window.

File-like sinks (``Sink``) run in the pipeline's output thread; the window runs on the main thread
(OpenCV highgui needs that) and turns key presses into ``keys.Action`` values.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from models.errors import SinkError
from realtime.keys import Action, KeyBinding, binding_for_code
from realtime.sources import Frame
from realtime.video_writer import VideoFileWriter, VideoOptions

log = logging.getLogger(__name__)


class Sink:
    """Receives every stylised frame in order, in the output thread."""

    name = "sink"

    def write(self, frame: Frame, image: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:
        """Finalise; ``complete`` is False when the run was cut short."""


class VideoFileSink(Sink):
    """Every frame into a video file, at the source's times, with the source's audio."""

    def __init__(self, path: str | Path, rate: Fraction | float, options: VideoOptions | None = None,
                 audio_from: str | Path | None = None) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"
        self.writer = VideoFileWriter(path, rate, options, audio_from=audio_from)

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.writer.write(image, frame.timestamp)

    def close(self, complete: bool = True) -> None:
        self.writer.close(complete)


class RecorderSink(Sink):
    """A recording that can be started and stopped while running (the ``r`` key); one file per take."""

    def __init__(self, path: str | Path, rate: float, options: VideoOptions | None = None,
                 start: bool = False) -> None:
        self.base = Path(path)
        self.rate = rate
        self.options = options or VideoOptions()
        self.name = f"recorder {self.base}"
        self.files: list[Path] = []
        self._want = start
        self._lock = threading.Lock()
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

    def _next_path(self) -> Path:
        if not self.files and not self.base.exists():
            return self.base
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.base.with_name(f"{self.base.stem}-{stamp}{self.base.suffix}")
        n = 2
        while path.exists() or path in self.files:
            path = self.base.with_name(f"{self.base.stem}-{stamp}-{n}{self.base.suffix}")
            n += 1
        return path

    def write(self, frame: Frame, image: np.ndarray) -> None:
        want = self.recording
        if want and self._writer is None:
            path = self._next_path()
            self._writer = VideoFileWriter(path, Fraction(self.rate).limit_denominator(1001), self.options)
            self._t0 = frame.timestamp
            self.files.append(path)
            log.info("recording to %s", path)
        elif not want and self._writer is not None:
            self._finish()
        if self._writer is not None:
            self._writer.write(image, frame.timestamp - self._t0)

    def _finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            log.info("recorded %d frames to %s", writer.frames, writer.path)

    def close(self, complete: bool = True) -> None:
        self._finish()


class VirtualCameraSink(Sink):
    """Frames to a virtual webcam through pyvirtualcam (v4l2loopback, OBS, Unity Capture)."""

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError("virtual camera needs pyvirtualcam: pip install pyvirtualcam") from None
        try:
            self.camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR, device=device)
        except Exception as exc:  # pyvirtualcam raises RuntimeError and others when no device exists
            raise SinkError(f"no virtual camera device available ({exc}); on Linux load v4l2loopback") from exc
        self.name = f"virtual camera {self.camera.device}"
        self.size = (width, height)

    def write(self, frame: Frame, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
        self.camera.send(image)

    def close(self, complete: bool = True) -> None:
        self.camera.close()


class WindowSink:
    """An OpenCV window on the main thread: shows frames, returns the actions of pressed keys."""

    def __init__(self, title: str = "stylizer", fullscreen: bool = False) -> None:
        self.title = title
        self.fullscreen = fullscreen
        self.overlay = True
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
        except cv2.error as exc:
            raise SinkError(f"cannot open a window ({exc.err}); no display? use --no-window") from exc
        self._apply_fullscreen()
        self._shown = False

    def _apply_fullscreen(self) -> None:
        mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, mode)

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        self._apply_fullscreen()

    def show(self, image: np.ndarray, wait_ms: int = 1) -> KeyBinding | None:
        """Display a frame and pump events; returns the binding of a pressed key (QUIT on close)."""
        if not self._shown:
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self._shown = True
        cv2.imshow(self.title, image)
        return self.poll(wait_ms)

    def poll(self, wait_ms: int = 1) -> KeyBinding | None:
        code = cv2.waitKeyEx(wait_ms)
        if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return KeyBinding("q", Action.QUIT)  # the window was closed with the mouse
        return binding_for_code(code)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:  # already gone with the display
            pass


def save_snapshot(image: np.ndarray, folder: Path) -> Path:
    """Write a PNG named by the time into ``folder``."""
    from models.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.png"
    return save_image(image, path)
