"""configs/causalvae/pendulum.ron: CausalVAE on 32x32 RGB with 4 concepts of 4 latents.

Encoder: MLP 3072 -> 900 -> 300 -> 2*16 (ELU); the posterior mean goes to the causal layer (no sampling).
Causal layer (CausalVaeMask, initial graph zeros, no attention, masked parents, normalised parents and layers):
z = (I - A^T)^-1 eps per concept block; z~ = g(A_i o z) + eps with g one 16 -> 32 -> 4 ELU MLP per concept (first
layer weight-normalised per parent block, later layers per output column); the label branch g_u(A^T u) (1 -> 32 ->
1 per concept) is computed but no objective of this config reads it; z_dag = z~ + sqrt(1e-3) N(0, I).
Decoder: PerConceptMlp, 4 MLPs 4 -> 300 -> 300 -> 512 -> 3072 + 1024 (Tanh), each reading the block means of
its concepts (`Means([[0], [1], [2, 3], [2, 3]])`), layered front to back over a learned colour background.
Loss: recon (Bernoulli) + label-conditioned prior KL + 25 mask KL + 2 |A|_1 + 300 h(A) + 50 h(A)^2 (+ the graph
pruning term, 0 before its step 1000). Adam lr 1e-3, batch 64.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import ParallelMlp, bernoulli_nll, gaussian_head, make_adam, mlp

CONFIG = "configs/causalvae/pendulum.ron"
BATCH = 64
SHAPE = (3, 32, 32)
N, K = 4, 4
LATENT = N * K
LR = 1e-3
ALPHA = [0.3, 0.3, 250.0, 250.0]
BETA = [25.0, 25.0, 0.0, 0.0]
LABEL_SCALE = [(0.0, 44.0), (100.0, 40.0), (6.5, 3.5), (10.0, 5.0)]
MEANS = [[0], [1], [2, 3], [2, 3]]


def acyclicity(a):
    """h(A) = tr((I + A o A / n)^n) - n."""
    n = a.shape[0]
    m = torch.eye(n) + a * a / n
    return torch.linalg.matrix_power(m, n).diagonal().sum() - n


class CausalVae(nn.Module):
    def __init__(self):
        super().__init__()
        c, h, w = SHAPE
        self.pixels = h * w
        self.encoder = mlp(c * h * w, [900, 300], 2 * LATENT, nn.ELU)
        self.A = nn.Parameter(torch.zeros(N, N))
        self.mask = ParallelMlp(N, N * K, [32], K, F.elu, input_groups=N, normalise_later=True)
        self.label = ParallelMlp(N, 1, [32], 1, F.elu, input_groups=1, normalise_later=True)
        self.nets = ParallelMlp(N, N, [300, 300, 512], c * h * w + h * w, torch.tanh)
        self.background = nn.Parameter(torch.zeros(c + 1, 1))
        sel = torch.zeros(N, 1, N)
        for i, js in enumerate(MEANS):
            sel[i, 0, js] = 1.0
        self.register_buffer("sel", sel)
        self.register_buffer("alpha", torch.tensor(ALPHA).view(1, N, 1))
        self.register_buffer("beta", torch.tensor(BETA).view(1, N, 1))
        self.register_buffer("centre", torch.tensor([s[0] for s in LABEL_SCALE]))
        self.register_buffer("half_range", torch.tensor([s[1] for s in LABEL_SCALE]))

    def decode(self, z):
        b = z.shape[0]
        c, p = SHAPE[0], self.pixels
        inputs = z.view(b, N, K).mean(2).unsqueeze(0) * self.sel
        outs = self.nets(inputs)
        alphas = torch.sigmoid(outs[:, :, c * p:])
        seen = torch.ones(b, p)
        image = 0
        for i in range(N):
            wgt = (seen * alphas[i]).view(b, 1, p)
            image = image + outs[i, :, : c * p].view(b, c, p) * wgt
            seen = seen * (1 - alphas[i])
        bg = self.background.expand(c + 1, p).reshape(1, 1, (c + 1) * p)
        image = image + bg[..., : c * p].reshape(1, c, p) * seen.view(b, 1, p)
        return image.view(b, *SHAPE)

    def loss(self, x, labels):
        b = x.shape[0]
        mean, _ = gaussian_head(self.encoder(x.flatten(1)), LATENT)
        e = mean.view(b, N, K)
        at = self.A.t()
        z = torch.linalg.inv(torch.eye(N) - at) @ e
        parents = (z.unsqueeze(1) * at.reshape(1, N, N, 1)).reshape(b, N, N * K)
        zm = self.mask.forward_batch_major(parents) + e
        self.label.forward_batch_major(at @ labels.view(b, N, 1))  # no objective reads it
        z_dag = zm.reshape(b, LATENT) + torch.randn(b, LATENT) * math.sqrt(1e-3)
        recon = bernoulli_nll(self.decode(z_dag), x)
        u = ((labels - self.centre) / self.half_range).view(b, N, 1).expand(b, N, K)
        kl = (0.5 * (e.pow(2) * self.alpha).sum((1, 2)) + 0.5 * ((z - u).pow(2) * self.beta).sum((1, 2))).mean()
        mask_kl = 25.0 * (0.5 * (zm - u).pow(2).sum((1, 2))).mean()
        a_abs = self.A.abs()
        h = acyclicity(self.A)
        return recon + kl + mask_kl + 2.0 * a_abs.sum() + 300.0 * h + 50.0 * h * h + 0.0 * a_abs.sum()


def build(fused):
    model = CausalVae()
    opt = make_adam(model.parameters(), fused, lr=LR)
    lo = torch.tensor([c - h for c, h in LABEL_SCALE])
    hi = torch.tensor([c + h for c, h in LABEL_SCALE])
    batches = [(torch.rand(BATCH, *SHAPE), lo + (hi - lo) * torch.rand(BATCH, N)) for _ in range(2)]

    def step(batch):
        opt.zero_grad(set_to_none=True)
        model.loss(*batch).backward()
        opt.step()

    return step, batches
