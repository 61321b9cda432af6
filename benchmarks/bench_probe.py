"""Throughput of BenfordDigitProbe against a naive loop, on the default SmolLM2 model.

    python -m benchmarks.bench_probe [--n-prompts 256] [--repeats 3]

Measured in one run, side by side:

* model load time, cold (empty safetensors cache: the GGUF file is dequantised and converted) and
  cached (the converted safetensors are read back);
* prompts per second of the probe (batches, identical prompts scored once, shared starts computed
  once, last-position logits only, full vocabulary marginalisation with the whitespace step) and of a naive loop that runs one prompt at
  a time through a full forward pass and reads only the nine single-digit tokens; medians of
  ``--repeats`` interleaved repeats and their ratio;
* the bfloat16 error against float32, and the error of the default ``whitespace_tol`` against
  following every whitespace token (``whitespace_tol=0``).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

from sklearn_rpf.benford import BenfordDigitProbe, _lm_loading, mean_absolute_deviation

SUBJECTS = [
    "The city",
    "The small town of Hill Valley",
    "Our company",
    "The national park",
    "The old stone bridge over the river",
    "This year the regional hospital network",
    "The lake",
    "The new stadium",
    "The galaxy",
    "The university library",
]
ENDINGS = [
    "has a population of",
    "covers an area of",
    "reported revenue of $",
    "is at a distance of",
    "was sold for a price of $",
    "has a length of",
    "employs",
    "has a capacity of",
]
CONTEXTS = [
    "",
    "According to the latest official report,",
    "In the annual review published last spring,",
    "As the local newspaper explained in a long article about growth and change over decades,",
]


def make_prompts(n_prompts, seed=0):
    """Prompts of mixed lengths (about 5 to 30 tokens) drawn from a fixed generator."""
    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n_prompts):
        parts = [rng.choice(CONTEXTS), rng.choice(SUBJECTS), rng.choice(ENDINGS)]
        prompts.append(" ".join(p for p in parts if p))
    return prompts


def time_load(repeats_cached=3):
    """Cold and cached load of the default model in this process, with a private cache folder."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ[_lm_loading.CACHE_ENV] = cache
        _lm_loading.clear_memory_cache()
        start = time.perf_counter()
        _lm_loading.load_language_model(None)
        cold = time.perf_counter() - start
        cached = []
        for _ in range(repeats_cached):
            _lm_loading.clear_memory_cache()
            start = time.perf_counter()
            _lm_loading.load_language_model(None)
            cached.append(time.perf_counter() - start)
    del os.environ[_lm_loading.CACHE_ENV]
    _lm_loading.clear_memory_cache()
    return cold, statistics.median(cached)


def naive_scores(model, tokenizer, prompts):
    """One prompt at a time, full forward pass, P(d) read off the nine single-digit tokens."""
    digit_ids = [tokenizer.convert_tokens_to_ids(str(d)) for d in range(1, 10)]
    rows = []
    with torch.inference_mode():
        for prompt in prompts:
            input_ids = torch.tensor([tokenizer(prompt)["input_ids"]])
            logits = model(input_ids=input_ids).logits[0, -1]
            probs = torch.softmax(logits.double(), dim=-1)[digit_ids]
            rows.append((probs / probs.sum()).numpy())
    return np.array(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-prompts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    cold, cached = time_load()
    prompts = make_prompts(args.n_prompts)
    probe = BenfordDigitProbe(batch_size=args.batch_size).fit(prompts)
    model, tokenizer = probe.model_, probe.tokenizer_
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    probe.transform(prompts[:4])  # warm-up
    naive_scores(model, tokenizer, prompts[:4])
    probe_times, naive_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        P = probe.transform(prompts)
        probe_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        P_naive = naive_scores(model, tokenizer, prompts)
        naive_times.append(time.perf_counter() - start)
    probe_s, naive_s = statistics.median(probe_times), statistics.median(naive_times)

    probe_bf16 = BenfordDigitProbe(batch_size=args.batch_size, dtype="bfloat16").fit(prompts)
    probe_bf16.transform(prompts[:4])  # warm-up
    start = time.perf_counter()
    P_bf16 = probe_bf16.transform(prompts)
    bf16_s = time.perf_counter() - start
    # The same comparison on distinct prompts only, so that the gain of scoring repeats once is
    # not counted; shared starts are still computed once (that is the probe's own work).
    distinct = list(dict.fromkeys(prompts))
    start = time.perf_counter()
    probe.transform(distinct)
    distinct_probe_s = time.perf_counter() - start
    start = time.perf_counter()
    naive_scores(model, tokenizer, distinct)
    distinct_naive_s = time.perf_counter() - start
    subset = prompts[:32]
    P_all_spaces = (
        BenfordDigitProbe(batch_size=args.batch_size, whitespace_tol=0)
        .fit(subset)
        .transform(subset)
    )

    print(
        f"torch threads: {torch.get_num_threads()}; {len(prompts)} prompts of "
        f"{min(lengths)}-{max(lengths)} tokens ({len(set(lengths))} distinct lengths); "
        f"median of {args.repeats} repeats; Python {sys.version.split()[0]}, torch {torch.__version__}"
    )
    print()
    print("| measurement | value |")
    print("|---|---|")
    print(f"| model load, cold (GGUF dequantised, safetensors written) | {cold:.1f} s |")
    print(f"| model load, cached safetensors | {cached:.1f} s |")
    print(
        f"| naive loop (1 prompt per forward, 9 digit tokens) | {naive_s:.2f} s, "
        f"{len(prompts) / naive_s:.1f} prompts/s |"
    )
    print(
        f"| BenfordDigitProbe (batch_size={args.batch_size}, full marginalisation) | {probe_s:.2f} s, "
        f"{len(prompts) / probe_s:.1f} prompts/s |"
    )
    print(f"| **speed-up** | **{naive_s / probe_s:.2f}x** |")
    print(
        f"| the {len(distinct)} distinct prompts only (one run): naive / probe | "
        f"{distinct_naive_s:.2f} s / {distinct_probe_s:.2f} s = "
        f"{distinct_naive_s / distinct_probe_s:.2f}x |"
    )
    print(
        f"| BenfordDigitProbe, dtype='bfloat16' (one run) | {bf16_s:.2f} s, "
        f"{len(prompts) / bf16_s:.1f} prompts/s |"
    )
    print(
        f"| bfloat16 vs float32: mean / max abs difference of P(d) | "
        f"{np.abs(P_bf16 - P).mean():.4f} / {np.abs(P_bf16 - P).max():.4f} |"
    )
    print(
        f"| bfloat16 vs float32: mean abs difference of MAD to Benford | "
        f"{np.abs(mean_absolute_deviation(P_bf16) - mean_absolute_deviation(P)).mean():.4f} |"
    )
    print(
        f"| whitespace_tol=1e-4 vs 0 (32 prompts): max abs difference of P(d) | "
        f"{np.abs(P_all_spaces - P[:32]).max():.2e} |"
    )
    print(
        f"| naive vs probe: mean abs difference of P(d) (what the naive loop misses) | "
        f"{np.abs(P_naive - P).mean():.4f} |"
    )


if __name__ == "__main__":
    main()
