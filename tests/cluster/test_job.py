"""Cluster jobs on a local 2-CPU Ray: equal to the one-process run, audio in sync, resume, a killed worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cluster.job import ClusterConfig, run_job
from cluster.worker import StylizerSpec
from realtime.stylizer import StylizerParams
from realtime.video_writer import VideoOptions

VFR = (33, 50, 25, 42)  # ms between frames, cycled: a variable-rate input


@pytest.fixture(scope="module")
def spec() -> StylizerSpec:
    return StylizerSpec.prepare("microast", ["starry_night"], backend="torch", params=StylizerParams(temporal="off"))


def _quiet(_line: str) -> None:
    pass


def test_two_workers_equal_one_process(tmp_path: Path, ray_cluster, write_gop_clip, media):
    """--workers 2 vs one process, --temporal off, lossless codec: same frames, same VFR times, same audio."""
    from main import main

    clip = write_gop_clip(tmp_path / "in.mp4", frames=72, gop=1000, durations_ms=VFR)
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    common = ["--style", "starry_night", "--backend", "torch", "--temporal", "off", "--crf", "0"]
    assert main(["video", str(clip), "-o", str(one), *common]) == 0
    assert main(["video", str(clip), "-o", str(two), *common, "--workers", "2"]) == 0
    t_one, im_one = media.decoded(one)
    t_two, im_two = media.decoded(two)
    t_in, _ = media.decoded(clip)
    assert len(t_two) == len(t_one) == 72
    assert t_two == t_one == t_in
    assert media.psnr(im_one, im_two) >= 40.0
    audio_in = [p for p in media.audio_packets(clip) if p[0] >= 0]  # both drop the AAC priming packet
    assert media.audio_packets(two) == media.audio_packets(one) == audio_in  # every packet, at its time: in sync
    assert not (tmp_path / "two.mp4.work").exists() and not (tmp_path / "two.mp4.part").exists()


def test_resume_after_interruption(tmp_path: Path, ray_cluster, write_gop_clip, media, spec):
    clip = write_gop_clip(tmp_path / "in.mp4", frames=96, gop=12)
    out = tmp_path / "out.mkv"
    config = ClusterConfig(workers=2, chunks_per_worker=3, min_chunk=8)
    work = tmp_path / "out.mkv.work"

    def interrupt(done: int, total: int) -> None:
        if len(list(work.glob("chunk-*.json"))) >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(clip, out, spec, VideoOptions(), config, interrupt, say=_quiet)
    kept = len(list(work.glob("chunk-*.json")))
    assert kept >= 2 and not out.exists() and not (tmp_path / "out.mkv.part").exists()
    report = run_job(clip, out, spec, VideoOptions(), config, say=_quiet)
    assert report.resumed == kept and report.chunks == 6
    assert sum(w.chunks for w in report.workers.values()) == 6 - kept
    times, _ = media.decoded(out)
    assert times == media.decoded(clip)[0]
    assert not work.exists()


def _busy_worker_pids() -> list[int]:
    """Processes running a chunk now: Ray titles them ``ray::ChunkWorker.run``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::ChunkWorker.run"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker process through /proc")
def test_killed_worker_is_retried(tmp_path: Path, ray_cluster, write_gop_clip, media, spec):
    clip = write_gop_clip(tmp_path / "in.mp4", frames=96, gop=24, size=(160, 96))
    out = tmp_path / "out.mp4"
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if not killed:
            for pid in _busy_worker_pids()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    report = run_job(
        clip,
        out,
        spec,
        VideoOptions(),
        ClusterConfig(workers=2, chunks_per_worker=2, min_chunk=8),
        kill_one,
        say=_quiet,
    )
    assert killed, "no worker was seen running a chunk"
    times, _ = media.decoded(out)
    assert times == media.decoded(clip)[0]  # every frame, at its time
    assert sum(w.frames for w in report.workers.values()) == 96
    assert sum(w.restarts for w in report.workers.values()) >= 1


def test_workers_without_ray_say_how_to_install(tmp_path: Path, write_gop_clip, monkeypatch, capsys):
    import sys

    from main import main

    clip = write_gop_clip(tmp_path / "in.mp4", frames=8, audio=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0] and "[cluster]" in err[0]


def test_a_chunk_failing_for_good_is_named(tmp_path: Path, ray_cluster, write_gop_clip):
    """A stylizer that cannot run (style 6 of 1) fails every chunk: the error names them and why; chunks stay."""
    from cluster.job import ClusterError

    clip = write_gop_clip(tmp_path / "in.mp4", frames=48, gop=12, audio=False)
    bad = StylizerSpec.prepare(
        "microast", ["starry_night"], backend="torch", params=StylizerParams(temporal="off", style_index=5)
    )
    out = tmp_path / "out.mp4"
    with pytest.raises(
        ClusterError,
        match=r"chunk 0 \(frames 0-23, 0\.00-0\.9\d s\): InputError: style 6 does not "
        r"exist.*not retried",
    ):
        run_job(
            clip,
            out,
            bad,
            VideoOptions(),
            ClusterConfig(workers=2, retries=1, chunks_per_worker=1, min_chunk=8),
            say=_quiet,
        )
    assert not out.exists() and (tmp_path / "out.mp4.work" / "job.json").is_file()
