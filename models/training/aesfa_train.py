"""Training task for AesFA (Kwon et al., AAAI 2024, §3.3 "Loss functions"), scaled to our VGG-19.

All three networks train (content encoder ``netE``, style encoder ``netS``, decoder ``netG``), as in
the official ``model.py``. For content ``c``, style ``s`` and the stylised ``g``:

* content loss = MSE(relu3_1(g), relu3_1(c))                                   (official: relu3_1)
* style loss   = Σ over relu1_1 … relu4_1 of EFDM(φᵢ(g), φᵢ(s))
* aesthetic contrastive loss = Σ_b  EFDM(style features of s_b, of g_b) / EFDM(…of s_n(b), of g_b),
  on the AesFA encoders' own high- and low-frequency features (two stages, plus the pooled 3×3
  style features), with n(b) the hardest negative: the other style in the batch whose VGG
  statistics are closest to g_b. As in the official code the positive term compares netS(style)
  with netE(stylised) at the encoder stages and netS with netS otherwise.
* total = content_weight · content + style_weight · style + CONTRAST_WEIGHT · contrastive

EFDM (exact feature distribution matching, Zhang et al., CVPR 2022) is the MSE between the
per-channel sorted activations, which is what the official ``efdm_single`` computes.

Scale: the paper's weights (1, 10, 5) assume the normalised VGG, whose activations average ~1 per
layer. Our VGG is the Caffe one (``models.vgg``); its layer means over 24 shared/datasets images at
256 px are relu1_1 ≈ 22, relu2_1 ≈ 122, relu3_1 ≈ 120, relu4_1 ≈ 464. Dividing each tap by
:data:`VGG_TAP_SCALE` brings the features to the normalised scale (exact up to per-channel
differences, since ReLU networks are positively homogeneous), so the paper's weights apply as
they are and the contrastive ratio (dimensionless) keeps its relative weight. lr = 1e-4 as the
paper; the shared loop's Adam has betas (0.9, 0.999) where the official uses (0.0, 0.99).
Measured at initialisation (seed 0, shared/datasets crops): 128 px batch 4 gave content ≈ 6.4,
style ≈ 50, contrastive ≈ 5.7, so the weighted style term dominates (≈ 500 vs 6 and 28) as the
paper intends; at lr 1e-3 the total fell from 315 (step 5) to 170 (step 10) and by step 14 the grid faintly shows the
content layout. These values come from init-time magnitudes and short CPU runs only (no GPU was
available here); check them against sample grids in the first real run.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.aesfa import STRIDE, AesFA, denormalize, normalize
from core.errors import InputError
from models.octave import Octave
from models.training.common import TrainConfig, loss_vgg

VGG_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_TAP = "relu3_1"
#: mean activation of each tap on natural images (Caffe VGG-19), to get normalised-VGG units.
VGG_TAP_SCALE = {"relu1_1": 22.0, "relu2_1": 120.0, "relu3_1": 120.0, "relu4_1": 460.0}
CONTRAST_WEIGHT = 5.0  # the official lambda_const_style


def sorted_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → per-channel sorted values (B, C, H·W), in fp32 (Caffe-scale squares overflow fp16)."""
    return torch.sort(x.float().flatten(2), dim=-1).values


