"""What an artifact says about itself, stored inside it and checked before it is used.

ONNX files carry it in ``metadata_props`` (string key/value pairs under a ``stylizer.`` prefix);
TensorRT engines in a JSON side file. ``weights_sha256`` fingerprints the network's weights, so an
artifact is refused for any model whose weights differ, whatever files they came from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import torch

from export.errors import ArtifactError
from models.weights import sha256_of

PREFIX = "stylizer."
INPUT_LAYOUT = "frame: uint8 BGR NHWC (N=1, dynamic H, W); code tensors float32; alpha float32 scalar"
OUTPUT_LAYOUT = "uint8 BGR NHWC, same size as the frame"


@functools.cache
def app_version() -> str:
    """The installed package version, else the one in pyproject.toml beside the code."""
    try:
        return importlib_metadata.version("stylizer")
    except importlib_metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (name, dtype, shape, bytes) of ``module``."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        # reshape(-1): a channels-last weight with size-1 dims counts as contiguous but keeps odd strides
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def checkpoint_fingerprint(files: dict[str, Path]) -> str:
    """SHA-256 over the roles and SHA-256s of a checkpoint's files."""
    digest = hashlib.sha256()
    for role in sorted(files):
        digest.update(f"{role}:{sha256_of(Path(files[role]))}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ArtifactMetadata:
    """Everything needed to decide whether an artifact fits a model, and how it was verified."""

    model: str
    weights_sha256: str
    precision: str
    opset: int
    code_tensors: dict[str, list[int]]  # name → shape, in graph-input order
    checkpoint_sha256: str = ""  # of the checkpoint files, when known
    app_version: str = field(default_factory=app_version)
    input_layout: str = INPUT_LAYOUT
    output_layout: str = OUTPUT_LAYOUT
    psnr_db: dict[str, float] = field(default_factory=dict)  # verification figures, e.g. {"256x256": 61.2}
    extra: dict[str, str] = field(default_factory=dict)  # format-specific facts (TensorRT version...)

    def to_props(self) -> dict[str, str]:
        """String key/value pairs for ONNX ``metadata_props``."""
        return {PREFIX + k: (v if isinstance(v, str) else json.dumps(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], where: str) -> "ArtifactMetadata":
        fields = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not fields:
            raise ArtifactError(f"{where} has no stylizer metadata; it was not made by 'main.py export', re-export it")
        try:
            return cls(
                model=fields["model"],
                weights_sha256=fields["weights_sha256"],
                precision=fields["precision"],
                opset=int(fields["opset"]),
                code_tensors=json.loads(fields["code_tensors"]),
                checkpoint_sha256=fields.get("checkpoint_sha256", ""),
                app_version=fields["app_version"],
                input_layout=fields.get("input_layout", ""),
                output_layout=fields.get("output_layout", ""),
                psnr_db=json.loads(fields.get("psnr_db", "{}")),
                extra=json.loads(fields.get("extra", "{}")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ArtifactError(f"{where} has incomplete stylizer metadata ({exc}); re-export it") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> "ArtifactMetadata":
        try:
            data = json.loads(text)
        except ValueError:
            raise ArtifactError(f"{where} is not valid JSON metadata; re-export the artifact") from None
        return cls.from_props(
            {PREFIX + k: (v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()}, where
        )

    def check_matches(
        self, model_name: str, weights_sha256: str, where: str, code_tensors: dict[str, list[int]] | None = None
    ) -> None:
        """Raise ArtifactError (one line) unless this artifact was made from this very network."""
        if self.model != model_name:
            raise ArtifactError(
                f"{where} was exported from model {self.model!r}, not {model_name!r}; "
                f"export {model_name} or pick the matching model"
            )
        if self.weights_sha256 != weights_sha256:
            raise ArtifactError(
                f"{where} was exported from other {model_name} weights "
                f"({self.weights_sha256[:12]}, loaded {weights_sha256[:12]}); re-export it"
            )
        if code_tensors is not None and {k: list(v) for k, v in code_tensors.items()} != self.code_tensors:
            raise ArtifactError(
                f"{where} expects style code tensors {self.code_tensors}, the model gives {code_tensors}; re-export it"
            )
