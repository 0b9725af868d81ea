"""core.sizes (the one size parser) and core.images.resize_short (the one resize by short side)."""

import numpy as np
import pytest

from cli.video import parse_out_size
from core.errors import InputError
from core.images import resize_short
from core.sizes import FrameSize, parse_short_side, parse_size


def test_short_side_and_out_size_parse_through_core():
    assert parse_short_side("auto") == "auto" and parse_short_side("0") == 0 and parse_short_side("360") == 360
    for bad in ("-1", "abc", "1.5", ""):
        with pytest.raises(InputError, match="takes auto or a short side in px"):
            parse_short_side(bad)
    assert parse_out_size(None) is None and parse_out_size("640x360") == (640, 360)
    assert parse_out_size("10000x16") == (10000, 16)  # --out-size has no upper bound (the encoder says)
    with pytest.raises(InputError, match="--out-size '640' must be WIDTHxHEIGHT"):
        parse_out_size("640")
    with pytest.raises(InputError, match="at least 16 px"):
        parse_out_size("640x8")
    with pytest.raises(InputError, match="even sides"):
        parse_out_size("641x360")
    assert parse_size("1920X1080") == FrameSize(1920, 1080)


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (333, 500), (1080, 1920), (101, 37)])
def test_resize_short_gives_the_short_side_exactly(shape):
    frame = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for short in (16, 160, 256, 720):
        out = resize_short(frame, short)
        assert min(out.shape[:2]) == short
        long_side = round(max(shape) * short / min(shape))
        assert max(out.shape[:2]) == long_side
        # the engine's form never upscales: a short side at or above the frame's returns the frame itself
        engine = resize_short(frame, short, upscale=False)
        if short >= min(shape):
            assert engine is frame
        else:
            assert engine.shape == out.shape and np.array_equal(engine, out)
    assert resize_short(frame, 0) is frame and resize_short(frame, min(shape)) is frame