def efdm(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Exact feature distribution matching: MSE between sorted per-channel activations."""
    return F.mse_loss(sorted_channels(output), sorted_channels(target))


def efdm_per_sample(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """EFDM of each sample of ``output`` against the same-index sample of ``target``: shape (B,)."""
    return (sorted_channels(output) - sorted_channels(target)).pow(2).mean(dim=(1, 2))


def hardest_negatives(output_feats: list[torch.Tensor], style_feats: list[torch.Tensor]) -> torch.Tensor:
    """For each stylised sample, the index of the *other* style whose VGG EFDM to it is smallest."""
    with torch.no_grad():
        return hardest_negatives_sorted(
            [sorted_channels(g) for g in output_feats], [sorted_channels(s) for s in style_feats]
        )


def hardest_negatives_sorted(output_sorted: list[torch.Tensor], style_sorted: list[torch.Tensor]) -> torch.Tensor:
    """:func:`hardest_negatives` on features already sorted by :func:`sorted_channels` (each sort done once)."""
    with torch.no_grad():
        b = output_sorted[0].shape[0]
        dist = torch.zeros(b, b, device=output_sorted[0].device)
        for sg, ss in zip(output_sorted, style_sorted):
            sg, ss = sg.detach().flatten(1), ss.flatten(1)
            dist += torch.cdist(sg, ss).pow(2) / sg.shape[1]
        dist.fill_diagonal_(float("inf"))
        return dist.argmin(dim=1)


def band_pairs(a: list[Octave], b: list[Octave]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x, y) for oa, ob in zip(a, b) for x, y in zip(oa, ob)]


class AesFATask:
    """AesFA's three networks trained with the paper's perceptual and contrastive losses."""

    name = "aesfa"
    DEFAULTS = {"lr": 1e-4, "content_weight": 1.0, "style_weight": 10.0}

    def __init__(self, config: TrainConfig) -> None:
        if config.size % STRIDE:
            raise InputError(f"AesFA trains on crops whose side is a multiple of {STRIDE}; got --size {config.size}")
        self.config = config
        self.device = torch.device(config.device)
        self.model = AesFA().to(self.device)
        self.vgg = loss_vgg(config).to(self.device)
        if self.device.type == "cuda":
            self.vgg.to(memory_format=torch.channels_last)
        self.content_weight = float(config.content_weight)
        self.style_weight = float(config.style_weight)

    def trainable(self) -> nn.Module:
        return self.model

    def _vgg(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.float() / VGG_TAP_SCALE[k] for k, v in self.vgg(x, VGG_TAPS).items()}

    def _stylize(self, content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, list[Octave]]:
        """The stylised batch (each content with its own style) and netS's features of the styles."""
        m = self.model
        style_feats = m.netS.features(normalize(style))
        code = m.code_from_features(m.netS.pool(style_feats[-1]))
        out = m.netG(m.netE(normalize(content)), list(code.tensors.values()))
        return out, style_feats + [m.netS.pool(style_feats[-1])]

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        m = self.model
        out_n, style_s = self._stylize(content, style)
        out = denormalize(out_n)
        with torch.no_grad():  # content and style through the frozen VGG in one call (see adain_train)
            n = content.shape[0]
            both = self._vgg(torch.cat([content, style]))
            target_c, target_s = both[CONTENT_TAP][:n], {k: v[n:] for k, v in both.items()}
        feats = self._vgg(out)
        content_loss = F.mse_loss(feats[CONTENT_TAP], target_c)
        # Each tensor is sorted once (sorting dominates this loss on a GPU): the style loss, the
        # hardest negatives and both contrastive terms reuse the sorts; sort(s)[n] == sort(s[n]).
        out_sorted = {k: sorted_channels(feats[k]) for k in VGG_TAPS}
        with torch.no_grad():
            style_sorted = {k: sorted_channels(target_s[k]) for k in VGG_TAPS}
        style_loss = sum(F.mse_loss(out_sorted[k], style_sorted[k]) for k in VGG_TAPS)
        losses = {"content": content_loss, "style": style_loss}
        total = self.content_weight * content_loss + self.style_weight * style_loss
        if content.shape[0] > 1:  # the contrastive term needs a negative from the same batch
            neg = hardest_negatives_sorted([out_sorted[k] for k in VGG_TAPS], [style_sorted[k] for k in VGG_TAPS])
            out_e = m.netE.features(out_n)
            out_s = m.netS.features(out_n)
            out_s = out_s + [m.netS.pool(out_s[-1])]
            pairs = [
                (sorted_channels(s), sorted_channels(g))
                for s, g in band_pairs(style_s[:2], out_e) + band_pairs(style_s, out_s)
            ]
            pos = sum((g - s).pow(2).mean(dim=(1, 2)) for s, g in pairs)
            negative = sum((g - s[neg]).pow(2).mean(dim=(1, 2)) for s, g in pairs)
            contrast = (pos / negative.clamp_min(1e-8)).sum()
            losses["contrast"] = contrast
            total = total + CONTRAST_WEIGHT * contrast
        losses["total"] = total
        return losses

    def sample(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            code = self.model.code_from_features(self.model.style_features(style))
            return self.model.stylize(content, code, 1.0).clamp(0, 1)

    def export(self, path: Path) -> None:
        self.model.save_safetensors(
            path,
            metadata={
                "trained_size": str(self.config.size),
                "content_weight": str(self.content_weight),
                "style_weight": str(self.style_weight),
                "contrast_weight": str(CONTRAST_WEIGHT),
            },
        )
