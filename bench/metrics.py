"""Temporal-consistency and style metrics for ``bench temporal``.

Warping error (Lai et al., ECCV 2018, "Learning Blind Video Temporal Consistency"; the figure
ReReVST, MCCNet and CCPL report): optical flow is computed on the *input* frames (OpenCV DIS,
preset MEDIUM, where the paper uses FlowNet2); output t−1 is warped onto frame t along it; pixels
where the forward–backward check fails or that lie on a motion boundary are masked out (the
thresholds of Ruder et al. / Lai et al.'s ``detect_occlusion``), and so are pixels whose
correspondence falls outside the frame. Per pair: the squared RGB difference (values in [0, 1]),
summed over the three channels and averaged over unmasked pixels, as Lai et al.'s evaluation code
does (``sum(diff² · mask) / sum(mask)`` with a one-channel mask); E is the mean over pairs. The
same figure for the input video itself is the flow's own error floor. The long-term figure uses
frames t and t+10 with the flow computed directly between them.

Style and content loss: the VGG-19 (Caffe weights, relu1_1…relu4_1) and the losses of AdaIN
training (``models.training.adain_train``): content = MSE of relu4_1 against AdaIN(content, style),
style = Σ MSE of channel means and stds, on features divided by the fixed per-layer scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

FB_RELATIVE, FB_ABSOLUTE = 0.01, 0.5  # forward–backward check: |F + G(x+F)|² > 0.01(|F|² + |G|²) + 0.5
MB_RELATIVE, MB_ABSOLUTE = 0.01, 0.002  # motion boundary: |∇u|² + |∇v|² > 0.01|F|² + 0.002
MOVING_PX = 1.0  # flow above this: a moving pixel (a person, not the still background)
LONG_GAP = 10  # frames between the two of a long-term pair


def gray(image: np.ndarray) -> np.ndarray:
    """A uint8 BGR (or already one-channel) image as one channel, as DIS wants it."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class FlowEstimator:
    """DIS optical flow, preset MEDIUM: ``flow(a, b)`` is F with a(x) ≈ b(x + F(x)), float32 (H, W, 2)."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._dis.calc(gray(a), gray(b), None)


def sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The remap coordinates x + F(x), y + F(x) of a flow field."""
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xx + flow[..., 0], yy + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at x + flow(x) (bilinear; outside the frame: edge pixels, masked by ``valid_mask``)."""
    mx, my = sample_grid(flow)
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flow_gradient_sq(flow: np.ndarray) -> np.ndarray:
    """|∇u|² + |∇v|² with forward differences (zero on the last row/column), as Lai et al.'s code."""
    g = np.zeros(flow.shape[:2], np.float32)
    du = flow[:, :-1] - flow[:, 1:]
    dv = flow[:-1, :] - flow[1:, :]
    g[:, :-1] += (du**2).sum(-1)
    g[:-1, :] += (dv**2).sum(-1)
    return g


