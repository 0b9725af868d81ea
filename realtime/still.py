"""A still image through a backend: what ``main.py image`` runs for feed-forward models.

The style code is encoded (and blended) in PyTorch once, as for video; the image then goes through
the backend's per-frame graph like one video frame (uint8 BGR in and out), so ``--backend auto``
gives a still image the same fast path as a video. Masked two-style images stay on PyTorch
(``models.still.stylize_still``): their blend happens inside the network, which the exported graphs
do not take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.base import StyleModel
from models.images import read_image, resize_longest
from models.still import StillOptions, blended_code, check_alpha, style_codes
from models.styles import StyleCodeCache
from realtime.backends.base import Backend
from realtime.stylizer import preserve_color_bgr


def stylize_still_on(
    backend: Backend,
    model: StyleModel,
    content_path: Path,
    style_paths: list[Path],
    options: StillOptions,
    cache: StyleCodeCache | None = None,
) -> np.ndarray:
    """Stylise one image on ``backend``; returns uint8 BGR at the content's working size."""
    check_alpha(options.alpha)
    frame = resize_longest(read_image(content_path), options.size)
    code = blended_code(style_codes(model, style_paths, options, cache), options)
    out = backend.run(frame, code, options.alpha)
    if options.preserve_color:
        out = preserve_color_bgr(out, frame)
    return out
