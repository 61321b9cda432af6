"""Randomized prior functions on a 1-D toy problem.

Two clusters of noisy points, around x = -1 and x = +1, and an ensemble of 50 members, each
``f_k(x) + prior_scale * p_k(x)`` with ``f_k`` trained on its own bootstrap resample and ``p_k`` a
frozen prior (Osband, Aslanides & Cassirer, NeurIPS 2018). Two choices of prior:

* random MLPs (the regressor's default: the member architecture, initialised and never trained);
* one fixed function shared by all members, ``sin(3x)``.

For each, the script draws the ensemble mean with a ±2 standard-deviation band, the priors alone and
every member's prediction, and prints the spread next to the data and far from it.

Run ``python examples/plot_randomized_prior.py --out figures``.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.plotting import plot_members, plot_priors, plot_uncertainty  # noqa: E402

X_LIMITS = (-3.0, 3.0)


def make_two_clusters(n_per_cluster=20, noise=0.05, seed=0):
    """Noisy samples of ``sin(2x) + x/2`` in two clusters, around -1 and +1."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(-1.0, 0.15, n_per_cluster), rng.normal(1.0, 0.15, n_per_cluster)])
    y = np.sin(2 * x) + 0.5 * x + noise * rng.normal(size=x.size)
    return x[:, None], y


def sine_prior(x):
    """The fixed prior shared by every member."""
    return torch.sin(3 * x)


def fit(X, y, prior):
    # Full batch and a larger learning rate than the default, as in the paper's toy: 40 points
    # need a few hundred full-batch steps to be fitted closely.
    reg = RandomizedPriorRegressor(
        n_estimators=50, prior=prior, prior_scale=1.0, batch_size=None, lr=1e-2, max_epochs=400,
        random_state=0,
    )
    start = time.perf_counter()
    reg.fit(X, y)
    print(f"  fitted 50 members x {reg.n_epochs_} epochs in {time.perf_counter() - start:.1f} s")
    return reg


def report_spread(reg, X):
    """Print the epistemic std next to the data and far from it."""
    probes = np.array([[-1.0], [0.0], [1.0], [-3.0], [3.0]])
    _, std = reg.predict(probes, return_std=True, epistemic=True)
    _, total = reg.predict(probes, return_std=True)
    print(f"  noise std estimated from out-of-bag rows: {np.sqrt(reg.noise_[0]):.3f}")
    print("       x   epistemic std   total std")
    for x, s, t in zip(probes[:, 0], std, total, strict=True):
        print(f"  {x:6.1f}   {s:13.3f}   {t:9.3f}")
    near = reg.predict(X, return_std=True, epistemic=True)[1].mean()
    far = std[[3, 4]].mean()
    print(f"  mean epistemic std on the training points {near:.3f}, at x = ±3 {far:.3f} "
          f"({far / near:.0f}x larger)")


def save(fig, out, name):
    path = out / name
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"  wrote {path}")


def draw(reg, X, y, grid, out, tag, prior_title):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    plot_uncertainty(reg, X, y, grid, ax=ax, n_std=2, kind="both")
    ax.set_title(f"Randomized prior ensemble ({prior_title}): mean ±2 std")
    ax.set_xlim(*X_LIMITS)
    save(fig, out, f"rpf_{tag}_uncertainty.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    plot_priors(reg, grid, ax=ax)
    ax.set_title(f"The frozen priors alone ({prior_title})")
    ax.set_xlim(*X_LIMITS)
    save(fig, out, f"rpf_{tag}_priors.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    plot_members(reg, grid, ax=ax, X_train=X, y_train=y)
    ax.set_title(f"Each member's prediction f_k + p_k ({prior_title})")
    ax.set_xlim(*X_LIMITS)
    save(fig, out, f"rpf_{tag}_members.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    X, y = make_two_clusters()
    grid = np.linspace(*X_LIMITS, 400)[:, None]
    for tag, prior, title in [("mlp", None, "random MLP priors"), ("sine", sine_prior, "sin(3x) prior")]:
        print(f"{title}:")
        reg = fit(X, y, prior)
        report_spread(reg, X)
        draw(reg, X, y, grid, args.out, tag, title)


if __name__ == "__main__":
    main()
