"""Tables, targets and the figure of the out-of-distribution benchmark (``python -m benchmarks.shift``)."""

import json

import numpy as np
import pandas as pd

from ._common import cell, draw_means, figure_legend, reused_clause

SUMMARY_METRICS = ("nll_ood", "coverage_ood", "nll_id", "auroc_epistemic", "auroc_total", "fit_time")
HEADERS = {"nll_ood": "OOD NLL", "coverage_ood": "OOD 95% coverage", "nll_id": "in-dist. NLL",
           "auroc_epistemic": "AUROC, epistemic std", "auroc_total": "AUROC, total std",
           "fit_time": "fit (s)"}
PLACES = {"nll_ood": 2, "coverage_ood": 3, "nll_id": 2, "auroc_epistemic": 3, "auroc_total": 3,
          "fit_time": 2}
NLL_GAIN_TARGET = 0.05  # nats, issue 10
SETS_TARGET = 4


# ---------------------------------------------------------------------------- summaries
def summarize(raw):
    """Mean and standard error over features per (dataset, kind, method); failures left out."""
    ok = raw[raw["error"] == ""]
    grouped = ok.groupby(["dataset", "kind", "method"], sort=False)
    stats = grouped[list(SUMMARY_METRICS)].agg(["mean", "sem"])
    stats.columns = [f"{metric}_{'se' if stat == 'sem' else stat}" for metric, stat in stats.columns]
    counts = grouped.agg(label=("label", "first"), n_features=("feature", "count"),
                         n_train=("n_train", "median"))
    return counts.join(stats).reset_index()


def paired(raw, by):
    """RPF against the bootstrap ensemble on the same splits, grouped by ``by``.

    ``nll_gain``: bootstrap NLL minus RPF NLL on the OOD rows (positive: RPF better);
    ``auroc_gain``: RPF's epistemic AUROC minus the bootstrap ensemble's.
    """
    ok = raw[raw["error"] == ""]
    rpf, boot = ok[ok["method"] == "rpf"], ok[ok["method"] == "bootstrap"]
    both = rpf.merge(boot, on=["dataset", "kind", "feature"], suffixes=("_rpf", "_boot"))
    if both.empty:
        return pd.DataFrame()
    both["nll_gain"] = both["nll_ood_boot"] - both["nll_ood_rpf"]
    both["auroc_gain"] = both["auroc_epistemic_rpf"] - both["auroc_epistemic_boot"]
    grouped = both.groupby(by, sort=False)
    return pd.DataFrame({
        "n": grouped.size(),
        "nll_gain": grouped["nll_gain"].mean(), "nll_gain_se": grouped["nll_gain"].sem(),
        "nll_wins": grouped["nll_gain"].apply(lambda g: int((g > 0).sum())),
        "auroc_gain": grouped["auroc_gain"].mean(), "auroc_gain_se": grouped["auroc_gain"].sem(),
        "auroc_wins": grouped["auroc_gain"].apply(lambda g: int((g > 0).sum())),
    }).reset_index()


# ---------------------------------------------------------------------------- markdown
def summary_table(summary):
    lines = ["| data set | split kind | method | features | train rows (median) | "
             + " | ".join(HEADERS[m] for m in SUMMARY_METRICS) + " |",
             "|" + " --- |" * (5 + len(SUMMARY_METRICS))]
    for _, row in summary.iterrows():
        cells = []
        for m in SUMMARY_METRICS:
            if m == "auroc_epistemic" and row["method"] == "ngboost":
                cells.append("n/a (no epistemic part)")
            else:
                cells.append(cell(row[f"{m}_mean"], row[f"{m}_se"], PLACES[m]))
        lines.append(f"| {row['dataset']} | {row['kind']} | {row['label']} | {row['n_features']} | "
                     f"{row['n_train']:.0f} | " + " | ".join(cells) + " |")
    return lines


def comparison_table(raw):
    table = paired(raw, ["dataset", "kind"])
    if table.empty:
        return ["(RPF against the bootstrap ensemble: run both methods)"]
    lines = ["| data set | split kind | features | OOD NLL gain of RPF (nats) | RPF better on | "
             "epistemic AUROC gain of RPF | RPF higher on |", "|" + " --- |" * 7]
    for _, row in table.iterrows():
        lines.append(f"| {row['dataset']} | {row['kind']} | {row['n']} | "
                     f"{cell(row['nll_gain'], row['nll_gain_se'], 3)} | {row['nll_wins']} of {row['n']} | "
                     f"{cell(row['auroc_gain'], row['auroc_gain_se'], 3)} | "
                     f"{row['auroc_wins']} of {row['n']} |")
    return lines


