"""Why the prior does not win on the shift splits: its shape, scale and calibration, side by side.

Issue 10 asks, where the prior cannot win away from the data, to find out why (prior shape,
scale, input normalisation). This runs ``benchmarks.shift`` (RPF only, every feature, gap and
extrapolation splits) once per prior configuration below, plus the bootstrap ensemble, and
reports per data set, pooled over both split kinds and every feature, against the bootstrap
ensemble on the same splits:

- the held-out (OOD) NLL gain (bootstrap minus configuration: positive is better);
- the epistemic-std AUROC gain (configuration minus bootstrap: positive is better);
- the in-distribution NLL gain (bootstrap minus configuration: positive is better).

Configurations (``--rpf-params`` of ``benchmarks.shift``; shapes in ``benchmarks/_prior_shapes.py``):
the default MLP prior at scales 0.3 (the default) and 1 with ``calibrate_epistemic``; a stationary
random-Fourier-feature prior (a draw from an RBF GP on the standardised inputs) of length scale 1
and 2; and the "evidence" prior, a random-Fourier draw from an ARD GP fitted to the training rows
(one length scale per feature, so that it does not vary along features the target ignores).

A second table says where the prior's in-distribution cost comes from: on the gap splits of the
first ``--spread-features`` features of each set, with the default MLP prior at scales 0, 0.3
and 1, the mean epistemic std on the training rows, the in-distribution test rows and the
held-out rows, and the fitted noise std (out-of-bag residuals), each over the target's std;
and, on the same training rows, the evidence prior's fitted kernel (its amplitude, and how many
features it leaves flat).

    python -m benchmarks.prior_study --n-jobs 2 --readme README.md

Each configuration's runs go to ``<out>/<name>/`` (``--resume`` reuses finished splits); the
tables to ``<out>/prior_study.md`` (their rows to ``prior_study_raw.csv`` and
``prior_spread_raw.csv``) and, with ``--readme``, between ``<!-- prior-study:start -->`` and
``<!-- prior-study:end -->``. Only splits that every configuration finished count (a failed fit
drops its split from every row, and the table says how many). About 25 minutes on 2 cores.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.preprocessing import StandardScaler

from . import _readme, shift
from ._common import REPO_ROOT, check_n_jobs, command_line, make_rpf, one_thread
from ._prior_shapes import fit_ard_kernel
from ._shift_splits import make_split
from ._uci_data import DATASETS, default_data_dir, load_dataset

BOOTSTRAP = "bootstrap"
CONFIGS = {  # name -> (label, --rpf-params)
    "mlp-0.3": ("MLP prior, scale 0.3 (default)", {}),
    "mlp-1-cal": ("MLP prior, scale 1, calibrate_epistemic", {"prior_scale": 1.0,
                                                             "calibrate_epistemic": True}),
    "fourier-1": ("RBF-GP draw, length 1, scale 0.3", {"prior": "fourier:1", "prior_scale": 0.3}),
    "fourier-2": ("RBF-GP draw, length 2, scale 0.3", {"prior": "fourier:2", "prior_scale": 0.3}),
    "fourier-2-1-cal": ("RBF-GP draw, length 2, scale 1, calibrate_epistemic",
                        {"prior": "fourier:2", "prior_scale": 1.0, "calibrate_epistemic": True}),
    "evidence-0.3": ("ARD-GP draw fitted to the data, 0.3 x its amplitude",
                     {"prior": "evidence:0.3"}),
}
SPREAD_SCALES = (0.0, 0.3, 1.0)
FLAT = 100.0  # a length scale this long (standardised units): the prior is flat along the feature
MEASURES = {  # column of shift_raw.csv -> (title, sign that makes "better" positive)
    "nll_ood": ("Held-out NLL gain over the bootstrap ensemble (nats; + is better)", -1),
    "auroc_epistemic": ("Epistemic-std AUROC gain over the bootstrap ensemble (+ is better)", 1),
    "nll_id": ("In-distribution NLL gain over the bootstrap ensemble (nats; + is better)", -1),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--features", nargs="+", default=None,
                        help="passed to benchmarks.shift (default: every feature)")
    parser.add_argument("--rpf-params", type=json.loads, default={},
                        help="JSON object merged under every configuration (e.g. a small test)")
    parser.add_argument("--spread-features", type=int, default=3,
                        help="gap splits of this many first features per set for the table of "
                             "where the in-distribution cost comes from (default: 3)")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "prior_study")
    parser.add_argument("--readme", type=Path, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not isinstance(args.rpf_params, dict):
        parser.error(f"--rpf-params must be a JSON object; got {args.rpf_params!r}")
    fixed = sorted(set(args.rpf_params) & {"prior", "prior_scale", "calibrate_epistemic", "loss"})
    if fixed:
        parser.error(f"--rpf-params may not set {fixed}: the configurations compared set them")
    check_n_jobs(parser, args.n_jobs)
    if args.spread_features < 0:
        parser.error(f"--spread-features must be 0 or more; got {args.spread_features}")
    return args


def run_config(args, name, method, params):
    """One configuration through ``benchmarks.shift``: its per-split rows."""
    argv = ["--datasets", *args.datasets, "--methods", method, "--n-jobs", str(args.n_jobs),
            "--rpf-params", json.dumps({**args.rpf_params, **params}),
            "--out", str(args.out / name)]
    if args.features:
        argv += ["--features", *args.features]
    argv += ["--resume"] * args.resume + ["--no-progress"] * args.no_progress
    raw = shift.main(argv)
    return raw.assign(config=name)


def common_splits(raw):
    """The rows of the splits where every configuration has every measure: ``(rows, dropped)``."""
    keys = ["dataset", "kind", "feature"]
    finite = np.isfinite(raw[list(MEASURES)].to_numpy(dtype=float)).all(axis=1)
    complete = (raw.assign(finite=finite).groupby(keys)["finite"].agg(["all", "size"]))
    n_configs = raw["config"].nunique()
    good = complete[(complete["all"]) & (complete["size"] == n_configs)].index
    kept = raw.set_index(keys).index.isin(good)
    return raw[kept], len(complete) - len(good)


def gains(raw):
    """Per (measure, configuration, data set): the mean over splits of the configuration's
    difference to the bootstrap ensemble on the same split, signed so that + is better."""
    keys = ["dataset", "kind", "feature"]
    base = raw[raw["config"] == BOOTSTRAP].set_index(keys)
    per_split = raw[raw["config"] != BOOTSTRAP].set_index(keys)
    tables = {}
    for column, (_, sign) in MEASURES.items():
        diff = sign * (per_split[column] - base[column].reindex(per_split.index))
        frame = per_split.assign(diff=diff.to_numpy()).reset_index()
        tables[column] = frame.pivot_table(index="config", columns="dataset", values="diff",
                                           aggfunc="mean", sort=False)
    return tables


def spread_on_the_data(dataset, feature, scales, data_dir, params):
    """Where the in-distribution cost comes from, on one gap split: for each prior scale, the mean
    epistemic std on the training rows, the in-distribution test rows and the held-out rows, and
    the fitted noise std, all over the target's std."""
    X, y = load_dataset(data_dir, dataset)
    split = make_split(X, dataset, "gap", feature)
    if split.skipped:
        return []
    rows = []
    with one_thread():
        # The evidence prior's kernel on the same training rows, standardised as in its pipeline.
        length_scale, amplitude = fit_ard_kernel(
            StandardScaler().fit_transform(X[split.train]), y[split.train], 500, feature)
        kernel = {"amplitude": amplitude, "flat": int((length_scale > FLAT).sum()),
                  "n_features": X.shape[1]}
        for scale in scales:
            model = make_rpf(feature, {**params, "prior_scale": scale})
            model.fit(X[split.train], y[split.train])
            std = {part: model.predict(X[index], return_std=True, epistemic=True)[1].mean()
                   for part, index in (("train", split.train), ("in-dist", split.id_test),
                                       ("held-out", split.ood))}
            rows.append({"dataset": dataset, "feature": feature, "scale": scale,
                         **{part: value / y.std() for part, value in std.items()},
                         "noise": float(np.sqrt(model[-1].noise_[0])) / y.std(), **kernel})
    return rows


