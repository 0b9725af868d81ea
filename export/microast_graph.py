"""MicroAST's frame graph reformulated for ONNX Runtime on the CPU: the same function, fewer slow kernels.

:class:`TunedMicroASTGraph` computes what ``FrameGraph(MicroASTFrameNetwork)`` computes (uint8 BGR
NHWC frame, style code tensors, alpha → uint8 BGR NHWC), rewritten where the profile of the plain
export showed time going (docs/PERF_NOTES.md):

- the final 9×9 conv (16 → 3) runs as one stride-r conv whose 3·r² output channels are the r×r output
  phases (:func:`phase_kernel`), then depth-to-space; ORT's blocked kernels need many output channels
  to vectorise, and 3 gave them almost nothing to do (35 → 11 ms at 640×480). A separate
  space-to-depth reshape in front was slower: its 6-D transpose cost what the conv saved;
- the encoder's "1 in, 2 out" grouped convs (ORT runs convs with 2 channels per group in a slow NCHW
  path) become convs in wide groups (:func:`wide_groups`) with zeros off the original groups: more
  multiply-adds, but no copy of the input twice over (at 640×480 the graph went 77 → 72.5 ms, and the
  second conv 1.6 → 0.8 ms with 2 groups instead of 1); the decoder's "2 in, 1 out" ones become a
  depthwise conv and a 1×1 conv summing channel pairs, which run in ORT's blocked NCHWc layout;
- the phase channels come out ordered (row phase, column phase, colour), so after ORT's own
  NCHWc → NHWC reorder one Transpose of whole pixel runs finishes depth-to-space (2.4 → 1.0 ms);
- each AdaIN is one scale and shift per channel (``h * std/s + (mean - m * std/s)``): one pass over
  the features fewer than normalising first;
- BGR → RGB and ÷255 are folded into the first conv's weights, RGB → BGR and ×255 into the last
  conv's, and the alpha mix with the content happens in uint8-frame units, on the NHWC frame itself.

Reflection padding stays as written: with zero padding in the 3×3 convs instead the output moved to
22 dB PSNR (the AdaIN statistics see the borders), so the graph keeps its Pads
(export/ort_layout.py then keeps them in the blocked layout). Measured whole-graph, as exported:
0.73–0.77× the plain export's time at 320×240 to 1280×720 (bench models, 2026-12-01). Weights are
copied from the network; artifacts are fingerprinted with the model's own weights as for the plain graph.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.microast import MicroASTFrameNetwork, channel_mean_std

#: names of the per-frame graph formulations: "plain" is the network exported as written.
GRAPH_VARIANTS = ("plain", "tuned")
#: bump when the tuned formulation changes, so caches never serve an older graph.
TUNED_VERSION = "tuned-5"


def phase_kernel(weight: torch.Tensor, r: int) -> torch.Tensor:
    """A stride-1 K×K conv rewritten as a stride-r conv that returns its r×r output phases as channels.

    Output channel ``co * r * r + py * r + px`` at block (I, J) is the original output at
    (r·I + py, r·J + px): the original kernel shifted by (py, px) inside a kernel of side
    r·⌈(K + r − 1)/r⌉, zero elsewhere. That is space-to-depth, the rearranged conv and the
    input-side reshape in one conv; depth-to-space of its output is the original result.
    """
    co, ci, k, _ = weight.shape
    side = r * ((k + r - 2) // r + 1)
    out = weight.new_zeros(co * r * r, ci, side, side)
    for py in range(r):
        for px in range(r):
            out[py * r + px :: r * r, :, py : py + k, px : px + k] = weight
    return out


#: channels per group of :func:`wide_groups`: a multiple of every NCHWc block size ORT uses (8, 16)
WIDE_GROUP = 16


def wide_groups(conv: nn.Conv2d) -> torch.Tensor:
    """The weight of ``conv`` (2 channels per group on one side, 1 on the other) as a conv in wide groups.

    ORT runs convs with 1–2 channels per group outside its blocked kernels, which only take groups
    whose channels per group are multiples of their block size. This is the same conv with as many
    groups as keep at least :data:`WIDE_GROUP` input and output channels in each, zeros where the
    original groups do not reach: more multiply-adds, run far faster.
    """
    w = conv.weight.detach()
    out_ch, in_ch = conv.out_channels, conv.in_channels
    groups = max(1, min(in_ch, out_ch) // WIDE_GROUP)
    out_pg, in_pg, per = out_ch // groups, in_ch // groups, in_ch // conv.groups
    wide = w.new_zeros(out_ch, in_pg, *w.shape[2:])
    for o in range(out_ch):
        g = o // (out_ch // conv.groups)  # the original group of output o reads inputs g*per .. g*per+per-1
        first = g * per - (o // out_pg) * in_pg
        wide[o, first : first + per] = w[o]
    return wide


def _reflect_conv(x: torch.Tensor, conv: nn.Conv2d, pad: int) -> torch.Tensor:
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, 0, 1, conv.groups)


class TunedMicroASTGraph(nn.Module):
    """``forward(frame uint8 BGR NHWC, mean, std, filter_weight, filter_bias, alpha) -> uint8 BGR NHWC``."""

    def __init__(self, network: MicroASTFrameNetwork, out_factor: int = 2) -> None:
        super().__init__()
        network = network.float().eval()
        enc, dec = network.content_encoder, network.decoder
        self.strength = network.strength
        self.r = out_factor
        stem = enc.enc1[0].conv_layer
        # BGR uint8 in: the stem reads channels reversed and scaled by 1/255 (the graph's input conversion).
        self.stem_weight = nn.Parameter(stem.weight.detach().flip(1) / 255.0, requires_grad=False)
        self.stem_bias = nn.Parameter(stem.bias.detach().clone(), requires_grad=False)
        # ORT runs convs with 2 channels per group in a slow NCHW path: the encoder's "1 in, 2 out" groups
        # become convs in wide groups (zeros off the original groups), which run in its blocked layout.
        self.enc_dw, self.enc_pw = [], []
        for dw, pw in (
            (enc.enc1[2].conv_layer, enc.enc1[4].conv_layer),
            (enc.enc1[6].conv_layer, enc.enc1[8].conv_layer),
        ):
            self.enc_dw.append((wide_groups(dw), dw.bias.detach().clone()))
            self.enc_pw.append((pw.weight.detach().clone(), pw.bias.detach().clone()))
        # The decoder's "2 in, 1 out" groups become a depthwise conv and a 1x1 conv summing channel pairs
        # (one conv in wide groups, as in the encoder, was slower here: 2.9 -> 4.0 ms at half resolution).
        self.dec_dw, self.dec_sum, self.dec_pw = [], [], []
        for dw, pw in (
            (dec.dec3[1].conv_layer, dec.dec3[3].conv_layer),
            (dec.dec3[6].conv_layer, dec.dec3[8].conv_layer),
        ):
            out_ch = dw.out_channels
            self.dec_dw.append(dw.weight.detach().reshape(out_ch * 2, 1, 3, 3).clone())
            pair_sum = torch.zeros(out_ch, out_ch * 2, 1, 1)
            pair_sum[torch.arange(out_ch), 2 * torch.arange(out_ch)] = 1.0
            pair_sum[torch.arange(out_ch), 2 * torch.arange(out_ch) + 1] = 1.0
            self.dec_sum.append((pair_sum, dw.bias.detach().clone()))
            self.dec_pw.append((pw.weight.detach().clone(), pw.bias.detach().clone()))
        for i, tensors in enumerate((self.enc_dw, self.enc_pw, self.dec_sum, self.dec_pw)):
            for j, (w, b) in enumerate(tensors):
                self.register_buffer(f"t{i}_{j}_w", w)
                self.register_buffer(f"t{i}_{j}_b", b)
        for j, w in enumerate(self.dec_dw):
            self.register_buffer(f"dec_dw{j}", w)
        self.enc_res = nn.ModuleList([enc.enc1[10], enc.enc2[0]])
        self.dec1, self.dec2 = dec.dec1, dec.dec2
        last = dec.dec3[10].conv_layer
        # RGB [0, 1] out → BGR [0, 255]: reverse the output channels and scale by 255.
        w = last.weight.detach().flip(0) * 255.0
        b = last.bias.detach().flip(0) * 255.0
        if self.r > 1:  # phase channels ordered (py, px, colour): NHWC rows of the output come out whole
            rr = self.r * self.r
            w = phase_kernel(w, self.r)
            w = w.reshape(3, rr, *w.shape[1:]).transpose(0, 1).reshape(w.shape)
            b = b.repeat(rr)
        self.last_weight = nn.Parameter(w, requires_grad=False)
        self.last_bias = nn.Parameter(b, requires_grad=False)
        self.requires_grad_(False)

    def _residual(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(_reflect_conv(x, block.conv1.conv_layer, 1))
        return x + _reflect_conv(h, block.conv2.conv_layer, 1)

    def _modulated(self, block: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        h = F.relu(weight * _reflect_conv(x, block.conv1.conv_layer, 1) + bias * x)
        return x + weight * _reflect_conv(h, block.conv2.conv_layer, 1) + bias * h

    def _adain(self, h: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """AdaIN (and, in "features" strength, its mix with ``h``) as one scale and shift per channel."""
        m, s = channel_mean_std(h)
        scale = std / s
        shift = mean - m * scale
        if self.strength == "features":  # alpha * adain(h) + (1 - alpha) * h
            scale, shift = alpha * scale + (1 - alpha), alpha * shift
        return h * scale + shift

    def forward(
        self,
        frame: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        filter_weight: torch.Tensor,
        filter_bias: torch.Tensor,
        alpha: torch.Tensor,
    ) -> torch.Tensor:
        content = frame.to(torch.float32)  # NHWC BGR, 0..255
        x = F.pad(content.permute(0, 3, 1, 2), (4, 4, 4, 4), mode="reflect")
        x = F.relu(F.conv2d(x, self.stem_weight, self.stem_bias))
        for (dw_w, dw_b), (pw_w, pw_b) in zip(self.enc_dw, self.enc_pw):
            x = F.pad(x, (1, 1, 1, 1), mode="reflect")
            x = F.relu(F.conv2d(x, dw_w, dw_b, stride=2, groups=x.shape[1] // dw_w.shape[1]))
            x = F.relu(F.conv2d(x, pw_w, pw_b))
        for block in self.enc_res:
            x = self._residual(block, x)
        features = self.strength == "features"
        x = self._adain(x, mean[1], std[1], alpha)
        h = self._modulated(self.dec1, x, filter_weight[1], filter_bias[1])
        x = self._adain(h, mean[0], std[0], alpha)
        x = self._modulated(self.dec2, x, filter_weight[0], filter_bias[0])
        for dw_w, (sum_w, sum_b), (pw_w, pw_b) in zip(self.dec_dw, self.dec_sum, self.dec_pw):
            x = F.pad(F.interpolate(x, scale_factor=2.0, mode="bilinear"), (1, 1, 1, 1), mode="reflect")
            x = F.relu(F.conv2d(F.conv2d(x, dw_w, groups=dw_w.shape[0]), sum_w, sum_b))
            x = F.relu(F.conv2d(x, pw_w, pw_b))
        x = F.pad(x, (4, 4, 4, 4), mode="reflect")
        n = x.shape[0]  # the decoder's sides are multiples of 4, so the phase conv tiles them exactly
        r = self.r
        if r > 1:  # the phase conv (stride r), then depth-to-space straight into NHWC
            y = F.conv2d(x, self.last_weight, self.last_bias, stride=r)
            hb, wb = y.shape[-2:]
            y = y.permute(0, 2, 3, 1).reshape(n, hb, wb, r, r * 3).transpose(2, 3).reshape(n, hb * r, wb * r, 3)
        else:
            y = F.conv2d(x, self.last_weight, self.last_bias).permute(0, 2, 3, 1)
        # the decoder gives ceil(side/4)*4 px; a negative pad crops the extra bottom/right (no shape guard)
        y = F.pad(y, (0, 0, 0, frame.shape[2] - y.shape[2], 0, frame.shape[1] - y.shape[1]))
        if not features:
            y = alpha * y + (1 - alpha) * content
        return torch.round(y.clamp(0.0, 255.0)).to(torch.uint8)
