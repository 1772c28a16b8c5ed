"""configs/dear/pendulum.ron: DEAR (bidirectional GAN with an SCM prior) on 32x32 RGB, latent 6 (4 supervised).

Encoder: conv 3->32->32->64->64 (kernel 4, stride 2, LeakyReLU 0.2) -> FC 256 -> 2*6. Generator: FC 6->256 ->
64*2*2 -> transposed convs 64->64->32->32->3, LeakyReLU 0.2 and pixel norm after every hidden layer, output
sigmoid(logits). Discriminator "Small", every layer spectrally normalised (one power-iteration step per forward,
u and v held constant, u updated): conv 3->16->32->64->64 -> FC 128 (image branch), MLP 6->128->128 (latent
branch), MLP 256->128 (joint branch), score = mean of three linear heads. Prior: eps ~ N(0, I), z = SCM(eps) with
z_1..4 = f2((I - A^T)^-1 eps_1..4) on the pendulum graph (A masked to its 4 edges, f2 affine), z_5..6 = eps_5..6.

One train step = carve's three updates, each a backward pass of its own loss followed by its groups' Adam steps:
1. D on (G(z), z) detached vs (x, E(x)) detached: softplus(d_fake) + softplus(-d_real).
2. Encoder: mean D(x, E(x)) + 5 * BCE supervision of the first 4 posterior means.
3. Generator + f2 + A: -mean(clamp(exp D, 0.5, 2) * D) on (G(z), z).
E(x), z and G(z) are computed once per step and reused, as carve does. Adam betas (0.0, 0.999); lr 1e-4 for
encoder, generator and discriminator, 1e-3 for f2 and for A (whose beta1 is 0.9).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import gaussian_head, make_adam, pixel_norm
from m2 import down_stack

CONFIG = "configs/dear/pendulum.ron"
BATCH = 64
SHAPE = (3, 32, 32)
LATENT = 6
M = 4
EDGES = [(0, 2), (0, 3), (1, 2), (1, 3)]
CHANNELS = [32, 32, 64, 64]
HIDDEN = 256
BETAS = (0.0, 0.999)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


def spectral(w, u, mat):
    """w / sigma with sigma = u^T W v after one power-iteration step on `mat` (a view of w), as carve's
    `SpectralNorm::apply`: u is carve's buffer (size = mat's rows), updated in place."""
    with torch.no_grad():
        v = F.normalize(u @ mat, dim=0, eps=1e-12)
        u_new = F.normalize(mat @ v, dim=0, eps=1e-12)
        u.copy_(u_new)
    # sigma reads the new u, not the buffer: a later forward updating the buffer must not touch this graph.
    return w / (u_new @ mat @ v)


class SnLinear(nn.Linear):
    def __init__(self, a, b):
        super().__init__(a, b)
        # carve keeps the weight as [in, out], so its power iteration runs over the input side.
        self.register_buffer("u", torch.randn(a))

    def forward(self, x):
        w = spectral(self.weight, self.u, self.weight.t())
        return F.linear(x, w, self.bias)


class SnConv2d(nn.Conv2d):
    def __init__(self, a, b):
        super().__init__(a, b, 4, 2, 1)
        self.register_buffer("u", torch.randn(b))

    def forward(self, x):
        w = spectral(self.weight, self.u, self.weight.flatten(1))
        return self._conv_forward(x, w, self.bias)


class SmallDiscriminator(nn.Module):
    def __init__(self, channels=(16, 32, 64, 64), features=128, latent_hidden=(128, 128), joint_hidden=(128,)):
        super().__init__()
        c, h, _ = SHAPE
        ins = [c, *channels]
        self.convs = nn.ModuleList(SnConv2d(a, b) for a, b in zip(ins, channels))
        flat = channels[-1] * (h >> len(channels)) ** 2
        self.x_features = SnLinear(flat, features)
        self.x_score = SnLinear(features, 1)
        zs = [LATENT, *latent_hidden]
        self.z = nn.ModuleList(SnLinear(a, b) for a, b in zip(zs, latent_hidden))
        self.z_score = SnLinear(latent_hidden[-1], 1)
        js = [features + latent_hidden[-1], *joint_hidden]
        self.xz = nn.ModuleList(SnLinear(a, b) for a, b in zip(js, joint_hidden))
        self.xz_score = SnLinear(joint_hidden[-1], 1)

    def forward(self, x, z):
        h = x
        for conv in self.convs:
            h = lrelu(conv(h))
        fx = lrelu(self.x_features(h.flatten(1)))
        fz = z
        for l in self.z:
            fz = lrelu(l(fz))
        fxz = torch.cat([fx, fz], 1)
        for l in self.xz:
            fxz = lrelu(l(fxz))
        return ((self.x_score(fx) + self.z_score(fz) + self.xz_score(fxz)) / 3).squeeze(1)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        c, h, _ = SHAPE
        self.convs = down_stack(c, CHANNELS, lambda: nn.LeakyReLU(0.2))
        self.fc = nn.Linear(CHANNELS[-1] * (h >> len(CHANNELS)) ** 2, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2 * LATENT)

    def forward(self, x):
        return gaussian_head(self.head(lrelu(self.fc(self.convs(x).flatten(1)))), LATENT)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        c, h, _ = SHAPE
        side = h >> len(CHANNELS)
        self.base = (CHANNELS[-1], side, side)
        self.fc1 = nn.Linear(LATENT, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, CHANNELS[-1] * side * side)
        ups = [*reversed(CHANNELS[:-1]), c]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in zip([CHANNELS[-1], *ups], ups))

    def forward(self, z):
        h = pixel_norm(lrelu(self.fc1(z)))
        h = pixel_norm(lrelu(self.fc2(h)))
        h = h.view(-1, *self.base)
        for i, d in enumerate(self.deconvs):
            h = d(h)
            if i < len(self.deconvs) - 1:
                h = pixel_norm(lrelu(h))
        return torch.sigmoid(h)


class Scm(nn.Module):
    """z_1..m = f2((I - A^T)^-1 eps_1..m) with A on the known graph's edges, f2(t) = a t + b per latent."""

    def __init__(self):
        super().__init__()
        self.A = nn.Parameter(torch.zeros(M, M))
        support = torch.zeros(M, M)
        for i, j in EDGES:
            support[i, j] = 1.0
        self.register_buffer("support", support)
        self.a = nn.Parameter(torch.empty(M).uniform_(0.0, 1.0))  # U(+-0.5) + 0.5, as carve
        self.b = nn.Parameter(torch.empty(M).uniform_(0.0, 1.0))

    def forward(self, eps):
        c = torch.linalg.inv(torch.eye(M) - (self.A * self.support).t())
        causal = (eps[:, :M] @ c.t()) * self.a + self.b
        return torch.cat([causal, eps[:, M:]], 1)