def valid_mask(flow: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Pixels of the reference frame whose correspondence is trusted (bool H×W).

    ``flow`` maps the reference frame onto the other (ref(x) ≈ other(x + flow)), ``back`` the other
    onto the reference. Masked out: a failed forward–backward check, a motion boundary, and a
    correspondence outside the other frame.
    """
    h, w = flow.shape[:2]
    mx, my = sample_grid(flow)
    back_at = cv2.remap(back, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    fb = ((flow + back_at) ** 2).sum(-1)
    occluded = fb > FB_RELATIVE * ((flow**2).sum(-1) + (back_at**2).sum(-1)) + FB_ABSOLUTE
    boundary = flow_gradient_sq(flow) > MB_RELATIVE * (flow**2).sum(-1) + MB_ABSOLUTE
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return ~occluded & ~boundary & inside


def pair_error(current: np.ndarray, previous_warped: np.ndarray, mask: np.ndarray) -> float:
    """Σ over RGB of the squared difference in [0, 1], averaged over the pixels of ``mask``."""
    n = int(mask.sum())
    if n == 0:
        return 0.0
    d = (current.astype(np.float32) - previous_warped.astype(np.float32)) / 255.0
    return float(((d**2).sum(-1) * mask).sum() / n)


@dataclass
class Correspondence:
    """How frame ``earlier`` maps onto frame ``later`` of the input: the flow and the trusted pixels."""

    flow: np.ndarray  # later(x) ≈ earlier(x + flow(x))
    mask: np.ndarray  # bool, on the later frame

    @classmethod
    def between(cls, estimator: FlowEstimator, later: np.ndarray, earlier: np.ndarray) -> "Correspondence":
        flow = estimator.flow(later, earlier)
        back = estimator.flow(earlier, later)
        return cls(flow, valid_mask(flow, back))

    def error(self, later_out: np.ndarray, earlier_out: np.ndarray, mask: np.ndarray | None = None) -> float:
        """The warping error of one output pair along this correspondence (on ``mask`` ∧ the trusted pixels)."""
        if later_out.shape[:2] != self.flow.shape[:2]:
            raise ValueError(f"output {later_out.shape[:2]} is not the input's size {self.flow.shape[:2]}")
        return pair_error(later_out, warp(earlier_out, self.flow), self.mask if mask is None else self.mask & mask)

    def moving(self, threshold: float = MOVING_PX) -> np.ndarray:
        """The trusted pixels whose content moved by more than ``threshold`` px (bool)."""
        return self.mask & (np.einsum("ijk,ijk->ij", self.flow, self.flow) > threshold * threshold)


@dataclass
class WarpingErrors:
    """Streams frames in; short-term (t−1 → t) and long-term (t−gap → t) warping errors per output.

    ``add(input, {name: output})`` once per frame; the input's own figure is kept under "input".
    Flow is computed once per pair and shared by every output, so comparing modes is cheap.
    """

    gap: int = LONG_GAP
    long_term: bool = True
    estimator: FlowEstimator = field(default_factory=FlowEstimator)
    short: dict[str, list[float]] = field(default_factory=dict)
    long: dict[str, list[float]] = field(default_factory=dict)
    moving: dict[str, list[float]] = field(default_factory=dict)  # short-term, on moving pixels only
    masked: list[float] = field(default_factory=list)  # fraction of pixels masked out, short-term pairs
    _history: list[tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=list)

    def add(self, frame: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        outputs = {"input": frame, **outputs}
        if self._history:
            prev_frame, prev_out = self._history[-1]
            c = Correspondence.between(self.estimator, frame, prev_frame)
            self.masked.append(1.0 - float(c.mask.mean()))
            moving = c.moving()
            for name, out in outputs.items():
                self.short.setdefault(name, []).append(c.error(out, prev_out[name]))
                if moving.mean() > 0.002:  # pairs with something moving: a pan, or a person in a still shot
                    self.moving.setdefault(name, []).append(c.error(out, prev_out[name], moving))
        if self.long_term and len(self._history) >= self.gap:
            old_frame, old_out = self._history[-self.gap]
            c = Correspondence.between(self.estimator, frame, old_frame)
            for name, out in outputs.items():
                self.long.setdefault(name, []).append(c.error(out, old_out[name]))
        self._history.append((frame, outputs))
        del self._history[: -self.gap]

    def summary(self) -> dict[str, dict[str, float]]:
        """name → {"short", "long"} mean errors (NaN where no pair was seen)."""
        names = list(self.short) or list(self.long)
        return {
            n: {
                "short": _mean(self.short.get(n, [])),
                "long": _mean(self.long.get(n, [])),
                "moving": _mean(self.moving.get(n, [])),
            }
            for n in names
        }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def warping_error(frames: list[np.ndarray], outputs: list[np.ndarray], gap: int = LONG_GAP) -> dict[str, float]:
    """Short- and long-term warping error of ``outputs`` (and of ``frames`` themselves) for one clip."""
    if len(frames) != len(outputs) or len(frames) < 2:
        raise ValueError("need at least two frames and one output per frame")
    w = WarpingErrors(gap=gap, long_term=len(frames) > gap)
    for frame, out in zip(frames, outputs):
        w.add(frame, {"output": out})
    s = w.summary()
    return {
        "output": s["output"]["short"],
        "output_long": s["output"]["long"],
        "input": s["input"]["short"],
        "input_long": s["input"]["long"],
    }


class StyleLosses:
    """The AdaIN-training VGG losses of stylised frames against their content frame and the style image."""

    def __init__(self, style_bgr: np.ndarray, size: int = 256, style_size: int = 512) -> None:
        import torch

        from models.adain import CaffeVGGEncoder, feature_stats
        from core.images import resize_longest

        self.size = size
        self.encoder = CaffeVGGEncoder()
        with torch.inference_mode():
            feats = self.encoder.features(self._tensor(resize_longest(style_bgr, style_size)))
        self.style_stats = [feature_stats(f) for f in feats]

    @staticmethod
    def _tensor(bgr: np.ndarray):
        import torch

        rgb = np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32) / 255.0
        return torch.from_numpy(rgb).permute(2, 0, 1)[None]

    def _resize(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        scale = self.size / min(h, w)
        if scale >= 1:
            return bgr
        return cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)

    def __call__(self, output: np.ndarray, content: np.ndarray) -> tuple[float, float]:
        """(content loss, style loss) of one stylised frame (uint8 BGR) of ``content``."""
        return self.many(content, {"output": output})["output"]

    def many(self, content: np.ndarray, outputs: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
        """name → (content loss, style loss) for several stylisations of one frame (its features computed once)."""
        import torch

        from models.adain import adain

        result = {}
        with torch.inference_mode():
            target = adain(self.encoder(self._tensor(self._resize(content))), *self.style_stats[-1])
            for name, output in outputs.items():
                feats = self.encoder.features(self._tensor(self._resize(output)))
                result[name] = adain_losses(feats, target, self.style_stats)
        return result


def adain_losses(feats: list, target, style_stats: list) -> tuple[float, float]:
    """(content, style) loss of an output's relu1_1…relu4_1 ``feats`` against the AdaIN ``target`` (relu4_1 of the
    content given the style's statistics) and the style's (mean, std) per layer, on layer-normalised features."""
    import torch.nn.functional as F

    from models.adain import feature_stats
    from models.training.adain_train import LAYER_SCALES

    content_loss = float(F.mse_loss(feats[-1] / LAYER_SCALES[-1], target / LAYER_SCALES[-1]))
    style_loss = 0.0
    for g, (s_mean, s_std), scale in zip(feats, style_stats, LAYER_SCALES):
        g_mean, g_std = feature_stats(g)
        style_loss += float(F.mse_loss(g_mean / scale, s_mean / scale) + F.mse_loss(g_std / scale, s_std / scale))
    return content_loss, style_loss
