"""The planner's packet-only index: on every kind of clip it either declines or equals the decoding index."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.packet_index import packet_scan
from cluster.plan import index_video, plan_chunks
from realtime.sources import scan_video
from tests import odd_clips

X264 = {"preset": "ultrafast", "bf": "2", "g": "12"}

CLIPS = {  # name → writer: the kinds in tests/odd_clips.py (as in test_odd_files) and a few more H.264/HEVC shapes
    "divx-swapped-pts.mkv": lambda p: odd_clips.swapped_pts(p, frames=40, audio=True),
    "divx-swapped-pts.ts": lambda p: odd_clips.swapped_pts(p, frames=40),
    "xvid-bframes.avi": lambda p: odd_clips.encoded_clip(p, "mpeg4", 40, {"bf": "2", "g": "12"}, audio="ac3"),
    "msmpeg4v3.avi": lambda p: odd_clips.encoded_clip(p, "msmpeg4", 40, {"g": "12"}, audio="ac3"),
    "cinepak.avi": lambda p: odd_clips.encoded_clip(p, "cinepak", 40, {"g": "12"}, audio=None, pix_fmt="rgb24"),
    "h264-bframes.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264),
    "h264-no-bframes.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, {**X264, "bf": "0"}),
    "h264-open-gop.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, {**X264, "x264-params": "open-gop=1"}),
    "h264-bframes.mkv": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264),
    "hevc-bframes.mp4": lambda p: odd_clips.encoded_clip(
        p, "libx265", 40, {"preset": "ultrafast", "bf": "2", "g": "12", "x265-params": "log-level=0"}
    ),
    "vfr.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264, durations=(40, 40, 80, 20)),
    "vfr-burst.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264, durations=(200, 1, 1, 40)),
    "phone-rotated.mp4": lambda p: odd_clips.encoded_clip(p, "libx264", 40, X264, rotation=90),
    "h264-adts.ts": lambda p: odd_clips.ts_with_adts(p, frames=40),
    "vp9-opus.webm": lambda p: odd_clips.encoded_clip(p, "libvpx-vp9", 40, {"g": "12"}, audio="libopus"),
    "size-change.ts": lambda p: odd_clips.size_change(p, ((96, 64), (64, 64)), frames=20),
}
DECLINED = {
    "divx-swapped-pts.mkv",
    "divx-swapped-pts.ts",
    "xvid-bframes.avi",
    "msmpeg4v3.avi",
    "cinepak.avi",
    "vp9-opus.webm",
    "size-change.ts",
}  # not H.264/HEVC, or a size change: decoded


def _same_plans(path: Path) -> None:
    """The fast index plans every chunk count and warm-up exactly as the decoding one does."""
    fast, slow = index_video(path), index_video(path, fast=False)
    assert fast == slow
    for chunks in (2, 3, 4, 7):
        for warmup in (0, 5):
            assert plan_chunks(fast, chunks, warmup, min_frames=8) == plan_chunks(slow, chunks, warmup, min_frames=8)


@pytest.mark.parametrize("name", list(CLIPS))
def test_fast_index_declines_or_equals_the_decoding_one(name: str, tmp_path: Path):
    clip = CLIPS[name](tmp_path / name)
    scan = packet_scan(clip)
    assert (scan is None) == (name in DECLINED)  # which path each kind takes is part of the contract
    if scan is not None:
        assert scan == scan_video(clip)  # frame count, every pts and time, keyframes, size, rate
    _same_plans(clip)


@pytest.mark.parametrize("name, frames", [("cutBunny.mp4", 240), ("ntu.mp4", 362)])
def test_fast_index_is_taken_for_plain_mp4_and_equals_decoding(shared: Path, name: str, frames: int):
    """Both real clips take the packet path (ntu.mp4 through its edit list's 60 discarded pre-roll packets)."""
    scan = packet_scan(shared / "video" / name)
    assert scan is not None and len(scan.pts) == frames
    assert scan == scan_video(shared / "video" / name)
    _same_plans(shared / "video" / name)


def test_stacked_pts_send_the_file_to_the_decoder(tmp_path: Path):
    """Two frames at one pts (a half-millisecond step truncated): BestEffortTimes moves one, so the packet path declines."""
    clip = odd_clips.encoded_clip(
        tmp_path / "stacked.mkv", "libx264", 30, X264, durations=(40, 40, 40, 0.5), audio=None
    )
    scan = scan_video(clip)
    assert len(set(scan.pts)) < len(scan.pts)  # the clip does hold a repeated pts
    assert packet_scan(clip) is None
    _same_plans(clip)


def test_a_last_chunk_with_frames_past_the_index_fails_loudly(tmp_path: Path):
    """An index short of the input's last frames (however it came about) stops the last chunk, never drops them."""
    from dataclasses import replace

    from cluster.worker import ChunkFrames, decode_chunk
    from realtime.errors import SourceError

    clip = odd_clips.encoded_clip(tmp_path / "in.mp4", "libx264", 40, X264, audio=None)
    index = index_video(clip)
    short = replace(index, pts=index.pts[:-3], times=index.times[:-3])
    last = plan_chunks(short, 2, min_frames=8)[-1]
    with pytest.raises(SourceError, match="frames after frame 36"):
        list(decode_chunk(str(clip), last, ChunkFrames.of(short, last)))
    whole = plan_chunks(index, 2, min_frames=8)[-1]
    assert len(list(decode_chunk(str(clip), whole, ChunkFrames.of(index, whole)))) == whole.frames


def test_h264_with_swapped_pts_and_no_b_frames_is_decoded(tmp_path: Path):
    """H.264 without B-frames outputs in decode order: pts swapped in pairs there are repaired, so no packet path."""
    from fractions import Fraction

    import av

    packets, _ = odd_clips._encode("libx264", range(30), options={"preset": "ultrafast", "bf": "0", "g": "12"})
    order = list(range(30))
    for k in range(3, 29, 3):
        order[k], order[k + 1] = order[k + 1], order[k]
    clip = tmp_path / "h264-swapped.ts"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("h264", rate=odd_clips.FPS)
        video.width, video.height = odd_clips.SIZE
        video.time_base = Fraction(1, odd_clips.FPS)
        for i, packet in enumerate(packets):
            packet.stream, packet.time_base = video, Fraction(1, odd_clips.FPS)
            packet.dts, packet.pts = i, order[i] + 1  # as odd_clips.swapped_pts, in H.264
            out.mux(packet)
    scan = scan_video(clip)
    assert list(scan.pts) != sorted(scan.pts)  # the decoder names them out of order
    assert packet_scan(clip) is None
    _same_plans(clip)
