"""One live session for every front end: the source, the pipeline, the recorder (with a file's audio), the
virtual camera, snapshots and what each key does.

``cli/window.py`` and ``gui/`` only show ``latest()`` and turn input into ``Action``s (the key map of
``realtime.controls``); the session carries them out the same way for both. ``latest()`` is filled by the
stylize stage before any sink runs, so a display never waits behind the recorder's encoder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import StylizerError
from realtime.controls import Action, KeyBinding, apply_to_stylizer
from realtime.pipeline import Output, Pipeline, PipelineConfig, PipelineResult
from realtime.sinks import RecorderSink, VirtualCameraSink, save_snapshot, stamped_path
from realtime.sources import DEFAULT_FPS, VIDEO_SUFFIXES, FrameSource, is_camera, open_source
from realtime.stylizer import FrameStylizer


@dataclass
class SessionConfig:
    """What a live session opens, and where its recordings and snapshots go."""

    source: str | int = 0  # camera index, device path, stream URL, video file, image or folder
    width: int = 0  # requested camera size and rate (0 = the driver's)
    height: int = 0
    fps: float = 0.0
    loop: bool = False  # files, images and folders play again from the start (cameras never loop)
    record: Path | None = None  # record from the first frame into this file (replaced when the take ends)
    recording: Path = Path("stylizer-recording.mp4")  # later takes: this name if free, else a time-stamped one
    stamp_takes: bool = False  # every take gets a fresh time-stamped name beside ``recording``
    snapshot_dir: Path = Path(".")
    virtual_camera: bool = False  # open the virtual camera with the source (so a missing device fails early)
    max_seconds: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What an action did: a line for the user ('' when the view shows it), and whether it failed."""

    action: Action
    message: str = ""
    failed: bool = False
    handled: bool = True  # False: the front end's own action (overlay, fullscreen, help)
    path: Path | None = None  # the snapshot written


def video_file(spec: str | int | Path) -> Path | None:
    """The video file a source plays, when it is one (its audio can be recorded with the frames)."""
    path = Path(str(spec)).expanduser()
    return path if not is_camera(spec) and path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES else None


