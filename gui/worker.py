"""The live worker: runs the engine's Pipeline in a QThread and relays its newest frame to the window.

Capture, stylising, looping, recording and the virtual camera are the engine's
(``realtime.pipeline``, ``sources``, ``sinks``); this class only starts and stops a Pipeline and
turns its callbacks into Qt signals. ``frame_ready`` is emitted only when the window has taken
the previous frame (superqt's throttling idea): repaints follow the display, never queue up.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtGui import QImage

from gui.live_view import bgr_to_qimage
from gui.threads import ThreadWorker
from realtime.errors import SourceError
from realtime.pipeline import Pipeline, PipelineConfig, PipelineResult
from realtime.sinks import RecorderSink, VirtualCameraSink
from realtime.sources import VIDEO_SUFFIXES, Frame, open_source
from realtime.stats import StageSnapshot
from realtime.stylizer import FrameStylizer, StylizerState


@dataclass(frozen=True)
class LiveFrame:
    """One displayed frame and what produced it."""

    image: QImage                      # the stylised frame, ready to paint
    source: np.ndarray                 # uint8 BGR input (for keyframes)
    output: np.ndarray                 # uint8 BGR stylised frame
    index: int
    state: StylizerState
    stats: dict[str, StageSnapshot]    # the pipeline's stages (fps, latency, drops)


class LiveWorker(ThreadWorker):
    """source → stylizer → (recorder, virtual camera) as a Pipeline in its own thread; commands thread-safe."""

    frame_ready = pyqtSignal()                 # a frame waits in take_frame(); not emitted again until taken
    warned = pyqtSignal(str)                   # a skipped frame, a failed recording: the session goes on
    recording_changed = pyqtSignal(bool, str)  # on/off, file
    virtual_camera_changed = pyqtSignal(bool)

    what = "the live view"

    def __init__(self, source: str | int, stylizer: FrameStylizer, loop: bool = True,
                 output_dir: Path = Path(".")) -> None:
        super().__init__()
        self.source_spec = source
        self.stylizer = stylizer
        self.loop = loop  # files, images and folders start again at their end (cameras never loop)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: LiveFrame | None = None
        self._pending = False
        self.pipeline: Pipeline | None = None
        self.recorder = RecorderSink(Path(output_dir) / "stylizer.mp4", 30.0,
                                     on_change=lambda on, path: self.recording_changed.emit(on, str(path)))
        self.vcam = VirtualCameraSink(30.0, enabled=False, on_change=self.virtual_camera_changed.emit)

    # ----- window side -----

    def take_frame(self) -> LiveFrame | None:
        """The newest frame (or None); the next one will be signalled."""
        with self._lock:
            self._pending = False
            return self._latest

    def latest(self) -> LiveFrame | None:
        with self._lock:
            return self._latest

    def start_recording(self, path: Path) -> None:
        """Record from the current frame (a file's audio from the same point) into ``path``."""
        self.recorder.start(path)

    def stop_recording(self) -> None:
        self.recorder.stop()

    @property
    def recording(self) -> bool:
        return self.recorder.recording

    def set_virtual_camera(self, on: bool) -> None:
        self.vcam.set_enabled(on)

    def on_abort(self) -> None:
        self._stop.set()
        if self.pipeline is not None:
            self.pipeline.stop("closed")

    # ----- worker thread -----

    def work(self) -> PipelineResult:
        source = open_source(self.source_spec, as_camera=True, stop=self._stop, loop=self.loop)
        path = Path(str(self.source_spec)).expanduser()
        video = path if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES else None
        self.recorder.rate, self.recorder.audio_from, self.vcam.fps = source.fps, video, source.fps
        self.pipeline = Pipeline(source, self.stylizer, [self.recorder, self.vcam], PipelineConfig(live=True),
                                 on_frame=self._relay, on_warning=self.warned.emit, stop=self._stop)
        if self._stop.is_set():  # closed while the source was opening
            self.pipeline.stop("closed")
        result = self.pipeline.run()
        if result.reason.startswith("source lost"):
            raise SourceError(result.reason.partition(": ")[2] or result.reason)
        if result.reason == "end of input":
            self.warned.emit(f"{source.name} ended")
        return result

    def _relay(self, frame: Frame, image: np.ndarray) -> None:
        pipeline = self.pipeline
        live = LiveFrame(bgr_to_qimage(image), frame.image, image, frame.index, self.stylizer.state,
                         pipeline.stats.snapshot() if pipeline is not None else {})
        with self._lock:
            self._latest = live
            notify = not self._pending
            self._pending = True
        if notify:
            self._emit(self.frame_ready)
