"""Per-stage statistics: frames, fps, mean and p95 latency, drops; thread-safe."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StageSnapshot:
    """The numbers of one stage at one moment."""

    name: str
    frames: int
    drops: int
    errors: int
    fps: float  # over the recent window
    mean_ms: float  # recent latency (stage time, or end-to-end for the output stage)
    p95_ms: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class StageStats:
    """Counts frames, drops and errors of one stage and keeps a window of recent latencies."""

    def __init__(self, name: str, window: int = 240) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._latency: deque[float] = deque(maxlen=window)
        self._times: deque[float] = deque(maxlen=window)
        self.frames = 0
        self.drops = 0
        self.errors = 0

    def record(self, latency_s: float) -> None:
        with self._lock:
            self.frames += 1
            self._latency.append(latency_s)
            self._times.append(time.perf_counter())

    def drop(self, n: int = 1) -> None:
        with self._lock:
            self.drops += n

    def error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self) -> StageSnapshot:
        with self._lock:
            lat = np.array(self._latency, dtype=np.float64)
            times = list(self._times)
            frames, drops, errors = self.frames, self.drops, self.errors
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        mean = float(lat.mean() * 1e3) if lat.size else 0.0
        p95 = float(np.percentile(lat, 95) * 1e3) if lat.size else 0.0
        return StageSnapshot(self.name, frames, drops, errors, fps, mean, p95)


class PipelineStats:
    """The stages of one pipeline run: read, stylize, write, plus end-to-end latency."""

    STAGES = ("read", "stylize", "output", "latency")

    def __init__(self) -> None:
        self.stages = {name: StageStats(name) for name in self.STAGES}
        self.started = time.perf_counter()

    def __getitem__(self, name: str) -> StageStats:
        return self.stages[name]

    def snapshot(self) -> dict[str, StageSnapshot]:
        return {name: s.snapshot() for name, s in self.stages.items()}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def summary(self) -> str:
        """One line for the end of a run: frames shown, network runs (keyframes), latency, drops."""
        s = self.snapshot()
        keyframes = s.get("keyframe")
        done, elapsed = s["output"].frames, max(self.elapsed(), 1e-9)
        line = f"shown {done} frames in {elapsed:.1f} s ({done / elapsed:.1f} fps)"
        if keyframes is not None:
            line += (
                f"; stylised {keyframes.frames} keyframes ({keyframes.frames / elapsed:.1f} fps, "
                f"{keyframes.mean_ms:.0f} ms each)"
            )
        return (
            line + f"; latency {s['latency'].mean_ms:.0f} ms mean / {s['latency'].p95_ms:.0f} ms p95; "
            f"per frame {s['stylize'].mean_ms:.0f} ms; dropped {s['read'].drops + s['output'].drops}; "
            f"errors {s['stylize'].errors}"
        )
