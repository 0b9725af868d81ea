"""The inference worker: reads the source, stylises, records, and hands the newest frame to the GUI.

Two threads, neither of them the GUI's: a reader that keeps only the newest source frame (live
semantics, so latency never grows when stylising is slower than the source), and the worker's
QThread that stylises it. ``frame_ready`` is emitted only when the GUI has taken the previous
frame (superqt's throttling idea): repaints follow the display, never queue up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal
from PyQt6.QtGui import QImage

from models.errors import SinkError, StylizerError
from realtime.gui.live_view import bgr_to_qimage
from realtime.sinks import VirtualCameraSink
from realtime.sources import STREAM_SCHEMES, Frame, FrameSource, open_source
from realtime.stats import StageSnapshot, StageStats
from realtime.stylizer import FrameStylizer, StylizerState

log = logging.getLogger(__name__)

SourceOpener = Callable[[threading.Event], FrameSource]


@dataclass(frozen=True)
class LiveFrame:
    """One displayed frame and what produced it."""

    image: QImage          # the stylised frame, ready to paint
    source: np.ndarray     # uint8 BGR input (for keyframes)
    output: np.ndarray     # uint8 BGR stylised frame
    index: int
    state: StylizerState
    stats: StageSnapshot   # shown frames: fps, end-to-end latency (capture → shown), drops


@dataclass
class _NewestFrame:
    """The reader's hand-off: only the newest frame is kept; older unread ones count as dropped."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    frame: Frame | None = None
    events: list[str] = field(default_factory=list)  # "end" (a pass of a file ended), "lost: why"
    stats: StageStats = field(default_factory=lambda: StageStats("display"))

    def put(self, frame: Frame) -> None:
        with self.cond:
            if self.frame is not None:
                self.stats.drop()
            self.frame = frame
            self.cond.notify()

    def event(self, what: str) -> None:
        with self.cond:
            if what == "end":  # an unread frame of the finished pass must not follow its end marker
                self.frame = None
            self.events.append(what)
            self.cond.notify()

    def take(self, timeout: float) -> tuple[Frame | None, list[str]]:
        with self.cond:
            if self.frame is None and not self.events:
                self.cond.wait(timeout)
            frame, events = self.frame, self.events
            self.frame, self.events = None, []
            return frame, events


def is_camera(spec: str | int) -> bool:
    """A camera index, device path or stream URL (these end when lost; files can loop)."""
    text = str(spec)
    return text.isdigit() or text.startswith("/dev/") or text.lower().startswith(STREAM_SCHEMES)


def live_opener(spec: str | int) -> SourceOpener:
    """Opens ``spec`` with live semantics: a video file is paced at its own rate, like a camera."""

    def opener(stop: threading.Event) -> FrameSource:
        return open_source(spec, as_camera=True, stop=stop)

    return opener


