"""The live worker: runs the engine's live session in a QThread and tells the window when a frame is new.

Capture, stylising, looping, recording, the virtual camera and snapshots are the session's
(``realtime.session``); this class starts and stops it, turns its callbacks into Qt signals and
waits on the session's ``latest()``. ``frame_ready`` is emitted only when the window has taken the
previous frame (superqt's throttling idea): repaints follow the display, never queue up, and the
window reads the newest frame itself, so it never waits behind the recorder's encoder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import pyqtSignal

from gui.threads import ThreadWorker
from realtime.errors import SourceError
from realtime.pipeline import PipelineResult
from realtime.session import LiveSession, Outcome, SessionConfig
from realtime.sinks import RecorderSink
from realtime.stats import StageSnapshot
from realtime.stylizer import FrameStylizer, StylizerState

WAIT_S = 0.25  # how long one wait for a frame lasts before the loop looks at the session again


@dataclass(frozen=True)
class LiveFrame:
    """One frame as the window shows it, and what produced it."""

    source: np.ndarray  # uint8 BGR input (for keyframes)
    output: np.ndarray  # uint8 BGR stylised frame
    index: int
    seq: int  # the session's output count: newer frames have larger ones
    state: StylizerState  # the stylizer's settings this frame was made with
    stats: dict[str, StageSnapshot]  # the pipeline's stages (fps, latency, drops)


class LiveWorker(ThreadWorker):
    """A live session (source → stylizer → recorder, virtual camera) in its own thread; commands thread-safe."""

    frame_ready = pyqtSignal()  # a newer frame waits in take_frame(); not emitted again until taken
    warned = pyqtSignal(str)  # a skipped frame, a failed recording: the session goes on
    recording_changed = pyqtSignal(bool, str)  # on/off, file
    virtual_camera_changed = pyqtSignal(bool)

    what = "the live view"

    def __init__(
        self, source: str | int, stylizer: FrameStylizer, loop: bool = True, output_dir: Path = Path(".")
    ) -> None:
        super().__init__()
        self.stylizer = stylizer
        config = SessionConfig(
            source=source,
            loop=loop,
            recording=Path(output_dir) / "stylizer.mp4",
            stamp_takes=True,
            snapshot_dir=Path(output_dir),
        )
        self.session = LiveSession(
            config,
            on_warning=self.warned.emit,
            on_recording=lambda on, path: self.recording_changed.emit(on, str(path)),
            on_virtual_camera=self.virtual_camera_changed.emit,
        )
        self._taken = threading.Event()  # the window has taken the last frame signalled
        self._taken.set()

    # ----- window side -----

    def take_frame(self) -> LiveFrame | None:
        """The newest frame (or None); the next new one will be signalled."""
        self._taken.set()
        return self.latest()

    def latest(self) -> LiveFrame | None:
        """The session's newest frame, with the pipeline's statistics now."""
        out = self.session.latest()
        pipeline = self.session.pipeline
        if out is None or pipeline is None:
            return None
        return LiveFrame(
            out.frame.image,
            out.image,
            out.frame.index,
            out.seq,
            out.state or self.stylizer.state,
            pipeline.stats.snapshot(),
        )

    @property
    def recorder(self) -> RecorderSink:
        return self.session.recorder

    def start_recording(self, path: Path | None = None) -> None:
        """Record from the current frame (a file's audio from the same point), into ``path`` or a new name."""
        self.session.start_recording(path)

    def stop_recording(self) -> None:
        self.session.stop_recording()

    @property
    def recording(self) -> bool:
        return self.session.recording

    def set_virtual_camera(self, on: bool) -> None:
        self.session.set_virtual_camera(on)

    def snapshot(self) -> Outcome:
        return self.session.snapshot()

    def on_abort(self) -> None:
        self.session.stop("closed")

    # ----- worker thread -----

    def work(self) -> PipelineResult:
        session = self.session
        try:
            source = session.open()
            session.start(self.stylizer)
            seq = 0
            while not session.done:
                out = session.latest(after=seq, timeout=WAIT_S)
                if out is None:
                    continue
                seq = out.seq
                if self._taken.is_set():  # else the window still has one to paint: it reads the newest then
                    self._taken.clear()
                    self._emit(self.frame_ready)
        finally:
            result = session.finish()
        if result.reason.startswith("source lost"):
            raise SourceError(result.reason.partition(": ")[2] or result.reason)
        if result.reason == "end of input":
            self.warned.emit(f"{source.name} ended")
        return result
