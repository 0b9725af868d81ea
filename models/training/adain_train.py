"""Training task for our AdaIN decoder (Huang & Belongie, ICCV 2017, §6 "Training").

Only the decoder trains; the encoder is our Caffe-scale VGG-19 up to relu4_1 (``models.vgg``).
For content ``c`` and style ``s``: ``t = AdaIN(f(c), f(s))``, ``g = decoder(t · feature_scale)``, and

* content loss = MSE(relu4_1(g), t)
* style loss   = Σ over relu1_1, relu2_1, relu3_1, relu4_1 of MSE(μ(φᵢ(g)), μ(φᵢ(s))) + MSE(σ(φᵢ(g)), σ(φᵢ(s)))
* total        = content_weight · content + style_weight · style

Tuning for the Caffe scale. The paper's λ = 10 and lr = 1e-4 assume the normalised VGG (Gatys et
al.: each layer rescaled so its mean activation is one). Ours is raw Caffe scale: mean activations
of relu1_1, relu2_1, relu3_1, relu4_1 are ≈ 24, 135, 147, 585 (measured on 3 × 8 random 128 px crops
of shared/datasets). In raw units relu4_1 swamps the style sum (its squared differences are ~600×
relu1_1's) and the content/style balance moves too: with the output equal to the content image
(a perfect reconstruction) the raw losses are content ≈ 5e5 vs style ≈ 6e5 (1 : 1.1), while on
layer-normalised features they are ≈ 1.5 vs 8.3 (1 : 5.5), so λ = 10 means style ≈ 55 × content.
So both losses are computed on features divided by those fixed per-layer means (``LAYER_SCALES``),
which restores the paper's per-layer balance, and then the paper's weights carry over: style_weight
10, content_weight 1, lr 1e-4 with decay 5e-5 (Adam's steps do not depend on the loss scale; the
decoder's input is scaled by ``OUR_FEATURE_SCALE`` so its first convolution sees order-one values).
At initialisation (fresh decoder, near-black output; seed 0, 128 px, batch 8) the losses are
content ≈ 3.8 and style ≈ 16 (weighted: 3.8 vs 160), so the style term dominates from the start,
as in the paper.
These defaults come from these measurements and a short CPU run only (no GPU was available);
re-check them against sample grids on the first real training run.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.adain import AdaIN, CaffeVGGEncoder, adain, feature_stats, save_our_decoder
from models.training.common import TrainConfig, loss_vgg


#: mean activation of relu1_1, relu2_1, relu3_1, relu4_1 of our VGG on the training corpus (see above)
LAYER_SCALES = (24.0, 135.0, 147.0, 585.0)


class AdaINTask:
    """The decoder of :class:`models.adain.AdaIN` on our VGG-19, trained with the paper's losses."""

    name = "adain"
    DEFAULTS = {"lr": 1e-4, "content_weight": 1.0, "style_weight": 10.0}

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.model = AdaIN(CaffeVGGEncoder(loss_vgg(config))).to(self.device)
        if self.device.type == "cuda":
            self.model.encoder.to(memory_format=torch.channels_last)
        self.content_weight = float(config.content_weight)
        self.style_weight = float(config.style_weight)

    def trainable(self) -> nn.Module:
        return self.model.decoder

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        encoder = self.model.encoder
        with torch.no_grad():
            # content and style through the frozen encoder in one call: one set of larger convolutions
            # (about 10 % less CPU time than two calls at batch 4 x 128 px); relu4_1 of the content is the
            # last of the four taps, so nothing extra is computed for it
            n = content.shape[0]
            feats = encoder.features(torch.cat([content, style]))
            content_feat, style_feats = feats[-1][:n], [f[n:] for f in feats]
            target = adain(content_feat, *feature_stats(style_feats[-1]))
        out = self.model.decoder(target * self.model.feature_scale)
        out_feats = encoder.features(out)
        # fp32 losses on layer-normalised features: see the module docstring
        content_loss = F.mse_loss(out_feats[-1].float() / LAYER_SCALES[-1], target.float() / LAYER_SCALES[-1])
        style_loss = content_loss.new_zeros(())
        for g, s, scale in zip(out_feats, style_feats, LAYER_SCALES):
            g_mean, g_std = feature_stats(g)
            s_mean, s_std = feature_stats(s)
            style_loss = style_loss + (
                F.mse_loss(g_mean.float() / scale, s_mean.float() / scale)
                + F.mse_loss(g_std.float() / scale, s_std.float() / scale)
            )
        total = self.content_weight * content_loss + self.style_weight * style_loss
        return {"total": total, "content": content_loss, "style": style_loss}

    def sample(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        code = self.model.encode_style(style)
        return self.model.stylize(content, code, 1.0).clamp(0, 1)

    def export(self, path: Path) -> None:
        save_our_decoder(
            self.model.decoder,
            path,
            extra_metadata={
                "trained_size": str(self.config.size),
                "style_weight": str(self.style_weight),
                "content_weight": str(self.content_weight),
            },
        )