def per_split_table(raw):
    """Every split: OOD NLL and epistemic AUROC of each method, side by side."""
    methods = list(dict.fromkeys(raw["method"]))
    labels = dict(zip(raw["method"], raw["label"], strict=False))
    with_epistemic = [m for m in methods if m != "ngboost"]
    lines = ["Columns list the methods in this order: " + ", ".join(labels[m] for m in methods)
             + "; NGBoost has no epistemic AUROC.", "",
             "| data set | kind | feature | OOD share | train rows | OOD NLL | in-dist. NLL | "
             "AUROC, epistemic std |", "|" + " --- |" * 8]
    for (dataset, kind, feature), block in raw.groupby(["dataset", "kind", "feature"], sort=False):
        by = block.set_index("method")

        def values(metric, chosen, by=by):
            return " / ".join(f"{by.loc[m, metric]:.2f}" if m in by.index
                              and np.isfinite(by.loc[m, metric]) else "–" for m in chosen)

        first = block.iloc[0]
        lines.append(f"| {dataset} | {kind} | {feature} | {first['ood_share']:.2f} | "
                     f"{first['n_train']} | {values('nll_ood', methods)} | "
                     f"{values('nll_id', methods)} | {values('auroc_epistemic', with_epistemic)} |")
    return lines


def note_lines(notes):
    lines = [f"- Command: `{notes['command']}` ({notes['wall_time']:.0f} s wall time, "
             f"{notes['n_jobs']} job(s) on {notes['cpu_count']} CPU(s), {notes['date']}; every task "
             "runs on one thread, so the times are single-threaded"
             + (f"; {notes['reused']}" if notes.get("reused") else "") + ")."]
    lines.append("- Splits: one per input feature and kind; gap = the middle third of the rows along "
                 "the feature held out, extrapolation = the bottom and top sixths; tied values never "
                 "cut (by mid-rank); a seeded random 10% of the other rows is the in-distribution test "
                 "set; `random_state` is the feature index.")
    if notes["skipped"]:
        lines.append("- Skipped (held-out share outside [0.10, 0.50]): " + "; ".join(notes["skipped"]) + ".")
    if notes.get("ngboost"):
        lines.append(f"- NGBoost: {notes['ngboost']}.")
    limits = ", ".join(f"{d} {n}" for d, n in notes["gp_features"].items())
    lines.append(f"- GP (ARD): constant × ARD RBF + white noise, `normalize_y=True`, 2 optimizer "
                 f"restarts, at most {notes['gp_max_rows']:,} training rows (a random subset); its "
                 "epistemic std is the latent function's (the predictive std without the fitted white "
                 "noise)" + (f"; first features only: {limits}" if limits else "") + ".")
    if notes["rpf_params"]:
        lines.append(f"- RandomizedPriorRegressor parameters overridden for both RPF methods: "
                     f"`{json.dumps(notes['rpf_params'])}` (so 'RPF (defaults)' is not the defaults).")
    if notes.get("log_target"):
        lines.append("- Every method fitted to log(y): NLL is the log-normal one in the target's "
                     "units, coverage that of the exponentiated interval, RMSE in log units.")
    lines.append("- AUROC: `sklearn.metrics.roc_auc_score` of the std for telling the held-out (OOD) "
                 "rows from the in-distribution test rows; 0.5 is chance.")
    return lines


def write_markdown(path, summary, raw, targets, notes):
    lines = ["# Out-of-distribution benchmark: gap and extrapolation splits", "",
             "Means ± standard errors over features (one split each). NLL in nats in the target's "
             "units (lower is better); coverage of the 95% Gaussian interval on the held-out rows.",
             "", *summary_table(summary), "", "## RPF against the bootstrap ensemble", "",
             *comparison_table(raw), "", "## Targets", "", *targets, "", "## Notes", "",
             *note_lines(notes), "", "## Every split", "", *per_split_table(raw)]
    path.write_text("\n".join(lines) + "\n")


