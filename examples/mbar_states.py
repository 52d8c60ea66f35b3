"""MBAR (reverse logistic regression) over several states.

Five one-dimensional Gaussian states with different means and widths, each known only up to its
normalizer, are sampled separately; ``rlr`` pools all the draws and estimates every state's log Z
relative to the first, with standard errors from the sandwich covariance.  The exact differences are
known here, so the z-scores show whether the standard errors are honest.  The overlap matrix says
which states share draws.
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ebmlab.estimators import rlr

means = torch.tensor([0.0, 1.0, 2.0, 3.5, 5.0], dtype=torch.float64)
stds = torch.tensor([1.0, 0.8, 1.2, 1.0, 1.5], dtype=torch.float64)
counts = [400, 300, 300, 300, 400]
gen = torch.Generator().manual_seed(0)

# draws pooled in the order of the state they come from
x = torch.cat([m + s * torch.randn(n, generator=gen, dtype=torch.float64) for m, s, n in zip(means, stds, counts)])
# log q[k, n]: state k's unnormalised log density -(x - m_k)^2 / (2 s_k^2) at every pooled draw
log_q = -((x[None, :] - means[:, None]) ** 2) / (2 * stds[:, None] ** 2)
exact = torch.log(stds * math.sqrt(2 * math.pi))
exact = exact - exact[0]  # only ratios are identifiable: state 0 is the reference

est = rlr(log_q, counts)
print(f"converged: {est.all_converged} in {est.iterations} Newton iterations")
print(f"{'state':>5} {'log Z - log Z_0':>16} {'SE':>7} {'exact':>8} {'z-score':>8}")
print(f"{0:5d} {'0 (reference)':>16}")
for k in range(1, len(counts)):
    z = (est.log_z[k] - exact[k]) / est.se[k]
    print(f"{k:5d} {est.log_z[k]:16.4f} {est.se[k]:7.4f} {exact[k]:8.4f} {z:8.2f}")
print("overlap matrix:")
print(est.overlap.numpy().round(3))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
grid = torch.linspace(-4, 10, 400, dtype=torch.float64)
for m, s in zip(means, stds):
    axes[0].plot(grid, torch.exp(-((grid - m) ** 2) / (2 * s**2)) / (s * math.sqrt(2 * math.pi)))
axes[0].set(title="the five states (normalised)", xlabel="x")
image = axes[1].imshow(est.overlap.numpy(), cmap="viridis")
axes[1].set(title="overlap matrix", xlabel="state", ylabel="state")
fig.colorbar(image, ax=axes[1])
fig.tight_layout()
fig.savefig("mbar_overlap.png", dpi=90)
