"""UCI regression benchmark: RandomizedPriorRegressor against a bootstrap ensemble, a GP and BayesianRidge.

Every method is trained on each published train split of the shared UCI sets
(``shared/uci``, see its README) and scored on the test split in the target's original
units: RMSE, Gaussian NLL, CRPS, 95% coverage, mean 95% interval width, fit and predict
time. Writes ``results.md`` (mean ± standard error over splits, next to published
figures), ``results.csv`` (the same numbers), ``results_raw.csv`` (one row per split and
method) and ``nll.png`` to ``--out``, and prints how the RPF defaults fare against the
targets of issue 5.

Full run (about 30 minutes on 2 cores)::

    python benchmarks/uci.py --n-jobs 2

Trying other RPF parameters (applied to both RPF methods) or a subset of methods::

    python benchmarks/uci.py --datasets yacht energy --splits 3 \\
        --rpf-params '{"loss": "gaussian_nll"}' --methods rpf gp

``--rpf-variant LABEL='{"json": ...}'`` (repeatable) adds further RPF rows side by side.
The defaults must not be chosen from these test-split numbers (see issue 5, section 3).
"""

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package
from _uci_data import (  # noqa: E402
    DATASETS,
    check_data_dir,
    default_data_dir,
    load_split,
    n_splits,
)

METHODS = {
    "rpf": "RPF (defaults)",
    "bootstrap": "Bootstrap ensemble (prior_scale=0)",
    "gp": "GP (ARD)",
    "bayesian_ridge": "BayesianRidge",
}
# The exact GP (2 optimizer restarts) dominates the run time. Measured per split on one core
# (benchmarks on a shared 2-core machine): yacht ~3 s, energy ~20-80 s, concrete ~60-100 s,
# wine-quality-red ~230-400 s, kin8nm (2,000-row subset) ~80-140 s; so by default the GP runs
# on the first few splits only, to keep the full run near 30 minutes with --n-jobs 2.
DEFAULT_GP_SPLITS = {"energy": 10, "concrete": 5, "wine-quality-red": 5, "kin8nm": 5}
DEFAULT_GP_MAX_ROWS = 2000
# In the figure, a mean NLL this far above the panel's median is marked at the top, not plotted.
OFF_SCALE_NATS = 10.0
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
METRICS = ("rmse", "nll", "crps", "coverage_95", "width_95", "fit_time", "predict_time")
HEADERS = ("RMSE", "NLL", "CRPS", "95% coverage", "95% width", "fit (s)", "predict (s)")
# Published test NLL (nats, original units, 20 splits). MC dropout reports the test
# log-likelihood: its negative is shown.
PUBLISHED_NLL = {
    "Deep Ensembles (Lakshminarayanan et al., 2017)":
        {"concrete": 3.06, "energy": 1.38, "kin8nm": -1.20, "wine-quality-red": 0.94, "yacht": 1.18},
    "MC dropout (Gal & Ghahramani, 2016)":
        {"concrete": 3.04, "energy": 1.99, "kin8nm": -0.95, "wine-quality-red": 0.93, "yacht": 1.55},
}
DEEP_ENSEMBLES = next(iter(PUBLISHED_NLL))


# ---------------------------------------------------------------------------- estimators
def make_estimator(method, split, n_features, rpf_params, variants):
    """A fresh, seeded pipeline for ``method`` (a key of METHODS or ``"rpf:<label>"``)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if method == "gp":
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel() * RBF(length_scale=np.ones(n_features)) + WhiteKernel()
        model = GaussianProcessRegressor(
            kernel, normalize_y=True, n_restarts_optimizer=2, random_state=split
        )
    elif method == "bayesian_ridge":
        from sklearn.linear_model import BayesianRidge

        model = BayesianRidge()
    else:
        from sklearn_rpf import RandomizedPriorRegressor

        params = {"random_state": split, **rpf_params}
        if method == "bootstrap":
            params["prior_scale"] = 0.0  # whatever rpf_params says: this is the no-prior baseline
        elif method.startswith("rpf:"):
            params.update(variants[method.removeprefix("rpf:")])
        elif method != "rpf":
            raise ValueError(f"Unknown method {method!r}; expected one of {list(METHODS)}.")
        model = RandomizedPriorRegressor(**params)
    return make_pipeline(StandardScaler(), model)


def method_label(method):
    return METHODS.get(method) or f"RPF ({method.removeprefix('rpf:')})"


def evaluate(estimator, X_train, y_train, X_test, y_test):
    """Fit, predict with ``return_std=True`` and score in the target's units."""
    from sklearn_rpf.metrics import crps_gaussian, gaussian_nll, interval_coverage, interval_width

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
    start = time.perf_counter()
    y_mean, y_std = estimator.predict(X_test, return_std=True)
    predict_time = time.perf_counter() - start
    return {
        "rmse": float(np.sqrt(np.mean((y_test - y_mean) ** 2))),
        "nll": gaussian_nll(y_test, y_mean, y_std),
        "crps": crps_gaussian(y_test, y_mean, y_std),
        "coverage_95": interval_coverage(y_test, y_mean, y_std, level=0.95),
        "width_95": interval_width(y_test, y_mean, y_std, level=0.95),
        "fit_time": fit_time,
        "predict_time": predict_time,
        # e.g. the GP's ConvergenceWarning; counted rather than printed over the progress bar
        "fit_warnings": len(caught),
    }