def readme_block(summary, raw, targets, notes, figure_link):
    lines = ["<!-- Written by benchmarks/shift.py (command below): edit the script, not this block. -->",
             f"Command: `{notes['command']}` ({notes['wall_time']:.0f} s on {notes['n_jobs']} job(s), "
             f"{notes['date']}{reused_clause(notes)}). Means ± standard errors over features.", "",
             *summary_table(summary), "", *comparison_table(raw), "",
             f"![OOD NLL and AUROC per data set, split kind and method]({figure_link})", "",
             *targets, "", *note_lines(notes)[1:], "",
             "<details><summary>Every split</summary>", "", *per_split_table(raw), "", "</details>"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- targets
def target_summary(raw):
    """How RPF fares against the bootstrap ensemble on issue 10's out-of-distribution targets."""
    by_set = paired(raw, "dataset")
    if by_set.empty:
        return ["Issue 10 targets: not judged (run both rpf and bootstrap)."]
    kinds = ", ".join(dict.fromkeys(raw["kind"]))
    lines = [f"Issue 10, out of distribution: RPF against the bootstrap ensemble ({kinds} splits "
             "pooled; per set, the mean over its splits):"]
    lines += _target_lines(by_set, "")
    if raw["kind"].nunique() > 1:
        for kind, block in raw.groupby("kind", sort=False):
            lines += _target_lines(paired(block, "dataset"), f" ({kind} splits only)")
    return lines


def _target_lines(by_set, scope):
    n_sets = len(by_set)
    nll_better = by_set[by_set["nll_gain"] > 0]
    mean_gain = by_set["nll_gain"].mean()
    nll_met = len(nll_better) >= SETS_TARGET and mean_gain >= NLL_GAIN_TARGET
    auroc_higher = by_set[by_set["auroc_gain"] > 0]
    auroc_met = len(auroc_higher) >= SETS_TARGET
    caveat = "" if n_sets >= 5 else f"not judged, only {n_sets} set(s) run"
    verdict = (lambda met: caveat or ("met" if met else "NOT met"))  # noqa: E731
    return [
        f"- OOD NLL{scope}: RPF better on {len(nll_better)} of {n_sets} sets (gain, bootstrap minus "
        "RPF: " + ", ".join(f"{r.dataset} {r.nll_gain:+.3f}" for r in by_set.itertuples())
        + f"); mean gain over sets {mean_gain:+.3f} nats; target: at least {SETS_TARGET} of 5 by at "
        f"least {NLL_GAIN_TARGET} nats on average: {verdict(nll_met)}.",
        f"- Epistemic-std AUROC{scope}: RPF higher on {len(auroc_higher)} of {n_sets} sets "
        "(RPF minus bootstrap: " + ", ".join(f"{r.dataset} {r.auroc_gain:+.3f}" for r in by_set.itertuples())
        + f"); target: at least {SETS_TARGET} of 5: {verdict(auroc_met)}.",
    ]


# ---------------------------------------------------------------------------- figure
def plot(path, raw, datasets, kinds, methods):
    """Top: OOD NLL; bottom: AUROC of the epistemic std (NGBoost: of the total std, squares)."""
    from matplotlib.figure import Figure

    ok = raw[raw["error"] == ""]
    labels = dict(zip(raw["method"], raw["label"], strict=False))
    fig = Figure(figsize=(max(8.0, 3.0 * len(datasets)), 6.8), layout="constrained")
    axes = fig.subplots(2, len(datasets), squeeze=False)
    width = len(methods) + 1
    for column, dataset in enumerate(datasets):
        top, bottom = axes[0, column], axes[1, column]
        nll_points, auroc_points = [], []
        for k, kind in enumerate(kinds):
            for i, method in enumerate(methods):
                block = ok[(ok["dataset"] == dataset) & (ok["kind"] == kind) & (ok["method"] == method)]
                x, color = k * width + i, f"C{i}"
                nll_points.append((x, block["nll_ood"].to_numpy(), color, "o", labels.get(method, method)))
                if method == "ngboost":
                    auroc_points.append((x, block["auroc_total"].to_numpy(), color, "s",
                                         f"{labels.get(method, method)}: total std"))
                else:
                    auroc_points.append((x, block["auroc_epistemic"].to_numpy(), color, "o",
                                         labels.get(method, method)))
        draw_means(top, nll_points)
        draw_means(bottom, auroc_points, off_scale=np.inf)
        bottom.axhline(0.5, color="k", linestyle=":", linewidth=1, label="chance (AUROC 0.5)")
        top.set_title(dataset)
        for ax in (top, bottom):
            ax.set_xticks([k * width + (len(methods) - 1) / 2 for k in range(len(kinds))], kinds)
            ax.set_xlim(-0.8, len(kinds) * width - 1.2)
    axes[0, 0].set_ylabel("NLL on held-out rows (nats)")
    axes[1, 0].set_ylabel("AUROC, held-out vs in-dist.")
    figure_legend(fig, axes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
