"""Estimate log Z of a model with three estimators and compare their standard errors.

The model is a two-component Gaussian mixture energy, whose exact log Z is known, so every estimate
can be checked.  Importance sampling needs only proposal draws, the optimal bridge also uses exact
model draws, and AIS anneals the proposal draws to the model with MALA moves.  Each estimator is
run on 20 independent problems at once (a leading batch), so each one's reported standard error can
be compared with the spread of its estimates (itself uncertain by about 16% with 20 problems).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ebmlab.energies import GaussianMixture
from ebmlab.estimators import ESTIMATORS, GaussianNoise, Problem
from ebmlab.sampling.kernels import Move

model = GaussianMixture(
    torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64), 0.6
)
exact = float(model.log_z().detach())
gen = torch.Generator().manual_seed(0)
reps, n = 20, 500
x = model.sample(reps * n, gen).reshape(reps, n, 2)  # exact model draws (for the bridge)
q = GaussianNoise.fit(x.reshape(-1, 2), inflate=1.5)  # a Gaussian proposal covering both modes
y = q.sample(reps * n, gen).reshape(reps, n, 2)
problem = Problem(lambda z: -model(z), [q], x=x, y=y, generator=gen)

print(f"exact log Z = {exact:.4f} nats; {reps} independent problems of {n} draws each")
print(f"{'estimator':<16} {'mean log Z':>10} {'mean SE':>8} {'sd over problems':>17} {'mean z-score':>13}")
rows = []
for name, options in [("is", {}), ("bridge-optimal", {}), ("ais", {"move": Move("mala", 0.1), "betas": 50})]:
    est = ESTIMATORS[name](problem, **options)
    z = ((est.log_z - exact) / est.se).mean()
    print(f"{name:<16} {est.log_z.mean():10.4f} {est.se.mean():8.4f} {est.log_z.std():17.4f} {z:13.2f}")
    rows.append((name, est.log_z, est.se))

fig, ax = plt.subplots(figsize=(6, 3.5))
for i, (name, log_z, se) in enumerate(rows):
    offsets = i + torch.linspace(-0.3, 0.3, reps)
    ax.errorbar(offsets, log_z - exact, yerr=2 * se, fmt="o", ms=3, label=name)
ax.axhline(0, color="k", lw=0.8)
ax.set_xticks(range(len(rows)), [r[0] for r in rows])
ax.set_ylabel("log Z estimate - exact (nats)")
ax.set_title("20 problems per estimator, bars = +- 2 reported SE")
fig.tight_layout()
fig.savefig("log_z_estimates.png", dpi=90)
