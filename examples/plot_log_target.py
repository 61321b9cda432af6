"""A target that spans orders of magnitude: fit its logarithm.

The prior's scale is set in standardised target units, one scale for every input. Yacht's
residuary resistance (UCI, in ``../shared/uci``) runs from 0.01 to about 60 with a standard
deviation near 15, so the default prior (``prior_scale=0.3``) is a random function with a std of
about 4.5 resistance units, taller than every target at low speed; the trained networks cancel
most of it on the data, not all, and the predictive std keeps a floor where the target is small
and flat (``python -m benchmarks.prior_cost --dataset yacht`` measures where the cost falls).

Fitted to ``log(y)`` the prior's scale follows the target's relative size. The predictive
distribution of ``y`` is then log-normal (its NLL is that of ``log y`` plus ``log y``), and the
conformal interval maps back through ``np.exp`` with its coverage, its ends being quantiles. On
the first published splits the script prints, for RPF fitted to ``y`` and to ``log(y)``, the test
NLL in resistance units and the conformal 95% interval's coverage and mean width, and draws the
first split's interval width against the target (log axes): fitted to ``y``, the conformal
interval (absolute score) has one width for every row; fitted to ``log(y)`` it is relative,
narrow where the resistance is small and wide where it is large.

Run ``python examples/plot_log_target.py`` (PNG in docs/images/) or add ``--out FOLDER``;
``--splits N`` for fewer or more splits.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The same published splits as plot_intervals.py (run as a script, this folder is on sys.path).
from plot_intervals import example_args, load_split, save  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.metrics import gaussian_nll  # noqa: E402


def fit_and_score(X, y, X_test, y_test, log, seed):
    """Test NLL in the target's units and the conformal 95% interval on the target's scale."""
    reg = RandomizedPriorRegressor(random_state=seed).fit(X, np.log(y) if log else y)
    mean, std = reg.predict(X_test, return_std=True)
    lower, upper = reg.predict_interval(X_test, confidence=0.95)
    if log:  # log-normal: the density of y is that of log y over y
        nll = gaussian_nll(np.log(y_test), mean, std) + np.mean(np.log(y_test))
        lower, upper = np.exp(lower), np.exp(upper)
    else:
        nll = gaussian_nll(y_test, mean, std)
    covered = (y_test >= lower) & (y_test <= upper)
    return {"nll": nll, "coverage": covered.mean(), "width": np.mean(upper - lower),
            "lower": lower, "upper": upper}


def main(argv=None):
    args = example_args(argv, __doc__, splits=5)

    results = {"y": [], "log(y)": []}
    first = None
    for split in range(args.splits):
        X, y, X_test, y_test = load_split(split)
        for name in results:
            results[name].append(fit_and_score(X, y, X_test, y_test, name == "log(y)", split))
        if split == 0:
            first = y_test
    print(f"yacht, {args.splits} published splits, RPF defaults; NLL in resistance units; "
          "conformal 95% interval")
    print(f"{'fitted to':10s} {'test NLL':>9s} {'coverage':>9s} {'mean width':>11s}")
    for name, runs in results.items():
        print(f"{name:10s} {np.mean([r['nll'] for r in runs]):9.3f} "
              f"{np.mean([r['coverage'] for r in runs]):9.3f} "
              f"{np.mean([r['width'] for r in runs]):11.3f}")

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (name, runs), marker in zip(results.items(), ("o", "s"), strict=True):
        width = runs[0]["upper"] - runs[0]["lower"]
        ax.scatter(first, width, marker=marker, alpha=0.7, label=f"fitted to {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("test target (residuary resistance)")
    ax.set_ylabel("conformal 95% interval width")
    ax.set_title("yacht, split 0: the interval follows the target's size on the log scale")
    ax.legend()
    save(fig, args.out, "log_target.png")
    return results


if __name__ == "__main__":
    main()
