"""BenfordDigitProbe on one very long prompt: time and peak memory.

Each prompt ``"word " * N + "with a population size of"`` is scored in a fresh process (the
default SmolLM2 model unless ``--model`` names another), so that its peak resident memory
(``VmHWM`` of ``/proc/self/status``; ``ru_maxrss`` would be inherited across the spawn) is its
own. Printed per prompt: its length in characters, the seconds ``transform`` took (the model is
loaded by ``fit`` beforehand, not timed), the peak after loading and after scoring. Beyond the
model's context only the last tokens are scored: the prompt is cut at a word break before
tokenising, and the passes are sized by the scorer's memory budgets.

Run ``python -m benchmarks.long_prompt`` (about a minute on 2 cores: 2,000 and 4,200,000 words,
the second 21 million characters).
"""

import argparse
import json
import subprocess
import sys

_CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(int(sys.argv[3]))
from sklearn_rpf import BenfordDigitProbe

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024

model = None if sys.argv[2] == "-" else sys.argv[2]
probe = BenfordDigitProbe(model).fit(["a"])
loaded = peak()
prompt = "word " * int(sys.argv[1]) + "with a population size of"
start = time.perf_counter()
P = probe.transform([prompt])
print(json.dumps({"characters": len(prompt), "seconds": time.perf_counter() - start,
                  "peak_loaded": loaded, "peak_scored": peak(),
                  "context": probe.context_length_, "p": P[0].tolist()}))
"""


def measure(n_words, model=None, threads=2):
    """One prompt of ``n_words`` words scored in a fresh process: a dict of its figures."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n_words), model or "-", str(threads)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scoring {n_words} words failed (exit {result.returncode}): "
                           f"{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, nargs="+", default=[2000, 4_200_000])
    parser.add_argument("--model", default=None, help="a folder or GGUF file (default SmolLM2)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print("| words | characters | context | transform (s) | peak after load | peak after scoring |")
    print("|---|---|---|---|---|---|")
    for n_words in args.words:
        r = measure(n_words, args.model, args.threads)
        print(f"| {n_words:,} | {r['characters']:,} | {r['context']} | {r['seconds']:.1f} | "
              f"{r['peak_loaded'] / 2**30:.2f} GiB | {r['peak_scored'] / 2**30:.2f} GiB |",
              flush=True)


if __name__ == "__main__":
    main()
