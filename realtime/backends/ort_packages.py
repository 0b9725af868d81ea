"""Which ONNX Runtime distributions are installed, and what is wrong with that, in one line.

``onnxruntime`` and ``onnxruntime-gpu`` (and the other builds) install the same ``onnxruntime``
package folder: with two installed, whichever was installed last wins, file by file, and the CUDA
provider may be gone (microsoft/onnxruntime#26996). pyproject.toml's extras install one; this
finds the machines where something else installed a second.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

#: PyPI distributions that provide the ``onnxruntime`` module.
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-training",
    "onnxruntime-qnn",
    "onnxruntime-rocm",
    "onnxruntime-migraphx",
)


def _normalised(name: str) -> str:
    return name.lower().replace("_", "-")


def installed_ort_distributions(search_path: list[str] | None = None) -> list[str]:
    """The ONNX Runtime distributions installed (in ``search_path``, default ``sys.path``), sorted."""
    dists = metadata.distributions() if search_path is None else metadata.distributions(path=search_path)
    found = {_normalised(d.metadata["Name"]) for d in dists if d.metadata["Name"]}
    return sorted(found.intersection(ORT_DISTRIBUTIONS))


def nvidia_gpu_present() -> str | None:
    """Evidence of an NVIDIA GPU on this machine whether or not any library can use it (a device node), or None."""
    for node in (Path("/dev/nvidia0"), Path("/proc/driver/nvidia/gpus")):
        if node.exists():
            return str(node)
    return None


def ort_package_problem(search_path: list[str] | None = None, gpu: bool | None = None) -> str | None:
    """One line naming what is wrong with the installed ONNX Runtime and the command that fixes it, or None.

    ``gpu``: whether to recommend the GPU build (default: when an NVIDIA GPU is present).
    """
    dists = installed_ort_distributions(search_path)
    gpu = nvidia_gpu_present() is not None if gpu is None else gpu
    wanted, extra = ("onnxruntime-gpu", "gpu") if gpu else ("onnxruntime", "cpu")
    if not dists:
        return f'ONNX Runtime is not installed; pip install "stylizer[{extra}]" (or pip install {wanted})'
    if len(dists) > 1:
        return (
            f"{' and '.join(dists)} are all installed and overwrite each other's files "
            f"(microsoft/onnxruntime#26996); fix: pip uninstall -y {' '.join(dists)} && pip install {wanted}"
        )
    if gpu and dists == ["onnxruntime"]:
        return (
            "the CPU-only onnxruntime is installed on a machine with an NVIDIA GPU; for the CUDA provider: "
            "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
        )
    return None
