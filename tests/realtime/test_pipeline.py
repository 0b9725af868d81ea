"""The pipeline end to end on a generated clip with audio: file mode keeps everything, live mode drops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from models.registry import create_model
from models.styles import StyleImage
from bench.pipeline import IdentityBackend
from realtime.backends.torch_backend import TorchBackend
from realtime.pipeline import Pipeline, PipelineConfig
from realtime.sinks import VideoFileSink
from realtime.sources import PacedVideoSource, VideoFileSource, open_source
from realtime.stylizer import FrameStylizer

FRAMES, FPS, SIZE, RATE = 48, 24, (160, 120), 48000


def probe(path: Path) -> dict:
    """Decoded frame count, rate, last video time and audio duration of a file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rate = float(v.average_rate)
        times = [float(f.time) for f in c.decode(v)]
    with av.open(str(path)) as c:
        audio = c.streams.audio[0] if c.streams.audio else None
        a_end = (
            max((float((p.pts + p.duration) * p.time_base) for p in c.demux(audio) if p.size), default=0.0)
            if audio
            else None
        )
    return {"frames": len(times), "rate": rate, "last": times[-1] if times else None, "audio_end": a_end}


def first_frames(path: Path, n: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for _, f in zip(range(n), c.decode(video=0))]


class DelayedBackend(IdentityBackend):
    """A backend that returns the frame after a fixed delay: queue, drop and stop tests need a slow stage,
    not a network (the stylising itself is tested with MicroAST elsewhere)."""

    def __init__(self, model, delay: float) -> None:
        super().__init__(model)
        self.delay = delay
        self.calls = 0

    def run(self, frame, code, alpha=1.0):
        self.calls += 1
        time.sleep(self.delay)
        return super().run(frame, code, alpha)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, write_clip) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=FRAMES, fps=FPS, size=SIZE, audio_rate=RATE)


@pytest.fixture(scope="module")
def model():
    return create_model("microast")


@pytest.fixture(scope="module")
def styles(shared) -> list[StyleImage]:
    return [StyleImage.load(shared / "images" / "styles" / n) for n in ("starry_night.jpg", "candy.jpg")]


def test_video_cli_keeps_frames_timing_and_audio(clip, tmp_path, capsys):
    from main import main

    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), "-o", str(out), "--style", "starry_night", "--style-size", "128"]) == 0
    src, res = probe(clip), probe(out)
    assert res["frames"] == src["frames"] == FRAMES
    assert res["rate"] == pytest.approx(FPS)
    assert res["last"] == pytest.approx(src["last"], abs=1e-3)
    assert res["audio_end"] == pytest.approx(src["audio_end"], abs=0.03)
    # Stylised, not copied: the frames differ strongly from the input.
    diff = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(first_frames(clip, 5), first_frames(out, 5))]
    assert min(diff) > 20


def test_file_mode_loses_no_frame_with_a_slow_stylizer(clip, model, styles):
    backend = DelayedBackend(model, delay=0.02)
    source = VideoFileSource(clip)
    seen: list[int] = []
    pipeline = Pipeline(
        source,
        FrameStylizer(backend, styles[:1]),
        config=PipelineConfig(queue_size=2),
        on_frame=lambda f, img: seen.append(f.index),
    )
    result = pipeline.run()
    assert result.reason == "end of input"
    assert seen == list(range(FRAMES))
    assert backend.calls == FRAMES
    assert result.stats["read"].drops == 0


def test_live_mode_drops_stale_frames_and_bounds_latency(clip, model, styles):
    delay = 0.15  # slower than the clip's 24 fps: frames must be dropped, not queued
    stop = threading.Event()
    source = PacedVideoSource(clip, stop)
    pipeline = Pipeline(source, FrameStylizer(DelayedBackend(model, delay), styles[:1]), stop=stop)
    result = pipeline.run()
    snap = result.stats.snapshot()
    assert result.reason == "end of input"
    assert result.frames_in == FRAMES
    assert snap["read"].drops > 0
    assert result.frames_out + snap["read"].drops + snap["output"].drops == FRAMES
    # Latency stays near one stylise time (plus at most one waiting frame), never the clip's length.
    assert snap["latency"].p95_ms < 1000 * (3 * snap["stylize"].p95_ms / 1000 + 0.1)
    assert snap["latency"].p95_ms < 1000 * FRAMES / FPS / 2


def test_stop_mid_stream_leaves_a_playable_partial_file(clip, model, styles, tmp_path):
    out = tmp_path / "partial.mp4"
    source = VideoFileSource(clip)
    sink = VideoFileSink(out, source.rate, audio_from=clip)
    holder: dict = {}

    def on_frame(frame, image):
        if frame.index == 11:
            holder["p"].stop("interrupted")

    holder["p"] = pipeline = Pipeline(
        source,
        FrameStylizer(TorchBackend(model), styles[:1]),
        [sink],
        config=PipelineConfig(queue_size=2),
        on_frame=on_frame,
    )
    result = pipeline.run()
    assert result.reason == "interrupted"
    info = probe(out)
    assert 12 <= info["frames"] == result.frames_out < FRAMES
    # Audio is cut where the video ends, so the partial file stays in sync.
    assert info["audio_end"] == pytest.approx(info["last"] + 1 / FPS, abs=0.05)