def run_split(data_dir, dataset, split, methods, rpf_params, variants, gp_max_rows, limit_threads):
    """Every method in ``methods`` on one (dataset, split): a list of result rows."""
    if limit_threads:
        # Inside a joblib worker process only: one thread per worker, so that n_jobs workers
        # share the cores instead of each torch/BLAS pool grabbing all of them.
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)
    X_train, y_train, X_test, y_test = load_split(data_dir, dataset, split)
    rows = []
    for method in methods:
        X_fit, y_fit = X_train, y_train
        if method == "gp" and len(y_train) > gp_max_rows:
            rows_used = np.random.default_rng(split).choice(len(y_train), gp_max_rows, replace=False)
            X_fit, y_fit = X_train[rows_used], y_train[rows_used]
        row = {"dataset": dataset, "split": split, "method": method,
               "label": method_label(method), "n_train": len(y_fit), "n_test": len(y_test)}
        try:
            estimator = make_estimator(method, split, X_train.shape[1], rpf_params, variants)
            row.update(evaluate(estimator, X_fit, y_fit, X_test, y_test), error="")
        except Exception as exc:  # noqa: BLE001 - one failed fit must not lose a 30-minute run
            row.update(dict.fromkeys(METRICS, np.nan), fit_warnings=0,
                       error=f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- reporting
def summarize(raw):
    """Mean and standard error over splits per (dataset, method); failed fits are left out."""
    grouped = raw.groupby(["dataset", "method"], sort=False)
    stats = grouped[list(METRICS)].agg(["mean", "sem"])
    stats.columns = [f"{metric}_{'se' if stat == 'sem' else stat}" for metric, stat in stats.columns]
    counts = grouped.agg(label=("label", "first"), n_splits=("nll", "count"),
                         n_train=("n_train", "max"))
    return counts.join(stats).reset_index()


def _decimals(value, significant=3):
    if not np.isfinite(value) or value == 0:
        return 2
    return int(np.clip(significant - 1 - np.floor(np.log10(abs(value))), 0, 4))


def _cell(mean, se, decimals):
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{decimals}f} ± {se:.{decimals}f}" if np.isfinite(se) else f"{mean:.{decimals}f}"


