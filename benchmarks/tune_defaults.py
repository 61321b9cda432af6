"""Search for default hyper-parameters of RandomizedPriorRegressor on inner validation splits.

Only the training part of the published UCI splits is used: inside outer training split
``s`` (``index_train_s.txt``) a seeded 80/20 split gives an inner training and a validation
set. Test splits are never read. For kin8nm a seeded random subset of the outer training split
(``--kin8nm-rows``, default 2000) is used to keep the search cheap.

Every finished (configuration, data set, split) is appended to a JSON-lines cache, so the
search can be stopped and resumed, and run in stages::

    python benchmarks/tune_defaults.py --configs base lr3e-3 --out tuning_results.jsonl
    python benchmarks/tune_defaults.py --list          # names of all configurations
    python benchmarks/tune_defaults.py --table-only    # Markdown table from the cache

A configuration is a set of overrides of the current defaults. ``steps`` is not a parameter of
the regressor: it sets ``max_epochs`` so that about that many optimizer steps are taken
(``max_epochs = ceil(steps / batches_per_epoch)``), to test a steps-based training rule.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from _uci_data import DATASETS, check_data_dir, default_data_dir, load_dataset
from joblib import Parallel, delayed
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEARCH_SEED = 0

CONFIGS = {
    "base": {},
    # optimisation length: learning rate, epochs, batch size
    "lr3e-3": {"lr": 3e-3},
    "lr1e-2": {"lr": 1e-2},
    "ep500": {"max_epochs": 500},
    "ep1000": {"max_epochs": 1000},
    "bs32": {"batch_size": 32},
    "bs64": {"batch_size": 64},
    "full": {"batch_size": None, "max_epochs": 1000, "lr": 1e-2},
    "lr3e-3_ep500": {"lr": 3e-3, "max_epochs": 500},
    "lr1e-2_ep500": {"lr": 1e-2, "max_epochs": 500},
    "bs32_lr3e-3": {"batch_size": 32, "lr": 3e-3},
    "bs64_lr3e-3_ep500": {"batch_size": 64, "lr": 3e-3, "max_epochs": 500},
    # steps-based rule (emulated through max_epochs)
    "steps2k_lr3e-3": {"steps": 2000, "lr": 3e-3},
    "steps4k_lr3e-3": {"steps": 4000, "lr": 3e-3},
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
    # after the defaults moved to prior 0.3 / lr 3e-3 / 300 epochs: yacht's high coverage
    "k20": {"n_estimators": 20},
    "ep600": {"max_epochs": 600},
    "calibrate_epistemic": {"calibrate_epistemic": True},
    "nll": {"loss": "gaussian_nll"},
}


def inner_split(data_dir, name, split, kin8nm_rows):
    """Inner (train, validation) arrays carved out of outer training split ``split`` only."""
    X, y = load_dataset(str(data_dir), name)
    train = np.loadtxt(Path(data_dir) / name / f"index_train_{split}.txt", dtype=int, ndmin=1)
    rng = np.random.default_rng([SEARCH_SEED, split])
    if name == "kin8nm" and kin8nm_rows and kin8nm_rows < len(train):
        train = rng.choice(train, size=kin8nm_rows, replace=False)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X[train], y[train], test_size=0.2, random_state=int(rng.integers(2**31 - 1))
    )
    return X_tr, y_tr, X_va, y_va


def regressor_params(overrides, n_train):
    params = dict(overrides)
    steps = params.pop("steps", None)
    if steps is not None:
        batch = params.get("batch_size", "auto")
        batch = min(200, n_train) if batch == "auto" else (n_train if batch is None else batch)
        params["max_epochs"] = math.ceil(steps / math.ceil(n_train / batch))
    return params


def run_task(config, name, split, data_dir, kin8nm_rows):
    import torch

    torch.set_num_threads(1)  # two workers on two cores
    from sklearn_rpf import RandomizedPriorRegressor
    from sklearn_rpf.metrics import gaussian_nll, interval_coverage

    X_tr, y_tr, X_va, y_va = inner_split(data_dir, name, split, kin8nm_rows)
    params = regressor_params(CONFIGS[config], len(y_tr))
    model = make_pipeline(StandardScaler(), RandomizedPriorRegressor(random_state=split, **params))
    start = time.perf_counter()
    model.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - start
    mean, std = model.predict(X_va, return_std=True)
    reg = model[-1]
    oob_nll, oob_cov = _oob_calibrated_noise_metrics(model, X_tr, y_tr, X_va, y_va)
    return {
        "nll_oobcal": oob_nll, "coverage_oobcal": oob_cov,
        "config": config, "dataset": name, "split": split, "n_train": len(y_tr),
        "nll": float(gaussian_nll(y_va, mean, std)),
        "coverage": float(interval_coverage(y_va, mean, std, level=0.95)),
        "rmse": float(np.sqrt(np.mean((y_va - mean) ** 2))),
        # Heavy tails of the standardised errors: 3 for a Gaussian.
        "z_kurtosis": float(np.mean(((y_va - mean) / std) ** 4) / np.mean(((y_va - mean) / std) ** 2) ** 2),
        "fit_s": fit_s, "epochs": int(reg.n_epochs_),
    }


def time_full_fit(config, name, data_dir):
    """Seconds to fit on the whole outer training split 0 (no evaluation: only the cost)."""
    import torch

    torch.set_num_threads(1)
    from sklearn_rpf import RandomizedPriorRegressor

    X, y = load_dataset(str(data_dir), name)
    train = np.loadtxt(Path(data_dir) / name / "index_train_0.txt", dtype=int, ndmin=1)
    params = regressor_params(CONFIGS[config], len(train))
    model = make_pipeline(StandardScaler(), RandomizedPriorRegressor(random_state=0, **params))
    start = time.perf_counter()
    model.fit(X[train], y[train])
    return time.perf_counter() - start


def _oob_calibrated_noise_metrics(model, X_tr, y_tr, X_va, y_va):
    """Validation NLL/coverage with an alternative noise: the s solving mean(r^2 / (v + s)) = 1 on
    out-of-bag rows (r: residual of the out-of-bag members' mean, v: their variance), i.e. noise that
    makes the out-of-bag predictive distribution calibrated instead of noise = out-of-bag MSE, which
    also contains model error and is then added to the epistemic variance a second time."""
    from sklearn_rpf.metrics import gaussian_nll, interval_coverage

    reg = model[-1]
    if reg.loss != "squared_error":
        return None, None
    members = reg.predict_members(model[0].transform(X_tr))  # (K, n)
    oob = reg.in_bag_counts_.T == 0
    usable = oob.sum(axis=0) >= 2
    counts = oob[:, usable].sum(axis=0)
    kept = np.where(oob[:, usable], members[:, usable], 0.0)
    mean = kept.sum(axis=0) / counts
    var = (np.where(oob[:, usable], (members[:, usable] - mean) ** 2, 0.0)).sum(axis=0) / (counts - 1)
    r2 = (y_tr[usable] - mean) ** 2
    lo, hi = 0.0, float(r2.mean())
    for _ in range(60):  # mean(r2 / (var + s)) decreases in s: bisection for it to equal 1
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.mean(r2 / (var + mid + 1e-300)) > 1 else (lo, mid)
    noise = max(hi, 1e-12 * float(np.var(y_tr)))
    va_members = reg.predict_members(model[0].transform(X_va))
    y_mean = va_members.mean(axis=0)
    y_std = np.sqrt(va_members.var(axis=0, ddof=1) + noise)
    return float(gaussian_nll(y_va, y_mean, y_std)), float(interval_coverage(y_va, y_mean, y_std))


def load_cache(path):
    if not Path(path).is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


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


def main():
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
    args = parser.parse_args()

    if args.list:
        for name, overrides in CONFIGS.items():
            print(f"{name}: {overrides}")
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
                      f"RMSE {record['rmse']:.3g} fit {record['fit_s']:.1f}s | OOB-calibrated "
                      f"noise: NLL {record['nll_oobcal']} cov {record['coverage_oobcal']}",
                      flush=True)
    shown = [r for r in records if r["split"] in args.splits]
    print(summary_table(shown, [c for c in args.configs if any(r["config"] == c for r in shown)]))
    # Heavy tails of the standardised validation errors (records from before it was recorded lack it).
    for (config, name), rs in _by_config_and_dataset(shown).items():
        if config in args.configs and all("z_kurtosis" in r for r in rs):
            print(f"{config:>24} {name:>17}: mean coverage {np.mean([r['coverage'] for r in rs]):.3f}, "
                  f"kurtosis of z {np.mean([r['z_kurtosis'] for r in rs]):.2f} (n={len(rs)})")


def _by_config_and_dataset(records):
    groups = {}
    for r in records:
        groups.setdefault((r["config"], r["dataset"]), []).append(r)
    return groups


if __name__ == "__main__":
    main()
