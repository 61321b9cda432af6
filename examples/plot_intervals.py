"""Prediction intervals you can bet on: Gaussian, conformal, and a GP, on real data.

The yacht hydrodynamics set (UCI, in ``../shared/uci``; its standardised errors are heavy-tailed)
is split 10 times into 90% training and 10% test rows (the published splits). On each split,
``RandomizedPriorRegressor`` with its defaults gives three 95% intervals from one fit:

* ``method="gaussian"``: mean -/+ 1.96 std of ``predict(X, return_std=True)``;
* ``method="conformal"``: jackknife+-after-bootstrap from the out-of-bag residuals (no refit);
* ``method="conformal-studentized"``: the same with residuals scaled by the out-of-bag spread;

and a Gaussian process (ARD) gives its Gaussian interval. The script prints the test coverage and
mean width of each, and draws, for the first split, the coverage at every level
(:class:`~sklearn_rpf.plotting.CoverageDisplay`) and the test points against the prediction with
the conformal interval (:class:`~sklearn_rpf.plotting.UncertaintyDisplay`). It also draws 5
functions with ``sample_y`` along one feature.

Run ``python examples/plot_intervals.py`` (PNGs in docs/images/, the README's figures) or add
``--out FOLDER``; ``--splits N`` for fewer or more splits.
"""

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.plotting import CoverageDisplay, UncertaintyDisplay  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
DATA = Path(os.environ.get("SKLEARN_RPF_UCI", Path(__file__).resolve().parents[2] / "shared" / "uci"))
METHODS = ("gaussian", "conformal", "conformal-studentized")


def load_split(split, name="yacht"):
    folder = DATA / name
    data = np.loadtxt(folder / "data.txt")
    features = np.loadtxt(folder / "index_features.txt", dtype=int)
    target = int(np.loadtxt(folder / "index_target.txt"))
    train = np.loadtxt(folder / f"index_train_{split}.txt", dtype=int)
    test = np.loadtxt(folder / f"index_test_{split}.txt", dtype=int)
    X, y = data[:, features], data[:, target]
    return X[train], y[train], X[test], y[test]


def gp(n_features):
    kernel = ConstantKernel() * RBF(np.ones(n_features)) + WhiteKernel()
    return make_pipeline(StandardScaler(), GaussianProcessRegressor(
        kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0))


def save(fig, out, name):
    fig.savefig(out / name, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {os.path.relpath(out / name)}")


def example_args(argv, doc, splits):
    """``--out`` (created) and ``--splits`` (1 to the published splits) of an example on yacht's
    published splits."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES)
    parser.add_argument("--splits", type=int, default=splits)
    args = parser.parse_args(argv)
    published = len(list((DATA / "yacht").glob("index_train_*.txt")))
    if published == 0:
        parser.error(f"no published splits of yacht in {DATA / 'yacht'} (set SKLEARN_RPF_UCI)")
    if not 1 <= args.splits <= published:
        parser.error(f"--splits must be between 1 and {published} (yacht's published splits); "
                     f"got {args.splits}")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main(argv=None):
    args = example_args(argv, __doc__, splits=10)

    rows = {f"RPF, {method}": [] for method in METHODS} | {"GP (ARD), gaussian": []}
    for split in range(args.splits):
        X, y, X_test, y_test = load_split(split)
        reg = RandomizedPriorRegressor(random_state=split).fit(X, y)
        for method in METHODS:
            lower, upper = reg.predict_interval(X_test, confidence=0.95, method=method)
            rows[f"RPF, {method}"].append(
                (np.mean((lower <= y_test) & (y_test <= upper)), np.mean(upper - lower)))
        model = gp(X.shape[1]).fit(X, y)
        mean, std = model.predict(X_test, return_std=True)
        rows["GP (ARD), gaussian"].append((np.mean(np.abs(y_test - mean) <= 1.96 * std),
                                           np.mean(2 * 1.96 * std)))
        if split == 0:
            first = (reg, model, X, y, X_test, y_test)

    print(f"yacht, {args.splits} published splits, 95% intervals on the test rows (mean over "
          "splits):")
    print(f"  {'model, interval':<30} {'coverage':>9} {'width':>7}")
    for name, values in rows.items():
        coverage, width = np.mean(values, axis=0)
        print(f"  {name:<30} {coverage:9.3f} {width:7.2f}")

    reg, model, X, y, X_test, y_test = first
    fig, ax = plt.subplots(figsize=(5, 5))
    levels = np.round(np.linspace(0.05, 0.95, 19), 2)
    CoverageDisplay.from_estimator({"RPF, Gaussian": reg, "GP (ARD), Gaussian": model}, X_test,
                                   y_test, levels=levels, ax=ax)
    CoverageDisplay.from_estimator({"RPF, conformal": reg}, X_test, y_test,
                                   levels=levels[levels >= 0.5],  # conformal: level >= 0.5
                                   method="interval", interval_method="conformal", ax=ax,
                                   line_kwargs=[{"color": "C0", "linestyle": ":"}])
    ax.set_title(f"yacht split 0: coverage on {len(y_test)} test rows")
    save(fig, args.out, "intervals_coverage.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    UncertaintyDisplay.from_estimator(reg, X_test, y_test, against="predicted",
                                      interval="conformal", confidence=0.95, ax=ax)
    ax.set_title("yacht split 0: test rows, ±2 std and the 95% conformal interval")
    save(fig, args.out, "intervals_against_predicted.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    froude = np.linspace(X[:, 5].min(), X[:, 5].max() * 1.3, 200)  # beyond the data, too
    grid = np.repeat(np.median(X, axis=0, keepdims=True), len(froude), axis=0)
    grid[:, 5] = froude
    draws = reg.sample_y(grid, n_samples=5, random_state=0)
    ax.plot(froude, draws, color="C0", alpha=0.7, linewidth=1)
    ax.scatter(X[:, 5], y, s=8, color="C3", label="training rows (other features vary)")
    ax.set_xlabel("Froude number (other features at their median)")
    ax.set_ylabel("residuary resistance")
    ax.set_title("5 draws of sample_y: members plus noise")
    ax.legend(loc="upper left", fontsize="small")
    save(fig, args.out, "intervals_sample_y.png")


if __name__ == "__main__":
    main()
