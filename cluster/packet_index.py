"""The planner's fast path: the decoder's frame list read from the packets, where they show it is the same.

``scan_video`` decodes every frame (0.6-2.6 ms a frame) so that the plan lists exactly the frames
and times of the one-process run. For a plain file the packets already say it all: the decoder
outputs one frame per packet, in pts order, each named by its packet's pts, keyframes where the
packets are keyframes, all of the stream's size. ``packet_scan`` checks each of those conditions
and returns ``None`` (decode instead) at the first doubt:

- a codec other than H.264/HEVC (MPEG-4 part 2 and friends output in decode order whatever the pts);
- a packet without pts, dts that do not increase, or two packets with one pts (the repair would change times);
- decode-order pts that go back in a stream the decoder says has no B-frames (swapped pairs);
- the first packet not a keyframe, or a packet shown before it (leading frames the decoder may drop);
- a keyframe the decoder does not flag as one, or frames of another size or rotation: only the
  keyframes are decoded (``skip_frame=NONKEY``), which costs a few milliseconds, and a size
  change in H.264/HEVC needs a new parameter set, which only a keyframe activates;
- any time ``BestEffortTimes`` would change (too close to the one before).

Packets the demuxer marks to be discarded (an edit list's pre-roll) make no frame, as in the decoder.
The one thing taken on trust is that an H.264/HEVC decoder's output order (picture order count) is
the pts order, as every muxer writes it. A file that still decodes differently (pts against the
picture order, corrupt data) is caught by the workers, which check every
frame's pts against the plan and stop with an error.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from realtime.sources import VideoScan, frame_period, open_video, stream_rate
from realtime.timestamps import BestEffortTimes

CODECS = ("h264", "hevc")  # decoders that output in pts order (by picture order count), checked on real files


def packet_scan(path: str | Path) -> VideoScan | None:
    """``scan_video``'s result from the packets (and decoded keyframes) of ``path``; ``None`` where it might differ."""
    import av

    with open_video(Path(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name not in CODECS or stream.time_base is None:
            return None
        decoder = stream.codec_context
        decoder.skip_frame = "NONKEY"  # only keyframes are decoded: their flags, sizes and rotation
        reorders = bool(decoder.has_b_frames)
        shown, keys, decoded = [], set(), []
        first_pts, last_dts, last_pts = None, None, None
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # the demuxer's end-of-stream marker
                pts, dts = packet.pts, packet.dts
                if pts is None or (dts is not None and last_dts is not None and dts <= last_dts):
                    return None  # (Matroska gives no dts: the decoder does not need them)
                if first_pts is None:
                    if not packet.is_keyframe:
                        return None
                    first_pts = pts
                elif pts < first_pts and not packet.is_discard:
                    return None
                if not reorders and last_pts is not None and pts <= last_pts:
                    return None
                last_dts, last_pts = dts if dts is not None else last_dts, pts
                if not packet.is_discard:
                    shown.append(pts)
                    if packet.is_keyframe:
                        keys.add(pts)
                if packet.is_keyframe:
                    decoded += [
                        (f.pts, bool(f.key_frame), f.width, f.height, f.rotation) for f in decoder.decode(packet)
                    ]
            decoded += [(f.pts, bool(f.key_frame), f.width, f.height, f.rotation) for f in decoder.decode(None)]
        except av.FFmpegError:
            return None  # let the decoding scan meet the problem and report it
        if not shown or len(set(shown)) != len(shown):
            return None
        if {pts for pts, key, *_ in decoded if key} != keys or {pts for pts, *_ in decoded} - keys:
            return None
        if len({(w, h, r) for _, _, w, h, r in decoded}) != 1 or (decoded[0][2], decoded[0][3]) != (
            decoder.width,
            decoder.height,
        ):
            return None
        pts = tuple(sorted(shown))
        times_of = BestEffortTimes(
            (SimpleNamespace(pts=p, dts=None) for p in pts), stream.time_base, frame_period(stream)
        )
        times = tuple(t for _, t in times_of)
        if times_of.repairs:
            return None
        _, _, width, height, rotation = decoded[0]
        size = (height, width) if round(rotation / 90) % 2 else (width, height)
        return VideoScan(stream.time_base, stream_rate(stream), pts, times, tuple(p in keys for p in pts), size, 0)
