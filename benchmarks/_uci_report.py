"""Tables, targets and the figure of the UCI benchmark (``python -m benchmarks.uci``)."""

import json

import numpy as np
import pandas as pd

from ._common import cell, decimals, draw_means, figure_legend, reused_clause
from ._intervals import INTERVALS

METRICS = ("rmse", "nll", "crps", "coverage_95", "width_95", "fit_time", "predict_time")
HEADERS = {"rmse": "RMSE", "nll": "NLL", "crps": "CRPS", "coverage_95": "95% coverage",
           "width_95": "95% width", "fit_time": "fit (s)", "predict_time": "predict (s)"}
README_METRICS = ("rmse", "nll", "coverage_95", "width_95", "fit_time")
# Published test NLL (nats, original units, 20 splits). MC dropout reports the test
# log-likelihood: its negative is shown.
PUBLISHED_NLL = {
    "Deep Ensembles (Lakshminarayanan et al., 2017)":
        {"concrete": 3.06, "energy": 1.38, "kin8nm": -1.20, "wine-quality-red": 0.94, "yacht": 1.18},
    "MC dropout (Gal & Ghahramani, 2016)":
        {"concrete": 3.04, "energy": 1.99, "kin8nm": -0.95, "wine-quality-red": 0.93, "yacht": 1.55},
}
DEEP_ENSEMBLES = next(iter(PUBLISHED_NLL))
# Issue 10's bar, as the issue lists it: the best published figure per set (Deep Ensembles
# 2017, MC dropout 2018 re-run).
BEST_PUBLISHED_NLL = {"concrete": 2.93, "energy": 1.21, "kin8nm": -1.20, "wine-quality-red": 0.93,
                      "yacht": 1.18}
PEERS = ("rpf", "bootstrap", "ngboost", "gp")


def _published(dataset):
    """``(source, figures)`` of the published NLL for ``dataset``; none for a set this project
    does not ship (published splits differ from ours, so no figure would be comparable)."""
    return [(source, figures) for source, figures in PUBLISHED_NLL.items() if dataset in figures]


# ---------------------------------------------------------------------------- summaries
def summarize(raw):
    """Mean and standard error over splits per (dataset, method); failed fits are left out."""
    grouped = raw.groupby(["dataset", "method"], sort=False)
    stats = grouped[list(METRICS)].agg(["mean", "sem"])
    stats.columns = [f"{metric}_{'se' if stat == 'sem' else stat}" for metric, stat in stats.columns]
    counts = grouped.agg(label=("label", "first"), n_splits=("nll", "count"),
                         n_train=("n_train", "max"))
    return counts.join(stats).reset_index()


def summarize_intervals(intervals):
    """Per (dataset, interval): coverage and width, mean ± standard error, and mean seconds."""
    if intervals.empty:
        return pd.DataFrame()
    rows = []
    for (dataset, interval), block in intervals.groupby(["dataset", "interval"], sort=False):
        ok = block[block["error"] == ""]
        row = {"dataset": dataset, "interval": interval, "label": INTERVALS[interval],
               "n_splits": len(ok), "error": "" if len(ok) else block["error"].iloc[0]}
        for column in ("coverage", "width", "fit_time", "predict_time"):
            row[f"{column}_mean"] = ok[column].mean() if len(ok) else np.nan
            row[f"{column}_se"] = ok[column].sem() if len(ok) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- markdown
def score_table(summary, metrics=METRICS):
    lines = ["| data set | method | splits | train rows | "
             + " | ".join(HEADERS[m] for m in metrics) + " |",
             "|" + " --- |" * (4 + len(metrics))]
    for dataset, block in summary.groupby("dataset", sort=False):
        # One precision per column and data set, so that the methods line up.
        places = {m: decimals(block[f"{m}_mean"].abs().max()) for m in ("rmse", "crps", "width_95")}
        places.update(nll=2, coverage_95=3, fit_time=2, predict_time=3)
        for _, row in block.iterrows():
            cells = [cell(row[f"{m}_mean"], row[f"{m}_se"], places[m]) for m in metrics]
            lines.append(f"| {dataset} | {row['label']} | {row['n_splits']} | {row['n_train']:,} | "
                         + " | ".join(cells) + " |")
        for source, figures in _published(dataset):
            cells = ["–" if m != "nll" else f"{figures[dataset]:.2f}" for m in metrics]
            lines.append(f"| {dataset} | {source}, published | 20 | – | " + " | ".join(cells) + " |")
    return lines


