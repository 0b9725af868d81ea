"""Which cameras open on this machine: a quick probe for ``doctor`` and for the error of a camera that does not.

Each index is opened in a daemon thread and must give one frame within the time left, so a driver that
hangs cannot hold the caller past its budget. OpenCV's own log lines are silenced while probing (it
prints a warning per index that is not there).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROBE_INDICES = range(5)
PROBE_BUDGET_S = 3.0


@dataclass(frozen=True)
class CameraInfo:
    """A camera that opened and gave a frame."""

    index: int
    width: int
    height: int
    fps: float

    def mode(self) -> str:
        rate = f"{self.fps:.0f} fps" if self.fps > 0 else "fps unknown"
        return f"{self.width}x{self.height}, {rate}"

    def describe(self) -> str:
        return f"camera {self.index} ({self.mode()})"


@contextlib.contextmanager
def quiet_opencv():
    """OpenCV's logging off for the duration (restored after)."""
    import cv2

    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _might_exist(index: int) -> bool:
    """On Linux a camera index is a /dev/videoN node: skip absent ones without asking OpenCV."""
    return not sys.platform.startswith("linux") or Path(f"/dev/video{index}").exists()


def _open(index: int, found: dict[int, CameraInfo]) -> None:
    import cv2

    cap = cv2.VideoCapture(index)
    try:
        if not cap.isOpened():
            return
        ok, image = cap.read()
        if ok and image is not None:
            found[index] = CameraInfo(index, image.shape[1], image.shape[0], float(cap.get(cv2.CAP_PROP_FPS) or 0.0))
    finally:
        cap.release()


def probe_cameras(
    indices=PROBE_INDICES, budget_s: float = PROBE_BUDGET_S, skip: frozenset[int] = frozenset()
) -> list[CameraInfo]:
    """The cameras among ``indices`` that open and give a frame, all within ``budget_s`` seconds."""
    found: dict[int, CameraInfo] = {}
    deadline = time.monotonic() + budget_s
    with quiet_opencv():
        for index in indices:
            if index in skip or not _might_exist(index):
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            worker = threading.Thread(target=_open, args=(index, found), daemon=True, name=f"probe-camera-{index}")
            worker.start()
            worker.join(left)  # a hung driver is left behind (daemon thread), never waited for
    return [found[i] for i in sorted(found)]


def cameras_hint(failed: int | str | None = None, budget_s: float = PROBE_BUDGET_S) -> str:
    """One clause naming the cameras that do open (other than ``failed``) and how to use a file instead."""
    from models.bundle import EXAMPLE_CLIP

    skip = frozenset({failed}) if isinstance(failed, int) else frozenset()
    cameras = probe_cameras(budget_s=budget_s, skip=skip)
    span = f"{PROBE_INDICES.start}-{PROBE_INDICES.stop - 1}"
    if cameras:
        opened = (
            "cameras that open: " + ", ".join(c.describe() for c in cameras) + f" (use --camera {cameras[0].index})"
        )
    else:
        opened = f"no camera opens on this machine (indices {span} probed)"
    return f"{opened}; or play a video file as a camera with --camera FILE (e.g. --camera {EXAMPLE_CLIP})"
