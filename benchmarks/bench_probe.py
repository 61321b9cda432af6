"""Throughput of BenfordDigitProbe against a naive loop, on the default SmolLM2 model.

    python -m benchmarks.bench_probe [--n-prompts 256] [--repeats 3]
    python -m benchmarks.bench_probe --dask [--n-prompts 1000] [--n-workers 2]

Measured in one run, side by side:

* model load time, cold (empty safetensors cache: the GGUF file is dequantised and converted) and
  cached (the converted safetensors are read back);
* prompts per second of the probe (batches, identical prompts scored once, shared starts computed
  once, last-position logits only, full vocabulary marginalisation with the whitespace step) and of a naive loop that runs one prompt at
  a time through a full forward pass and reads only the nine single-digit tokens; medians of
  ``--repeats`` interleaved repeats and their ratio;
* the bfloat16 error against float32, and the error of the default ``whitespace_tol`` against
  following every whitespace token (``whitespace_tol=0``);
* where the time goes: the cost of one forward pass as a fixed part plus a part per token
  position (least-squares line over passes of several shapes), the forward passes the probe and
  the naive loop make on the distinct prompts, and the (prompt, whitespace token) pairs of the
  whitespace step (counted by a hook on the model);
* the cached load in a fresh process (``python -c``), imports timed apart.

``--dask`` instead scores ``--n-prompts`` distinct prompts with one fitted default probe in this
process and through a ``dask.bag`` on a ``LocalCluster(n_workers, threads_per_worker=1)``, the
probe shipped by reference (its pickled size is printed) and the model loaded once per worker
from the cache; it prints both times, their ratio, and each worker's torch threads.
"""

import argparse
import os
import pickle
import statistics
import subprocess
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


def make_distinct_prompts(n_prompts, seed=0):
    """``n_prompts`` different prompts: the templated ones with a year and a count mixed in."""
    rng = np.random.default_rng(seed)
    prompts = {}
    while len(prompts) < n_prompts:
        year, count = rng.integers(1900, 2030), rng.integers(2, 99)
        parts = [f"In {year},", rng.choice(CONTEXTS), rng.choice(SUBJECTS),
                 f"with its {count} branches", rng.choice(ENDINGS)]
        prompts[" ".join(p for p in parts if p)] = None
    return list(prompts)


def time_load(repeats_cached=3):
    """Cold and cached load of the default model in this process, with a private cache folder."""
    configured = os.environ.get(_lm_loading.CACHE_ENV)
    try:
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
    finally:
        if configured is None:
            del os.environ[_lm_loading.CACHE_ENV]
        else:
            os.environ[_lm_loading.CACHE_ENV] = configured
        _lm_loading.clear_memory_cache()
    return cold, statistics.median(cached)


FRESH_PROCESS_LOAD = """
import time
start = time.perf_counter()
import transformers.models.auto.modeling_auto  # noqa: F401
from sklearn_rpf.benford import _lm_loading
imported = time.perf_counter()
_lm_loading.load_language_model(None)
print(f"{imported - start:.3f} {time.perf_counter() - imported:.3f}")
"""


