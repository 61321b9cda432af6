"""Rows duplicated by mistake: what they do to the conformal interval, and what the warning is for.

``predict_interval`` takes its out-of-bag sets by index (Kim et al.'s jackknife+-after-bootstrap):
under exchangeability a test point repeats training rows as often as they repeat each other. Rows
duplicated by mistake break that, since new data does not repeat them. This command measures it on
a smooth 3-feature problem (``sin(2 x0) + x1^2 / 2`` plus noise of std 0.3): the shipped defaults
fitted on ``--rows`` distinct rows, on the same rows with a quarter of them tripled, and with every
row tripled, each scored at 95% on 3,000 new points, for ``--seeds`` seeds; beside it, the
calibration that pools copies (a member that drew any copy does not count for the row, as before
the change), recomputed from the same members. It also prints the share of rows with a copy,
against which ``predict_interval``'s warning is set (``_conformal.REPEATED_ROWS_WARNING``).

Run ``python -m benchmarks.duplicated_rows`` (about a minute on 2 cores).
"""

import argparse
import warnings

import numpy as np

from ._common import one_thread
from .interval_choice import POOLED, _interval, pooled_calibration

LAYOUTS = ("deduplicated", "a quarter tripled", "all tripled")


def make_problem(n_rows, seed, n_test=3000):
    rng = np.random.default_rng(seed)

    def truth(X):
        return np.sin(2 * X[:, 0]) + X[:, 1] ** 2 / 2

    X = rng.uniform(-2, 2, size=(n_rows, 3))
    X_test = rng.uniform(-2, 2, size=(n_test, 3))
    return (X, truth(X) + 0.3 * rng.normal(size=n_rows), X_test,
            truth(X_test) + 0.3 * rng.normal(size=n_test))


def laid_out(X, y, layout):
    """The training rows as given, with their first quarter tripled, or with every row tripled."""
    if layout == "deduplicated":
        return X, y
    copies = X if layout == "all tripled" else X[: len(X) // 4]
    extra = np.concatenate([copies, copies])
    return np.concatenate([X, extra]), np.concatenate([y, y[: len(copies)], y[: len(copies)]])


def measure(n_rows, seed, layout, params=None):
    from sklearn_rpf import RandomizedPriorRegressor

    X, y, X_test, y_test = make_problem(n_rows, seed)
    X_fit, y_fit = laid_out(X, y, layout)
    with one_thread():
        model = RandomizedPriorRegressor(random_state=seed, **(params or {})).fit(X_fit, y_fit)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lower, upper = model.predict_interval(X_test, 0.95)
        pooled = _interval(model, X_test, 0.95, POOLED,
                           pooled_calibration(model, X_fit, y_fit, seed))
    covered = [float(np.mean((lo <= y_test) & (y_test <= hi))) for lo, hi in ((lower, upper),
                                                                              pooled)]
    return {"layout": layout, "seed": seed, "share": model._calibration.repeated,
            "warned": any("exact copy" in str(w.message) for w in caught),
            "coverage": covered[0], "coverage_pooled": covered[1]}


def main(argv=None):
    from joblib import Parallel, delayed

    from sklearn_rpf.ensemble._conformal import REPEATED_ROWS_WARNING

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if args.rows < 8 or args.seeds < 1:
        parser.error("--rows must be at least 8 and --seeds at least 1")
    records = Parallel(n_jobs=args.n_jobs)(
        delayed(measure)(args.rows, seed, layout)
        for layout in LAYOUTS for seed in range(args.seeds))
    print(f"{args.rows} distinct rows, 95% conformal intervals on 3,000 new points, "
          f"{args.seeds} seed(s); the warning fires above {REPEATED_ROWS_WARNING:.0%}\n")
    print("| training rows | share with a copy | warned | coverage, by index (shipped) "
          "| coverage, copies pooled |\n|---|---:|---|---:|---:|")
    for layout in LAYOUTS:
        mine = [r for r in records if r["layout"] == layout]
        print(f"| {layout} | {np.mean([r['share'] for r in mine]):.2f} | "
              f"{sum(r['warned'] for r in mine)} of {len(mine)} | "
              f"{np.mean([r['coverage'] for r in mine]):.3f} | "
              f"{np.mean([r['coverage_pooled'] for r in mine]):.3f} |")
    return records


if __name__ == "__main__":
    main()