def write_markdown(path, summary, targets, notes):
    lines = [
        "# UCI regression benchmark", "",
        "Test metrics in the target's original units, mean ± standard error over splits "
        "(lower is better, except coverage: 0.95 is calibrated). NLL in nats per sample.", "",
        "| data set | method | splits | train rows | " + " | ".join(HEADERS) + " |",
        "|" + " --- |" * (4 + len(HEADERS)),
    ]
    for dataset, block in summary.groupby("dataset", sort=False):
        # One precision per column and data set, so that the methods line up.
        decimals = {m: _decimals(block[f"{m}_mean"].abs().max()) for m in ("rmse", "crps", "width_95")}
        decimals.update(nll=2, coverage_95=3, fit_time=2, predict_time=3)
        for _, row in block.iterrows():
            cells = [_cell(row[f"{m}_mean"], row[f"{m}_se"], decimals[m]) for m in METRICS]
            lines.append(f"| {dataset} | {row['label']} | {row['n_splits']} | {row['n_train']} | "
                         + " | ".join(cells) + " |")
        for source, figures in PUBLISHED_NLL.items():
            cells = ["–"] * len(METRICS)
            cells[METRICS.index("nll")] = f"{figures[dataset]:.2f}"
            lines.append(f"| {dataset} | {source}, published | 20 | – | " + " | ".join(cells) + " |")
    lines += ["", "## Targets of issue 5", "", *targets[1:], "", "## Notes", ""]
    lines.append(f"- Command: `{notes['command']}` ({notes['wall_time']:.0f} s wall time, "
                 f"{notes['n_jobs']} job(s) on {notes['cpu_count']} CPU(s); with more than one job "
                 "each (dataset, split) task runs on one thread, so the times are single-threaded).")
    lines.append(f"- GP (ARD): constant × ARD RBF + white noise, `normalize_y=True`, 2 optimizer "
                 f"restarts, trained on a random subset of at most {notes['gp_max_rows']:,} training "
                 "rows (see 'train rows').")
    for dataset, count in notes["gp_splits"].items():
        lines.append(f"- GP (ARD) on {dataset}: only the first {count} splits (exact GP cost); the "
                     "other methods use all of them.")
    if notes["rpf_params"]:
        lines.append(f"- RandomizedPriorRegressor parameters overridden for both RPF methods: "
                     f"`{json.dumps(notes['rpf_params'])}` (so 'RPF (defaults)' is not the defaults).")
    for label, params in notes["rpf_variants"].items():
        lines.append(f"- RPF ({label}): `{json.dumps(params)}` on top of the above.")
    lines.append("- Every RPF method and BayesianRidge sit in a `StandardScaler` pipeline, like the GP; "
                 "`random_state` is the split index.")
    lines.append("- Published figures: test NLL of Deep Ensembles (Lakshminarayanan et al., NeurIPS "
                 "2017) and the negated test log-likelihood of MC dropout (Gal & Ghahramani, ICML "
                 "2016), on the same 20 splits.")
    Path(path).write_text("\n".join(lines) + "\n")


def target_summary(raw):
    """Lines saying how 'RPF (defaults)' does against the targets of issue 5."""
    ok = raw[raw["error"] == ""]
    rpf = ok[ok["method"] == "rpf"]
    if rpf.empty:
        return ["Targets of issue 5: no 'rpf' results to judge (add rpf to --methods)."]
    means = rpf.groupby("dataset", sort=False)[["nll", "coverage_95", "fit_time"]].mean()
    lines = ["Targets of issue 5 for 'RPF (defaults)' (means over the splits run):"]
    de = PUBLISHED_NLL[DEEP_ENSEMBLES]
    details = ", ".join(f"{d} {means.nll[d]:.2f} vs {de[d]:.2f}" for d in means.index)
    wins = sum(means.nll[d] < de[d] for d in means.index)
    lines.append(f"- NLL better than Deep Ensembles on {wins} of {len(means)} ({details}); "
                 "target: at least 4 of 5.")
    gp = ok[ok["method"] == "gp"]
    if not gp.empty:
        # Side by side on the splits both ran (the GP may run on fewer).
        paired = rpf.merge(gp, on=["dataset", "split"], suffixes=("_rpf", "_gp"))
        by_set = (paired["nll_rpf"] - paired["nll_gp"]).groupby(paired["dataset"], sort=False)
        gap, median_gap = by_set.mean(), by_set.median()
        details = ", ".join(f"{d} {g:+.2f}" for d, g in gap.items())
        medians = ", ".join(f"{d} {g:+.2f}" for d, g in median_gap.items())
        lines.append(f"- NLL within 0.1 nats of, or better than, the GP on {(gap <= 0.1).sum()} of "
                     f"{len(gap)} (RPF minus GP on shared splits, mean: {details}; median: "
                     f"{medians}; on the median {(median_gap <= 0.1).sum()} of {len(gap)}); "
                     "target: at least 3 of 5.")
    inside = [d for d in means.index if 0.92 <= means.coverage_95[d] <= 0.98]
    details = ", ".join(f"{d} {means.coverage_95[d]:.3f}" for d in means.index)
    lines.append(f"- 95% coverage in [0.92, 0.98] on {', '.join(inside) or 'none'} "
                 f"({len(inside)} of {len(means)}: {details}); target: every set.")
    if "yacht" in means.index:
        times = rpf.loc[rpf["dataset"] == "yacht", "fit_time"]
        lines.append(f"- Fit time on yacht: median {times.median():.1f} s, mean {times.mean():.1f} s "
                     "per fit; target: a few seconds.")
    return lines