def time_fresh_process_load(repeats=3):
    """Median (imports, load) seconds of a new Python process loading from the user cache."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", FRESH_PROCESS_LOAD], capture_output=True,
                             text=True, check=True, env=os.environ.copy())
        runs.append([float(x) for x in out.stdout.split()[-2:]])
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def forward_cost(model, repeats=3):
    """Fixed and per-token cost of one forward pass (as the probe makes them), in seconds, by a
    least-squares line through passes of several shapes; and R^2 of the line."""
    shapes = [(1, 1), (1, 8), (1, 24), (4, 8), (4, 24), (8, 32), (16, 24), (32, 16), (32, 32)]
    tokens, seconds = [], []
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for batch, length in shapes:
            ids = torch.randint(100, 1000, (batch, length), generator=generator)
            model(input_ids=ids, use_cache=True, logits_to_keep=1)  # warm-up of this shape
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(input_ids=ids, use_cache=True, logits_to_keep=1)
                times.append(time.perf_counter() - start)
            tokens.append(batch * length)
            seconds.append(statistics.median(times))
    slope, intercept = np.polyfit(tokens, seconds, 1)
    fitted = intercept + slope * np.asarray(tokens)
    r2 = 1 - np.sum((seconds - fitted) ** 2) / np.sum((seconds - np.mean(seconds)) ** 2)
    return intercept, slope, r2, len(shapes)


def count_passes(model, run):
    """Forward passes ``run()`` makes on ``model``: (prompt passes, whitespace passes, pairs).

    The whitespace step is the only pass with one new token per row (prompts are padded to at
    least 8 positions, shared starts are at least 4 tokens long).
    """
    seen = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    try:
        run()
    finally:
        handle.remove()
    whitespace = [rows for rows, length in seen if length == 1]
    return len(seen) - len(whitespace), len(whitespace), sum(whitespace)


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
    parser.add_argument("--dask", action="store_true",
                        help="compare one process with a dask.bag on a LocalCluster instead")
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args(argv)
    if args.dask:
        return bench_dask(args.n_prompts, args.n_workers, args.partitions, args.batch_size)

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
    # Batch composition: the same prompts in other batches (every other distinct prompt, and
    # each prompt on its own) differ only by float32 rounding in passes of other shapes.
    position = {prompt: i for i, prompt in enumerate(prompts)}
    half = distinct[::2]
    P_half = probe.transform(half)
    alone = distinct[:16]
    P_alone = np.array([probe.transform([prompt])[0] for prompt in alone])
    start = time.perf_counter()
    naive_scores(model, tokenizer, distinct)
    distinct_naive_s = time.perf_counter() - start
    probe_passes, space_passes, space_pairs = count_passes(
        model, lambda: probe.transform(distinct))
    naive_passes = sum(count_passes(model, lambda: naive_scores(model, tokenizer, distinct))[:2])
    fixed_s, per_token_s, r2, n_shapes = forward_cost(model)
    fresh_imports_s, fresh_load_s = time_fresh_process_load()
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
        f"| whitespace_tol=1e-4 vs 0 ({len(subset)} prompts): max abs difference of P(d) | "
        f"{np.abs(P_all_spaces - P[:32]).max():.2e} |"
    )
    print(
        f"| batch composition: {len(alone)} prompts one at a time vs among all "
        f"{len(prompts)}; every other distinct prompt ({len(half)}) vs among all: max abs "
        f"difference of P(d) | {np.abs(P_alone - P[[position[p] for p in alone]]).max():.1e}; "
        f"{np.abs(P_half - P[[position[p] for p in half]]).max():.1e} |"
    )
    print(
        f"| naive vs probe: mean abs difference of P(d) (what the naive loop misses) | "
        f"{np.abs(P_naive - P).mean():.4f} |"
    )
    print()
    print("Where the time goes:")
    print(
        f"- one forward pass (logits_to_keep=1) costs {1000 * fixed_s:.0f} ms however small plus "
        f"{1000 * per_token_s:.2f} ms per token position (least-squares line over {n_shapes} "
        f"batch shapes, R^2 {r2:.3f})"
    )
    print(
        f"- on the {len(distinct)} distinct prompts the probe makes "
        f"{probe_passes + space_passes} forward passes ({probe_passes} over prompts and shared "
        f"starts, {space_passes} for the whitespace step) against {naive_passes} for the naive "
        f"loop; the whitespace step scores {space_pairs} (prompt, whitespace token) pairs"
    )
    print(
        f"- cached load in a fresh process (`python -c`, median of 3): {fresh_load_s:.1f} s after "
        f"{fresh_imports_s:.1f} s of imports (torch, transformers, sklearn_rpf)"
    )


def _load_on_worker():
    """Per worker: torch threads, the nanny's OMP_NUM_THREADS, models loaded in this process."""
    return (torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"),
            _lm_loading._load_source.cache_info().misses)


def bench_dask(n_prompts, n_workers, partitions, batch_size):
    """One process against a dask.bag on a LocalCluster, for the same fitted default probe."""
    import cloudpickle
    import dask.bag as db
    from distributed import Client, LocalCluster

    if __name__ != "__main__":  # the workers cannot import this file: send its functions
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    prompts = make_distinct_prompts(n_prompts)
    probe = BenfordDigitProbe(batch_size=batch_size).fit(prompts)
    shipped = cloudpickle.dumps(probe)
    probe.transform(prompts[:8])  # warm-up
    start = time.perf_counter()
    local = probe.transform(prompts)
    local_s = time.perf_counter() - start

    start = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        cluster_s = time.perf_counter() - start
        # Every worker unpickles the probe and loads the model once, from the cache.
        start = time.perf_counter()
        client.run(lambda: pickle.loads(shipped).transform(["The city has a population of"]))
        warm_s = time.perf_counter() - start
        start = time.perf_counter()
        bag = db.from_sequence(prompts, npartitions=partitions)
        remote = np.array(bag.map_partitions(probe.transform).compute())
        dask_s = time.perf_counter() - start
        workers = client.run(_load_on_worker)

    print(
        f"{len(prompts)} distinct prompts, default model, batch_size={batch_size}; this process: "
        f"{torch.get_num_threads()} torch threads; LocalCluster(n_workers={n_workers}, "
        f"threads_per_worker=1), {partitions} partitions; Python {sys.version.split()[0]}, "
        f"torch {torch.__version__}, {os.cpu_count()} CPU cores"
    )
    print()
    print("| measurement | value |")
    print("|---|---|")
    print(f"| pickled fitted default probe (cloudpickle) | {len(shipped):,} bytes |")
    print(f"| pickled model and tokenizer (what a probe pickled before), for comparison | "
          f"{len(pickle.dumps((probe.model_, probe.tokenizer_))) / 2**20:.0f} MiB |")
    print(f"| one process, probe.transform | {local_s:.2f} s, {len(prompts) / local_s:.1f} "
          "prompts/s |")
    print(f"| cluster start / model load on every worker | {cluster_s:.1f} s / {warm_s:.1f} s |")
    print(f"| dask.bag map_partitions(probe.transform), workers warm | {dask_s:.2f} s, "
          f"{len(prompts) / dask_s:.1f} prompts/s |")
    print(f"| **speed-up**, workers warm | **{local_s / dask_s:.2f}x** |")
    print(f"| speed-up counting the model load on the workers | "
          f"{local_s / (dask_s + warm_s):.2f}x |")
    print(f"| max abs difference, cluster vs one process | {np.abs(remote - local).max():.1e} |")
    for address, (threads, omp, loads) in sorted(workers.items()):
        print(f"| worker {address} | torch threads {threads} (OMP_NUM_THREADS={omp}), "
              f"models loaded {loads} |")


if __name__ == "__main__":
    main()
