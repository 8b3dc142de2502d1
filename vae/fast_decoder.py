"""An evaluation-only decoder: the same logits as `VAE.decode_logits`, several times faster on a CPU.

The IWAE (`vae.likelihood`) decodes thousands of codes per image (5,000 per test image for IWAE_5000),
so the conv decoder's speed is the whole cost there. Two rewrites, each exact up to float rounding
(they only change the order of additions), make it fast without touching the model or training:

- The transposed convolutions read and write channels_last (N, H, W, C) memory, the layout oneDNN's
  CPU kernels are fastest in. The Linear before them writes its output in that order directly (its
  weight rows permuted once), so no copy converts the layout.
- The last transposed convolution (a few output channels: the image's) is one matrix product followed
  by col2im (`torch.nn.functional.fold`). A transposed convolution is the adjoint of a convolution,
  i.e. of im2col then a matrix product, so it is a matrix product then col2im (Dumoulin & Visin 2016,
  "A guide to convolution arithmetic for deep learning", section 4). The direct kernels are slow
  with one or three output channels; the matrix product is not. Shi et al. 2016 ("Is the
  deconvolution layer the same as a convolutional layer?") give a third exact form, a stride-1
  convolution with stride^2 times the output channels then a pixel shuffle (sub-pixel convolution);
  measured slower than col2im here (bench/docs/explain.md, issue 12).

Training never uses this module: it holds no parameters of its own, only views and reshuffled copies
made from the model's weights at construction, so build one per evaluation (it is cheap) rather than
keep one across training steps. Plain PyTorch operations: the fast path runs on the CPU and on CUDA
(a model on another device decodes as it is).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vae.models import VAE


class FastDecoder:
    """`decode_logits(z)` for codes z (N, D): the model's pre-sigmoid decoder output (N, C, H, W), equal
    to `model.decode_logits(z)` within float rounding. Gradients are not tracked (use under no_grad or
    inference_mode). A decoder that is not the conv layout of `vae.models.VAE` is run as it is."""

    def __init__(self, model: VAE):
        self.model = model
        # CPU and CUDA have every operation used here; another device (MPS) runs the model's own decoder.
        fast = model.config.arch == "conv" and model.device.type in ("cpu", "cuda")
        self._plan = _conv_plan(model.decoder) if fast else None

    @torch.no_grad()
    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        if self._plan is None:
            return self.model.decode_logits(z)
        head, weight, bias, (channels, height, width), middle, last = self._plan
        h = z
        for layer in head:
            h = layer(h)
        # The Linear's rows are in (h, w, c) order: its output is the feature map in channels_last memory.
        h = torch.relu_(F.linear(h, weight, bias)).view(len(z), height, width, channels).permute(0, 3, 1, 2)
        for layer in middle:
            h = torch.relu_(layer(h.contiguous(memory_format=torch.channels_last)))
        return _transposed_conv_by_fold(h, *last)


def _conv_plan(decoder: nn.Sequential):
    """Split a conv decoder [Linear, ReLU]*, Linear, ReLU, Unflatten, [ConvTranspose2d, ReLU]*, ConvTranspose2d
    into the parts `FastDecoder` runs; None for any other layout (then the model's decoder runs)."""
    layers = list(decoder)
    unflatten = next((i for i, layer in enumerate(layers) if isinstance(layer, nn.Unflatten)), None)
    if (unflatten is None or unflatten < 2 or not isinstance(layers[unflatten - 2], nn.Linear)
            or not isinstance(layers[unflatten - 1], nn.ReLU)):
        return None
    convs = layers[unflatten + 1:]
    transposed = convs[::2]
    if (not transposed or not all(isinstance(layer, nn.ReLU) for layer in convs[1::2])
            or not all(_plain_transposed_conv(layer) for layer in transposed)):
        return None
    channels, height, width = layers[unflatten].unflattened_size
    linear = layers[unflatten - 2]
    # Rows (c, h, w) -> (h, w, c): the same dot products, written in channels_last order.
    weight = linear.weight.view(channels, height, width, -1).permute(1, 2, 0, 3).reshape(linear.out_features, -1)
    bias = linear.bias.view(channels, height, width).permute(1, 2, 0).reshape(-1)
    last = transposed[-1]
    # (C_in, C_out, kh, kw) -> (C_out * kh * kw, C_in): row j of the product is fold's row j.
    rows = last.weight.reshape(last.in_channels, -1).T.contiguous()
    return (layers[:unflatten - 2], weight, bias, (channels, height, width), transposed[:-1],
            (rows, last.bias, last.out_channels, last.kernel_size, last.stride, last.padding))


def _plain_transposed_conv(layer: nn.Module) -> bool:
    return (isinstance(layer, nn.ConvTranspose2d) and layer.groups == 1 and layer.bias is not None
            and tuple(layer.dilation) == (1, 1) and tuple(layer.output_padding) == (0, 0)
            and layer.padding_mode == "zeros")


def _transposed_conv_by_fold(h: torch.Tensor, rows: torch.Tensor, bias: torch.Tensor, out_channels: int,
                             kernel: tuple[int, int], stride: tuple[int, int],
                             padding: tuple[int, int]) -> torch.Tensor:
    """conv_transpose2d(h) for h (N, C_in, H, W) as a matrix product then col2im: (N, C_out, H', W'),
    H' = (H - 1) * stride - 2 * padding + kernel."""
    height, width = h.shape[2:]
    # One (C_out * kh * kw, C_in) @ (C_in, H * W) product per code; h.flatten(2) is a view in either layout.
    blocks = torch.matmul(rows, h.flatten(2))  # (N, C_out * kh * kw, H * W): fold's input
    size = tuple((side - 1) * s - 2 * p + k for side, s, p, k in zip((height, width), stride, padding, kernel))
    return F.fold(blocks, size, kernel, padding=padding, stride=stride).add_(bias.view(1, out_channels, 1, 1))


def log_px_given_z(logits: torch.Tensor, x: torch.Tensor, likelihood: str, gaussian_sigma: float = 0.1) -> torch.Tensor:
    """log p(x|z) in nats, summed over pixels, for decoder logits (..., P) and images x (P,) or (N, P) that
    broadcast against them: shape logits.shape[:-1]. The same values as `-vae.losses.reconstruction_nll`
    without expanding x to every sample. Bernoulli: sum x * l - softplus(l), the log-likelihood of logit
    l written without sigmoid or log of it (the usual stable form of binary cross-entropy with logits).
    Raises ValueError for an unknown likelihood."""
    if likelihood == "bernoulli":
        return (logits * x).sum(-1) - F.softplus(logits).sum(-1)
    if likelihood == "gaussian":
        pixels = logits.shape[-1]
        squared = ((x - torch.sigmoid(logits)) / gaussian_sigma).pow(2).sum(-1)
        return -0.5 * squared - pixels * (math.log(gaussian_sigma) + 0.5 * math.log(2 * math.pi))
    raise ValueError(f"unknown likelihood {likelihood!r}")
