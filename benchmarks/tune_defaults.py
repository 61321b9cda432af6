"""Search for default hyper-parameters of RandomizedPriorRegressor on inner validation splits.

Only the training part of the published UCI splits is used: inside outer training split
``s`` (``index_train_s.txt``) a seeded 80/20 split gives an inner training and a validation
set (``benchmarks._uci_data.inner_split``). Test splits are never read. For kin8nm a seeded
random subset of the outer training split (``--kin8nm-rows``, default 2000) is used to keep the
search cheap.

Every finished (configuration, data set, split) is appended to a JSON-lines cache, so the
search can be stopped and resumed, and run in stages::

    python -m benchmarks.tune_defaults --configs search_base lr3e-3 --out tuning_results.jsonl
    python -m benchmarks.tune_defaults --list          # names of all configurations
    python -m benchmarks.tune_defaults --table-only    # the tables from the cache

It prints the figures ``benchmarks/TUNING.md`` records: per configuration and data set
``NLL / coverage / RMSE / fit s (epochs, n=splits)``, and ``NLL / coverage / kurtosis of z``.

A configuration is a full set of overrides on a fixed reference, so that its name means the
same run whatever the package's defaults are today: the search's configurations (rounds 1-5 of
TUNING.md) override ``SEARCH_DEFAULTS``, the defaults of the regressor while the search ran;
the later ones (the yacht-coverage section) override ``SHIPPED_DEFAULTS``, the defaults the
search chose. ``base`` alone is the package's defaults as installed, whatever they are now (so a
cached ``base`` record was fitted under the defaults of its day: use a new ``--out`` after a
default changes).
``steps`` is not a parameter of the regressor: it sets ``max_epochs`` so that about that many
optimizer steps are taken (``max_epochs = ceil(steps / ceil(n_train / batch_size))``), with
an explicit ``batch_size``.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from . import _intervals
from ._common import make_rpf, one_thread
from ._uci_data import DATASETS, check_data_dir, default_data_dir, inner_split, load_split

SEARCH_SEED = 0
# The regressor's defaults while rounds 1-5 ran (commits b3ce42b-f493a15): 10 members, which
# round 6 changed, is written out so that these names keep meaning the runs they named; the other
# defaults (hidden (50, 50) relu, squared error) have not changed since.
SEARCH_DEFAULTS = {"prior_scale": 1.0, "lr": 1e-3, "max_epochs": 200, "n_estimators": 10}
# The defaults the search chose (shipped from dc903e0).
SHIPPED_DEFAULTS = {"prior_scale": 0.3, "lr": 3e-3, "max_epochs": 300, "n_estimators": 10}

_SEARCH = {
    "search_base": {},
    # optimisation length: learning rate, epochs, batch size
    "lr3e-3": {"lr": 3e-3},
    "lr1e-2": {"lr": 1e-2},
    "ep500": {"max_epochs": 500},
    "ep1000": {"max_epochs": 1000},
    "bs32": {"batch_size": 32},
    "full": {"batch_size": None, "max_epochs": 1000, "lr": 1e-2},
    "lr3e-3_ep500": {"lr": 3e-3, "max_epochs": 500},
    "lr1e-2_ep500": {"lr": 1e-2, "max_epochs": 500},
    "bs32_lr3e-3": {"batch_size": 32, "lr": 3e-3},
    "bs64_lr3e-3_ep500": {"batch_size": 64, "lr": 3e-3, "max_epochs": 500},
    # steps-based rule (emulated through max_epochs). batch 200 is what "auto" (min(200, n))
    # gave on every inner training set (yacht's, the smallest, has 221 rows).
    "steps2k_lr3e-3": {"steps": 2000, "batch_size": 200, "lr": 3e-3},
    "steps4k_lr3e-3": {"steps": 4000, "batch_size": 200, "lr": 3e-3},
    "steps4k_bs64_lr3e-3": {"steps": 4000, "batch_size": 64, "lr": 3e-3},
    # early stopping on the out-of-bag loss (with a generous epoch budget)
    "es20_lr3e-3_ep1000": {"lr": 3e-3, "max_epochs": 1000, "early_stopping": True},
    "es50_lr3e-3_ep1000": {"lr": 3e-3, "max_epochs": 1000, "early_stopping": True,
                           "n_iter_no_change": 50},
    "es20_lr1e-2_ep1000": {"lr": 1e-2, "max_epochs": 1000, "early_stopping": True},
    "es50_lr1e-2_ep1000": {"lr": 1e-2, "max_epochs": 1000, "early_stopping": True,
                           "n_iter_no_change": 50},
    "nll_es20_lr3e-3_ep1000": {"loss": "gaussian_nll", "lr": 3e-3, "max_epochs": 1000,
                               "early_stopping": True},
    # heteroscedastic members
    "nll_lr3e-3_ep500": {"loss": "gaussian_nll", "lr": 3e-3, "max_epochs": 500},
    # architecture, prior, regularisation
    "h100_lr3e-3_ep500": {"hidden_layer_sizes": (100,), "lr": 3e-3, "max_epochs": 500},
    "h100x2_lr3e-3_ep500": {"hidden_layer_sizes": (100, 100), "lr": 3e-3, "max_epochs": 500},
    "tanh_lr3e-3_ep500": {"activation": "tanh", "lr": 3e-3, "max_epochs": 500},
    "selu_lr3e-3_ep500": {"activation": "selu", "lr": 3e-3, "max_epochs": 500},
    "prior0.3_lr3e-3_ep500": {"prior_scale": 0.3, "lr": 3e-3, "max_epochs": 500},
    "prior3_lr3e-3_ep500": {"prior_scale": 3.0, "lr": 3e-3, "max_epochs": 500},
    "prior0.5_lr3e-3_ep500": {"prior_scale": 0.5, "lr": 3e-3, "max_epochs": 500},
    "prior0.3_lr1e-2": {"prior_scale": 0.3, "lr": 1e-2},
    "lr3e-3_ep300": {"lr": 3e-3, "max_epochs": 300},
    "prior0.3_lr3e-3_ep300": {"prior_scale": 0.3, "lr": 3e-3, "max_epochs": 300},
    "wd1e-4_lr3e-3_ep500": {"weight_decay": 1e-4, "lr": 3e-3, "max_epochs": 500},
    "k20_lr3e-3_ep500": {"n_estimators": 20, "lr": 3e-3, "max_epochs": 500},
}
# After the defaults moved to prior 0.3 / lr 3e-3 / 300 epochs: yacht's high coverage.
_AFTER = {
    "shipped_base": {},
    "k20": {"n_estimators": 20},
    "bs64": {"batch_size": 64},
    "ep600": {"max_epochs": 600},
    "calibrate_epistemic": {"calibrate_epistemic": True},
    "nll": {"loss": "gaussian_nll"},
}
# Issue 10: a training budget for small and large data alike (steps, schedule, width).
_BUDGET = {
    "cos300": {"lr_schedule": "cosine"},
    "steps4k": {"steps": 4000, "batch_size": 200},
    "cos_steps4k": {"steps": 4000, "batch_size": 200, "lr_schedule": "cosine"},
    "cos_steps4k_lr1e-2": {"steps": 4000, "batch_size": 200, "lr_schedule": "cosine", "lr": 1e-2},
    "cos_steps8k": {"steps": 8000, "batch_size": 200, "lr_schedule": "cosine"},
    "cos_steps8k_lr1e-2": {"steps": 8000, "batch_size": 200, "lr_schedule": "cosine", "lr": 1e-2},
    # round 2: batch size, longer budget, prior scale and weight decay at lr 1e-2, cosine
    "cos_steps4k_lr1e-2_bs64": {"steps": 4000, "batch_size": 64, "lr_schedule": "cosine", "lr": 1e-2},
    "cos_steps4k_lr3e-3_bs64": {"steps": 4000, "batch_size": 64, "lr_schedule": "cosine", "lr": 3e-3},
    "cos_steps4k_lr1e-2_p0.5": {"steps": 4000, "batch_size": 200, "lr_schedule": "cosine", "lr": 1e-2,
                                "prior_scale": 0.5},
    "cos_steps4k_lr1e-2_p1": {"steps": 4000, "batch_size": 200, "lr_schedule": "cosine", "lr": 1e-2,
                              "prior_scale": 1.0},
    "cos_steps4k_lr1e-2_wd1e-4": {"steps": 4000, "batch_size": 200, "lr_schedule": "cosine",
                                  "lr": 1e-2, "weight_decay": 1e-4},
    # round 3: batch 64, lr 1e-2, cosine; a step budget with a floor of epochs for large sets
    "r3_s4k_e20": {"steps": 4000, "min_epochs": 20, "batch_size": 64, "lr_schedule": "cosine",
                   "lr": 1e-2},
    "r3_s4k_e100": {"steps": 4000, "min_epochs": 100, "batch_size": 64, "lr_schedule": "cosine",
                    "lr": 1e-2},
    "r3_s6k_e100": {"steps": 6000, "min_epochs": 100, "batch_size": 64, "lr_schedule": "cosine",
                    "lr": 1e-2},
    # round 4: round 3's rule with weight decay
    "r4_wd1e-4": {"steps": 4000, "min_epochs": 20, "batch_size": 64, "lr_schedule": "cosine",
                  "lr": 1e-2, "weight_decay": 1e-4},
    "r4_wd1e-3": {"steps": 4000, "min_epochs": 20, "batch_size": 64, "lr_schedule": "cosine",
                  "lr": 1e-2, "weight_decay": 1e-3},
    # round 5: fewer steps, for yacht's fit time
    "r5_s2500": {"steps": 2500, "min_epochs": 20, "batch_size": 64, "lr_schedule": "cosine",
                 "lr": 1e-2, "weight_decay": 1e-4},
    "r5_s3000": {"steps": 3000, "min_epochs": 20, "batch_size": 64, "lr_schedule": "cosine",
                 "lr": 1e-2, "weight_decay": 1e-4},
}
# The defaults rounds 1-5 chose (shipped from r5_s2500 on): round 6 varies the number of
# members on them, now that members train together and 20 cost about 1.25x the time of 10.
BUDGET_DEFAULTS = {"prior_scale": 0.3, "lr": 1e-2, "max_epochs": "auto", "batch_size": "auto",
                   "lr_schedule": "cosine", "weight_decay": 1e-4, "n_estimators": 10}
_MEMBERS = {
    "r6_k10": {},
    "r6_k20": {"n_estimators": 20},
    "r6_k30": {"n_estimators": 30},
}
# Round 7: where yacht's in-distribution cost of the prior comes from. The trainable networks
# must cancel the prior on the data; weight decay pulls them towards zero, i.e. against the
# cancellation, and a longer budget gives them more steps to reach it. Each with and without
# the prior, on the shipped defaults (20 members, written out).
SHIPPED_20 = {**BUDGET_DEFAULTS, "n_estimators": 20}
_PRIOR_COST = {
    "r7_boot": {"prior_scale": 0.0},
    "r7_wd0": {"weight_decay": 0.0},
    "r7_wd0_boot": {"weight_decay": 0.0, "prior_scale": 0.0},
    # four times yacht's budget (625 epochs of its 221 inner training rows under "auto")
    "r7_ep2500": {"max_epochs": 2500},
    "r7_ep2500_boot": {"max_epochs": 2500, "prior_scale": 0.0},
    # the epistemic variance factor fitted on out-of-bag rows instead of 1
    "r7_cal": {"calibrate_epistemic": True},
    "r7_cal_boot": {"calibrate_epistemic": True, "prior_scale": 0.0},
}
CONFIGS = {
    "base": {},  # the package's defaults as installed: a moving target, see the docstring
    **{name: {**SEARCH_DEFAULTS, **overrides} for name, overrides in _SEARCH.items()},
    **{name: {**SHIPPED_DEFAULTS, **overrides} for name, overrides in _AFTER.items()},
    **{name: {**SHIPPED_DEFAULTS, **overrides} for name, overrides in _BUDGET.items()},
    **{name: {**BUDGET_DEFAULTS, **overrides} for name, overrides in _MEMBERS.items()},
    **{name: {**SHIPPED_20, **overrides} for name, overrides in _PRIOR_COST.items()},
}


def regressor_params(config, n_train):
    """RandomizedPriorRegressor parameters of ``config`` for ``n_train`` training rows."""
    params = dict(CONFIGS[config])
    steps = params.pop("steps", None)
    min_epochs = params.pop("min_epochs", 1)
    if steps is not None:
        batch = params.get("batch_size")
        if not isinstance(batch, int):
            raise ValueError(f"{config}: 'steps' needs an explicit integer batch_size; got {batch!r}.")
        params["max_epochs"] = max(min_epochs, math.ceil(steps / math.ceil(n_train / batch)))
    return params


def run_task(config, name, split, data_dir, kin8nm_rows):
    with one_thread():  # two workers on two cores
        return _run_task(config, name, split, data_dir, kin8nm_rows)


def _run_task(config, name, split, data_dir, kin8nm_rows):
    from sklearn_rpf.metrics import gaussian_nll, interval_coverage, interval_width

    X_tr, y_tr, X_va, y_va = inner_split(
        data_dir, name, split, seed=SEARCH_SEED, max_rows=kin8nm_rows if name == "kin8nm" else None
    )
    model = make_rpf(split, regressor_params(config, len(y_tr)))
    start = time.perf_counter()
    model.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - start
    mean, std = model.predict(X_va, return_std=True)
    z = (y_va - mean) / std
    # The conformal 95% interval (predict_interval's default), recorded from round 6 on.
    bounds = _intervals.conformal_bounds(model, X_va)
    conformal = _intervals.interval_record("conformal", y_va, *bounds, fit_s, None)
    return {
        "config": config, "dataset": name, "split": split, "n_train": len(y_tr),
        "nll": float(gaussian_nll(y_va, mean, std)),
        "coverage": float(interval_coverage(y_va, mean, std, level=0.95)),
        "rmse": float(np.sqrt(np.mean((y_va - mean) ** 2))),
        # Heavy tails of the standardised errors: 3 for a Gaussian.
        "z_kurtosis": float(np.mean(z**4) / np.mean(z**2) ** 2),
        "fit_s": fit_s, "epochs": int(model[-1].n_epochs_),
        "conformal_coverage": conformal["coverage"], "conformal_width": conformal["width"],
        "gaussian_width": float(interval_width(y_va, mean, std, level=_intervals.CONFIDENCE)),
    }


def time_full_fit(config, name, data_dir):
    """Seconds to fit on the whole outer training split 0 (no evaluation: only the cost)."""
    X, y, _, _ = load_split(data_dir, name, 0)
    model = make_rpf(0, regressor_params(config, len(y)))
    with one_thread():
        start = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - start


def load_cache(path):
    if not Path(path).is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _by_config_and_dataset(records):
    groups = {}
    for r in records:
        groups.setdefault((r["config"], r["dataset"]), []).append(r)
    return groups


def summary_table(records, configs=None):
    """Markdown: per configuration and data set, mean over splits of NLL / coverage / RMSE / fit s."""
    by_key = _by_config_and_dataset(records)
    names = configs or list(dict.fromkeys(r["config"] for r in records))
    lines = ["| config | " + " | ".join(DATASETS) + " | mean NLL |",
             "|---" * (len(DATASETS) + 2) + "|"]
    for config in names:
        cells, nlls = [], []
        for name in DATASETS:
            rs = by_key.get((config, name), [])
            if not rs:
                cells.append("—")
                continue
            m = {k: np.mean([r[k] for r in rs]) for k in ("nll", "coverage", "rmse", "fit_s", "epochs")}
            nlls.append(m["nll"])
            cells.append(f"{m['nll']:.2f} / {m['coverage']:.2f} / {m['rmse']:.3g} / "
                         f"{m['fit_s']:.1f}s ({int(m['epochs'])}ep, n={len(rs)})")
        mean_nll = f"{np.mean(nlls):.3f}" if len(nlls) == len(DATASETS) else "—"
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {mean_nll} |")
    return "\n".join(lines)


def tails_table(records, configs=None):
    """Markdown: per configuration, ``NLL / coverage / kurtosis of z`` per data set and fit s."""
    by_key = _by_config_and_dataset(records)
    names = configs or list(dict.fromkeys(r["config"] for r in records))
    datasets = [d for d in DATASETS if any((c, d) in by_key for c in names)]
    lines = ["| config | " + " | ".join(f"{d} NLL / coverage / kurtosis of z" for d in datasets)
             + f" | fit s ({', '.join(datasets)}) |", "|---" * (len(datasets) + 2) + "|"]
    for config in names:
        cells, fits = [], []
        for name in datasets:
            rs = by_key.get((config, name), [])
            if not rs:
                cells.append("—")
                fits.append("—")
                continue
            cells.append(f"{np.mean([r['nll'] for r in rs]):.2f} / "
                         f"{np.mean([r['coverage'] for r in rs]):.3f} / "
                         f"{np.mean([r['z_kurtosis'] for r in rs]):.1f} (n={len(rs)})")
            fits.append(f"{np.mean([r['fit_s'] for r in rs]):.1f}")
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {', '.join(fits)} |")
    return "\n".join(lines)


def intervals_table(records, configs=None):
    """Markdown: per configuration and data set, the 95% intervals on the validation rows:
    ``conformal coverage / conformal width / Gaussian width``."""
    by_key = _by_config_and_dataset(records)
    names = configs or list(dict.fromkeys(r["config"] for r in records))
    lines = ["| config | " + " | ".join(DATASETS) + " |", "|---" * (len(DATASETS) + 1) + "|"]
    for config in names:
        cells = []
        for name in DATASETS:
            rs = by_key.get((config, name), [])
            cells.append("—" if not rs else
                         f"{np.mean([r['conformal_coverage'] for r in rs]):.3f} / "
                         f"{np.mean([r['conformal_width'] for r in rs]):.3g} / "
                         f"{np.mean([r['gaussian_width'] for r in rs]):.3g} (n={len(rs)})")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--kin8nm-rows", type=int, default=2000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="tuning_results.jsonl", help="JSON-lines cache")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="print the configurations and exit")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--time-full", action="store_true",
                        help="time one fit per --configs/--datasets on the full training split 0 "
                             "(one process, one thread) and exit")
    return parser.parse_args(argv)


def main(argv=None):
    from joblib import Parallel, delayed

    args = parse_args(argv)
    if args.list:
        for name, params in CONFIGS.items():
            print(f"{name}: {params}")
        return
    if args.time_full:
        data_dir = check_data_dir(args.data_dir or default_data_dir(), args.datasets)
        for config in args.configs:
            for name in args.datasets:
                seconds = time_full_fit(config, name, data_dir)
                print(f"{config:>24} {name:>17} full training split 0: fit {seconds:.1f}s",
                      flush=True)
        return
    records = load_cache(args.out)
    if not args.table_only:
        data_dir = check_data_dir(args.data_dir or default_data_dir(), args.datasets)
        done = {(r["config"], r["dataset"], r["split"]) for r in records}
        tasks = [(c, d, s) for c in args.configs for d in args.datasets for s in args.splits
                 if (c, d, s) not in done]
        print(f"{len(tasks)} fits to run ({len(done)} cached in {args.out})", flush=True)
        jobs = (delayed(run_task)(c, d, s, str(data_dir), args.kin8nm_rows) for c, d, s in tasks)
        with open(args.out, "a") as f:
            for record in Parallel(n_jobs=args.n_jobs, return_as="generator")(jobs):
                f.write(json.dumps(record) + "\n")
                f.flush()
                records.append(record)
                print(f"{record['config']:>24} {record['dataset']:>17} split {record['split']}: "
                      f"NLL {record['nll']:.3f} cov {record['coverage']:.3f} "
                      f"RMSE {record['rmse']:.3g} fit {record['fit_s']:.1f}s", flush=True)
    shown = [r for r in records if r["split"] in args.splits and r["config"] in args.configs
             and r["dataset"] in args.datasets]
    configs = [c for c in args.configs if any(r["config"] == c for r in shown)]
    print(summary_table(shown, configs))
    print()
    # Records from before the kurtosis was recorded lack it.
    print(tails_table([r for r in shown if "z_kurtosis" in r], configs))
    # Conformal intervals are recorded from round 6 on.
    with_intervals = [r for r in shown if "conformal_width" in r]
    if with_intervals:
        print()
        print(intervals_table(with_intervals,
                              [c for c in configs if any(r["config"] == c for r in with_intervals)]))
    return shown


if __name__ == "__main__":
    main()
