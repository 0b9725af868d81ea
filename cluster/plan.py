"""Split a video into chunks for the workers: at keyframes where they fall near the ideal cut, with warm-up.

The index comes from the engine's own decoder (``realtime.sources.scan_video``: every frame in
the order ``VideoFileSource`` gives it, with the same best-effort times, without converting a
pixel), so the plan lists exactly the frames and times the one-process run has, whatever the
file's own pts say (pairs swapped in a DivX AVI, duplicates, an edit list's pre-roll). Decoding
costs about a hundredth of stylising; for plain H.264/HEVC files ``cluster.packet_index`` reads
the same index from the packets, 10-20x quicker. A chunk is a range of those frames; its worker seeks to
the keyframe at or before its first warm-up frame, decodes from there (counting frames, checked
against the index's pts), drops what comes before the warm-up, runs the warm-up frames through
the stylizer (building up temporal state) without keeping them, and then writes exactly the
chunk's frames at the index's times.

Cuts go to the keyframe nearest the ideal (equal-length) cut when one lies within a quarter of a
chunk of it, so a worker decodes few frames it does not need. Clips whose keyframes are far apart
(phone video, a large GOP: ``cutBunny.mp4`` has two in 240 frames) are cut mid-GOP instead; the
worker then decodes, and throws away, the frames from the keyframe before: decoding costs a few
milliseconds a frame, stylising a hundred times more, so balanced chunks matter more.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


SNAP = 0.25  # a keyframe within this fraction of a chunk's length of the ideal cut becomes the cut
MIN_CHUNK = 24  # frames: shorter chunks cost more in warm-up and start-up than they gain in balance
MAX_WARMUP = 90  # frames: the most a temporal stage is given to settle before a chunk starts
RESIDUAL = 0.5 / 255  # warm-up until the missing history weighs less than half a grey level


@dataclass(frozen=True)
class VideoIndex:
    """The frames of a video's first video stream as the engine decodes them: pts, times, keyframes, size."""

    path: Path
    time_base: Fraction
    pts: tuple[int | None, ...]  # every decodable frame's pts as the decoder gave it (names it; may be out of order)
    keyframes: tuple[int, ...]  # indices into ``pts`` of the frames a decoder can start at
    times: tuple[float, ...] = ()  # best-effort presentation time of every frame (s): the one-process run's
    size: tuple[int, int] = (0, 0)  # the first frame's upright size: every frame is fitted to it
    resized: int = 0  # frames of another size (a stream that changes size mid-way)
    rate: Fraction = Fraction(30)  # the frame rate the writer is given (as in the one-process run)

    @property
    def frames(self) -> int:
        return len(self.pts)

    def time(self, index: int) -> float:
        """Presentation time of frame ``index`` in seconds (as ``VideoFileSource`` gives it)."""
        return self.times[index] if self.times else float(self.pts[index] * self.time_base)


@dataclass(frozen=True)
class Chunk:
    """Frames ``start``..``stop - 1`` (presentation order), preceded by ``warmup`` discarded frames."""

    index: int
    start: int
    stop: int
    warmup: int
    seek_pts: int  # pts of the keyframe the worker seeks to (at or before the first warm-up frame)
    # The *_pts below name frames for people reading job.json; the worker goes by frame numbers.
    first_pts: int  # pts of the first warm-up frame (or of ``start`` without warm-up)
    start_pts: int
    last_pts: int  # pts of frame ``stop - 1``
    decode_only: int  # frames decoded after the seek and dropped before the warm-up

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def key(self) -> int:
        """The frame number of the keyframe the worker seeks to."""
        return self.start - self.warmup - self.decode_only

    @property
    def name(self) -> str:
        return f"chunk-{self.index:04d}"

    def describe(self, index: VideoIndex) -> str:
        return (
            f"chunk {self.index} (frames {self.start}-{self.stop - 1}, "
            f"{index.time(self.start):.2f}-{index.time(self.stop - 1):.2f} s)"
        )


def index_video(path: str | Path, fast: bool = True) -> VideoIndex:
    """Every frame the engine's decoder gives: its pts, best-effort time and whether it is a keyframe.

    ``fast`` reads that from the packets where ``cluster.packet_index`` can show it is the same
    (a plain H.264/HEVC file: 20-40x quicker) and decodes every frame otherwise.
    """
    from cluster.packet_index import packet_scan
    from realtime.sources import scan_video

    path = Path(path)
    scan = (packet_scan(path) if fast and path.is_file() else None) or scan_video(path)
    # A keyframe without a pts cannot be sought to; the first frame is always a start.
    keys = tuple(i for i, (key, pts) in enumerate(zip(scan.keyframes, scan.pts)) if key and pts is not None)
    if not keys or keys[0] != 0:
        keys = (0,) + keys
    return VideoIndex(path, scan.time_base, scan.pts, keys, scan.times, scan.size, scan.resized, scan.rate)


def warmup_frames(mode: str = "off", strength: float = 0.0) -> int:
    """Frames a chunk starts early so its temporal stage is in the state it has inside one long run.

    ``off`` keeps nothing between frames: none. ``hold`` blends the previous output in with weight
    at most ``strength``, so the history a chunk misses weighs ``strength**n`` after n frames: the
    warm-up is the n at which that is below half a grey level (13 frames at 0.6, 28 at 0.8). ``flow``
    also carries a keyframe for ``interval`` frames and fades the next one in over ``fade_frames``:
    a chunk starts only after one whole keyframe cycle, so its first frame is not a restart (55 frames
    at the default 0.85). At most ``MAX_WARMUP``.
    """
    if mode == "off" or strength <= 0.0:
        return 0
    from realtime.temporal import create_stage

    stage = create_stage(mode, strength)
    try:
        cycle = int(getattr(stage, "interval", 0) or 0) + int(getattr(stage, "fade_frames", 0) or 0)
    finally:
        stage.close()
    s = min(strength, 0.999)
    memory = math.ceil(math.log(RESIDUAL) / math.log(s))
    return min(MAX_WARMUP, max(memory, cycle + 1 if cycle else 0))


def plan_chunks(index: VideoIndex, chunks: int, warmup: int = 0, min_frames: int = MIN_CHUNK) -> list[Chunk]:
    """Cut ``index`` into about ``chunks`` chunks of equal length, at keyframes near the ideal cuts."""
    n = index.frames
    count = max(1, min(chunks, n // max(1, min_frames)))
    length = n / count
    keys = index.keyframes
    cuts = [0]
    for k in range(1, count):
        ideal = round(k * length)
        i = bisect.bisect_left(keys, ideal)
        near = min((keys[j] for j in (i - 1, i) if 0 <= j < len(keys)), key=lambda f: abs(f - ideal))
        cut = near if abs(near - ideal) <= SNAP * length else ideal
        if cut - cuts[-1] >= max(1, min_frames // 2) and n - cut >= max(1, min_frames // 2):
            cuts.append(cut)
    cuts.append(n)
    plan = []
    for i, (start, stop) in enumerate(zip(cuts, cuts[1:])):
        w = min(warmup, start)
        first = start - w
        key = keys[bisect.bisect_right(keys, first) - 1]
        plan.append(
            Chunk(
                index=i,
                start=start,
                stop=stop,
                warmup=w,
                seek_pts=index.pts[key] or 0,
                first_pts=index.pts[first] or 0,
                start_pts=index.pts[start] or 0,
                last_pts=index.pts[stop - 1] or 0,
                decode_only=first - key,
            )
        )
    return plan
