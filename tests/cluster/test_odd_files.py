"""Issues 21 and 22: ``--workers 2`` gives the same frames, times and audio as one process on real-world kinds of file.

Each clip (``tests/odd_clips.py``) is cut into four chunks, so three of them seek; the output is
lossless (``--crf 0``) and the temporal stage off, so one process and the cluster must agree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.job import ClusterConfig, run_job
from cluster.worker import StylizerSpec
from realtime.stylizer import StylizerParams
from realtime.video_writer import VideoOptions
from tests import odd_clips

ROOT = Path(__file__).resolve().parents[2]
X264 = {"preset": "ultrafast", "bf": "2", "g": "12"}

CLIPS = {  # name → writer; what PyAV cannot write is said in the README (packed-bitstream DivX)
    "divx-swapped-pts.mkv": lambda p: odd_clips.swapped_pts(p, frames=40, audio=True),
    "xvid-bframes.avi": lambda p: odd_clips.encoded_clip(p, "mpeg4", 40, {"bf": "2", "g": "12"}, audio="ac3"),
    "msmpeg4v3.avi": lambda p: odd_clips.encoded_clip(p, "msmpeg4", 40, {"g": "12"}, audio="ac3"),
    "cinepak.avi": lambda p: odd_clips.encoded_clip(p, "cinepak", 40, {"g": "12"}, audio=None, pix_fmt="rgb24"),
    "h264-bframes.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264),
    "vfr.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264, durations=(40, 40, 80, 20)),
    "phone-rotated.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264, rotation=90),
    "h264-adts.ts": lambda p: odd_clips.ts_with_adts(p, frames=40),
    "vp9-opus.webm": lambda p: odd_clips.encoded_clip(p, "libvpx-vp9", 40, {"g": "12"}, audio="libopus"),
    "size-change.ts": lambda p: odd_clips.size_change(p, ((96, 64), (64, 64)), frames=20),
}


@pytest.fixture(scope="module")
def spec() -> StylizerSpec:
    return StylizerSpec.prepare("microast", ["starry_night"], backend="torch", params=StylizerParams(temporal="off"))


@pytest.mark.parametrize("name", list(CLIPS))
def test_two_workers_equal_one_process(name: str, tmp_path: Path, ray_cluster, media, spec):
    from main import main

    clip = CLIPS[name](tmp_path / name)
    suffix = ".mkv" if name.endswith(".webm") else ".mp4"
    one, two = tmp_path / f"one{suffix}", tmp_path / f"two{suffix}"
    args = ["--style", "starry_night", "--backend", "torch", "--temporal", "off", "--crf", "0"]
    assert main(["video", str(clip), "-o", str(one), *args]) == 0
    config = ClusterConfig(workers=2, chunks_per_worker=2, min_chunk=8)
    report = run_job(clip, two, spec, VideoOptions(crf=0), config, say=lambda _: None)
    assert report.chunks == 4
    t_one, im_one = media.decoded(one)
    t_two, im_two = media.decoded(two)
    assert len(t_one) == len(t_two) == report.frames
    assert t_two == t_one
    assert media.psnr(im_one, im_two) >= 40.0
    assert media.audio_packets(two) == media.audio_packets(one)


def test_deterministic_chunk_errors_are_not_retried(tmp_path: Path, ray_cluster):
    from cluster.job import ClusterError

    clip = odd_clips.encoded_clip(tmp_path / "in.mp4", frames=32, options=X264, audio=None)
    bad = StylizerSpec.prepare(
        "microast", ["starry_night"], backend="torch", params=StylizerParams(temporal="off", style_index=5)
    )
    with pytest.raises(ClusterError, match=r"InputError: style 6 does not exist.*not retried") as caught:
        run_job(
            clip,
            tmp_path / "out.mp4",
            bad,
            VideoOptions(),
            ClusterConfig(workers=2, retries=3, min_chunk=8, chunks_per_worker=2),
            say=lambda _: None,
        )
    assert not re.search(r"tried \d+ times", str(caught.value))


SIGTERM_JOB = """
import os, signal, sys
import cluster.job as job

real = job.WorkFolder.save

def save_then_term(self, chunk, result):  # the first finished chunk: the job is surely running under Ray
    real(self, chunk, result)
    os.kill(os.getpid(), signal.SIGTERM)

job.WorkFolder.save = save_then_term
from main import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_under_ray_ends_with_130_and_keeps_the_work_folder(tmp_path: Path):
    """Ray's own SIGTERM handler (exit 1 with a stack dump) must not replace ours."""
    clip = odd_clips.encoded_clip(tmp_path / "in.mp4", frames=64, options=X264, audio=None)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            SIGTERM_JOB,
            "video",
            str(clip),
            "-o",
            str(out),
            "--style",
            "starry_night",
            "--backend",
            "torch",
            "--temporal",
            "off",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 130, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1] == "interrupted" and "Traceback" not in run.stderr
    said = (run.stdout + run.stderr).splitlines()  # the job says it through the progress bar
    assert any(line.startswith("interrupted: ") and "run the same command again to resume" in line for line in said)
    assert (tmp_path / "out.mp4.work" / "job.json").is_file() and not out.exists()
    assert not (tmp_path / "out.mp4.part").exists()
