"""source → stylizer → sinks, one thread per stage, small bounded queues, one clean shutdown path.

Live sources use drop-oldest queues (latency stays bounded, drops are counted); file sources use
blocking queues (back-pressure, nothing lost): the policy follows the source kind. The engine
knows nothing about windows or keys: a front end calls ``start()``, reads ``latest()``, sends
commands to the stylizer and sinks, and ends with ``stop()`` + ``finish()`` (or just ``run()``).
Quit, window close, Ctrl-C, end of input, a lost camera and errors all end the same way: the stop
event is set, queues are woken, threads joined with timeouts, sinks finalised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.errors import StylizerError
from realtime.errors import SinkError
from realtime.sinks import Sink
from realtime.sources import Frame, FrameSource
from realtime.stats import PipelineStats
from realtime.stylizer import FrameStylizer, StylizerState

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


@dataclass(frozen=True)
class Output:
    """One stylised frame as a front end sees it: ``seq`` counts outputs, so a reader can wait for a newer one."""

    seq: int
    frame: Frame  # the input (uint8 BGR at source size, index, times)
    image: np.ndarray  # the stylised frame, same size
    state: StylizerState | None = None  # the stylizer's settings this frame was made with


class OutputSlot:
    """The newest output only; readers wait for one newer than what they have."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Output | None = None
        self._closed = False

    def put(self, frame: Frame, image: np.ndarray, state: StylizerState | None = None) -> None:
        with self._cond:
            seq = self._item.seq + 1 if self._item is not None else 1
            self._item = Output(seq, frame, image, state)
            self._cond.notify_all()

    def get(self, after: int = 0, timeout: float | None = None) -> Output | None:
        """The newest output if its seq is above ``after`` (waiting up to ``timeout`` s), else None."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._item is not None and self._item.seq > after), timeout)
            item = self._item
            return item if item is not None and item.seq > after else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class PipelineConfig:
    """How to run: live or file semantics (None = the source's), limits, queue sizes."""

    live: bool | None = None
    queue_size: int = 4
    max_seconds: float | None = None
    max_frames: int | None = None


@dataclass
class PipelineResult:
    """How a run ended."""

    frames_in: int
    frames_out: int
    reason: str  # "end of input", "quit", "interrupted", "time limit", "frame limit", "source lost: ...", "error"
    stats: PipelineStats
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.reason == "end of input"


class Pipeline:
    """Runs one source through one stylizer into sinks; any front end reads ``latest()``."""

    def __init__(
        self,
        source: FrameSource,
        stylizer: FrameStylizer,
        sinks: list[Sink] | None = None,
        config: PipelineConfig | None = None,
        on_frame: Callable[[Frame, np.ndarray], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.stylizer = stylizer
        self.sinks = list(sinks or [])
        self.config = config or PipelineConfig()
        self.live = source.live if self.config.live is None else self.config.live
        self.on_frame = on_frame  # every output frame, in the output thread, after the sinks
        self.on_warning = on_warning  # a skipped frame or a failed optional sink (live sessions go on)
        self.stats = PipelineStats()
        self.stop_event = stop or threading.Event()
        size = 1 if self.live else self.config.queue_size  # live: only the newest frame waits
        self._in = FrameQueue(size, drop_oldest=self.live)
        self._out = FrameQueue(self.config.queue_size, drop_oldest=self.live)
        self._latest = OutputSlot()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._reason = ""
        self._lock = threading.Lock()
        self.stats.stages["keyframe"] = stylizer.keyframe_stats  # network runs, beside the frames shown
        self._threads: list[threading.Thread] = []
        self._finished: PipelineResult | None = None
        self._warnings: list[str] = []
        self.frames_in = 0
        self.frames_out = 0

    @property
    def reason(self) -> str:
        """Why the run ended ("" while running)."""
        with self._lock:
            return self._reason

    @property
    def done(self) -> bool:
        """True once the last output has been written (or the run failed)."""
        return self._done.is_set()

    def latest(self, after: int = 0, timeout: float | None = None) -> Output | None:
        """The newest stylised frame with ``seq > after``, waiting up to ``timeout`` s; None if there is none."""
        return self._latest.get(after, timeout)

    # ----- control -----

    def start(self) -> None:
        """Start the stage threads and return at once."""
        if self._threads:
            return
        self.stylizer.set_live(self.live)  # applied before the first frame
        log.info(
            "pipeline: %s → %s → %s",
            self.source.describe(),
            self.stylizer.state.backend,
            ", ".join(s.name for s in self.sinks) or "no file sinks",
        )
        self._threads = [
            threading.Thread(target=fn, name=f"pipeline-{name}", daemon=True)
            for name, fn in (("read", self._read_loop), ("stylize", self._stylize_loop), ("output", self._output_loop))
        ]
        for t in self._threads:
            t.start()

    def stop(self, reason: str = "stopped") -> None:
        """Ask every stage to stop (any thread); the first reason given is kept, except that the end of the input
        is not the end of a file run while frames read are still on their way to the sinks: a stop then (Ctrl-C
        in a job's last second) names itself, so a short output is never reported as complete."""
        with self._lock:
            draining = self._reason == "end of input" and not self.live and self.frames_out < self.frames_in
            if not self._reason or (draining and reason != "end of input"):
                self._reason = reason
        self.stop_event.set()
        for q in (self._in, self._out):
            q.abort()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end by itself; True when it has."""
        return self._done.wait(timeout)

    def finish(self) -> PipelineResult:
        """Stop, join the threads, close sinks and source; raises PipelineError after cleanup on failure."""
        if self._finished is None:
            self.stop(self._reason or "end of input")
            for t in self._threads:
                try:
                    t.join(JOIN_TIMEOUT_S)
                except RuntimeError:  # not started (Ctrl-C came while start() started them): nothing to join
                    continue
                if t.is_alive():
                    log.warning("%s did not stop within %.0f s", t.name, JOIN_TIMEOUT_S)
            self._close_all()
            self._latest.close()
            self._finished = PipelineResult(
                self.frames_in, self.frames_out, self._reason, self.stats, list(self._warnings)
            )
        if self._error is not None:
            if isinstance(self._error, StylizerError):
                raise self._error
            raise PipelineError(f"{type(self._error).__name__}: {self._error}") from self._error
        return self._finished

    def run(self) -> PipelineResult:
        """Start, wait for the end (Ctrl-C ends it as "interrupted"), finish."""
        try:
            self.start()
            while not self._done.wait(0.25):  # a timed wait lets Ctrl-C through on the main thread
                pass
        except KeyboardInterrupt:
            self.stop("interrupted")
        return self.finish()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
        self.stop("error")

    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        if not self._warnings or self._warnings[-1] != text:  # say a repeated failure once
            self._warnings.append(text)
            if self.on_warning:
                self.on_warning(text)

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
                if frame.pass_start:  # the source was reopened: what the stage holds is from before
                    self.stylizer.reset_temporal()
                start = time.perf_counter()
                try:
                    image = self.stylizer.process(frame.image)
                except Exception as exc:
                    self.stats["stylize"].error()
                    if not self.live:
                        raise PipelineError(f"frame {frame.index} failed: {exc}") from exc
                    self._warn(f"frame {frame.index} skipped: {exc}")  # a live session goes on
                    continue
                self.stats["stylize"].record(time.perf_counter() - start)
                # Commands apply at the start of process(), so this state is the one the frame was made with.
                # The slot is filled before the sinks: a display never waits behind the recorder's encoder.
                self._latest.put(frame, image, self.stylizer.state)
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
                    self._write(sink, frame, image)
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
            self._latest.close()  # wakes a front end waiting for a frame

    def _write(self, sink: Sink, frame: Frame, image: np.ndarray) -> None:
        try:
            sink.write(frame, image)
        except SinkError as exc:
            if not sink.optional:
                raise
            sink.fail(exc)  # a recording or virtual camera that fails turns itself off; the session goes on
            self._warn(f"{sink.name} stopped: {exc}")

    def _close_all(self) -> None:
        complete = self._reason == "end of input"
        for sink in self.sinks:
            try:
                sink.close(complete)
            except Exception as exc:  # close every sink even when one fails; report the first failure
                log.error("closing %s failed: %s", sink.name, exc)
                if self._error is None:
                    self._error = exc
        self.source.close()
