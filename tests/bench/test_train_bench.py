"""``bench train``: seconds per training step of a real task on real corpus images, per precision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.train import bench_train, format_results, precisions
from models.training.common import amp_dtype

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    for split, count in (("content", 3), ("style", 3)):
        (root / split).mkdir()
        for path in sorted((shared / "datasets" / split).glob("*.jpg"))[:count]:
            (root / split / path.name).symlink_to(path)
    return root / "content", root / "style"


def test_each_precision_times_the_same_first_step(corpus):
    results = bench_train("adain", *corpus, size=64, batch=2, steps=2)
    names = [r.name for r in results]
    assert names == list(precisions(torch.device("cpu")))  # fp32, then bf16 where the CPU has it
    assert names[0] == "fp32" and len(names) == (1 if amp_dtype(torch.device("cpu")) is None else 2)
    for r in results:
        assert len(r.seconds) == 2 and all(t > 0 for t in r.seconds)
    # the same weights on the same batch: the mixed precision's loss is the fp32 loss (bf16: ~3 digits)
    assert all(abs(r.first_loss - results[0].first_loss) <= 0.02 * results[0].first_loss for r in results)
    table = format_results("adain", 64, 2, "cpu", results)
    assert "fp32" in table and "1.00x" in table


def test_cli_prints_the_table_and_a_missing_folder_is_one_line(corpus, tmp_path):
    content, style = corpus
    base = [sys.executable, str(ROOT / "main.py"), "bench", "train", "adain", "--size", "64", "--batch", "2"]
    run = subprocess.run(
        [*base, "--content", str(content), "--style", str(style), "--steps", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "adain training step, batch 2 at 64 px on cpu" in run.stdout and "fp32" in run.stdout
    run = subprocess.run(
        [*base, "--content", str(tmp_path / "nope"), "--style", str(style)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "is not a folder" in run.stderr
    run = subprocess.run(
        [*base, "--content", str(content), "--style", str(style), "--device", "gpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "--device gpu is not one of" in run.stderr
