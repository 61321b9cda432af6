"""Which conformal score is the default of ``predict_interval``: measured on validation rows only.

For each shared UCI set and outer training splits 0-2 (0-1 on kin8nm), an 80/20 train/validation
split is carved from the TRAINING rows (``_uci_data.inner_split``; test splits are never read).
``RandomizedPriorRegressor`` with its defaults is fitted once per split, and every interval method
of ``predict_interval`` is scored on the validation rows at 90% and 95%: coverage, mean width and
the interval score of Gneiting & Raftery (2007, eq. 43: width plus ``2 / alpha`` times each miss
distance; lower is better, and it rewards narrow intervals only where they still cover).

Run ``python -m benchmarks.interval_choice`` (under a minute on 2 cores); it prints a Markdown
table of means over splits, quoted in ``benchmarks/TUNING.md``. ``--pooled`` adds the conformal
interval as it was before its out-of-bag sets went by index (a member that drew any copy of a row
did not count for it), recomputed from the same fitted members; ``--splits N`` scores outer
training splits 0..N-1 of every set.
"""

import argparse

import numpy as np

from ._common import make_rpf, one_thread
from ._intervals import interval_record
from ._uci_data import DATASETS, check_data_dir, default_data_dir, inner_split

METHODS = ("conformal", "conformal-studentized", "gaussian")
POOLED = "conformal, copies pooled"
CONFIDENCES = (0.9, 0.95)
DEFAULT_SPLITS = {name: (2 if name == "kin8nm" else 3) for name in DATASETS}


def interval_score(y, lower, upper, alpha):
    """Gneiting & Raftery's interval score, averaged over rows (lower is better)."""
    below = np.clip(lower - y, 0, None)
    above = np.clip(y - upper, 0, None)
    return float(np.mean(upper - lower + 2 / alpha * (below + above)))


def pooled_calibration(regressor, X, y, seed):
    """The conformal calibration with copies pooled: row ``i`` is out of bag only for members that
    drew no copy of it (the shipped one goes by index). ``X`` as the regressor saw it; the model
    must have been fitted without ``sample_weight`` (every row counts one here)."""
    from sklearn_rpf.ensemble._bootstrap import pooled_in_bag, row_hashes
    from sklearn_rpf.ensemble._conformal import OutOfBagCalibration
    from sklearn_rpf.ensemble._uncertainty import OutOfBag

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    hashes = row_hashes(X, y)
    counts = regressor.in_bag_counts_
    out = ~pooled_in_bag(counts > 0, hashes, np.argsort(hashes, kind="stable"))
    fitted = regressor._fitted
    oob = OutOfBag.from_batches(fitted.batches(X), out, fitted.n_targets)
    return OutOfBagCalibration.from_out_of_bag(
        fitted.standardizer.transform_y(y), oob, out, np.ones(len(y)),
        regressor.epistemic_scale_, regressor._noise, hashes, seed)


def _interval(regressor, X, confidence, method, pooled):
    if method != POOLED:
        return regressor.predict_interval(X, confidence, method=method)
    shipped = regressor._calibration
    regressor._calibration = pooled
    try:
        return regressor.predict_interval(X, confidence, method="conformal")
    finally:
        regressor._calibration = shipped


def score_split(data_dir, name, split, methods=METHODS):
    X_fit, y_fit, X_val, y_val = inner_split(data_dir, name, split)
    with one_thread():
        model = make_rpf(split, {}).fit(X_fit, y_fit)
        pooled = (pooled_calibration(model[-1], model[:-1].transform(X_fit), y_fit, split)
                  if POOLED in methods else None)
        rows = []
        for confidence in CONFIDENCES:
            for method in methods:
                lower, upper = _interval(model[-1], model[:-1].transform(X_val), confidence,
                                         method, pooled)
                record = interval_record(method, y_val, lower, upper, np.nan, np.nan)
                rows.append({
                    "dataset": name, "split": split, "confidence": confidence, "method": method,
                    "coverage": record["coverage"], "width": record["width"],
                    "score": interval_score(y_val, lower, upper, 1 - confidence),
                })
    return rows


def main(argv=None):
    from joblib import Parallel, delayed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="UCI folder (default: ../shared/uci)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--splits", type=int, default=None,
                        help="outer training splits 0..N-1 of every set (default: 3, kin8nm 2)")
    parser.add_argument("--pooled", action="store_true",
                        help=f"also score '{POOLED}' (out-of-bag sets before they went by index)")
    args = parser.parse_args(argv)
    if args.splits is not None and not 1 <= args.splits <= 20:
        parser.error(f"--splits must be between 1 and 20; got {args.splits}")
    data_dir = str(check_data_dir(args.data_dir or default_data_dir(), args.datasets))
    methods = (*METHODS, POOLED) if args.pooled else METHODS
    tasks = [(name, split) for name in args.datasets
             for split in range(args.splits or DEFAULT_SPLITS[name])]
    rows = [row for rows in Parallel(n_jobs=args.n_jobs)(
        delayed(score_split)(data_dir, *task, methods) for task in tasks) for row in rows]

    print("| data set | confidence | method | splits | coverage | mean width | interval score |")
    print("|---|---|---|---|---|---|---|")
    wins = {method: 0 for method in methods}
    for name in args.datasets:
        for confidence in CONFIDENCES:
            best, best_score = None, np.inf
            for method in methods:
                mine = [r for r in rows if (r["dataset"], r["confidence"], r["method"])
                        == (name, confidence, method)]
                means = {key: np.mean([r[key] for r in mine]) for key in ("coverage", "width",
                                                                          "score")}
                print(f"| {name} | {confidence:g} | {method} | {len(mine)} | "
                      f"{means['coverage']:.3f} | {means['width']:.3g} | {means['score']:.3g} |")
                if method != "gaussian" and means["score"] < best_score:
                    best, best_score = method, means["score"]
            wins[best] += 1
    cases = len(args.datasets) * len(CONFIDENCES)
    print(f"\nLower interval score among the conformal intervals (of {cases} set x level "
          "cases): " + ", ".join(f"{m} {n}" for m, n in wins.items() if m != "gaussian"))
    if args.pooled:
        print("\n" + compare_pooled(rows, args.datasets))


def compare_pooled(rows, datasets):
    """One line: where the two calibrations differ, which has the lower mean interval score."""
    def mean_score(name, confidence, method):
        return np.mean([r["score"] for r in rows if (r["dataset"], r["confidence"], r["method"])
                        == (name, confidence, method)])

    lower = same = differ = 0
    for name in datasets:
        for confidence in CONFIDENCES:
            ours, pooled = (mean_score(name, confidence, m) for m in ("conformal", POOLED))
            if ours == pooled:
                same += 1
                continue
            differ += 1
            lower += ours < pooled
    return (f"Out of bag by index against '{POOLED}': identical in {same} set x level cases (no "
            f"copies among the rows); where they differ, the lower interval score in {lower} of "
            f"{differ}.")


if __name__ == "__main__":
    main()