def plot_nll(path, raw, datasets):
    """Test NLL per data set (one panel each) and method, mean ± standard error, with published lines."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg canvas

    ok = raw[raw["error"] == ""]
    methods = list(dict.fromkeys(raw["method"]))
    fig = Figure(figsize=(max(8.0, 3.2 * len(datasets)), 4.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(datasets), squeeze=False)[0])
    colors = [f"C{i}" for i in range(len(methods))]
    for ax, dataset in zip(axes, datasets, strict=True):
        block = ok[ok["dataset"] == dataset]
        means = block.groupby("method")["nll"].mean()
        centre = np.median([*means, *(figures[dataset] for figures in PUBLISHED_NLL.values())])
        off_scale = []
        for i, method in enumerate(methods):
            nll = block.loc[block["method"] == method, "nll"]
            if nll.empty:
                continue
            if nll.mean() > centre + OFF_SCALE_NATS:  # one blown-up split would flatten the rest
                off_scale.append((i, method, nll.mean()))
                continue
            se = nll.sem() if len(nll) > 1 else 0.0
            ax.errorbar(i, nll.mean(), yerr=se, fmt="o", color=colors[i], capsize=4,
                        label=method_label(method))
        for (source, figures), style in zip(PUBLISHED_NLL.items(), ("--", ":"), strict=True):
            ax.axhline(figures[dataset], color="k", linestyle=style, linewidth=1,
                       label=source.split(" (")[0] + " (published)")
        top = ax.get_ylim()[1]
        for i, method, mean in off_scale:
            ax.plot(i, top, "^", color=colors[methods.index(method)], label=method_label(method),
                    clip_on=False)
            ax.annotate(f"{mean:.3g}\n(off scale)", (i, top), xytext=(0, -24),
                        textcoords="offset points", ha="center", fontsize=7)
        ax.set_title(dataset)
        ax.set_xticks([])
        ax.set_xlim(-0.8, len(methods) - 0.2)
    axes[0].set_ylabel("test NLL (nats, lower is better)")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # a method missing from the first panel still gets a legend entry
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------- command line
def _words(values):
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: accept commas and spaces alike."""
    return [word for value in values for word in value.split(",") if word]


def _parse_splits(values, available):
    words = _words(values)
    if len(words) == 1:  # a count: the first N published splits
        count = int(words[0])
        if not 1 <= count <= available:
            raise SystemExit(f"--splits {count}: expected a count between 1 and {available}.")
        return list(range(count))
    splits = sorted({int(word) for word in words})
    if splits[0] < 0 or splits[-1] >= available:
        raise SystemExit(f"--splits {splits}: split indices must be in [0, {available}).")
    return splits


def _parse_gp_splits(value):
    """``"5"`` -> every data set; ``"kin8nm=5,concrete=10"`` -> per data set."""
    if "=" not in value:
        return {name: int(value) for name in DATASETS}
    pairs = (item.split("=", 1) for item in value.split(",") if item)
    return {name: int(count) for name, count in pairs}