def build(fused):
    enc, gen, disc, scm = Encoder(), Generator(), SmallDiscriminator(), Scm()
    opt_e = make_adam(enc.parameters(), fused, lr=1e-4, betas=BETAS)
    opt_g = make_adam(gen.parameters(), fused, lr=1e-4, betas=BETAS)
    opt_d = make_adam(disc.parameters(), fused, lr=1e-4, betas=BETAS)
    opt_p = make_adam([scm.a, scm.b], fused, lr=1e-3, betas=BETAS)
    opt_a = make_adam([scm.A], fused, lr=1e-3, betas=(0.9, 0.999))
    everything = [*enc.parameters(), *gen.parameters(), *disc.parameters(), *scm.parameters()]
    # Supervision targets: labels min-max scaled to [0, 1]; the synthetic labels already are.
    batches = [(torch.rand(BATCH, *SHAPE), torch.rand(BATCH, M)) for _ in range(2)]

    def zero():
        for p in everything:
            p.grad = None

    def step(batch):
        x, targets = batch
        mean, logvar = enc(x)
        z_enc = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        z_gen = scm(torch.randn(x.shape[0], LATENT))
        x_gen = gen(z_gen)

        zero()
        d_fake = disc(x_gen.detach(), z_gen.detach())
        d_real = disc(x, z_enc.detach())
        (F.softplus(d_fake).mean() + F.softplus(-d_real).mean()).backward()
        opt_d.step()

        zero()
        m = mean[:, :M]
        sup = (F.softplus(m) - m * targets).mean()
        (disc(x, z_enc).mean() + 5.0 * sup).backward()
        opt_e.step()

        zero()
        d_gen = disc(x_gen, z_gen)
        s = d_gen.detach().exp().clamp(0.5, 2.0)
        (-(s * d_gen).mean()).backward()
        opt_g.step()
        opt_p.step()
        opt_a.step()

    return step, batches
