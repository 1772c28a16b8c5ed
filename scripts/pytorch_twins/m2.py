"""configs/vae/pendulum_conv64.ron: conv VAE (disentanglement_lib's encoder/decoder) on 64x64 RGB.

Encoder: conv 3->32->32->64->64 (kernel 4, stride 2, padding 1, ReLU after each) -> flatten 64*4*4 -> FC 256
(ReLU) -> 2*10. Decoder: FC 10->256 (ReLU) -> FC 1024 (ReLU) -> [64, 4, 4] -> transposed convs 64->64->32->32->3
(kernel 4, stride 2, padding 1, ReLU between). Bernoulli likelihood, z sampled, loss recon + KL, Adam lr 5e-4,
batch 64.
"""

import torch
import torch.nn as nn

from common import bernoulli_nll, gaussian_head, image_vae_step, kl_std_normal

CONFIG = "configs/vae/pendulum_conv64.ron"
BATCH = 64
SHAPE = (3, 64, 64)
LATENT = 10
CHANNELS = [32, 32, 64, 64]
HIDDEN = 256
LR = 5e-4


def down_stack(c_in, channels, act):
    """carve's `ConvDownStack`: stride-2 convs, activation after every layer."""
    layers = []
    for a, b in zip([c_in, *channels], channels):
        layers += [nn.Conv2d(a, b, 4, 2, 1), act()]
    return nn.Sequential(*layers)


def up_stack(c_in, channels, act, norm=None):
    """carve's `ConvUpStack`: stride-2 transposed convs, activation (then `norm`) after all but the last."""
    layers = []
    ins = [c_in, *channels]
    for i, (a, b) in enumerate(zip(ins, channels)):
        layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
        if i < len(channels) - 1:
            layers.append(act())
            if norm is not None:
                layers.append(norm)
    return nn.Sequential(*layers)


class ConvVae(nn.Module):
    def __init__(self):
        super().__init__()
        c, h, _ = SHAPE
        n = len(CHANNELS)
        side = h >> n
        self.base = (CHANNELS[-1], side, side)
        self.convs = down_stack(c, CHANNELS, nn.ReLU)
        self.fc = nn.Linear(CHANNELS[-1] * side * side, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2 * LATENT)
        self.fc1 = nn.Linear(LATENT, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, CHANNELS[-1] * side * side)
        # Deconv channels: the encoder's in reverse, ending at the image channels.
        self.deconvs = up_stack(CHANNELS[-1], [*reversed(CHANNELS[:-1]), c], nn.ReLU)

    def loss(self, x):
        h = torch.relu(self.fc(self.convs(x).flatten(1)))
        mean, logvar = gaussian_head(self.head(h), LATENT)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        h = torch.relu(self.fc2(torch.relu(self.fc1(z))))
        logits = self.deconvs(h.view(-1, *self.base))
        return bernoulli_nll(logits, x) + kl_std_normal(mean, logvar)


def build(fused):
    return image_vae_step(ConvVae(), fused, LR, BATCH, SHAPE)
