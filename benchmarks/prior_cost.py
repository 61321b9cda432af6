"""Where the prior's in-distribution cost falls: RPF against the bootstrap ensemble by thirds of
the target, on validation rows inside training splits.

Both ensembles (the defaults, with and without the prior) are fitted on the inner training part
of outer training splits (``benchmarks._uci_data.inner_split``, as ``tune_defaults``; test
splits are never read; kin8nm's 2,000-row subset too) and scored row by row on the validation
part. The rows are pooled over the splits and cut into thirds by the rank of their target; for each third the command prints the mean
Gaussian NLL of each ensemble and their difference, and the median predictive std and absolute
error of each: where the NLL differs while the errors do not, the prior's spread is the cost.

Usage::

    python -m benchmarks.prior_cost --dataset yacht --splits 0 1 2 3 4
    python -m benchmarks.prior_cost --dataset yacht --log-target   # both fitted to log(y)
"""

import argparse

import numpy as np
from scipy.stats import lognorm, norm

from ._common import make_rpf, one_thread
from ._uci_data import DATASETS, check_data_dir, default_data_dir, inner_split, n_splits

SEARCH_SEED = 0  # the inner splits of benchmarks.tune_defaults,
KIN8NM_ROWS = 2000  # with its subset of kin8nm


def row_scores(data_dir, dataset, split, rpf_params=None, log_target=False):
    """Validation targets and, per ensemble (``"rpf"``, ``"bootstrap"``), the per-row NLL,
    predictive std and absolute error.

    ``log_target``: both ensembles are fitted to ``log(y)``; the NLL is still in the target's
    units (the log-normal density: the NLL of ``log y`` plus ``log y``), comparable with the
    plain fit's; std and error are in log units.
    """
    X_tr, y_tr, X_va, y_va = inner_split(data_dir, dataset, split, seed=SEARCH_SEED,
                                         max_rows=KIN8NM_ROWS if dataset == "kin8nm" else None)
    if log_target and (y_tr.min() <= 0 or y_va.min() <= 0):
        raise ValueError(f"--log-target: {dataset} has targets <= 0.")
    fit_y, score_y = (np.log(y_tr), np.log(y_va)) if log_target else (y_tr, y_va)
    scores = {}
    for name, prior in (("rpf", True), ("bootstrap", False)):
        model = make_rpf(split, rpf_params or {}, prior=prior).fit(X_tr, fit_y)
        mean, std = model.predict(X_va, return_std=True)
        nll = (-lognorm.logpdf(y_va, std, scale=np.exp(mean)) if log_target
               else -norm.logpdf(y_va, mean, std))
        scores[name] = {"nll": nll, "std": std, "error": np.abs(score_y - mean)}
    return y_va, scores


def by_thirds(y, scores):
    """One row per third of the rows by ``y`` (pooled rows; by rank, so that tied targets still
    give three equal parts): bounds, count, mean NLL of each ensemble and their difference,
    median std and absolute error of each."""
    rows = []
    for inside in np.array_split(np.argsort(y, kind="stable"), 3):
        row = {"low": float(y[inside].min()), "high": float(y[inside].max()), "n": len(inside)}
        for name, s in scores.items():
            row[f"nll_{name}"] = float(s["nll"][inside].mean())
            row[f"std_{name}"] = float(np.median(s["std"][inside]))
            row[f"error_{name}"] = float(np.median(s["error"][inside]))
        row["nll_cost"] = row["nll_rpf"] - row["nll_bootstrap"]
        rows.append(row)
    return rows


def table(dataset, rows, y):
    lines = [f"{dataset}: validation rows pooled over the splits ({len(y)} rows; target std "
             f"{y.std():.3g})", "",
             "| target third | rows | NLL, RPF | NLL, bootstrap | RPF minus bootstrap | "
             "median std, RPF / bootstrap | median abs. error, RPF / bootstrap |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['low']:.3g} to {r['high']:.3g} | {r['n']} | {r['nll_rpf']:.3f} | "
            f"{r['nll_bootstrap']:.3f} | {r['nll_cost']:+.3f} | {r['std_rpf']:.3g} / "
            f"{r['std_bootstrap']:.3g} | {r['error_rpf']:.3g} / {r['error_bootstrap']:.3g} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="yacht", choices=DATASETS)
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--log-target", action="store_true",
                        help="fit log(y) instead (NLL still in the target's units; std and "
                             "error in log units)")
    args = parser.parse_args(argv)
    data_dir = str(check_data_dir(args.data_dir or default_data_dir(), [args.dataset]))
    available = n_splits(data_dir, args.dataset)
    outside = sorted(s for s in set(args.splits) if not 0 <= s < available)
    if outside:
        parser.error(f"--splits {outside}: {args.dataset} has splits 0 to {available - 1}")
    args.splits = sorted(set(args.splits))  # a split twice would pool its rows twice
    ys, pooled = [], {"rpf": {}, "bootstrap": {}}
    with one_thread():
        for split in args.splits:
            y, scores = row_scores(data_dir, args.dataset, split, log_target=args.log_target)
            ys.append(y)
            for name, s in scores.items():
                for key, values in s.items():
                    pooled[name].setdefault(key, []).append(values)
    y = np.concatenate(ys)
    scores = {name: {k: np.concatenate(v) for k, v in s.items()} for name, s in pooled.items()}
    rows = by_thirds(y, scores)
    print(table(args.dataset + (" (fitted to log y)" if args.log_target else ""), rows, y))
    cost = scores["rpf"]["nll"] - scores["bootstrap"]["nll"]
    shares = " / ".join(f"{r['nll_cost'] * r['n'] / cost.sum():.0%}" for r in rows)
    print(f"\nAll rows: mean NLL RPF {scores['rpf']['nll'].mean():.3f}, bootstrap "
          f"{scores['bootstrap']['nll'].mean():.3f}; RPF minus bootstrap {cost.mean():+.3f} nats "
          f"(by third, of that difference: {shares}).")
    return rows


if __name__ == "__main__":
    main()