def test_corrupt_or_missing_input_gives_one_line_error(tmp_path, capsys):
    from main import main

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert main(["video", str(bad), "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "bad.mp4" in err and "\n" not in err
    assert not (tmp_path / "o.mp4").exists()
    assert main(["video", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_output_equal_to_input_is_refused(clip, capsys):
    from main import main

    assert main(["video", str(clip), "-o", str(clip)]) == 2
    assert "is the input" in capsys.readouterr().err


def test_open_source_kinds(clip, tmp_path, style_folder):
    from realtime.errors import SourceError

    assert not open_source(clip).live
    paced = open_source(clip, as_camera=True)
    assert paced.live and paced.fps == pytest.approx(FPS)
    paced.close()
    folder = open_source(style_folder)
    assert not folder.live and sum(1 for _ in iter(folder.read, None)) == 3
    with pytest.raises(SourceError, match="nothing.mp4"):
        open_source(tmp_path / "nothing.mp4")


def test_latest_gives_the_newest_output_and_wakes_at_the_end(clip, model, styles):
    stop = threading.Event()
    pipeline = Pipeline(PacedVideoSource(clip, stop), FrameStylizer(DelayedBackend(model, 0.0), styles[:1]), stop=stop)
    pipeline.start()
    first = pipeline.latest(timeout=60)
    assert first is not None and first.seq == 1
    newer = pipeline.latest(after=first.seq, timeout=60)
    assert newer is not None and newer.seq > first.seq and newer.frame.index > first.frame.index
    np.testing.assert_array_equal(newer.image, newer.frame.image)  # the identity backend
    assert pipeline.wait(timeout=120)
    last = pipeline.latest()
    started = time.perf_counter()
    assert pipeline.latest(after=last.seq, timeout=600) is None  # the run is over: no waiting for nothing
    assert time.perf_counter() - started < 60  # not waited out (the test would time out first)
    assert pipeline.finish().reason == "end of input"


def test_live_session_survives_failing_frames(clip, model, styles):
    class FlakyBackend(DelayedBackend):
        def run(self, frame, code, alpha=1.0):
            if self.calls % 3 == 1:
                self.calls += 1
                raise RuntimeError("simulated inference failure")
            return super().run(frame, code, alpha)

    stop, warnings = threading.Event(), []
    pipeline = Pipeline(
        PacedVideoSource(clip, stop),
        FrameStylizer(FlakyBackend(model, 0.0), styles[:1]),
        on_warning=warnings.append,
        stop=stop,
    )
    result = pipeline.run()
    assert result.reason == "end of input"
    assert result.stats["stylize"].errors > 3 and result.frames_out > FRAMES // 3
    assert warnings and "simulated inference failure" in warnings[0]


def test_looping_source_plays_again_with_increasing_times(clip):
    from realtime.sources import LoopingSource

    source = open_source(clip, loop=True)
    assert isinstance(source, LoopingSource)
    frames = [source.read() for _ in range(FRAMES + 5)]
    source.close()
    assert [f.index for f in frames] == list(range(FRAMES + 5))
    times = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[FRAMES] == pytest.approx(FRAMES / FPS, abs=1e-3)  # the second pass continues the clock
    assert [f.pass_start for f in frames].index(True) == FRAMES
    assert frames[FRAMES].media_time == pytest.approx(0.0) and frames[FRAMES].position == 0.0
    np.testing.assert_array_equal(frames[FRAMES].image, frames[0].image)
    assert not isinstance(open_source(clip, loop=False), LoopingSource)


def test_interrupt_after_the_last_read_is_not_a_complete_run(clip, model, styles):
    """Ctrl-C while the last frames are still in the queues (the reader is done) ends as interrupted, not as a
    complete run holding fewer frames than the input (exit 0 with a short file)."""
    holder: dict = {}
    reader_done = threading.Event()

    def on_frame(frame, image):
        if frame.index == 2:
            deadline = time.monotonic() + 120
            while holder["p"].reason != "end of input":  # every frame read, most still queued
                assert time.monotonic() < deadline, "the reader never reached the end"
                time.sleep(0.01)
            reader_done.set()
            holder["p"].stop("interrupted")

    holder["p"] = pipeline = Pipeline(
        VideoFileSource(clip),
        FrameStylizer(DelayedBackend(model, delay=0.05), styles[:1]),
        config=PipelineConfig(queue_size=FRAMES + 2),
        on_frame=on_frame,
    )
    result = pipeline.run()
    assert reader_done.is_set()
    assert result.frames_in == FRAMES and result.frames_out < FRAMES
    assert result.reason == "interrupted" and not result.complete


def test_ctrl_c_while_the_threads_start_ends_as_interrupted(clip, model, styles, monkeypatch):
    """Ctrl-C lands between two Thread.start calls (seen once in 20 tries of `video` at 15 ms after start-up):
    the run ends as interrupted, not with 'cannot join thread before it is started'."""
    real_start = threading.Thread.start

    def start(thread):
        if thread.name == "pipeline-stylize":
            raise KeyboardInterrupt
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    pipeline = Pipeline(VideoFileSource(clip), FrameStylizer(DelayedBackend(model, delay=0.0), styles[:1]))
    result = pipeline.run()
    assert result.reason == "interrupted" and not result.complete