def spread_table(frame, datasets, scales):
    means = frame.groupby(["dataset", "scale"]).mean(numeric_only=True)
    lines = ["**Where the in-distribution cost comes from** (gap splits of the first "
             f"{frame.groupby('dataset')['feature'].nunique().max()} features; mean epistemic std "
             "on each kind of row, and the fitted noise std, over the target's std; MLP prior)", "",
             "| set | prior_scale | epistemic std: training rows | in-distribution test rows | "
             "held-out rows | noise std |", "|---|---|---|---|---|---|"]
    for dataset in datasets:
        for scale in scales:
            if (dataset, scale) in means.index:
                row = means.loc[(dataset, scale)]
                lines.append(f"| {dataset} | {scale:g} | {row['train']:.3f} | {row['in-dist']:.3f} "
                             f"| {row['held-out']:.3f} | {row['noise']:.3f} |")
    kernels = frame.drop_duplicates(["dataset", "feature"]).groupby("dataset")
    lines += ["", "**The evidence prior's fitted kernel** on the same gap splits (amplitude in "
              f"target standard deviations; flat: length scale above {FLAT:g} standardised "
              "units, so the prior barely varies along that feature)", "",
              "| set | amplitude (min-max) | flat features (min-max) |", "|---|---|---|"]
    for dataset in datasets:
        if dataset in kernels.groups:
            k = kernels.get_group(dataset)
            lines.append(f"| {dataset} | {k['amplitude'].min():.2f}-{k['amplitude'].max():.2f} | "
                         f"{k['flat'].min()}-{k['flat'].max()} of {k['n_features'].iloc[0]} |")
    return "\n".join(lines + [""])


