"""``bench models``: measured rows for torch and ONNX Runtime, the table and the JSON file."""

from __future__ import annotations

import json
import re

import torch

from bench.models import BenchConfig, format_table, run_benchmarks, write_json
from export.microast_graph import TUNED_VERSION
from core.sizes import FrameSize


def test_bench_models_small(shared, tmp_path):
    torch.set_num_threads(2)
    config = BenchConfig(
        models=("microast",),
        backends=("torch", "onnxruntime:plain", "onnxruntime:tuned", "onnxruntime", "tensorrt"),
        sizes=(FrameSize(96, 64),),
        precision="fp32",
        device="cpu",
        warmup=1,
        iters=3,
        cache_dir=tmp_path / "cache",
    )
    results = run_benchmarks(config)
    measured = [r for r in results if not r.error]
    assert [r.backend.split()[0] for r in measured] == ["torch", "onnxruntime", "onnxruntime", "onnxruntime"]
    assert measured[1].backend.endswith("plain graph") and measured[2].backend.endswith(f"{TUNED_VERSION} graph")
    assert re.search(rf"{TUNED_VERSION}\+nchwc\d+ graph$", measured[3].backend)  # what the app runs
    for r in measured:
        assert r.weights == "official" and r.size == "96x64" and r.iters == 3
        assert (
            0 < r.median_ms <= r.p95_ms and abs(r.fps * r.median_ms / 1000 - 1) < 0.01
        )  # both are rounded for the table
        assert r.memory_kind.startswith(("peak RSS delta", "RSS delta")) and r.peak_mem_mb is not None
    failed = [r for r in results if r.error]
    assert len(failed) == 1 and "tensorrt" in failed[0].backend  # reported, not fatal
    table = format_table(results)
    assert "unavailable" in table and "the speed of torch eager" in table
    assert f"{TUNED_VERSION} takes" in table and f"{TUNED_VERSION}+nchwc" in table
    assert "the time of the plain graph" in table
    path = tmp_path / "bench.json"
    write_json(results, path, config)
    data = json.loads(path.read_text())
    assert data["machine"]["torch"] == torch.__version__
    assert [r["backend"] for r in data["results"]][:3] == [r.backend for r in results][:3]


def test_bench_backend_names_are_checked():
    import pytest

    from bench.models import parse_backends
    from core.errors import InputError

    assert parse_backends("torch, onnxruntime:plain,onnxruntime") == ("torch", "onnxruntime:plain", "onnxruntime")
    for bad in ("tflite", "torch:plain", "onnxruntime:fast", ""):
        with pytest.raises(InputError, match="unknown backend"):
            parse_backends(bad)
