"""Chunk planning at keyframes of real clips, and decoding exactly a chunk's frames (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.plan import MAX_WARMUP, index_video, plan_chunks, warmup_frames
from cluster.worker import ChunkFrames, decode_chunk


def _decoded_pts(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [f.pts for f in container.decode(container.streams.video[0])]


def _check_cover(plan, frames: int) -> None:
    assert plan[0].start == 0 and plan[-1].stop == frames
    assert all(a.stop == b.start for a, b in zip(plan, plan[1:]))


@pytest.mark.parametrize("name, frames", [("cutBunny.mp4", 240), ("ntu.mp4", 362)])
def test_index_matches_the_decoder(shared: Path, name: str, frames: int):
    """The packet index lists exactly the frames a decoder outputs (ntu.mp4's header claims 422; 60 are pre-roll)."""
    index = index_video(shared / "video" / name)
    assert list(index.pts) == _decoded_pts(shared / "video" / name)
    assert index.frames == frames


def test_far_apart_keyframes_cut_mid_gop(shared: Path):
    """cutBunny has keyframes at frames 0 and 235 only: cuts fall at the ideal frames, workers seek to frame 0."""
    index = index_video(shared / "video" / "cutBunny.mp4")
    assert index.keyframes == (0, 235)
    plan = plan_chunks(index, 4, warmup=5)
    _check_cover(plan, 240)
    assert [c.start for c in plan] == [0, 60, 120, 180]
    for chunk in plan[1:]:
        assert chunk.warmup == 5 and chunk.seek_pts == index.pts[0]
        assert chunk.decode_only == chunk.start - 5


def test_cuts_snap_to_nearby_keyframes(tmp_path: Path, write_gop_clip):
    index = index_video(write_gop_clip(tmp_path / "gop10.mp4", frames=96, gop=10, audio=False))
    assert index.keyframes == tuple(range(0, 96, 10))
    plan = plan_chunks(index, 4, warmup=0, min_frames=8)
    _check_cover(plan, 96)
    assert [c.start for c in plan] == [0, 20, 50, 70]  # ideal 24, 48, 72
    assert all(c.decode_only == 0 and c.seek_pts == c.start_pts for c in plan)
    warm = plan_chunks(index, 4, warmup=3, min_frames=8)
    assert [(c.warmup, c.decode_only) for c in warm] == [(0, 0), (3, 7), (3, 7), (3, 7)]


def test_large_gop_chunks_decode_exactly_their_frames(tmp_path: Path, write_gop_clip):
    """One keyframe in 90 variable-rate frames: every chunk still yields its warm-up and its own frames, in order."""
    clip = write_gop_clip(tmp_path / "gop1000.mp4", frames=90, gop=1000, durations_ms=(33, 50, 25, 42), audio=False)
    index = index_video(clip)
    assert index.keyframes == (0,)
    plan = plan_chunks(index, 3, warmup=4, min_frames=8)
    _check_cover(plan, 90)
    for chunk in plan:
        got = [n for n, _, _ in decode_chunk(str(clip), chunk, ChunkFrames.of(index, chunk))]
        assert got == list(range(chunk.start - chunk.warmup, chunk.stop))


def test_index_has_the_one_process_times_of_a_file_with_swapped_pts(tmp_path: Path):
    """Issue 21: a DivX-like file's pts swap in pairs; the index has VideoFileSource's repaired times, and a chunk
    cut between a swapped pair decodes exactly its frames (counted from its keyframe, checked by pts)."""
    from realtime.sources import VideoFileSource
    from tests.odd_clips import swapped_pts, which_frame

    clip = swapped_pts(tmp_path / "divx.mkv", frames=48)
    index = index_video(clip)
    source = VideoFileSource(clip)
    times = []
    while (frame := source.read()) is not None:
        times.append(frame.timestamp)
    assert list(index.times) == times and index.frames == 48
    plan = plan_chunks(index, 3, warmup=2, min_frames=8)
    _check_cover(plan, 48)
    assert all(c.key > 0 for c in plan[1:])  # the later chunks seek
    for chunk in plan:
        got = [(n, which_frame(image)) for n, image, _ in decode_chunk(str(clip), chunk, ChunkFrames.of(index, chunk))]
        assert got == [(n, n % 32) for n in range(chunk.start - chunk.warmup, chunk.stop)]  # the column wraps at 32


def test_warmup_follows_the_temporal_memory():
    assert warmup_frames("off", 0.6) == 0
    assert warmup_frames("hold", 0.0) == 0
    assert warmup_frames("hold", 0.6) == 13  # 0.6**13 < 0.5/255
    assert warmup_frames("hold", 0.8) == 28
    assert warmup_frames("hold", 1.0) == MAX_WARMUP
    from realtime.temporal.flow import FlowStage

    flow = FlowStage(0.85)  # one whole keyframe cycle: the chunk's first frame is not a restart
    assert warmup_frames("flow", 0.85) == flow.interval + flow.fade_frames + 1


def test_short_clip_is_one_chunk(tmp_path: Path, write_gop_clip):
    index = index_video(write_gop_clip(tmp_path / "short.mp4", frames=20, audio=False))
    assert len(plan_chunks(index, 8)) == 1
