"""Inference backends, one per module, behind :class:`realtime.backends.base.Backend`."""
