"""Which conformal score is the default of ``predict_interval``: measured on validation rows only.

For each shared UCI set and outer training splits 0-2 (0-1 on kin8nm), an 80/20 train/validation
split is carved from the TRAINING rows (``_uci_data.inner_split``; test splits are never read).
``RandomizedPriorRegressor`` with its defaults is fitted once per split, and every interval method
of ``predict_interval`` is scored on the validation rows at 90% and 95%: coverage, mean width and
the interval score of Gneiting & Raftery (2007, eq. 43: width plus ``2 / alpha`` times each miss
distance; lower is better, and it rewards narrow intervals only where they still cover).

Run ``python -m benchmarks.interval_choice`` (about 2 minutes on 2 cores); it prints a Markdown
table of means over splits, quoted in ``benchmarks/TUNING.md``.
"""

import argparse

import numpy as np

from ._common import make_rpf, one_thread
from ._intervals import interval_record
from ._uci_data import DATASETS, check_data_dir, default_data_dir, inner_split

METHODS = ("conformal", "conformal-studentized", "gaussian")
CONFIDENCES = (0.9, 0.95)
DEFAULT_SPLITS = {name: (2 if name == "kin8nm" else 3) for name in DATASETS}


def interval_score(y, lower, upper, alpha):
    """Gneiting & Raftery's interval score, averaged over rows (lower is better)."""
    below = np.clip(lower - y, 0, None)
    above = np.clip(y - upper, 0, None)
    return float(np.mean(upper - lower + 2 / alpha * (below + above)))


def score_split(data_dir, name, split):
    X_fit, y_fit, X_val, y_val = inner_split(data_dir, name, split)
    with one_thread():
        model = make_rpf(split, {}).fit(X_fit, y_fit)
        rows = []
        for confidence in CONFIDENCES:
            for method in METHODS:
                lower, upper = model[-1].predict_interval(model[:-1].transform(X_val),
                                                          confidence, method=method)
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
    args = parser.parse_args(argv)
    data_dir = str(check_data_dir(args.data_dir or default_data_dir(), args.datasets))
    tasks = [(name, split) for name in args.datasets for split in range(DEFAULT_SPLITS[name])]
    rows = [row for rows in Parallel(n_jobs=args.n_jobs)(
        delayed(score_split)(data_dir, *task) for task in tasks) for row in rows]

    print("| data set | confidence | method | splits | coverage | mean width | interval score |")
    print("|---|---|---|---|---|---|---|")
    wins = {method: 0 for method in METHODS}
    for name in args.datasets:
        for confidence in CONFIDENCES:
            best, best_score = None, np.inf
            for method in METHODS:
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
    print(f"\nLower interval score among the two conformal scores (of {cases} set x level "
          "cases): " + ", ".join(f"{m} {n}" for m, n in wins.items() if m != "gaussian"))


if __name__ == "__main__":
    main()