def markdown(tables, datasets, configs, command, seconds, fit_seconds, resumed, dropped):
    reuse = ", some or all of them reused from earlier runs by `--resume`" if resumed else ""
    lost = (f" {dropped} split(s) left out: some configuration failed there." if dropped else "")
    lines = [f"Command: `{command}` ({seconds:.0f} s; the fits behind the first tables took "
             f"{fit_seconds / 60:.0f} min of one core{reuse}). Gap and extrapolation splits "
             "pooled, each data set's mean over its splits; the same splits and seeds for every "
             f"row.{lost}", ""]
    for column, (title, _) in MEASURES.items():
        table = tables[column].reindex(index=configs, columns=datasets)
        lines += [f"**{title}**", "", "| prior | " + " | ".join(datasets) + " | better on |",
                  "|---" * (len(datasets) + 2) + "|"]
        for name in configs:
            row = table.loc[name]
            cells = " | ".join("–" if pd.isna(v) else f"{v:+.3f}" for v in row)
            lines.append(f"| {CONFIGS[name][0]} | {cells} | {int((row > 0).sum())} of "
                         f"{int(row.notna().sum())} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.readme:
        _readme.check_block(args.readme, "prior-study")
    start = time.perf_counter()
    data_dir = str(default_data_dir())
    args.out.mkdir(parents=True, exist_ok=True)
    frames = [run_config(args, BOOTSTRAP, "bootstrap", {})]
    frames += [run_config(args, name, "rpf", CONFIGS[name][1]) for name in args.configs]
    raw, dropped = common_splits(pd.concat(frames, ignore_index=True))
    tables = gains(raw)
    raw.to_csv(args.out / "prior_study_raw.csv", index=False)
    jobs = [(dataset, feature) for dataset in args.datasets
            for feature in range(min(args.spread_features, load_dataset(data_dir, dataset)[0].shape[1]))]
    spread = pd.DataFrame([row for rows in Parallel(n_jobs=args.n_jobs)(
        delayed(spread_on_the_data)(dataset, feature, SPREAD_SCALES, data_dir, args.rpf_params)
        for dataset, feature in jobs) for row in rows])
    text = (markdown(tables, args.datasets, args.configs,
                     command_line("benchmarks.prior_study", argv), time.perf_counter() - start,
                     raw["fit_time"].sum(), args.resume, dropped)
            + ("\n" + spread_table(spread, args.datasets, SPREAD_SCALES) if len(spread) else ""))
    spread.to_csv(args.out / "prior_spread_raw.csv", index=False)
    (args.out / "prior_study.md").write_text(text)
    if args.readme:
        _readme.write_block(args.readme, "prior-study", text)
    print(text)
    return tables


if __name__ == "__main__":
    main()