def interval_table(interval_summary):
    if interval_summary.empty:
        return ["(no interval was computed: run the rpf and/or mapie methods)"]
    lines = ["| data set | 95% interval | splits | coverage | mean width | fit (s) | predict (s) |",
             "|" + " --- |" * 7]
    for dataset, block in interval_summary.groupby("dataset", sort=False):
        places = decimals(block["width_mean"].abs().max())
        for _, row in block.iterrows():
            if row["error"]:
                lines.append(f"| {dataset} | {row['label']} | 0 | {row['error']} | | | |")
                continue
            lines.append(
                f"| {dataset} | {row['label']} | {row['n_splits']} | "
                f"{cell(row['coverage_mean'], row['coverage_se'], 3)} | "
                f"{cell(row['width_mean'], row['width_se'], places)} | "
                f"{row['fit_time_mean']:.2f} | {row['predict_time_mean']:.3f} |")
    return lines


def per_split_nll(raw):
    """One table per data set: test NLL of every method on every split it ran."""
    lines = []
    for dataset, block in raw.groupby("dataset", sort=False):
        splits = sorted(block["split"].unique())
        lines += [f"**{dataset}**", "", "| method | " + " | ".join(map(str, splits)) + " |",
                  "|" + " --- |" * (1 + len(splits))]
        for _, rows in block.groupby("method", sort=False):
            by_split = dict(zip(rows["split"], rows["nll"], strict=True))
            values = [f"{by_split[s]:.2f}" if np.isfinite(by_split.get(s, np.nan)) else "–"
                      for s in splits]
            lines.append(f"| {rows['label'].iloc[0]} | " + " | ".join(values) + " |")
        lines.append("")
    return lines


def note_lines(notes):
    lines = [f"- Command: `{notes['command']}` ({notes['wall_time']:.0f} s wall time, "
             f"{notes['n_jobs']} job(s) on {notes['cpu_count']} CPU(s), {notes['date']}; every "
             "task runs on one thread, NGBoost too, so the times are single-threaded"
             + (f"; {notes['reused']}" if notes.get("reused") else "") + ")."]
    lines.append(f"- GP (ARD): constant × ARD RBF + white noise, `normalize_y=True`, 2 optimizer "
                 f"restarts, trained on a random subset of at most {notes['gp_max_rows']:,} training "
                 "rows (see 'train rows').")
    for dataset, count in notes["gp_splits"].items():
        lines.append(f"- GP (ARD) on {dataset}: only the first {count} splits (exact GP cost); the "
                     "other methods use all of them.")
    if notes.get("ngboost"):
        lines.append(f"- NGBoost: {notes['ngboost']}.")
    if notes.get("mapie"):
        lines.append(f"- MAPIE: {notes['mapie']}.")
    if notes["rpf_params"]:
        lines.append(f"- RandomizedPriorRegressor parameters overridden for both RPF methods: "
                     f"`{json.dumps(notes['rpf_params'])}` (so 'RPF (defaults)' is not the defaults).")
    for label, params in notes["rpf_variants"].items():
        lines.append(f"- RPF ({label}): `{json.dumps(params)}` on top of the above.")
    lines.append("- Every RPF method and BayesianRidge sit in a `StandardScaler` pipeline, like the GP; "
                 "`random_state` is the split index.")
    if any(_published(d) for d in notes["datasets"]):
        lines.append("- Published figures: test NLL of Deep Ensembles (Lakshminarayanan et al., "
                     "NeurIPS 2017) and the negated test log-likelihood of MC dropout (Gal & "
                     "Ghahramani, ICML 2016), on the same 20 splits.")
    return lines


def write_markdown(path, summary, interval_summary, raw, targets, notes):
    lines = [
        "# UCI regression benchmark", "",
        "Test metrics in the target's original units, mean ± standard error over splits "
        "(lower is better, except coverage: 0.95 is calibrated). NLL in nats per sample.", "",
        *score_table(summary), "", "## 95% prediction intervals of RPF (issue 11)", "",
        *interval_table(interval_summary), "", "## Targets", "", *targets, "", "## Notes", "",
        *note_lines(notes), "", "## Test NLL on each split", "", *per_split_nll(raw),
    ]
    path.write_text("\n".join(lines) + "\n")


