"""configs/betavae/pendulum.ron: MLP beta-VAE on 96x96 RGBA pendulum images.

Encoder 36864 -> 900 -> 300 -> 2*16 (ELU), decoder 16 -> 300 -> 300 -> 1024 -> 36864 (ELU), Bernoulli
likelihood, z sampled from q, loss recon + 4 * KL(q || N(0, I)), Adam lr 1e-4, batch 64 (carve's BetaVae
method: the generic ELBO with a StdNormal prior and an Independent causal layer).
"""

import torch
import torch.nn as nn

from common import bernoulli_nll, gaussian_head, image_vae_step, kl_std_normal, mlp

CONFIG = "configs/betavae/pendulum.ron"
BATCH = 64
SHAPE = (4, 96, 96)
LATENT = 16
BETA = 4.0
LR = 1e-4


class BetaVae(nn.Module):
    def __init__(self):
        super().__init__()
        n = SHAPE[0] * SHAPE[1] * SHAPE[2]
        self.encoder = mlp(n, [900, 300], 2 * LATENT, nn.ELU)
        self.decoder = mlp(LATENT, [300, 300, 1024], n, nn.ELU)

    def loss(self, x):
        mean, logvar = gaussian_head(self.encoder(x.flatten(1)), LATENT)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        logits = self.decoder(z).view_as(x)
        return bernoulli_nll(logits, x) + BETA * kl_std_normal(mean, logvar)


def build(fused):
    return image_vae_step(BetaVae(), fused, LR, BATCH, SHAPE)
