"""source → stylizer → sinks, one thread per stage, small bounded queues, one clean shutdown path.

Live sources use drop-oldest queues (latency stays bounded, drops are counted); file sources use
blocking queues (back-pressure, nothing lost). The display, if any, runs on the calling (main)
thread. Quit key, window close, Ctrl-C, end of input, a lost camera and errors all end the same
way: the stop event is set, queues are woken, threads joined with timeouts, sinks finalised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from models.errors import StylizerError
from realtime.keys import Action, apply_to_stylizer, help_text
from realtime.overlay import draw_overlay, overlay_lines
from realtime.sinks import RecorderSink, Sink, WindowSink, save_snapshot
from realtime.sources import Frame, FrameSource
from realtime.stats import PipelineStats
from realtime.stylizer import FrameStylizer

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0


class PipelineError(StylizerError):
    """A stage failed; the message names the frame and the cause."""


class _End:
    """End-of-stream sentinel."""


END = _End()


class FrameQueue:
    """A bounded queue that either blocks producers (files) or drops the oldest item (live)."""

    def __init__(self, maxsize: int, drop_oldest: bool) -> None:
        self.maxsize = max(1, maxsize)
        self.drop_oldest = drop_oldest
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._aborted = False

    def put(self, item, on_drop: Callable[[], None] | None = None) -> bool:
        """Add an item; False when the queue was aborted. The END sentinel is never dropped."""
        with self._cond:
            if item is END:
                pass  # the sentinel may exceed maxsize by one: it must neither wait nor push out a frame
            elif self.drop_oldest:
                while len(self._items) >= self.maxsize and not isinstance(self._items[0], _End):
                    self._items.popleft()
                    if on_drop:
                        on_drop()
            else:
                while len(self._items) >= self.maxsize and not self._aborted:
                    self._cond.wait()
            if self._aborted and item is not END:  # END still goes in: consumers must see it
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None):
        """The oldest item; END when aborted; None on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._aborted, timeout):
                return None
            if self._aborted and not self._items:
                return END
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def abort(self) -> None:
        """Wake every waiter; later puts fail and gets return what is left, then END."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


@dataclass
class PipelineConfig:
    """How to run: live or file semantics (None = the source's), limits, queue sizes."""

    live: bool | None = None
    queue_size: int = 4
    max_seconds: float | None = None
    max_frames: int | None = None
    snapshot_dir: Path = field(default_factory=Path.cwd)


@dataclass
class PipelineResult:
    """How a run ended."""

    frames_in: int
    frames_out: int
    reason: str  # "end of input", "quit", "interrupted", "time limit", "source lost: ...", "error"
    stats: PipelineStats
    snapshots: list[Path] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.reason == "end of input"


class Pipeline:
    """Runs one source through one stylizer into sinks (and optionally a window on this thread)."""

    def __init__(self, source: FrameSource, stylizer: FrameStylizer, sinks: list[Sink] | None = None,
                 window: WindowSink | None = None, config: PipelineConfig | None = None,
                 on_frame: Callable[[Frame, np.ndarray], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.source = source
        self.stylizer = stylizer
        self.sinks = list(sinks or [])
        self.window = window
        self.config = config or PipelineConfig()
        self.live = source.live if self.config.live is None else self.config.live
        self.on_frame = on_frame
        self.stats = PipelineStats()
        self.stop_event = stop or threading.Event()
        size = 1 if self.live else self.config.queue_size  # live: only the newest frame waits
        self._in = FrameQueue(size, drop_oldest=self.live)
        self._out = FrameQueue(self.config.queue_size, drop_oldest=self.live)
        self._display = FrameQueue(1, drop_oldest=True)
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._reason = ""
        self._lock = threading.Lock()
        self.frames_in = 0
        self.frames_out = 0
        self.snapshots: list[Path] = []

    @property
    def reason(self) -> str:
        """Why the run ended ("" while running)."""
        with self._lock:
            return self._reason

    # ----- control -----

    def stop(self, reason: str = "stopped") -> None:
        """Ask every stage to stop (any thread); the first reason given is kept."""
        with self._lock:
            if not self._reason:
                self._reason = reason
        self.stop_event.set()
        for q in (self._in, self._out, self._display):
            q.abort()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
        self.stop("error")

    # ----- stages -----

    def _read_loop(self) -> None:
        try:
            limit = self.config.max_frames
            deadline = time.perf_counter() + self.config.max_seconds if self.config.max_seconds else None
            while not self.stop_event.is_set():
                if limit is not None and self.frames_in >= limit:
                    self.stop("frame limit")
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    self.stop("time limit")
                    break
                start = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    lost = getattr(self.source, "lost_message", "")
                    with self._lock:
                        if not self._reason:
                            self._reason = f"source lost: {lost}" if lost else "end of input"
                    break
                self.frames_in += 1
                self.stats["read"].record(time.perf_counter() - start)
                if not self._in.put(frame, on_drop=self.stats["read"].drop):
                    break
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._in.put(END)

    def _stylize_loop(self) -> None:
        try:
            while True:
                frame = self._in.get()
                if frame is END or frame is None:
                    break
                start = time.perf_counter()
                try:
                    image = self.stylizer.process(frame.image)
                except Exception as exc:
                    self.stats["stylize"].error()
                    if not self.live:
                        raise PipelineError(f"frame {frame.index} failed: {exc}") from exc
                    log.warning("frame %d skipped: %s", frame.index, exc)
                    continue
                self.stats["stylize"].record(time.perf_counter() - start)
                if self.window is not None:  # nobody reads the display slot without a window
                    self._display.put((frame, image))
                if not self._out.put((frame, image), on_drop=self.stats["output"].drop):
                    break
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._out.put(END)

    def _output_loop(self) -> None:
        try:
            while True:
                item = self._out.get()
                if item is END or item is None:
                    break
                frame, image = item
                start = time.perf_counter()
                for sink in self.sinks:
                    sink.write(frame, image)
                self.frames_out += 1
                now = time.perf_counter()
                self.stats["output"].record(now - start)  # the sinks' own time; end-to-end is "latency"
                self.stats["latency"].record(now - frame.captured)
                if self.on_frame:
                    self.on_frame(frame, image)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._done.set()
            self._display.abort()  # wakes the display loop

    # ----- run -----

    def run(self) -> PipelineResult:
        """Run to the end on this thread (display here if any); raises PipelineError after cleanup on failure."""
        threads = [threading.Thread(target=fn, name=f"pipeline-{name}", daemon=True)
                   for name, fn in (("read", self._read_loop), ("stylize", self._stylize_loop),
                                    ("output", self._output_loop))]
        log.info("pipeline: %s → %s → %s", self.source.describe(), self.stylizer.state.backend,
                 ", ".join(s.name for s in self.sinks) or "no file sinks")
        try:
            for t in threads:
                t.start()
            if self.window is not None:
                self._display_loop()
            else:
                self._done.wait()
        except KeyboardInterrupt:
            self.stop("interrupted")
        finally:
            self.stop(self._reason or "end of input")
            for t in threads:
                t.join(JOIN_TIMEOUT_S)
                if t.is_alive():
                    log.warning("%s did not stop within %.0f s", t.name, JOIN_TIMEOUT_S)
            self._close_all()
        result = PipelineResult(self.frames_in, self.frames_out, self._reason, self.stats, self.snapshots)
        if self._error is not None:
            if isinstance(self._error, StylizerError):
                raise self._error
            raise PipelineError(f"{type(self._error).__name__}: {self._error}") from self._error
        return result

    def _close_all(self) -> None:
        complete = self._reason == "end of input"
        for sink in self.sinks:
            try:
                sink.close(complete)
            except Exception as exc:  # close every sink even when one fails; report the first failure
                log.error("closing %s failed: %s", sink.name, exc)
                if self._error is None:
                    self._error = exc
        try:
            self.source.close()
        finally:
            if self.window is not None:
                self.window.close()

    def _display_loop(self) -> None:
        window = self.window
        last: np.ndarray | None = None
        while not self._done.is_set():
            item = self._display.get(timeout=0.03)  # short: the window must keep pumping events
            if item is END:
                break
            if item is not None:
                last = item[1]
                shown = last
                if window.overlay:
                    extra = ""
                    recorders = [s for s in self.sinks if isinstance(s, RecorderSink)]
                    if recorders and recorders[0].recording:
                        extra = "REC"
                    shown = draw_overlay(last, overlay_lines(self.stylizer.state, self.stats.snapshot(), extra))
                binding = window.show(shown)
            else:
                binding = window.poll(1)
            if binding is not None and self._handle_key(binding, last):
                break

    def _handle_key(self, binding, last: np.ndarray | None) -> bool:
        """Apply a key; True when it means quit."""
        if apply_to_stylizer(binding, self.stylizer):
            return False
        action = binding.action
        if action is Action.QUIT:
            self.stop("quit")
            return True
        if action is Action.OVERLAY:
            self.window.overlay = not self.window.overlay
        elif action is Action.FULLSCREEN:
            self.window.toggle_fullscreen()
        elif action is Action.HELP:
            print(help_text(), flush=True)
        elif action is Action.SNAPSHOT and last is not None:
            path = save_snapshot(last, self.config.snapshot_dir)
            self.snapshots.append(path)
            print(f"snapshot {path}", flush=True)
        elif action is Action.RECORD:
            recorders = [s for s in self.sinks if isinstance(s, RecorderSink)]
            if recorders:
                print("recording" if recorders[0].toggle() else "recording stopped", flush=True)
            else:
                print("recording is not set up; start with --record OUT.mp4", flush=True)
        return False
