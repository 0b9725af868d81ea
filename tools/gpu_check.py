"""Helpers of tools/gpu_check.sh: the 1080p test clip, and the one table of everything it measured."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import cv2


def make_clip(source: Path, out: Path, seconds: float, size: tuple[int, int] = (1920, 1080), fps: int = 24) -> int:
    """``seconds`` of ``source`` scaled to ``size`` (looped if shorter), written with OpenCV; the frame count."""
    capture = cv2.VideoCapture(str(source))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    frames, wanted = 0, round(seconds * fps)
    try:
        while frames < wanted:
            ok, frame = capture.read()
            if not ok:
                if frames == 0:
                    raise SystemExit(f"error: cannot read {source}")
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop a short source
                continue
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
            frames += 1
    finally:
        capture.release()
        writer.release()
    return frames


def table(out: Path) -> str:
    """One fixed-width table: bench rows (backend, precision, size, ms, fps or why not), the video, the tests."""
    rows = [f"{'what':10s} {'backend':64s} {'size':>9s} {'median ms':>10s} {'fps':>7s}  note", "-" * 116]
    for path in sorted(out.glob("bench_*.json")):
        data = json.loads(path.read_text())
        for r in data["results"]:
            if r["error"]:
                rows.append(
                    f"{'bench':10s} {r['backend'][:64]:64s} {r['size']:>9s} {'-':>10s} {'-':>7s}  "
                    f"unavailable: {r['error'][:90]}"
                )
            else:
                rows.append(
                    f"{'bench':10s} {r['backend'][:64]:64s} {r['size']:>9s} {r['median_ms']:10.1f} "
                    f"{r['fps']:7.1f}  {r['model']}"
                )
    video = out / "video.json"
    if video.is_file():
        v = json.loads(video.read_text())
        picked = v.get("picked") or "?"
        fps = v["frames"] / v["seconds"] if v["rc"] == 0 and v["seconds"] else float("nan")
        rows.append(
            f"{'video':10s} {picked[:64]:64s} {'1920x1080':>9s} {'-':>10s} {fps:7.1f}  "
            f"{v['frames']} frames end to end in {v['seconds']:.1f} s, exit {v['rc']}"
        )
    tests = out / "gpu_tests.log"
    if tests.is_file():
        summary = [line for line in tests.read_text().splitlines() if re.search(r"\d+ (passed|failed|skipped)", line)]
        rows.append(f"{'tests':10s} {(summary[-1].strip('= ') if summary else 'no summary: see gpu_tests.log')}")
    return "\n".join(rows)


def video_record(out: Path, log: Path, frames: int, seconds: float, rc: int) -> None:
    """video.json: frames, seconds, exit code and the backend ``auto`` picked (from the log)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    picked = re.findall(r"picked (.+?) \(", text)
    (out / "video.json").write_text(
        json.dumps({"frames": frames, "seconds": seconds, "rc": rc, "picked": picked[-1] if picked else ""})
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    clip = sub.add_parser("clip", help="write the 1080p test clip")
    clip.add_argument("source", type=Path)
    clip.add_argument("out", type=Path)
    clip.add_argument("--seconds", type=float, default=10.0)
    record = sub.add_parser("video", help="record the video run")
    record.add_argument("out", type=Path)
    record.add_argument("--log", type=Path, required=True)
    record.add_argument("--frames", type=int, required=True)
    record.add_argument("--seconds", type=float, required=True)
    record.add_argument("--rc", type=int, required=True)
    show = sub.add_parser("table", help="print the table")
    show.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "clip":
        print(make_clip(args.source, args.out, args.seconds))
    elif args.cmd == "video":
        video_record(args.out, args.log, args.frames, args.seconds, args.rc)
    else:
        print(table(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
