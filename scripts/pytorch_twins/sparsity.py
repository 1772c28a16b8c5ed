"""configs/sparsity/action_nontrivial.ron: mechanism sparsity on tabular data, x_dim 20, z_dim 10, 10 actions.

Encoder: MLP 20 -> 256 -> 256 -> 256 -> 2*10 (LeakyReLU 0.2), variance softplus(rho) + 1e-4; z sampled.
Decoder: MLP 10 -> 256 -> 256 -> 256 -> 20 (LeakyReLU 0.2), Gaussian with one learned log-variance (init -10),
nll averaged over the 20 values. Transition prior: a Gumbel-sigmoid mask (logits [10, 10], init 5, tau 1) on the
actions, then one MLP per latent 10 -> 64 -> 64 -> 1 (LeakyReLU 0.2) for its mean and a learned variance.
Loss: recon + KL(q || transition prior) / x_dim + lambda * (sum sigmoid(logits) - bound_t) (Lagrangian; lambda
by projected dual ascent, dual lr 5e-4, bound from 100 to 20 over 30000 steps). Adam lr 2e-3, batch 256.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import HALF_LOG_2PI, ParallelMlp, make_adam, mlp

CONFIG = "configs/sparsity/action_nontrivial.ron"
BATCH = 256
X_DIM, Z_DIM, A_DIM = 20, 10, 10
LR = 2e-3
BOUND, SCHEDULE, DUAL_LR = 20.0, 30000, 5e-4


def lrelu():
    return nn.LeakyReLU(0.2)


class Sparsity(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = mlp(X_DIM, [256, 256, 256], 2 * Z_DIM, lrelu)
        self.decoder = mlp(Z_DIM, [256, 256, 256], X_DIM, lrelu)
        self.logvar = nn.Parameter(torch.tensor([-10.0]))
        self.net = ParallelMlp(Z_DIM, A_DIM, [64, 64], 1, lambda x: F.leaky_relu(x, 0.2))
        self.raw_var = nn.Parameter(torch.full((Z_DIM,), math.log(math.expm1(1e-4))))
        self.mask_logits = nn.Parameter(torch.full((Z_DIM, A_DIM), 5.0))

    def loss(self, x, actions):
        h = self.encoder(x)
        q_mean, q_var = h[:, :Z_DIM], F.softplus(h[:, Z_DIM:]) + 1e-4
        z = q_mean + q_var.sqrt() * torch.randn_like(q_mean)
        std = (0.5 * self.logvar).exp() + 1e-4
        resid = (self.decoder(z) - x) / std
        recon = ((0.5 * resid.pow(2) + HALF_LOG_2PI).mean(1) + std.log()).mean()
        u = torch.rand(Z_DIM, A_DIM).clamp(1e-6, 1 - 1e-6)
        mask = torch.sigmoid(self.mask_logits + u.log() - (1 - u).log())
        p_mean = self.net(mask.unsqueeze(1) * actions.unsqueeze(0)).squeeze(2).t()
        p_var = (F.softplus(self.raw_var) + 1e-6).unsqueeze(0)
        kl = 0.5 * (p_var.log() - q_var.log() + (q_var + (q_mean - p_mean).pow(2)) / p_var - 1).sum(1)
        edges = torch.sigmoid(self.mask_logits).sum()
        return recon + (kl / X_DIM).mean(), edges


def build(fused):
    model = Sparsity()
    opt = make_adam(model.parameters(), fused, lr=LR)
    batches = [(torch.rand(BATCH, X_DIM), torch.rand(BATCH, A_DIM) * 4 - 2) for _ in range(2)]
    state = {"step": 0, "lambda": 0.0}
    start = float(Z_DIM * A_DIM)

    def step(batch):
        t = state["step"]
        bound = start + (BOUND - start) * min(t / SCHEDULE, 1.0)
        opt.zero_grad(set_to_none=True)
        loss, edges = model.loss(*batch)
        (loss + state["lambda"] * (edges - bound)).backward()
        opt.step()
        # Projected dual ascent with restarts, on the host as carve does.
        g = edges.item()
        lam = max(0.0, state["lambda"] + DUAL_LR * (g - bound))
        state["lambda"] = 0.0 if g < bound else lam
        state["step"] = t + 1

    return step, batches
