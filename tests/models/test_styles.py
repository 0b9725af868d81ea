"""Style images by name and the style-code cache."""

from __future__ import annotations

import pytest
import torch

from core.errors import InputError
from models.registry import create_model
from models.styles import StyleCodeCache, StyleImage, find_style


def test_find_style_by_name_and_clear_error_for_unknown(store, style_path):
    assert find_style("starry_night", store).name == "starry_night.jpg"
    assert find_style(str(style_path), store) == style_path
    with pytest.raises(InputError, match="unknown style 'no_such_painting'"):
        find_style("no_such_painting", store)


def test_code_cache_hits_per_model_and_never_mixes_models(store, style_path):
    torch.manual_seed(0)
    official = create_model("microast", store=store).eval()
    other = type(official)().eval()  # same network, other weights: its codes must differ
    style = StyleImage.load(style_path)
    cache = StyleCodeCache()
    first = cache.get(official, style, 96)
    assert cache.get(official, style, 96) is first  # a hit: encoded once
    second = cache.get(other, style, 96)
    assert second is not first and not torch.equal(second.tensors["mean"], first.tensors["mean"])
    assert cache.get(official, style, 128) is not first  # the style size is part of the key
    assert len(cache) == 3