class StylizeWorker(QObject):
    """Runs source → stylizer → (recorder) in its own QThread; commands are thread-safe."""

    frame_ready = pyqtSignal()            # a frame waits in take_frame(); not emitted again until taken
    errored = pyqtSignal(str)             # one line for the user (status bar / banner)
    message = pyqtSignal(str)             # notes such as "recording to …"
    recording_changed = pyqtSignal(bool, str)  # on/off, file
    snapshot_saved = pyqtSignal(str)
    virtual_camera_changed = pyqtSignal(bool)
    stopped = pyqtSignal()                # the run loop has ended (source lost, closed, error)

    def __init__(self, opener: SourceOpener, stylizer: FrameStylizer, source_path: Path | None = None,
                 loop: bool = True) -> None:
        super().__init__()
        self.opener = opener
        self.stylizer = stylizer
        self.source_path = source_path  # a video file: recordings restart it and copy its audio
        self.loop = loop  # start files, images and folders again at their end (never for cameras)
        self._abort = threading.Event()
        self._restart = threading.Event()
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._latest_lock = threading.Lock()
        self._latest: LiveFrame | None = None
        self._pending = False
        self._slot = _NewestFrame()
        self._writer = None
        self._record_path: Path | None = None
        self._record_t0: float | None = None
        self._record_wait_restart = False
        self._vcam: VirtualCameraSink | None = None
        self._vcam_wanted = False  # open with the next frame: the device takes that frame's size
        self.thread: QThread | None = None
        self.source: FrameSource | None = None

    # ----- lifecycle -----

    def start(self) -> QThread:
        self.thread = QThread()
        self.thread.setObjectName("stylize-worker")
        self.moveToThread(self.thread)
        self.thread.started.connect(self.run)
        # Direct: quit from the worker thread itself, so a GUI thread blocked in stop() is released.
        self.stopped.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.start()
        return self.thread

    def stop(self, timeout_ms: int = 1000) -> bool:
        """Ask everything to end and wait; True when the thread has finished."""
        self._abort.set()
        with self._slot.cond:
            self._slot.cond.notify_all()
        if self.thread is None or self.thread.wait(timeout_ms):
            return True
        # One frame outlasted the timeout (a loaded machine, a big size): it cannot be interrupted
        # mid-inference, so wait for it; Qt aborts the process if a running QThread is destroyed.
        log.warning("the stylize worker is finishing a frame; waiting for it")
        self.thread.wait(60_000)
        return False

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    # ----- GUI side -----

    def take_frame(self) -> LiveFrame | None:
        """The newest frame (or None); the next one will be signalled."""
        with self._latest_lock:
            self._pending = False
            return self._latest

    def latest(self) -> LiveFrame | None:
        with self._latest_lock:
            return self._latest

    def start_recording(self, path: Path) -> None:
        self._commands.put(lambda: self._begin_recording(Path(path)))

    def stop_recording(self) -> None:
        self._commands.put(lambda: self._end_recording("stopped"))

    def snapshot(self, path: Path) -> None:
        """Save the next stylised frame as an image."""
        self._commands.put(lambda: self._save_snapshot(Path(path)))

    def set_virtual_camera(self, on: bool) -> None:
        self._commands.put(lambda: self._virtual_camera(on))

    @property
    def recording(self) -> bool:
        return self._writer is not None

    # ----- worker thread -----

    def run(self) -> None:
        reader: threading.Thread | None = None
        try:
            self.source = self.opener(self._abort)
            reader = threading.Thread(target=self._read_loop, name="gui-source-reader", daemon=True)
            reader.start()
            self._loop()
        except StylizerError as exc:
            self.errored.emit(str(exc))
        except Exception as exc:  # never let a worker bug take the window down silently
            log.exception("stylize worker failed")
            self.errored.emit(f"the live view stopped: {type(exc).__name__}: {exc}")
        finally:
            self._abort.set()
            if reader is not None:
                reader.join(timeout=1.0)
            self._end_recording("closed")
            self._virtual_camera(False)
            if self.source is not None:
                self.source.close()
            self.stopped.emit()

    def _loop(self) -> None:
        stats = self._slot.stats
        last_error = ""
        while not self._abort.is_set():
            self._apply_commands()
            frame, events = self._slot.take(timeout=0.25)
            for event in events:
                if event == "end":
                    if self._record_wait_restart:  # the restart a file recording asked for: record from here
                        self._record_wait_restart = False
                    else:
                        self._end_recording("end of video")
                elif event.startswith("lost"):
                    self.errored.emit(event.partition(": ")[2])
                    return
            if frame is None:
                continue
            try:
                out = self.stylizer.process(frame.image)
            except Exception as exc:  # one bad frame must not end a live session: say it once, go on
                stats.error()
                text = f"frame {frame.index} failed: {exc}"
                if text != last_error:
                    self.errored.emit(text)
                    log.warning("%s", text)
                last_error = text
                continue
            self._record(out, frame)
            if self._vcam_wanted:
                self._send_vcam(frame, out)
            stats.record(time.perf_counter() - frame.captured)
            self._publish(LiveFrame(bgr_to_qimage(out), frame.image, out, frame.index, self.stylizer.state,
                                    stats.snapshot()))

    def _publish(self, live: LiveFrame) -> None:
        with self._latest_lock:
            self._latest = live
            notify = not self._pending
            self._pending = True
        if notify:
            self.frame_ready.emit()

    def _apply_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except StylizerError as exc:
                self.errored.emit(str(exc))

    def _read_loop(self) -> None:
        """Reader thread: newest frame into the slot; files loop (and restart for a recording)."""
        offset = 0.0  # seconds added to timestamps after each loop, so time keeps increasing
        last = 0.0
        try:
            while not self._abort.is_set():
                if self._restart.is_set():
                    self._restart.clear()
                    self._slot.event("end")
                    self._reopen()
                    offset = 0.0
                if not self.source.live and self._abort.wait(1.0 / self.source.fps):
                    return  # images and folders are read as fast as asked: pace them like a camera
                frame = self.source.read()
                if frame is None:
                    if self._abort.is_set():
                        return
                    if not self.loop:
                        why = getattr(self.source, "lost_message", "") or f"{self.source.name} ended"
                        self._slot.event(f"lost: {why}")
                        return
                    self._slot.event("end")
                    offset = last + 1.0 / (self.source.fps or 30.0)
                    self._reopen()
                    continue
                frame.timestamp += offset
                last = frame.timestamp
                self._slot.put(frame)
        except StylizerError as exc:
            self._slot.event(f"lost: {exc}")

    def _reopen(self) -> None:
        self.source.close()
        self.source = self.opener(self._abort)

    # ----- recording and snapshots (worker thread) -----

    def _begin_recording(self, path: Path) -> None:
        from realtime.video_writer import VideoFileWriter

        if self._writer is not None:
            return
        fps = self.source.fps if self.source is not None else 30.0
        audio = self.source_path if self.source_path is not None else None
        self._writer = VideoFileWriter(path, fps, audio_from=audio)
        self._record_path = path
        self._record_t0 = None
        if self.source_path is not None:
            # A file's audio is copied in sync only from its start: record the whole file from the top.
            self._record_wait_restart = True
            self._restart.set()
            self.message.emit(f"recording {self.source_path.name} from its start to {path}")
        else:
            self.message.emit(f"recording to {path}")
        self.recording_changed.emit(True, str(path))

    def _record(self, out: np.ndarray, frame: Frame) -> None:
        if self._writer is None:
            return
        if self._record_wait_restart:  # frames of the pass before the restart
            return
        if self._record_t0 is None:  # a file keeps its own times (audio sync); a camera starts at 0
            self._record_t0 = 0.0 if self.source_path is not None else frame.timestamp
        try:
            self._writer.write(out, frame.timestamp - self._record_t0)
        except SinkError as exc:
            self.errored.emit(str(exc))
            self._end_recording("failed")

    def _end_recording(self, why: str) -> None:
        if self._writer is None or (why == "end of video" and self._record_wait_restart):
            return
        writer, path = self._writer, self._record_path
        self._writer, self._record_path = None, None
        try:
            writer.close()
        except SinkError as exc:
            self.errored.emit(str(exc))
        log.info("recording %s: %d frames to %s (%s)", why, writer.frames, path, why)
        self.message.emit(f"saved {writer.frames} frames to {path} ({why})")
        self.recording_changed.emit(False, str(path))

    def _save_snapshot(self, path: Path) -> None:
        from models.images import save_image

        live = self.latest()
        if live is None:
            self.errored.emit("no frame to save yet")
            return
        save_image(live.output, path)
        self.snapshot_saved.emit(str(path))

    def _virtual_camera(self, on: bool) -> None:
        self._vcam_wanted = on
        if not on and self._vcam is not None:
            self._vcam.close()
            self._vcam = None
            self.virtual_camera_changed.emit(False)

    def _send_vcam(self, frame: Frame, out: np.ndarray) -> None:
        try:
            if self._vcam is None:
                fps = self.source.fps if self.source is not None else 30.0
                self._vcam = VirtualCameraSink(out.shape[1], out.shape[0], fps)
                self.message.emit(f"sending to {self._vcam.name}")
                self.virtual_camera_changed.emit(True)
            self._vcam.write(frame, out)
        except Exception as exc:  # SinkError, or the device vanished: turn it off and say why
            self.errored.emit(f"virtual camera stopped: {exc}")
            self._virtual_camera(False)
            self.virtual_camera_changed.emit(False)
