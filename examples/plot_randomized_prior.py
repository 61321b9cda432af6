"""Randomized prior functions on a 1-D toy problem.

Two clusters of noisy points, around x = -1 and x = +1, and an ensemble of 50 members, each
``f_k(x) + prior_scale * p_k(x)`` with ``f_k`` trained on its own bootstrap resample and ``p_k`` a
frozen prior (Osband, Aslanides & Cassirer, NeurIPS 2018). Two choices of prior:

* random MLPs (the regressor's default: the member architecture, initialised and never trained);
* one fixed function shared by all members, ``sin(3x)``.

For each, the script draws the ensemble mean with a ±2 standard-deviation band
(:class:`~sklearn_rpf.plotting.UncertaintyDisplay`), the priors alone and every member's prediction,
and prints the spread next to the data and far from it. Last, it draws and prints the coverage of
both ensembles' Gaussian intervals on held-out points from the same two clusters
(:class:`~sklearn_rpf.plotting.CoverageDisplay`; the conformal intervals too where the regressor
has ``predict_interval``).

Run ``python examples/plot_randomized_prior.py`` (PNGs in docs/images/, the README's figures) or
add ``--out FOLDER``.
"""

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.datasets import make_two_clusters  # noqa: E402
from sklearn_rpf.plotting import (  # noqa: E402
    CoverageDisplay,
    UncertaintyDisplay,
    plot_members,
    plot_priors,
)

X_LIMITS = (-3.0, 3.0)
IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
# Nominal levels of the coverage figure; the printed table reads three of them.
LEVELS = np.round(np.linspace(0.05, 0.95, 19), 2)
PRINTED_LEVELS = (0.5, 0.9, 0.95)


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


def report_draws(reg, grid, n_draws=2000):
    """Print how close the moments of sample_y's draws come to predict(return_std=True)."""
    draws = reg.sample_y(grid, n_samples=n_draws, random_state=0)
    mean, std = reg.predict(grid, return_std=True)
    std_error = 100 * np.abs(draws.std(axis=1) / std - 1)
    mean_error = 100 * np.abs(draws.mean(axis=1) - mean) / std
    print(f"  sample_y, {n_draws} draws on {len(grid)} points of [-3, 3], against predict: std "
          f"off by {np.median(std_error):.1f}% (median over points; at most "
          f"{std_error.max():.1f}%), mean off by {np.median(mean_error):.1f}% of a std (at most "
          f"{mean_error.max():.1f}%)")


def save(fig, out, name):
    path = out / name
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"  wrote {os.path.relpath(path)}")


def draw(reg, X, y, grid, out, tag, prior_title):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    UncertaintyDisplay.from_estimator(reg, X, y, grid=grid, n_std=2, name="ensemble", ax=ax,
                                      scatter_kwargs={"label": "training data"})
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


def draw_coverage(fitted, X_test, y_test, out):
    """Observed against nominal coverage of every fitted ensemble on held-out points, printed."""
    fig, ax = plt.subplots(figsize=(5, 5))
    display = CoverageDisplay.from_estimator(
        {f"{title}, Gaussian": reg for title, reg in fitted.items()}, X_test, y_test,
        levels=LEVELS, ax=ax)
    curves = {line: dict(zip(display.nominal_, observed, strict=True))
              for line, observed in zip(display.lines_, display.observed_, strict=True)}
    # Conformal intervals are defined from level 0.5 up: drawn dotted, in the same colours.
    display = CoverageDisplay.from_estimator(
        {f"{title}, conformal": reg for title, reg in fitted.items()}, X_test, y_test,
        levels=LEVELS[LEVELS >= 0.5], method="interval", interval_method="conformal", ax=ax,
        line_kwargs=[{"color": f"C{k}", "linestyle": ":"} for k in range(len(fitted))])
    curves.update({line: dict(zip(display.nominal_, observed, strict=True))
                   for line, observed in zip(display.lines_, display.observed_, strict=True)})
    ax.set_title(f"Coverage on {len(y_test)} held-out points")
    print(f"coverage on {len(y_test)} held-out points (nominal "
          f"{' / '.join(f'{level:.2f}' for level in PRINTED_LEVELS)}):")
    width = max(len(line.get_label()) for line in curves)
    for line, observed in curves.items():
        values = [observed[min(observed, key=lambda p, q=q: abs(p - q))] for q in PRINTED_LEVELS]
        print(f"  {line.get_label():<{width}}" + "".join(f"   {v:.3f}" for v in values))
    save(fig, out, "rpf_coverage.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES,
                        help="folder for the PNGs (default: docs/images, the README's figures)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    X, y = make_two_clusters(random_state=0)
    X_test, y_test = make_two_clusters(400, random_state=1)  # held out, same distribution
    grid = np.linspace(*X_LIMITS, 400)[:, None]
    fitted = {}
    for tag, prior, title in [("mlp", None, "random MLP priors"), ("sine", sine_prior, "sin(3x) prior")]:
        print(f"{title}:")
        reg = fit(X, y, prior)
        report_spread(reg, X)
        report_draws(reg, grid)
        draw(reg, X, y, grid, args.out, tag, title)
        fitted[title] = reg
    draw_coverage(fitted, X_test, y_test, args.out)


if __name__ == "__main__":
    main()