class LiveSession:
    """source → stylizer → recorder + virtual camera, with ``latest()`` for a display and ``handle()`` for keys.

    ``open()`` opens the source (a bad camera or file fails before any model loads), ``start(stylizer)``
    runs the pipeline's threads, ``stop()`` + ``finish()`` (or ``run()``) end it. Every method may be
    called from any thread; the callbacks run in the pipeline's output thread.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        stop: threading.Event | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_recording: Callable[[bool, Path], None] | None = None,
        on_virtual_camera: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.stop_event = stop or threading.Event()
        self.on_warning = on_warning
        self.recorder = RecorderSink(
            config.record or config.recording, DEFAULT_FPS, start=config.record is not None, on_change=on_recording
        )
        self.virtual_camera = VirtualCameraSink(DEFAULT_FPS, enabled=config.virtual_camera, on_change=on_virtual_camera)
        self.source: FrameSource | None = None
        self.stylizer: FrameStylizer | None = None
        self.pipeline: Pipeline | None = None
        self.snapshots: list[Path] = []
        self._lock = threading.Lock()
        self._stop_reason = ""

    # ----- life cycle -----

    def open(self) -> FrameSource:
        """Open the source (and the virtual camera when asked for); raises SourceError/SinkError naming them."""
        c = self.config
        source = open_source(
            c.source,
            as_camera=True,
            width=c.width,
            height=c.height,
            fps=c.fps,
            stop=self.stop_event,
            loop=c.loop and not is_camera(c.source),
        )
        try:
            self.recorder.rate = self.virtual_camera.fps = source.fps
            self.recorder.audio_from = video_file(c.source)  # a file played as a camera: record its sound too
            if c.virtual_camera:
                self.virtual_camera.open_now(*source.size)
        except BaseException:
            source.close()
            raise
        self.source = source
        return source

    def start(self, stylizer: FrameStylizer) -> None:
        """Run the source through ``stylizer`` on the pipeline's threads; returns at once."""
        if self.source is None:
            self.open()
        self.stylizer = stylizer
        pipeline = Pipeline(
            self.source,
            stylizer,
            [self.recorder, self.virtual_camera],
            PipelineConfig(live=True, max_seconds=self.config.max_seconds),
            on_warning=self.on_warning,
            stop=self.stop_event,
        )
        with self._lock:
            self.pipeline = pipeline
            reason = self._stop_reason
        if reason:  # stopped while the source or the model was loading
            pipeline.stop(reason)
        pipeline.start()

    def stop(self, reason: str = "stopped") -> None:
        """Ask the session to end (any thread); the first reason given is kept."""
        with self._lock:
            self._stop_reason = self._stop_reason or reason
            pipeline = self.pipeline
        self.stop_event.set()  # also wakes a source that is opening or pacing
        if pipeline is not None:
            pipeline.stop(reason)

    @property
    def done(self) -> bool:
        """True once the pipeline has written its last frame (or failed)."""
        return self.pipeline is not None and self.pipeline.done

    def finish(self) -> PipelineResult | None:
        """Stop, join, close the sinks and the source; None when the session never started."""
        if self.pipeline is not None:
            return self.pipeline.finish()
        self.stop("closed")
        try:
            self.recorder.close(complete=False)
            self.virtual_camera.close()
        finally:
            if self.source is not None:
                self.source.close()
        return None

    def run(self, stylizer: FrameStylizer) -> PipelineResult:
        """Start, wait for the end (Ctrl-C ends it as "interrupted"), finish: a session without a display."""
        self.start(stylizer)
        return self.pipeline.run()

    def latest(self, after: int = 0, timeout: float | None = 0.0) -> Output | None:
        """The newest stylised frame with ``seq > after`` (waiting up to ``timeout`` s), or None."""
        pipeline = self.pipeline
        return pipeline.latest(after, timeout) if pipeline is not None else None

    # ----- actions -----

    def handle(self, binding: KeyBinding) -> Outcome:
        """Carry out a key's action; the front end's own ones (overlay, fullscreen, help) come back unhandled."""
        action = binding.action
        if self.stylizer is not None and apply_to_stylizer(binding, self.stylizer):
            return Outcome(action)
        if action is Action.SNAPSHOT:
            return self.snapshot()
        if action is Action.RECORD:
            return self.toggle_recording()
        if action is Action.QUIT:
            self.stop("quit")
            return Outcome(action)
        return Outcome(action, handled=False)

    def snapshot(self) -> Outcome:
        """Save the newest stylised frame as a PNG in the snapshot folder."""
        out = self.latest()
        if out is None:
            return Outcome(Action.SNAPSHOT, "no frame to save yet", failed=True)
        try:
            path = save_snapshot(out.image, self.config.snapshot_dir)
        except (StylizerError, OSError) as exc:  # a full disk or a removed folder: say it, keep running
            return Outcome(Action.SNAPSHOT, f"snapshot not saved: {exc}", failed=True)
        self.snapshots.append(path)
        return Outcome(Action.SNAPSHOT, f"snapshot {path}", path=path)

    @property
    def recording(self) -> bool:
        return self.recorder.recording

    def start_recording(self, path: Path | None = None) -> None:
        """Record from the next frame (a file's audio from the same point), into ``path`` if given."""
        if path is None and self.config.stamp_takes:
            base = self.config.recording
            path = stamped_path(base.parent, base.stem, base.suffix)
        self.recorder.start(path)

    def stop_recording(self) -> None:
        self.recorder.stop()

    def toggle_recording(self) -> Outcome:
        if self.recorder.recording:
            self.stop_recording()
            return Outcome(Action.RECORD, "recording stopped")
        self.start_recording()
        return Outcome(Action.RECORD, "recording")

    def set_virtual_camera(self, on: bool) -> None:
        """Switch the virtual camera on or off at the next frame."""
        self.virtual_camera.set_enabled(on)
