"""Fault tests: a `video` job killed (SIGTERM, SIGKILL) at a random frame, a full disk, a truncated source.

Real runs of ``main.py`` in a subprocess on a small generated clip with audio, MicroAST with the
real weights at the clip's 160x120. What must hold: whatever is on disk plays (PyAV opens and
decodes it) and holds every frame up to the last flushed fragment with the audio in sync, and a
file that existed before is never replaced by a partial one.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAMES, FPS, SIZE = 192, 24, (160, 120)  # 8 s of video: about 4 s of work, time to kill it


@pytest.fixture()
def rng(request) -> random.Random:
    """A generator seeded per test (or by STYLIZER_TEST_SEED); the seed is printed, so a failure shows it."""
    seed = int(os.environ.get("STYLIZER_TEST_SEED") or zlib.crc32(request.node.nodeid.encode()))
    print(f"random seed {seed}: rerun with STYLIZER_TEST_SEED={seed}")
    return random.Random(seed)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, write_clip) -> Path:
    return write_clip(tmp_path_factory.mktemp("faults") / "clip.mp4", frames=FRAMES, fps=FPS, size=SIZE)


@pytest.fixture(scope="module")
def reference(clip, tmp_path_factory) -> list[np.ndarray]:
    """Every frame of a complete run, to compare partial files with."""
    from main import main

    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    assert main(video_args(clip, out)) == 0
    return decode(out)["images"]


def video_args(clip: Path, out: Path) -> list[str]:
    return ["video", str(clip), "-o", str(out), "--style", "starry_night", "--style-size", "64", "--backend", "torch"]


def decode(path: Path) -> dict:
    """Frames (as images), their times, and the audio's end time; raises if the file does not play."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(audio=0) if p.size]
    return {
        "images": [f.to_ndarray(format="bgr24") for f in frames],
        "times": [float(f.time) for f in frames],
        "audio_start": min((float(p.pts * p.time_base) for p in packets), default=0.0),
        "audio_end": max((float((p.pts + p.duration) * p.time_base) for p in packets), default=0.0),
    }


