"""A latent EBM prior, quickly.

A generator g maps a 2-D latent z to a 2-D observation x = g(z) + 0.3 noise; the prior on z is an
energy-based correction of N(0, I), p(z) ∝ exp(-E(z)) N(z; 0, I) (LEBM, Pang et al. 2020).  Each
iteration draws posterior samples z | x and prior samples by short-run Langevin chains from N(0, I),
takes one generator step on the reconstruction error and one prior step on
mean E(z_pos) - mean E(z_neg).  New data come from prior Langevin chains pushed through g.

400 iterations are enough for the generator (its reconstruction loss falls twentyfold) but not for the
prior: the generated points only begin to show the data's three arms, and the prior's samples are still
close to N(0, I).  The full-length runs of the latent studies are in the latent-priors page.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ebmlab.latent import ChainConfig, LatentEBMPrior, LatentModel, LatentTrainer, LEBMSampler, LoopConfig, MLPGenerator
from ebmlab.latent.toy import pinwheel

torch.manual_seed(0)  # the networks' initial weights
gen = torch.Generator().manual_seed(0)
data = 2.0 * pinwheel(2000, gen, arms=3)

model = LatentModel(MLPGenerator(2, 2, hidden=(64, 64)), LatentEBMPrior(2, hidden=(64, 64)), sigma=0.3)
sampler = LEBMSampler(ChainConfig(prior_steps=30, prior_s=0.4, post_steps=20, post_s=0.1, eval_prior_steps=60))
trainer = LatentTrainer(model, sampler, data, LoopConfig(batch_size=200, lr_g=2e-3, lr_e=5e-4), gen)
history = trainer.run(400, progress=False)
print(f"reconstruction loss: {history[0]['loss_g']:.1f} at the start, {history[-1]['loss_g']:.1f} after 400 iterations")

with torch.no_grad():
    z_prior = sampler.generate(model, 2000, gen)
    x_new = model.generator(z_prior) + model.sigma * torch.randn(z_prior.shape, generator=gen)
z_post = sampler.infer(model, data[:2000], gen)
print(f"prior sample mean {z_prior.mean(0).tolist()}, std {z_prior.std(0).tolist()}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
axes[0].scatter(*data.T, s=2, alpha=0.5)
axes[0].set_title("data x")
axes[1].scatter(*x_new.T, s=2, alpha=0.5, color="C1")
axes[1].set_title("generated: g(z) + noise, z from the EBM prior")
axes[2].scatter(*z_post.detach().T, s=2, alpha=0.4, label="posterior z | x")
axes[2].scatter(*z_prior.T, s=2, alpha=0.4, label="EBM prior z")
axes[2].set_title("latent space")
axes[2].legend(markerscale=4)
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
fig.savefig("latent_prior.png", dpi=90)
