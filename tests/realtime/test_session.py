"""The live session both front ends share: a generated clip with audio as the camera, real MicroAST weights."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from core.images import read_image
from models.styles import StyleImage
from realtime.backends.torch_backend import TorchBackend
from realtime.controls import KEY_MAP, Action, binding_for, binding_for_code, help_rows, help_text
from realtime.pipeline import Pipeline, PipelineConfig
from realtime.session import LiveSession, SessionConfig
from realtime.sinks import Sink
from realtime.sources import open_source
from realtime.stylizer import FrameStylizer, StylizerParams

FRAMES, FPS, SIZE = 36, 24, (160, 120)
WAIT_S = 120  # generous: a loaded 2-core machine is slow, and no assertion depends on speed


@pytest.fixture(scope="module")
def clip(tmp_path_factory, write_clip) -> Path:
    """1.5 s of a moving pattern with a 440 Hz tone."""
    return write_clip(tmp_path_factory.mktemp("session") / "clip.mp4", frames=FRAMES, fps=FPS, size=SIZE)


@pytest.fixture()
def stylizer(microast, shared):
    """MicroAST on PyTorch at 64 px with two styles, each frame alone (temporal off)."""
    styles = [StyleImage.load(shared / "images" / "styles" / name) for name in ("starry_night.jpg", "candy.jpg")]
    st = FrameStylizer(TorchBackend(microast), styles, StylizerParams(size=64, temporal="off"), style_size=64)
    yield st
    st.close()


def decode(path: Path) -> dict:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return {
        "images": [f.to_ndarray(format="bgr24") for f in frames],
        "times": [float(f.time) for f in frames],
        "audio": bool(packets),
        "audio_start": min((float(p.pts * p.time_base) for p in packets), default=None),
        "audio_end": max((float((p.pts + p.duration) * p.time_base) for p in packets), default=None),
    }


def test_a_file_as_camera_is_recorded_with_its_audio(clip, stylizer, tmp_path):
    take = tmp_path / "take.mp4"
    session = LiveSession(SessionConfig(source=str(clip), record=take))
    source = session.open()
    assert source.live and session.recorder.audio_from == clip
    result = session.run(stylizer)
    assert result.reason == "end of input"
    assert session.recorder.files == [take] and not take.with_name("take.mp4.part").exists()
    got = decode(take)
    assert result.frames_in == FRAMES and len(got["images"]) == result.frames_out >= 1  # live: drops allowed
    # The source's own frame times, counted from the take's first frame (frame 0, unless a busy machine dropped it).
    times = got["times"]
    assert times == pytest.approx([round(t * FPS) / FPS for t in times], abs=1e-3)
    assert times[-1] <= (FRAMES - 1) / FPS + 1e-3
    assert got["audio"], "the file's audio is recorded with its frames"
    assert got["audio_start"] == pytest.approx(0.0, abs=0.03)
    assert got["audio_end"] == pytest.approx(got["times"][-1] + 1 / FPS, abs=0.1)
    source_frames = decode(clip)["images"]
    last = got["images"][-1].astype(int)
    assert np.abs(last - source_frames[-1].astype(int)).mean() > 20  # stylised, not the input


def test_webcam_command_records_a_file_cameras_audio(clip, tmp_path, capsys):
    from main import main

    take = tmp_path / "live.mp4"
    code = main(
        [
            "webcam",
            "--camera",
            str(clip),
            "--no-window",
            "--record",
            str(take),
            "--style",
            "starry_night",
            "--size",
            "64",
            "--style-size",
            "64",
            "--backend",
            "torch",
            "--temporal",
            "off",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert f"recorded {take}" in capsys.readouterr().out
    got = decode(take)
    assert got["audio"] and got["audio_end"] == pytest.approx(got["times"][-1] + 1 / FPS, abs=0.1)


def test_snapshot_saves_the_newest_stylised_frame(clip, stylizer, tmp_path):
    session = LiveSession(SessionConfig(source=str(clip), snapshot_dir=tmp_path / "shots"))
    early = session.handle(binding_for("s"))
    assert early.failed and early.message == "no frame to save yet"
    session.run(stylizer)
    outcome = session.handle(binding_for("s"))  # the session has ended: its last frame is still the newest
    assert not outcome.failed and outcome.message == f"snapshot {outcome.path}"
    assert outcome.path.parent == tmp_path / "shots" and session.snapshots == [outcome.path]
    assert np.array_equal(read_image(outcome.path), session.latest().image)  # PNG: the very pixels shown


def test_one_key_map_for_both_front_ends(clip, stylizer, tmp_path):
    """OpenCV key codes and Qt key texts give the same bindings; the session carries the actions out."""
    for b in KEY_MAP:
        assert binding_for_code(ord(b.key)) == b  # cli/window.py
        assert binding_for(b.key) == b  # gui/main_window.py (QKeyEvent.text())
    labels = [key for key, _ in help_rows()]
    assert all((b.label or b.key) in labels or b.action is Action.SELECT_STYLE or b.key == "=" for b in KEY_MAP)
    assert help_text().count("\n") + 1 == len(labels)

    session = LiveSession(SessionConfig(source=str(clip), loop=True, recording=tmp_path / "take.mp4"))
    session.start(stylizer)
    try:
        first = session.latest(timeout=WAIT_S)
        assert first is not None and first.state.params.style_index == 0
        assert session.handle(binding_for("n")).handled
        assert wait_for(session, lambda out: out.state.params.style_index == 1).state.style == "candy"
        outcome = session.handle(binding_for("r"))
        assert outcome.handled and outcome.message == "recording" and session.recording
        wait_for(session, lambda out: session.recorder.files)  # the take started at a frame
        for key in "ofh":  # overlay, fullscreen, help: the window's own
            assert not session.handle(binding_for(key)).handled
        assert session.handle(binding_for("q")).handled
    finally:
        result = session.finish()
    assert result.reason == "quit"
    assert session.recorder.files == [tmp_path / "take.mp4"] and decode(tmp_path / "take.mp4")["images"]


def wait_for(session: LiveSession, condition, limit: int = 200):
    """The first newer output for which ``condition(output)`` holds (each wait is for a new frame)."""
    seq = 0
    for _ in range(limit):
        out = session.latest(after=seq, timeout=WAIT_S)
        assert out is not None, "no new frame"
        if condition(out):
            return out
        seq = out.seq
    raise AssertionError(f"not within {limit} frames")


class BlockedSink(Sink):
    """A sink whose first write waits until released: an encoder that has fallen behind."""

    name = "blocked encoder"

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.written = 0

    def write(self, frame, image) -> None:
        self.entered.set()
        self.release.wait(WAIT_S)
        self.written += 1


def test_the_display_never_waits_for_a_sink(clip, stylizer):
    sink = BlockedSink()
    pipeline = Pipeline(open_source(str(clip), as_camera=True, loop=True), stylizer, [sink], PipelineConfig(live=True))
    pipeline.start()
    try:
        assert sink.entered.wait(WAIT_S)
        seq = pipeline.latest(timeout=WAIT_S).seq
        for _ in range(5):  # new frames keep reaching latest() while the sink has not returned once
            out = pipeline.latest(after=seq, timeout=WAIT_S)
            assert out is not None and out.seq > seq
            seq = out.seq
        assert sink.written == 0
    finally:
        sink.release.set()
        pipeline.stop("quit")
        pipeline.finish()
    assert sink.written >= 1
