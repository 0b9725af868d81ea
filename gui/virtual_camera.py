"""Whether the virtual camera button can work here, and if not, why (its tooltip)."""

from __future__ import annotations

from realtime.errors import SinkError


def virtual_camera_status() -> tuple[bool, str]:
    """Open and close a tiny virtual camera (realtime.sinks.VirtualCameraSink) to find out."""
    from realtime.sinks import VirtualCameraSink

    try:
        VirtualCameraSink.check_available()
    except SinkError as exc:
        return False, f"Virtual camera unavailable: {exc}"
    return True, ""
