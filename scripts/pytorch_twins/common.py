"""Shared pieces of the PyTorch twins: carve's layers in PyTorch form and the timing loop.

PyTorch's default initialisation of nn.Linear, nn.Conv2d and nn.ConvTranspose2d is U(+-1/sqrt(fan_in)) for
weight and bias, with fan_in from weight.size(1) (the output channels of a transposed conv): exactly carve's
`Init::torch_default`, so the twins use the stock modules.
"""

import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def mlp(d_in, hidden, d_out, act):
    """carve's `Mlp`: Linear -> act -> ... -> Linear, no activation on the output."""
    dims = [d_in, *hidden, d_out]
    layers = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def bernoulli_nll(logits, x):
    """Batch mean of the per-sample summed BCE-with-logits (carve's Bernoulli `nll` + `Reconstruction`)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def kl_std_normal(mean, logvar):
    """Batch mean of KL(N(mean, e^logvar) || N(0, I)), summed over latents."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()


def gaussian_head(h, d):
    """Mean and clamped log-variance from a `[B, 2d]` head (carve's `DiagGaussian::new`)."""
    return h[:, :d], h[:, d:].clamp(-30.0, 20.0)


def pixel_norm(x):
    """x / sqrt(mean_c x^2 + 1e-8) over axis 1."""
    return x / (x.pow(2).mean(1, keepdim=True) + 1e-8).sqrt()


class ParallelMlp(nn.Module):
    """carve's `ParallelMlp`: n independent MLPs as one batched matmul per layer.

    Weights `[n, in, out]` and biases `[n, 1, out]`, each U(+-1/sqrt(in)) per node. `input_groups` and
    `normalise_later` are carve's `with_normalised_input_groups` / `with_normalised_later_layers`: the weights are
    rescaled to a fixed norm in every forward pass.
    """

    def __init__(self, n, d_in, hidden, d_out, act, input_groups=None, normalise_later=False):
        super().__init__()
        dims = [d_in, *hidden, d_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims, dims[1:]):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(n, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, b).uniform_(-bound, bound)))
        self.act = act
        self.input_groups = input_groups
        self.normalise_later = normalise_later

    def weight(self, i):
        w = self.weights[i]
        if i == 0 and self.input_groups:
            n, d_in, d_out = w.shape
            g = self.input_groups
            target = math.sqrt((d_in // g * d_out) / (3.0 * d_in))
            wg = w.reshape(n, g, d_in // g * d_out)
            return (wg / (wg.pow(2).sum(2, keepdim=True) + 1e-12).sqrt() * target).reshape(n, d_in, d_out)
        if i > 0 and self.normalise_later:
            return w / (w.pow(2).sum(1, keepdim=True) + 1e-12).sqrt() * math.sqrt(1.0 / 3.0)
        return w

    def forward(self, x):
        """`[n, B, in]` -> `[n, B, out]`."""
        last = len(self.weights) - 1
        for i, b in enumerate(self.biases):
            x = torch.baddbmm(b, x, self.weight(i))
            if i < last:
                x = self.act(x)
        return x

    def forward_batch_major(self, x):
        """`[B, n, in]` -> `[B, n, out]`."""
        return self.forward(x.transpose(0, 1).contiguous()).transpose(0, 1).contiguous()


def make_adam(params, fused, **kw):
    return torch.optim.Adam(params, fused=fused, **kw)


def image_vae_step(model, fused, lr, batch, shape):
    """The (step, batches) pair of a VAE whose `loss(x)` is its whole objective, on random images in [0, 1]."""
    opt = make_adam(model.parameters(), fused, lr=lr)
    batches = [torch.rand(batch, *shape) for _ in range(2)]

    def step(x):
        opt.zero_grad(set_to_none=True)
        model.loss(x).backward()
        opt.step()

    return step, batches


def fused_adam_available():
    """Whether this torch build runs `Adam(fused=True)` on CPU tensors."""
    try:
        p = nn.Parameter(torch.zeros(4))
        p.grad = torch.ones(4)
        torch.optim.Adam([p], fused=True).step()
        return True
    except (RuntimeError, TypeError, ValueError):
        return False


def time_steps(step, batches, warmup, steps):
    """Runs `warmup` untimed and `steps` timed calls of `step(batch)`; returns the step times in seconds.

    Batches are made before timing and cycled, so the timed loop is the training step alone.
    """
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for i in range(warmup):
        step(batches[i % len(batches)])
    sync()
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(batches[i % len(batches)])
        sync()  # GPU work is queued: time it to completion, as `carve bench --device cuda` does
        times.append(time.perf_counter() - t0)
    return times


def summarise(times, batch_size):
    med = statistics.median(times)
    return {
        "samples_per_sec": batch_size / med,
        "step_ms_median": med * 1e3,
        "step_ms_min": min(times) * 1e3,
    }