def _parse_json_params(text, option):
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{option}: not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(params, dict):
        raise SystemExit(f"{option}: expected a JSON object of parameters; got {text!r}.")
    return params


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of the UCI sets (default: $SKLEARN_RPF_UCI or <repo>/../shared/uci)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS),
                        help=f"data sets to run (default: all of {', '.join(DATASETS)})")
    parser.add_argument("--splits", nargs="+", default=["20"],
                        help="number of splits (the first N) or explicit split indices (default: 20)")
    parser.add_argument("--gp-splits", default=",".join(f"{k}={v}" for k, v in DEFAULT_GP_SPLITS.items()),
                        help="run the GP on the first N of the selected splits only: N for every "
                             "data set or NAME=N,... (default: %(default)s)")
    parser.add_argument("--gp-max-rows", type=int, default=DEFAULT_GP_MAX_ROWS,
                        help="train the GP on a random subset of at most this many rows (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help=f"subset of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--rpf-params", default="{}",
                        help="JSON object overriding RandomizedPriorRegressor parameters of both RPF methods")
    parser.add_argument("--rpf-variant", action="append", default=[], metavar="LABEL=JSON",
                        help="add an RPF method with these parameters on top of --rpf-params (repeatable)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="parallel (dataset, split) tasks, one thread each (default: 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: benchmarks/results)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    args.datasets = _words(args.datasets)
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; expected some of {list(DATASETS)}")
    args.methods = _words(args.methods)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {list(METHODS)}")
    args.rpf_params = _parse_json_params(args.rpf_params, "--rpf-params")
    variants = {}
    for item in args.rpf_variant:
        label, sep, text = item.partition("=")
        if not sep or not label:
            parser.error(f"--rpf-variant {item!r}: expected LABEL=JSON")
        variants[label] = _parse_json_params(text, "--rpf-variant")
    args.rpf_variant = variants
    args.gp_splits = _parse_gp_splits(args.gp_splits)
    if args.gp_max_rows < 1:
        parser.error("--gp-max-rows must be a positive integer")
    return args


def main(argv=None):
    """Run the benchmark; return the summary table (one row per data set and method)."""
    from joblib import Parallel, delayed, effective_n_jobs
    from tqdm.auto import tqdm

    args = parse_args(argv)
    data_dir = str(check_data_dir(args.data_dir or default_data_dir(), args.datasets))
    methods = args.methods + [f"rpf:{label}" for label in args.rpf_variant]
    splits = {name: _parse_splits(args.splits, n_splits(data_dir, name)) for name in args.datasets}
    gp_splits = {name: set(splits[name][:args.gp_splits.get(name, len(splits[name]))])
                 for name in args.datasets}
    tasks = [(name, split, [m for m in methods if m != "gp" or split in gp_splits[name]])
             for name in args.datasets for split in splits[name]]
    # Slow tasks first (those with the GP, then larger data sets), so none ends up alone last.
    sizes = {name: len(load_split(data_dir, name, 0)[1]) for name in args.datasets}
    tasks.sort(key=lambda task: ("gp" in task[2], sizes[task[0]]), reverse=True)

    n_jobs = effective_n_jobs(args.n_jobs)
    start = time.perf_counter()
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(run_split)(data_dir, name, split, task_methods, args.rpf_params,
                           args.rpf_variant, args.gp_max_rows, n_jobs > 1)
        for name, split, task_methods in tasks
    )
    rows = []
    for task_rows in tqdm(results, total=len(tasks), desc="UCI (dataset, split)",
                          disable=args.no_progress, file=sys.stderr):
        rows.extend(task_rows)
    wall_time = time.perf_counter() - start

    # Tasks finish in any order: sort rows as the data sets and methods were asked for.
    rank = {**{name: i for i, name in enumerate(args.datasets)},
            **{method: i for i, method in enumerate(methods)}}
    raw = pd.DataFrame(rows).sort_values(
        ["dataset", "method", "split"],
        key=lambda column: column if column.name == "split" else column.map(rank),
    ).reset_index(drop=True)
    summary = summarize(raw)

    args.out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(args.out / "results_raw.csv", index=False)
    summary.to_csv(args.out / "results.csv", index=False)
    targets = target_summary(raw)
    command = shlex.join(["python", "benchmarks/uci.py",
                          *(sys.argv[1:] if argv is None else map(str, argv))])
    notes = {
        "command": command,
        "wall_time": wall_time,
        "n_jobs": n_jobs,
        "cpu_count": os.cpu_count(),
        "gp_max_rows": args.gp_max_rows,
        "gp_splits": {name: len(gp_splits[name]) for name in args.datasets
                      if "gp" in methods and len(gp_splits[name]) < len(splits[name])},
        "rpf_params": args.rpf_params,
        "rpf_variants": args.rpf_variant,
    }
    write_markdown(args.out / "results.md", summary, targets, notes)
    plot_nll(args.out / "nll.png", raw, args.datasets)

    failures = raw[raw["error"] != ""]
    for _, row in failures.iterrows():
        print(f"FAILED {row['dataset']} split {row['split']} {row['label']}: {row['error']}")
    print("\n".join(targets))
    print(f"Wrote {args.out / 'results.md'}, results.csv, results_raw.csv and nll.png "
          f"in {wall_time:.0f} s ({n_jobs} job(s)).")
    return summary


if __name__ == "__main__":
    main()
