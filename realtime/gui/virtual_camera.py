"""Optional virtual camera output (pyvirtualcam): a probe for the button, and the sender."""

from __future__ import annotations

import numpy as np


def virtual_camera_status() -> tuple[bool, str]:
    """Whether a virtual camera can be opened here, and if not, why (for the button's tooltip)."""
    try:
        import pyvirtualcam
    except ImportError:
        return False, "Virtual camera needs pyvirtualcam: pip install pyvirtualcam"
    try:
        with pyvirtualcam.Camera(width=64, height=64, fps=30):
            pass
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().split(". ")[0] if str(exc).strip() else type(exc).__name__
        return False, f"No virtual camera: {first}. On Linux load v4l2loopback; elsewhere install OBS"
    return True, ""


class VirtualCamera:
    """Sends BGR frames to a virtual camera, opened on the first frame with that frame's size."""

    def __init__(self) -> None:
        self._cam = None
        self._size: tuple[int, int] | None = None

    def send(self, bgr: np.ndarray, fps: float) -> None:
        import pyvirtualcam

        size = (bgr.shape[1], bgr.shape[0])
        if self._cam is None or self._size != size:  # the device is fixed-size: reopen on a new size
            self.close()
            self._cam = pyvirtualcam.Camera(width=size[0], height=size[1], fps=fps,
                                            fmt=pyvirtualcam.PixelFormat.BGR)
            self._size = size
        self._cam.send(bgr)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
