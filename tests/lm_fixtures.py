"""Tiny language models for the BenfordDigitProbe tests (built locally, no download).

* :func:`save_tiny_gpt2`: a 2-layer GPT-2 with random weights and a byte-level BPE tokenizer trained
  on a few sentences with numbers, saved with ``save_pretrained`` so that tests load it through
  ``model=<folder>`` like users do.
* :func:`save_tiny_gguf`: the same kind of model written as a GGUF file (float32 tensors), so the
  GGUF conversion cache is tested in a fraction of a second instead of SmolLM2's 20.
* :class:`TableLM` with :func:`table_tokenizer`: a "model" whose next-token logits are a lookup
  table, so the right digit distribution can be worked out by hand.
"""

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import CausalLMOutputWithPast

CORPUS = [
    "The city has a population of 12,345 people and an area of 1,000 square miles.",
    "In 1990 the company made 3 million dollars; in 2012 it made 45 million.",
    "The bridge is 1 mile long.  It cost $ 7.5 million and took 18 months.",
    "Room 101 is on floor 1.\nRoom 202 is on floor 2.\n\nRoom 0 is in the basement.",
    "She ran 42 km in 3 hours, 12 minutes and 9 seconds.\tA record!",
    "There are 9 planets, 8 moons, 6 rivers, 5 lakes and 4 mountains in the story.",
    "Prices: 19.99, 24.50, 7, 365, 1 000, 12 12 12, 100 100.",
]