def readme_block(summary, interval_summary, raw, targets, notes, figure_link):
    """The README's UCI section body: every figure in it comes from this run."""
    lines = [
        "<!-- Written by benchmarks/uci.py (command below): edit the script, not this block. -->",
        f"Command: `{notes['command']}` ({notes['wall_time']:.0f} s on {notes['n_jobs']} job(s), "
        f"{notes['date']}{reused_clause(notes)}). Test metrics in the target's units, mean ± "
        "standard error over splits; NLL in nats.", "",
        *score_table(summary, README_METRICS), "", f"![Test NLL per data set and method]({figure_link})",
        "", "95% prediction intervals of RPF:", "", *interval_table(interval_summary), "",
        *targets, "", *note_lines(notes)[1:], "",
        "<details><summary>Test NLL on each split</summary>", "", *per_split_nll(raw), "</details>",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- targets
def target_summary(raw, intervals):
    """Lines saying how 'RPF (defaults)' does against the targets of issues 5, 10 and 11."""
    ok = raw[raw["error"] == ""]
    rpf = ok[ok["method"] == "rpf"]
    if rpf.empty:
        return ["Targets: no 'rpf' results to judge (add rpf to --methods)."]
    means = rpf.groupby("dataset", sort=False)[["nll", "coverage_95", "fit_time"]].mean()
    lines = ["Targets for 'RPF (defaults)' (means over the splits run):"]
    de = PUBLISHED_NLL[DEEP_ENSEMBLES]
    published = [d for d in means.index if d in de]
    if published:
        details = ", ".join(f"{d} {means.nll[d]:.2f} vs {de[d]:.2f}" for d in published)
        wins = sum(means.nll[d] < de[d] for d in published)
        lines.append(f"- Issue 5: NLL better than Deep Ensembles on {wins} of {len(published)} "
                     f"({details}); target: at least 4 of 5.")
    gp = ok[ok["method"] == "gp"]
    if not gp.empty:
        # Side by side on the splits both ran (the GP may run on fewer).
        paired = rpf.merge(gp, on=["dataset", "split"], suffixes=("_rpf", "_gp"))
        by_set = (paired["nll_rpf"] - paired["nll_gp"]).groupby(paired["dataset"], sort=False)
        gap, median_gap = by_set.mean(), by_set.median()
        details = ", ".join(f"{d} {g:+.2f}" for d, g in gap.items())
        medians = ", ".join(f"{d} {g:+.2f}" for d, g in median_gap.items())
        lines.append(f"- Issue 5: NLL within 0.1 nats of, or better than, the GP on {(gap <= 0.1).sum()} "
                     f"of {len(gap)} (RPF minus GP on shared splits, mean: {details}; median: "
                     f"{medians}; on the median {(median_gap <= 0.1).sum()} of {len(gap)}); "
                     "target: at least 3 of 5.")
    inside = [d for d in means.index if 0.92 <= means.coverage_95[d] <= 0.98]
    details = ", ".join(f"{d} {means.coverage_95[d]:.3f}" for d in means.index)
    lines.append(f"- Issue 5: 95% coverage in [0.92, 0.98] on {', '.join(inside) or 'none'} "
                 f"({len(inside)} of {len(means)}: {details}); target: every set.")
    lines += _issue10_lines(ok, means)
    if "yacht" in means.index:
        times = rpf.loc[rpf["dataset"] == "yacht", "fit_time"]
        lines.append(f"- Fit time on yacht: median {times.median():.1f} s, mean {times.mean():.1f} s "
                     "per fit (issue 10 target: at most 5 s; kin8nm at most 20 s).")
    if "kin8nm" in means.index:
        lines.append(f"- Fit time on kin8nm: mean {means.fit_time['kin8nm']:.1f} s per fit.")
    return lines + _interval_lines(intervals)


def _issue10_lines(ok, means):
    peers = ok[ok["method"].isin(PEERS)]
    table = peers.groupby(["dataset", "method"], sort=False)["nll"].mean().unstack()
    best = [d for d in means.index if table.loc[d].idxmin() == "rpf"]
    details = "; ".join(
        f"{d}: " + ", ".join(f"{m} {table.loc[d, m]:.2f}" for m in PEERS
                             if m in table.columns and np.isfinite(table.loc[d, m]))
        for d in means.index)
    lines = [*_prior_cost_line(ok),
        f"- Issue 10: best mean test NLL among {', '.join(m for m in PEERS if m in table.columns)} "
        f"on {len(best)} of {len(means)} ({', '.join(best) or 'none'}; {details}; each method's "
        "mean over the splits it ran); target: at least 4 of 5 with all four methods run.",
    ]
    published = [d for d in means.index if d in BEST_PUBLISHED_NLL]
    if published:
        beaten = [d for d in published if means.nll[d] < BEST_PUBLISHED_NLL[d]]
        lines.append(
            f"- Issue 10: NLL below the best published figure on {len(beaten)} of {len(published)} ("
            + ", ".join(f"{d} {means.nll[d]:.2f} vs {BEST_PUBLISHED_NLL[d]:.2f}" for d in published)
            + "); target: all 5.")
    return lines


def _prior_cost_line(ok):
    """What the prior costs in distribution: RPF minus the bootstrap ensemble, paired by split,
    so that a tie at two decimals reads as a tie or as a small cost the splits agree on."""
    nll = ok[ok["method"].isin(["rpf", "bootstrap"])].pivot_table(
        index=["dataset", "split"], columns="method", values="nll")
    if not {"rpf", "bootstrap"} <= set(nll.columns):
        return []
    diff = (nll["rpf"] - nll["bootstrap"]).dropna()
    parts = []
    for dataset, d in diff.groupby(level="dataset", sort=False):
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
        parts.append(f"{dataset} {d.mean():+.3f} ± {se:.3f} (RPF better on {(d < 0).sum()} of "
                     f"{len(d)})")
    return ["- Issue 10: test NLL of RPF minus the bootstrap ensemble, paired by split (mean ± "
            "standard error; negative: the prior helps): " + ", ".join(parts) + "."]


def _interval_lines(intervals):
    if intervals.empty:
        return []
    ok = intervals[intervals["error"] == ""]
    conformal = ok[ok["interval"] == "conformal"]
    if conformal.empty:
        reasons = intervals.loc[intervals["interval"] == "conformal", "error"]
        why = reasons.iloc[0] if len(reasons) else "not run"
        return [f"- Issue 11: conformal intervals not measured ({why})."]
    by_set = conformal.groupby("dataset", sort=False)
    coverage = by_set["coverage"].mean()
    # Coverage averaged over consecutive blocks of 5 of the splits run (0-4, 5-9, ...).
    blocks = conformal.assign(block=conformal.groupby("dataset").cumcount() // 5)
    worst = blocks.groupby(["dataset", "block"])["coverage"].mean().groupby("dataset").min()
    inside = [d for d in coverage.index if 0.94 <= coverage[d] <= 0.97]
    lines = [f"- Issue 11: conformal 95% coverage in [0.94, 0.97] on {len(inside)} of {len(coverage)} ("
             + ", ".join(f"{d} {c:.3f}" for d, c in coverage.items())
             + "; lowest 5-split average: " + ", ".join(f"{d} {worst[d]:.3f}" for d in coverage.index)
             + "); target: every set, none below 0.93 on a 5-split average."]
    mapie = ok[ok["interval"] == "mapie_jab"]
    if not mapie.empty:
        paired = conformal.merge(mapie, on=["dataset", "split"], suffixes=("", "_mapie"))
        ratio = (paired["width"] / paired["width_mapie"]).groupby(paired["dataset"], sort=False).mean()
        lines.append("- Issue 11: conformal width / MAPIE J+aB width on shared splits: "
                     + ", ".join(f"{d} {r:.2f}" for d, r in ratio.items())
                     + f"; target: at most 1.10 ({(ratio <= 1.10).sum()} of {len(ratio)}).")
    gaussian = ok[ok["interval"] == "gaussian"]
    paired = conformal.merge(gaussian, on=["dataset", "split"], suffixes=("", "_gaussian"))
    extra = (paired["predict_time"] / paired["predict_time_gaussian"] - 1).groupby(
        paired["dataset"], sort=False).median()
    lines.append("- Issue 11: extra cost of the conformal interval over predict(return_std=True), "
                 "each timed warm (median of alternating calls after one untimed call), "
                 "median over splits: " + ", ".join(f"{d} {e:+.1%}" for d, e in extra.items())
                 + "; target: below +20%.")
    return lines


# ---------------------------------------------------------------------------- figure
def plot_nll(path, raw, datasets, labels):
    """Test NLL per data set (one panel each) and method, mean ± standard error, with published lines."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg canvas

    ok = raw[raw["error"] == ""]
    methods = list(dict.fromkeys(raw["method"]))
    fig = Figure(figsize=(max(8.0, 3.2 * len(datasets)), 4.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(datasets), squeeze=False)[0])
    for ax, dataset in zip(axes, datasets, strict=True):
        block = ok[ok["dataset"] == dataset]
        points = [(i, block.loc[block["method"] == m, "nll"].to_numpy(), f"C{i}", "o", labels[m])
                  for i, m in enumerate(methods)]
        published = _published(dataset)
        for (source, figures), style in zip(published, ("--", ":"), strict=False):
            ax.axhline(figures[dataset], color="k", linestyle=style, linewidth=1,
                       label=source.split(" (")[0] + " (published)")
        draw_means(ax, points, references=[f[dataset] for _, f in published])
        ax.set_title(dataset)
        ax.set_xticks([])
        ax.set_xlim(-0.8, len(methods) - 0.2)
    axes[0].set_ylabel("test NLL (nats, lower is better)")
    figure_legend(fig, axes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
