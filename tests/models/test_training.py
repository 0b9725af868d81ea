"""The training loop on the AdaIN task: losses fall, resume is exact, outputs are written, errors are clear."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import InputError
from models.training.common import CHECKPOINT_NAME, TrainConfig, create_task, read_loss_log, train
from models.training.data import PairDataset, StepSampler, list_images

SIZE, BATCH = 64, 2


@pytest.fixture(scope="module")
def corpus(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A handful of training images from shared/datasets, linked into private folders."""
    root = tmp_path_factory.mktemp("corpus")
    for split, src, count in (("content", "content", 6), ("style", "style", 4)):
        folder = root / split
        folder.mkdir()
        for path in sorted((shared / "datasets" / src).glob("*.jpg"))[:count]:
            (folder / path.name).symlink_to(path)
    return root / "content", root / "style"


def make_config(corpus: tuple[Path, Path], out: Path, shared: Path, **kw) -> TrainConfig:
    images = shared / "images"
    base = dict(
        content_dir=corpus[0],
        style_dir=corpus[1],
        out=out,
        iters=12,
        batch=BATCH,
        size=SIZE,
        log_every=1,
        sample_every=0,
        num_workers=0,
        checkpoint_minutes=60.0,
        eval_content=(images / "content" / "chicago.jpg",),
        eval_style=(images / "styles" / "starry_night.jpg",),
    )
    base.update(kw)
    return TrainConfig(**base)


def test_losses_fall_and_every_output_is_written(corpus, shared, tmp_path):
    from models.adain import AdaIN
    from core.images import load_image, read_image

    # two images per folder keep the batch-to-batch spread small enough to see the trend in 10 steps
    small = tmp_path / "small"
    for folder in corpus:
        (small / folder.name).mkdir(parents=True)
        for path in list_images(folder, folder.name)[:2]:
            (small / folder.name / path.name).symlink_to(path.resolve())
    config = make_config((small / "content", small / "style"), tmp_path / "run", shared, lr=1e-3, iters=10)
    task, config = create_task("adain", config)
    exported = train(task, config)

    rows = read_loss_log(tmp_path / "run" / "losses.csv")
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert all(r["seconds"] > 0 for r in rows) and rows[-1]["seconds"] > rows[0]["seconds"]
    first = sum(r["total"] for r in rows[:3]) / 3
    last = sum(r["total"] for r in rows[-3:]) / 3
    assert last < 0.75 * first, f"total loss did not fall: first 3 {first:.3g}, last 3 {last:.3g}"

    grid = read_image(tmp_path / "run" / "samples" / "step_0000010.png")
    assert grid.shape[:2] == (2 * (SIZE + 8), 2 * (SIZE + 8))  # header row/column + one pair, 4 px borders

    assert exported == tmp_path / "run" / "adain.safetensors" and exported.stat().st_size < 10e6
    model = AdaIN.from_files({"decoder": exported})
    # the export is the weights' moving average, which the checkpoint keeps beside the last step's weights
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert state["ema_updates"] == 10
    trained = task.trainable().state_dict()
    assert any(not torch.equal(state["ema"][k], trained[k]) for k in trained), "the average is the last step"
    for key, value in model.decoder.state_dict().items():
        torch.testing.assert_close(value, state["ema"][key].half().float())
    content = load_image(shared / "images" / "content" / "chicago.jpg", 70)
    with torch.no_grad():
        out = model.stylize(
            content, model.encode_style(load_image(shared / "images" / "styles" / "starry_night.jpg", 64))
        )
    assert out.shape == content.shape and torch.isfinite(out).all()