def _byte_level_fast_tokenizer(tokenizer):
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_tiny_tokenizer():
    """Byte-level BPE trained on CORPUS, plus "1,000" as an added (non-special) token."""
    tokenizer = _byte_level_fast_tokenizer(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 3, trainer=trainer)
    tokenizer.add_tokens([AddedToken("1,000", normalized=False)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )


def save_tiny_gpt2(folder, seed=0, n_positions=256):
    """Save a 2-layer GPT-2 (random weights drawn from a private generator) and its tokenizer."""
    tokenizer = train_tiny_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=16,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    # Built on the meta device and filled from our own generator: torch's global one is untouched.
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    generator = torch.Generator().manual_seed(seed)
    state = {
        name: (
            torch.ones(t.shape)
            if name.endswith("ln_1.weight")
            or name.endswith("ln_2.weight")
            or name.endswith("ln_f.weight")
            else torch.randn(t.shape, generator=generator) * 0.5
        )
        for name, t in model.state_dict().items()
    }
    model.load_state_dict(state, assign=True)
    model.tie_weights()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_gguf(path, seed=0):
    """Write a tiny GPT-2 as a GGUF file (float32 tensors, GPT-2 byte-level BPE tokenizer)."""
    import gguf

    path = Path(path)
    with tempfile.TemporaryDirectory() as folder:
        # transformers reads GPT-2's context from GGUF as n_ctx; the default n_positions is 1024.
        save_tiny_gpt2(folder, seed=seed, n_positions=1024)
        model = GPT2LMHeadModel.from_pretrained(folder)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
        merges = json.loads((Path(folder) / "tokenizer.json").read_text())["model"]["merges"]
    config = model.config
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_block_count(config.n_layer)
    writer.add_context_length(config.n_positions)
    writer.add_embedding_length(config.n_embd)
    writer.add_feed_forward_length(4 * config.n_embd)
    writer.add_head_count(config.n_head)
    writer.add_layer_norm_eps(config.layer_norm_epsilon)
    tokens = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    added = set(tokenizer.get_added_vocab().values())
    special = set(tokenizer.all_special_ids)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in special else 4 if i in added else 1
                            for i in range(len(tokens))])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, config.n_layer)
    for name, tensor in model.state_dict().items():
        base, suffix = name.rsplit(".", 1)
        gguf_name = names.get_name(base)
        if gguf_name is None:
            continue
        array = tensor.numpy().astype(np.float32)
        # GGUF stores these GPT-2 (Conv1D) weights transposed; transformers transposes them back.
        if suffix == "weight" and any(k in gguf_name for k in
                                      ("attn_qkv", "attn_output", "ffn_up", "ffn_down")):
            array = np.ascontiguousarray(array.T)
        writer.add_tensor(f"{gguf_name}.{suffix}", array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ------------------------------------------------------------------------------------- TableLM
def table_tokenizer():
    """Byte-level BPE with a hand-written vocabulary whose tokens' texts are known exactly."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|endoftext|>": 0}
    for char in alphabet:
        vocab[char] = len(vocab)
    merges = [("Ġ", "1"), ("Ġ1", "2"), ("Ġ", "7"), ("Ġ", "0"), ("Ġ", "3"), ("Ġ", "Ġ"), ("1", "2")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    tokenizer = _byte_level_fast_tokenizer(Tokenizer(models.BPE(vocab=vocab, merges=merges)))
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    tokenizer.add_tokens([AddedToken("1,000", normalized=False)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


class _TableConfig:
    def __init__(self, vocab_size, max_position_embeddings):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings


class TableLM(torch.nn.Module):
    """Next-token distribution looked up from the token history, with a real key/value cache.

    ``first_step[last_token_id]`` gives the probabilities after a prompt ending with that token;
    ``second_step[(first_token_id, whitespace_token_id)]`` gives them one step later, so the right
    answer only comes out if the cache rows are routed back to the right prompt. The cache stores
    the token ids themselves as keys; padding is dropped with the attention mask and position ids
    are checked against it. Every call is recorded in ``calls`` as
    (input shape, cached length, logits_to_keep, whether a mask was given).
    """

    def __init__(self, vocab_size, first_step, second_step, max_position_embeddings=64):
        super().__init__()
        self.config = _TableConfig(vocab_size, max_position_embeddings)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the probe a dtype and a device
        self.first_step = first_step
        self.second_step = second_step
        self.calls = []

    def _logits(self, probabilities):
        # float64 so that the expected values hold to 1e-12; exp(-1e4) is exactly 0.
        logits = torch.full((self.config.vocab_size,), -1e4, dtype=torch.float64)
        for token_id, p in probabilities.items():
            logits[token_id] = torch.log(torch.tensor(p, dtype=torch.float64))
        return logits

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        use_cache=True,
        logits_to_keep=0,
    ):
        cached = 0 if past_key_values is None else past_key_values.get_seq_length()
        self.calls.append(
            (tuple(input_ids.shape), cached, logits_to_keep, attention_mask is not None)
        )
        cache = DynamicCache() if past_key_values is None else past_key_values
        ids = input_ids[:, None, :, None].to(torch.float32)
        history = cache.update(ids, ids, 0)[0][:, 0, :, 0].long()
        if attention_mask is None:
            attention_mask = torch.ones_like(history)
        assert attention_mask.shape == history.shape, "the mask must cover cache and new tokens"
        if (
            position_ids is not None
        ):  # a new token's position is the number of real tokens before it
            real_before = attention_mask.cumsum(1)[:, -input_ids.shape[1] :] - 1
            assert torch.equal(position_ids.clamp(min=0), real_before.clamp(min=0)), "positions"
        rows = []
        for row, keep in zip(history.tolist(), attention_mask.bool().tolist(), strict=True):
            row = [token for token, real in zip(row, keep, strict=True) if real]  # drop padding
            if cached and len(row) > 1 and (row[0], row[-1]) in self.second_step:
                rows.append(self._logits(self.second_step[(row[0], row[-1])]))
            else:
                rows.append(self._logits(self.first_step.get(row[-1], {0: 1.0})))
        logits = torch.stack(rows)[:, None, :].expand(-1, input_ids.shape[1], -1)
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return CausalLMOutputWithPast(logits=logits, past_key_values=cache)


# ------------------------------------------------------------------------- a lazily built folder
_built_folders = {}


class TinyGPT2Folder(os.PathLike):
    """Path of a tiny GPT-2 folder built on first use, once per process.

    ``parametrize_with_checks`` needs the estimator when tests are collected, before fixtures
    run; this path-like keeps a stable repr (test ids must match across pytest-xdist workers)
    and builds the folder only when the probe opens it.
    """

    def __fspath__(self):
        if "tiny_gpt2" not in _built_folders:
            folder = tempfile.mkdtemp(prefix="sklearn_rpf_tiny_gpt2_")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _built_folders["tiny_gpt2"] = str(save_tiny_gpt2(folder))
        return _built_folders["tiny_gpt2"]

    def __repr__(self):
        return "TinyGPT2Folder()"

    def __eq__(self, other):
        return isinstance(other, TinyGPT2Folder)

    def __hash__(self):
        return hash(TinyGPT2Folder)


# Prompts of many lengths, with and without numbers, shared by the probe's tests.
MIXED_PROMPTS = [
    "The city has a population of",
    "Room",
    "In 1990 the company made 3 million dollars and",
    "She ran 42 km in",
    "Prices: 19.99, 24.50,",
    "There are 9 planets, 8 moons, 6 rivers and",
    "The bridge is",
]