def ctrl_c_as_at_a_terminal() -> None:
    """In the job: SIGINT's default action, as for a foreground program. A test run started in the background
    (`cmd &` in a script) ignores SIGINT, its children inherit that, and Python keeps it ignored, as it should."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_job(clip: Path, out: Path) -> subprocess.Popen:
    search = os.pathsep.join(str(Path(p).resolve()) for p in os.environ["STYLIZER_PATH"].split(os.pathsep))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), *video_args(clip, out)],
        cwd=out.parent,
        env=dict(os.environ, STYLIZER_PATH=search),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_at_a_terminal,
    )


def wait_for_fragments(part: Path, proc: subprocess.Popen, rng: random.Random) -> None:
    """Wait until the .part file holds a fragment or two, then a random part of a second more."""
    deadline = time.monotonic() + 120
    while not (part.exists() and part.stat().st_size > 40_000):
        assert proc.poll() is None, f"the job ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the job wrote nothing within two minutes"
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.8))


def assert_playable_prefix(path: Path, reference: list[np.ndarray], at_least: int = FPS) -> int:
    """``path`` plays, holds frames 0..n-1 of the complete run in order (n >= one fragment), audio in sync."""
    got = decode(path)
    n = len(got["images"])
    assert at_least <= n <= FRAMES, f"{path} holds {n} frames"
    index = [round(t * FPS) for t in got["times"]]
    assert got["times"] == pytest.approx([i / FPS for i in index], abs=1e-3)  # on the source's frame times
    # Frames 0, 1, 2... in order with no gap; after a SIGKILL the fragment cut (once a second, at any packet)
    # may fall inside a B-frame group, so up to 3 frames before the last one can be in the lost fragment.
    assert index[:-4] == list(range(n - 4)) and index == sorted(set(index)) and index[-1] - (n - 1) <= 3
    for k in (0, n // 2, n - 1):
        diff = np.abs(got["images"][k].astype(int) - reference[index[k]].astype(int)).mean()
        assert diff < 10.0, f"frame {index[k]} differs from the complete run's by {diff:.1f}"
    # In sync: both tracks keep the source's times, and they end together up to the muxer's interleaving
    # (after a SIGKILL a fragment may hold a few audio packets less than video: a ragged end, not a shift).
    assert got["audio_start"] == pytest.approx(0.0, abs=0.03)
    assert got["audio_end"] == pytest.approx(got["times"][-1] + 1 / FPS, abs=0.3)
    return n


@pytest.mark.parametrize("existing", [False, True], ids=["new output", "existing output"])
def test_sigterm_at_a_random_frame_keeps_a_playable_file_and_never_replaces_one(
    clip, reference, tmp_path, existing, rng
):
    out = tmp_path / "out.mp4"
    if existing:
        out.write_bytes(b"the user's earlier result")
    proc = start_job(clip, out)
    wait_for_fragments(out.with_name("out.mp4.part"), proc, rng)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    if existing:
        assert out.read_bytes() == b"the user's earlier result"
        kept = out.with_name("out.mp4.part")
        assert line.startswith("interrupted: ") and "out.mp4.part (out.mp4 existed and was left as it was)" in line
    else:
        kept = out
        assert line.startswith("interrupted: ") and line.endswith(f"kept in {out}")
        assert not out.with_name("out.mp4.part").exists()
    n = assert_playable_prefix(kept, reference, at_least=1)
    assert len(decode(kept)["times"]) == n and decode(kept)["times"][-1] == pytest.approx((n - 1) / FPS)
    assert f"{n} frames kept" in line  # the trailer was written: every frame the message counts is there
    assert oct(kept.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


@pytest.mark.parametrize("existing", [False, True], ids=["new output", "existing output"])
def test_sigkill_at_a_random_frame_leaves_a_playable_part_file_and_the_output_untouched(
    clip, reference, tmp_path, existing, rng
):
    out = tmp_path / "out.mp4"
    if existing:
        out.write_bytes(b"the user's earlier result")
    proc = start_job(clip, out)
    part = out.with_name("out.mp4.part")
    wait_for_fragments(part, proc, rng)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if existing:
        assert out.read_bytes() == b"the user's earlier result"
    else:
        assert not out.exists()
    assert_playable_prefix(part, reference)  # every frame up to the last flushed fragment


class FullDisk:
    """An output container whose disk fills after ``room`` video packets: every later write fails with ENOSPC."""

    def __init__(self, real, room: int) -> None:
        self._real, self.room = real, room

    def mux(self, packets):
        packets = packets if isinstance(packets, list) else [packets]
        self.room -= sum(1 for p in packets if p.stream.type == "video")
        if self.room < 0:
            raise av.error.OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._real.mux(packets)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_a_full_disk_ends_in_one_line_naming_the_disk_and_keeps_a_playable_file(clip, tmp_path, capsys, monkeypatch):
    from main import main

    real_open = av.open

    def open_on_a_small_disk(file, mode="r", **kwargs):
        container = real_open(file, mode, **kwargs)
        return FullDisk(container, room=40) if mode == "w" and str(file).endswith(".part") else container

    monkeypatch.setattr(av, "open", open_on_a_small_disk)
    out = tmp_path / "out.mp4"
    assert main(video_args(clip, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith(("error", "ERROR", "WARNING"))] == err[-1:]  # one line
    assert err[-1].startswith("error: no space left on the disk mounted at /") and "MB free" in err[-1]
    assert "frames kept in " + str(out) in err[-1]
    monkeypatch.undo()
    got = decode(out)  # playable: the frames the encoder had handed over before the disk filled
    index = [round(t * FPS) for t in got["times"]]
    assert 20 <= len(index) <= 40 and index[:-4] == list(range(len(index) - 4)) and index[-1] <= 41


def test_a_truncated_source_writes_its_good_frames_and_says_where_it_stopped(tmp_path, write_clip, capsys):
    from main import main

    clip = write_clip(tmp_path / "whole.mkv", frames=FRAMES, fps=FPS, size=SIZE, codec="ffv1", pix_fmt="yuv444p")
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 5])  # a download that stopped part-way
    with av.open(str(cut)) as c:
        good = sum(1 for _ in c.decode(video=0))
    assert 10 < good < FRAMES
    out = tmp_path / "out.mp4"
    main(video_args(cut, out))
    err = capsys.readouterr().err
    assert f"ended at frame {good}" in err and "truncated" in err
    assert len(decode(out)["images"]) == good


def test_ctrl_c_during_start_up_prints_no_traceback(tmp_path, clip):
    proc = start_job(clip, tmp_path / "out.mp4")
    # Wait for a known start-up point, not for a time: the backend line is logged once the input is open, the
    # .part file made and the model built, while the style is still being encoded (before any frame).
    seen = []
    for line in iter(proc.stderr.readline, ""):
        seen.append(line)
        if "backend torch: picked" in line:
            break
    else:
        pytest.fail(f"the job ended before its start-up line: {proc.wait(60)}, {''.join(seen)}")
    proc.send_signal(signal.SIGINT)
    masks = signal_masks(proc.pid)  # (SigIgn bit 2: SIGINT ignored, inherited; exit 0 after every frame)
    assert proc.wait(timeout=60) == 130, f"{masks}\n" + "".join(seen) + proc.stderr.read()
    stdout, stderr = proc.stdout.read(), "".join(seen) + proc.stderr.read()  # the pipes hold a few lines
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted")
    assert not (tmp_path / "out.mp4.part").exists()
    if not stdout:  # interrupted before the model was up (the usual case): no file was made
        assert not (tmp_path / "out.mp4").exists()


def signal_masks(pid: int) -> str:
    """The blocked, ignored and caught signal sets of ``pid`` and of this process, for a failure message."""

    def masks(p) -> str:
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError as exc:
            return str(exc)
        return " ".join(line.replace("\t", "") for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))

    return f"job: {masks(pid)}; test: {masks('self')}"


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