def test_resume_gives_identical_weights(corpus, shared, tmp_path):
    straight_task, straight = create_task("adain", make_config(corpus, tmp_path / "straight", shared, iters=4))
    train(straight_task, straight)

    half_task, half = create_task("adain", make_config(corpus, tmp_path / "split", shared, iters=2))
    assert train(half_task, half) == tmp_path / "split" / "adain.safetensors"
    # a worker process this time, and a disturbed global RNG: the checkpoint and the step plan must decide
    resumed_task, resumed_config = create_task(
        "adain", make_config(corpus, tmp_path / "split", shared, iters=4, resume=tmp_path / "split", num_workers=1)
    )
    torch.manual_seed(123)
    train(resumed_task, resumed_config)

    a = torch.load(tmp_path / "straight" / CHECKPOINT_NAME, weights_only=True)
    b = torch.load(tmp_path / "split" / CHECKPOINT_NAME, weights_only=True)
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    assert a["ema_updates"] == b["ema_updates"] == 4
    for key, value in a["optimizer"]["state"].items():
        assert torch.equal(value["exp_avg"], b["optimizer"]["state"][key]["exp_avg"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    rows = read_loss_log(tmp_path / "split" / "losses.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r["total"] for r in rows] == [r["total"] for r in read_loss_log(tmp_path / "straight" / "losses.csv")]


class InterruptedTask:
    """The real AdaIN task, with ``interrupt()`` called during the third step."""

    def __init__(self, task, interrupt) -> None:
        self.task, self.name, self.calls, self.interrupt = task, task.name, 0, interrupt

    def __getattr__(self, attr):
        return getattr(self.task, attr)

    def losses(self, content, style):
        self.calls += 1
        if self.calls == 3:
            self.interrupt()
        return self.task.losses(content, style)


def ctrl_c() -> None:
    raise KeyboardInterrupt


def test_ctrl_c_saves_a_checkpoint_and_a_second_run_is_refused(corpus, shared, tmp_path):
    task, config = create_task("adain", make_config(corpus, tmp_path / "run", shared, iters=5))
    with pytest.raises(KeyboardInterrupt):
        train(InterruptedTask(task, ctrl_c), config)
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 2 and (tmp_path / "run" / "samples" / "step_0000002.png").is_file()
    with pytest.raises(InputError, match="already holds a training checkpoint"):
        train(task, config)


def test_sigterm_finishes_the_step_saves_and_returns_the_checkpoint(corpus, shared, tmp_path):
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    task, config = create_task("adain", make_config(corpus, tmp_path / "run", shared, iters=5))
    result = train(InterruptedTask(task, lambda: os.kill(os.getpid(), signal.SIGTERM)), config)
    assert result == tmp_path / "run" / CHECKPOINT_NAME
    assert torch.load(result, weights_only=True)["step"] == 3  # the step under way completes first
    assert not (tmp_path / "run" / "adain.safetensors").exists()
    assert signal.getsignal(signal.SIGTERM) is before


def test_step_plan_is_a_function_of_seed_and_step():
    full = list(StepSampler(7, 3, 4, seed=5, start=0, stop=10))
    tail = list(StepSampler(7, 3, 4, seed=5, start=6, stop=10))
    assert tail == full[6:]
    first_epoch = [key[0] for batch in full for key in batch][:7]
    assert sorted(first_epoch) == list(range(7))  # every content image once per epoch
    assert full != list(StepSampler(7, 3, 4, seed=6, start=0, stop=10))


def test_unreadable_images_are_skipped_with_a_warning(corpus, tmp_path, caplog):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    content = [bad] + list_images(corpus[0], "content")
    data = PairDataset(content, list_images(corpus[1], "style"), SIZE)
    c, s = data[(0, 0, 1)]
    assert c.shape == s.shape == (3, SIZE, SIZE)
    assert 0.0 <= float(s.min()) and float(s.max()) <= 1.0
    assert "skipping" in caplog.text and "broken.jpg" in caplog.text


def test_bad_configs_stop_with_clear_errors(corpus, shared, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        create_task("adain", make_config(corpus, tmp_path, shared, content_dir=tmp_path / "nope"))
    with pytest.raises(InputError, match="--batch must be at least 1"):
        create_task("adain", make_config(corpus, tmp_path, shared, batch=0))
    with pytest.raises(InputError, match="holds no images"):
        list_images(tmp_path, "content")
    with pytest.raises(InputError, match="checkpoint .* does not exist"):
        task, config = create_task("adain", make_config(corpus, tmp_path / "r", shared, resume=tmp_path / "none.pt"))
        train(task, config)


def test_cli_refuses_the_eval_set(shared, tmp_path, capsys):
    import main

    code = main.main(
        [
            "train",
            "adain",
            "--content",
            str(shared / "images" / "content"),
            "--style",
            str(shared / "datasets" / "style"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "evaluation image" in capsys.readouterr().err


# -- a cheaper CPU step (issue 19) ---------------------------------------------------------------
def test_one_batched_encoder_pass_gives_the_losses_of_two_passes(corpus, shared, tmp_path):
    import torch.nn.functional as F

    from models.adain import adain, feature_stats
    from models.training.adain_train import LAYER_SCALES
    from models.training.data import make_loader

    task, config = create_task("adain", make_config(corpus, tmp_path, shared, batch=3))
    content, style = next(iter(make_loader(config)))
    losses = task.losses(content, style)
    encoder, decoder = task.model.encoder, task.model.decoder
    with torch.no_grad():  # the former formulation: content and style through the encoder separately
        style_feats = encoder.features(style)
        target = adain(encoder(content), *feature_stats(style_feats[-1]))
        out_feats = encoder.features(decoder(target * task.model.feature_scale))
    content_loss = F.mse_loss(out_feats[-1] / LAYER_SCALES[-1], target / LAYER_SCALES[-1])
    style_loss = sum(
        F.mse_loss(feature_stats(g)[0] / k, feature_stats(s)[0] / k)
        + F.mse_loss(feature_stats(g)[1] / k, feature_stats(s)[1] / k)
        for g, s, k in zip(out_feats, style_feats, LAYER_SCALES)
    )
    torch.testing.assert_close(losses["content"].detach(), content_loss, rtol=1e-4, atol=0)
    torch.testing.assert_close(losses["style"].detach(), style_loss, rtol=1e-4, atol=0)


def test_the_fused_adam_continues_an_old_checkpoints_state_as_the_loop_adam_would(shared):
    import copy

    from models.adain import make_decoder
    from models.training.common import make_adam

    state = torch.load(shared / "warmstart" / "adain" / "last.pt", map_location="cpu", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["fused"] is None  # written by the for-loop Adam
    results = []
    for fused in (False, True):
        decoder = make_decoder()
        decoder.load_state_dict(state["model"])
        params = list(decoder.parameters())
        opt = make_adam(params, 1e-4, torch.device("cpu")) if fused else torch.optim.Adam(params, lr=1e-4)
        opt.load_state_dict(copy.deepcopy(state["optimizer"]))  # loading shares the tensors; the step updates them
        if fused:
            assert opt.param_groups[0]["fused"] is None  # what torch does: the file's flag wins...
            opt.param_groups[0]["fused"] = True  # ...so the loop sets it back, as here
        generator = torch.Generator().manual_seed(0)
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator) * 1e-3
        opt.step()
        results.append([p.detach().clone() for p in params])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_the_warm_start_checkpoint_resumes_on_the_fused_adam(corpus, shared, tmp_path):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(shared / "warmstart" / "adain" / "last.pt", run / CHECKPOINT_NAME)
    task, config = create_task("adain", make_config(corpus, run, shared, iters=2555, resume=run))
    train(task, config)
    state = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert state["step"] == 2555
    assert state["optimizer"]["param_groups"][0]["fused"] is True  # set back after loading the old file
    assert int(state["optimizer"]["state"][0]["step"]) == 2555
    assert [r["step"] for r in read_loss_log(run / "losses.csv")] == [2555]


def test_ema_average_is_what_a_snapshot_reads(corpus, shared, tmp_path):
    from models.training.snapshot import read_snapshot

    task, config = create_task("adain", make_config(corpus, tmp_path / "run", shared, iters=3, ema=0.5))
    train(task, config)
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    averaged = read_snapshot(tmp_path / "run" / CHECKPOINT_NAME, "adain")
    last = read_snapshot(tmp_path / "run" / CHECKPOINT_NAME, "adain", averaged=False)
    assert averaged.averaged and averaged.label.endswith("step 3 EMA") and not last.averaged
    for key, value in state["model"].items():
        assert torch.equal(last.model_state[key], value)
        assert torch.equal(averaged.model_state[key], state["ema"][key])
    # decay 0.5 over three steps: the average sits between the weights it saw, not on the last one
    assert any(not torch.equal(state["ema"][k], v) for k, v in state["model"].items())

    plain_task, plain = create_task("adain", make_config(corpus, tmp_path / "plain", shared, iters=2, ema=0.0))
    train(plain_task, plain)
    assert "ema" not in torch.load(tmp_path / "plain" / CHECKPOINT_NAME, weights_only=True)
    assert not read_snapshot(tmp_path / "plain" / CHECKPOINT_NAME, "adain").averaged

    with pytest.raises(InputError, match="--ema"):
        make_config(corpus, tmp_path / "bad", shared, ema=1.0, lr=1e-4, content_weight=1.0, style_weight=1.0).validate()


def test_mixed_precision_is_bf16_exactly_on_cpus_with_native_bf16():
    from models.training.common import amp_dtype

    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert amp_dtype(torch.device("cpu")) == (torch.bfloat16 if native else None)
    assert amp_dtype(torch.device("cuda")) == torch.float16


def test_each_resume_with_new_settings_is_a_phase_the_snapshot_reports(corpus, shared, tmp_path):
    from models.training.common import PRECISION_NAMES, amp_dtype
    from models.training.phases import describe
    from models.training.snapshot import read_snapshot

    run = tmp_path / "run"
    for iters, extra in (
        (2, {}),
        (3, {"content_weight": 3.0}),
        (4, {"content_weight": 3.0}),
        (5, {"content_weight": 3.0, "amp": False}),
    ):
        task, config = create_task(
            "adain", make_config(corpus, run, shared, iters=iters, resume=run if iters > 2 else None, **extra)
        )
        train(task, config)
    snapshot = read_snapshot(run / CHECKPOINT_NAME, "adain")
    precision = PRECISION_NAMES[amp_dtype(torch.device("cpu"))]
    # the resume to step 4 kept step 3's settings: it continued that phase; --no-amp for step 5 is one on its own
    assert [(p["first_step"], p["content_weight"], p["precision"]) for p in snapshot.phases] == [
        (1, 1.0, precision),
        (3, 3.0, precision),
        (5, 3.0, "fp32"),
    ]
    lines = describe(snapshot.phases, snapshot.step)
    assert (
        lines[0].startswith(f"- steps 1–2: {SIZE}-px crops, batch {BATCH}, lr 0.0001")
        and "content weight 1.0" in lines[0]
    )
    assert lines[1].startswith("- steps 3–4:") and "content weight 3.0" in lines[1]
    assert lines[2].startswith("- steps 5–5:") and "fp32 on `cpu`" in lines[2]

    # a checkpoint from before phases were recorded: one phase with its last config, said to be incomplete
    state = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    del state["phases"]
    torch.save(state, tmp_path / "old.pt")
    old = read_snapshot(tmp_path / "old.pt", "adain")
    assert [(p["first_step"], p["content_weight"], p["recorded"]) for p in old.phases] == [(1, 3.0, False)]
    assert "earlier changes were not recorded" in describe(old.phases, old.step)[0]


def test_a_resume_that_trains_no_step_leaves_no_empty_phase():
    from models.training.phases import extend

    a = {"size": 128, "content_weight": 1.0, "precision": "bf16"}
    b = {**a, "size": 192}
    phases = extend([], 0, a)
    phases = extend(phases, 100, b)  # resumed at 192 px and stopped before a step
    assert extend(phases, 100, a) == [{"first_step": 1, "recorded": True, **a}]
    assert extend(phases, 100, {**a, "content_weight": 3.0})[-1] == {
        "first_step": 101,
        "recorded": True,
        **a,
        "content_weight": 3.0,
    }
