"""The scoring engine of BenfordDigitProbe: batched next-token first-digit mass from a causal LM.

For a token sequence, the digit mass of d is the next-token probability of every token whose text
(after optional leading whitespace) starts with d, plus, for each whitespace-only token, its
probability times the same sum one step later. This module computes it for many prompts at once
with as few forward passes as possible, because on a CPU a pass has a large fixed cost (every
weight is read once) on top of its per-token cost:

* identical prompts are scored once;
* prompts sharing a long start (a template's fixed text) share one pass over it, then continue
  from its cached keys and values;
* prompts are padded on the left to a length that depends on their own length only, with an
  attention mask and the real position ids, so that a batch holds many lengths; a prompt's
  padding depends on its own length only;
* only the last position's logits are computed, and the whitespace step continues from the
  prompt's cache instead of recomputing the prompt.
"""

import contextlib
import inspect
import itertools
import threading
import weakref
from numbers import Integral

import numpy as np
import torch
from tqdm.auto import tqdm

from .._devices import autocast_off
from ._kv_cache import cache_bytes, cache_keyword, select_cache_rows

# Prompts sharing at least this many leading tokens (a template's fixed start) share one forward
# pass over them; shorter common starts are not worth the extra pass.
MIN_SHARED_PREFIX = 4
# ... and only when the group saves this many token positions: a forward pass has a fixed cost
# (reading every weight once) worth a few dozen tokens of compute on a CPU.
MIN_SHARED_TOKENS = 32
# Prompt lengths are padded to multiples of this, so that a batch holds prompts of many lengths.
PAD_MULTIPLE = 8
# Memory per forward pass for long prompts (a short prompt never comes near these): the batch's
# attention scores, rows x new tokens x all tokens per head, and the whitespace step's copies of
# the prompts' caches, in bytes. A prompt at SmolLM2's context (8,192 tokens) fills each alone.
ATTENTION_SCORES_PER_PASS = 2**26
CACHE_BYTES_PER_PASS = 2**29


# ------------------------------------------------------------- what the vocabulary's tokens say
def _surface_texts(tokenizer):
    """Text each vocabulary entry adds when it follows other text.

    Decoding a token alone loses what tokenizers strip at the start of a text (SentencePiece's
    leading space marker), so each token is decoded after a reference token and the reference text
    is cut off; byte-level BPE and added tokens come out exactly as they are written.
    """
    n_tokens = len(tokenizer)
    reference = tokenizer.encode("a", add_special_tokens=False)
    options = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
    reference_text = tokenizer.decode(reference, **options) if reference else ""
    joined = tokenizer.batch_decode([reference + [i] for i in range(n_tokens)], **options)
    texts = []
    for token_id, text in enumerate(joined):
        if reference_text and text.startswith(reference_text):
            texts.append(text[len(reference_text) :])
        else:
            texts.append(tokenizer.decode([token_id], **options))
    for special_id in tokenizer.all_special_ids:
        if 0 <= special_id < n_tokens:
            texts[special_id] = ""  # control tokens are never part of a number nor of spacing
    return texts


# Decoding a 50,000-token vocabulary takes about a second; an unpickled probe (one per dask task)
# finds the tables of the tokenizer it shares with the others here.
_tables_by_tokenizer = weakref.WeakKeyDictionary()


def token_tables(tokenizer):
    """First digit (1..9, 0 for anything else) of each token after its leading whitespace, and
    the ids of whitespace-only tokens. Remembered per tokenizer (and its size)."""
    with_size = None
    try:
        with_size = _tables_by_tokenizer.get(tokenizer)
    except TypeError:  # a tokenizer that cannot be weakly referenced is decoded every time
        pass
    if with_size is not None and with_size[0] == len(tokenizer):
        return with_size[1]
    texts = _surface_texts(tokenizer)
    first_digit = np.zeros(len(texts), dtype=np.int64)
    for token_id, text in enumerate(texts):
        stripped = text.lstrip()
        if stripped and stripped[0] in "123456789":
            first_digit[token_id] = int(stripped[0])
    whitespace_ids = np.array([i for i, t in enumerate(texts) if t and t.isspace()], dtype=np.int64)
    for array in (first_digit, whitespace_ids):
        array.flags.writeable = False  # shared between scorers
    with contextlib.suppress(TypeError):
        _tables_by_tokenizer[tokenizer] = (len(texts), (first_digit, whitespace_ids))
    return first_digit, whitespace_ids


def context_length(model, tokenizer):
    """The longest sequence the model and tokenizer take, or None when neither says."""
    config = getattr(model, "config", None)
    lengths = [
        getattr(config, name, None)
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length")
    ]
    lengths.append(getattr(tokenizer, "model_max_length", None))
    # Tokenizers without a limit report a huge sentinel number.
    lengths = [int(n) for n in lengths if isinstance(n, Integral) and 1 < n < 10**7]
    return min(lengths) if lengths else None


def pad_token_id(model, tokenizer):
    """A token id for padded slots (they are masked, so any id the embedding table has will do)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    n_embeddings = getattr(embeddings, "num_embeddings", None) or len(tokenizer)
    return next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id)
                 if t is not None and 0 <= t < n_embeddings), 0)


# Models being scored now: id -> [number of scorings, each submodule's mode before the first].
_scoring = {}
_scoring_lock = threading.Lock()


@contextlib.contextmanager
def _evaluating(model):
    """``model`` in eval mode for the block: a model the caller shares with the probe and puts
    in train mode (to fine-tune it) would otherwise score with dropout, a different answer at
    every call. Each submodule's mode comes back when the last of the scorings that overlap
    (threads sharing the model) ends, not when the first does."""
    with _scoring_lock:
        entry = _scoring.get(id(model))
        if entry is None:
            entry = _scoring[id(model)] = [0, [(m, m.training) for m in model.modules()]]
            model.eval()
        entry[0] += 1
    try:
        yield
    finally:
        with _scoring_lock:
            entry[0] -= 1
            if entry[0] == 0:
                del _scoring[id(model)]
                for module, training in entry[1]:
                    module.training = training


# -------------------------------------------------------------------------------- batching
def padded_length(length):
    """Prompts are padded to the next multiple of PAD_MULTIPLE strictly above their length.

    Always at least one pad token: with some padding in every row, the model always takes the
    masked attention path, so a row computes the same whether or not its batch has padding.
    """
    return (length // PAD_MULTIPLE + 1) * PAD_MULTIPLE


def _has_sliding_window(config):
    """Whether a model config declares local (sliding-window) attention in any layer."""
    if config is None:
        return False
    if getattr(config, "sliding_window", None) or getattr(config, "window_size", None):
        return True
    kinds = [*(getattr(config, "layer_types", None) or []),
             *(getattr(config, "attention_layers", None) or [])]
    return any("slid" in str(kind) or "local" in str(kind) for kind in kinds)


def _common_prefix_length(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_prefix_groups(sequences, min_shared, min_saved=0):
    """Group token sequences that start alike: a list of ``(prefix_length, indices)``.

    In sorted order, sequences with a common start are neighbours. A group grows while the tokens
    it saves, ``(size - 1) * prefix_length``, do not shrink; every member keeps at least one token
    of its own (its last position's logits are what is scored). Groups saving fewer than
    ``min_saved`` tokens are not worth their extra forward pass: their members are pooled with the
    prompts that share nothing, as ``(0, indices)`` first in the list.
    """
    order = sorted(range(len(sequences)), key=lambda i: sequences[i])
    groups, current, prefix = [], [], 0
    for i in order:
        if current:
            shared = min(prefix, _common_prefix_length(sequences[current[-1]], sequences[i]),
                         len(sequences[i]) - 1)
            if shared >= min_shared and len(current) * shared >= (len(current) - 1) * prefix:
                current.append(i)
                prefix = shared
                continue
            groups.append((prefix if len(current) > 1 else 0, current))
        current, prefix = [i], len(sequences[i]) - 1
    if current:
        groups.append((prefix if len(current) > 1 else 0, current))
    alone = [i for prefix, members in groups
             if prefix == 0 or (len(members) - 1) * prefix < min_saved for i in members]
    shared = [(prefix, members) for prefix, members in groups
              if prefix > 0 and (len(members) - 1) * prefix >= min_saved]
    return ([(0, alone)] if alone else []) + shared


class DigitScorer:
    """Unnormalised P(first digit = d), d = 1..9, of a causal LM's continuation of token sequences.

    Build it with :meth:`from_model`, which reads everything it needs off the model and the
    tokenizer once.

    Parameters
    ----------
    model : torch.nn.Module
        A causal language model in eval mode (Hugging Face calling convention).
    token_first_digit : ndarray of shape (vocabulary_size,)
        First digit 1..9 of each token's text after leading whitespace, 0 for other tokens.
    whitespace_token_ids : ndarray of int
        Tokens whose text is whitespace only.
    pad_id : int
        Token id put in padded positions (masked out).
    keeps_last_logits : bool
        Whether the model's forward takes ``logits_to_keep``.
    cache_keyword : str, default="past_key_values"
        The forward's name for the key/value cache, in and out (transformers 5 renamed it
        ``cache``).
    context_length : int or None
        The model's context; padding never makes a sequence (plus the whitespace step) longer.
    batch_size : int, default=32
        Sequences per forward pass (default for :meth:`digit_mass`).
    whitespace_tol : float, default=1e-4
        Whitespace continuations are followed from the likeliest until the probability of those
        left out is at most this (default for :meth:`digit_mass`).
    verbose : bool, default=False
        Progress bar (default for :meth:`digit_mass`).
    """

    def __init__(self, model, token_first_digit, whitespace_token_ids, *, pad_id,
                 keeps_last_logits, cache_keyword="past_key_values", context_length=None,
                 batch_size=32, whitespace_tol=1e-4, verbose=False):
        self.model = model
        self.cache_keyword = cache_keyword
        self.token_first_digit = token_first_digit
        self.whitespace_token_ids = whitespace_token_ids
        self.context_length = context_length
        # Window masks count cache slots, not positions: pads between a shared start and the
        # rest of a prompt would push real tokens out of the window, so no sharing there.
        self.share_prefixes = not _has_sliding_window(getattr(model, "config", None))
        parameter = next(model.parameters(), None)
        self.device = parameter.device if parameter is not None else torch.device("cpu")
        self.vocabulary = len(token_first_digit)
        self.first_digit = torch.tensor(np.asarray(token_first_digit), device=self.device)
        self.whitespace = torch.tensor(np.asarray(whitespace_token_ids), device=self.device)
        self.pad_id = pad_id
        self.keep_last = {"logits_to_keep": 1} if keeps_last_logits else {}
        self.batch_size = batch_size
        self.whitespace_tol = whitespace_tol
        self.verbose = verbose

    @classmethod
    def from_model(cls, model, tokenizer, *, batch_size=32, whitespace_tol=1e-4, verbose=False):
        """A scorer for ``model`` and ``tokenizer``: vocabulary tables, pad id, context length and
        whether the forward takes ``logits_to_keep`` are found here, once."""
        first_digit, whitespace_ids = token_tables(tokenizer)
        forward = inspect.signature(model.forward).parameters
        return cls(
            model, first_digit, whitespace_ids, pad_id=pad_token_id(model, tokenizer),
            keeps_last_logits="logits_to_keep" in forward,
            cache_keyword=cache_keyword(model),
            context_length=context_length(model, tokenizer), batch_size=batch_size,
            whitespace_tol=whitespace_tol, verbose=verbose,
        )

    def digit_mass(self, token_ids, *, batch_size=None, whitespace_tol=None, verbose=None):
        """Digit mass of each token sequence: ndarray of shape ``(len(token_ids), 9)``.

        ``batch_size``, ``whitespace_tol`` and ``verbose`` override the scorer's own for this
        call (None keeps them).
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        tol = self.whitespace_tol if whitespace_tol is None else whitespace_tol
        verbose = self.verbose if verbose is None else verbose
        distinct = list(dict.fromkeys(map(tuple, token_ids)))
        self._check_token_ids(distinct)
        position = {ids: i for i, ids in enumerate(distinct)}
        result = np.empty((len(distinct), 9))
        progress = tqdm(total=len(distinct), desc="Scoring prompts", disable=not verbose)
        with torch.inference_mode(), autocast_off(self.device), _evaluating(self.model):
            min_saved = MIN_SHARED_TOKENS if self.share_prefixes else float("inf")
            for prefix, members in shared_prefix_groups(distinct, MIN_SHARED_PREFIX, min_saved):
                cache = None
                if prefix:  # one pass over the shared start, then only the rest of each prompt
                    start = torch.tensor([distinct[members[0]][:prefix]], device=self.device)
                    _, cache = self._forward(None, input_ids=start)
                lengths = [len(distinct[i]) - prefix for i in members]
                # The whitespace step adds one token per (prompt, token) pair, so it takes larger
                # chunks than prompt batches in the same memory.
                for rows in self._batches(members, lengths, batch_size, prefix):
                    repeat = torch.zeros(len(rows), dtype=torch.long, device=self.device)
                    batch_cache = None if cache is None else select_cache_rows(cache, repeat)
                    result[rows] = self._score([distinct[i][prefix:] for i in rows], batch_cache,
                                               prefix, tol, 4 * batch_size)
                    progress.update(len(rows))
        progress.close()
        return result[[position[tuple(ids)] for ids in token_ids]]

    def _check_token_ids(self, sequences):
        """Token ids past the model's embedding table (tokens added to the tokenizer without
        ``resize_token_embeddings``) get a clear error, not torch's IndexError."""
        # Read now: the caller may have resized a shared model's table since fit.
        embeddings = (self.model.get_input_embeddings()
                      if hasattr(self.model, "get_input_embeddings") else None)
        n_embeddings = getattr(embeddings, "num_embeddings", None)
        if n_embeddings is None:
            return
        largest = max((max(ids) for ids in sequences if ids), default=-1)
        if largest >= n_embeddings:
            raise ValueError(
                f"The tokenizer gave token id {largest}, but the model's embedding table has "
                f"{n_embeddings} rows: tokens were added to the tokenizer and not to the "
                "model. Call model.resize_token_embeddings(len(tokenizer)) (and train the new "
                "rows), or use the tokenizer the model was trained with."
            )

    def _forward(self, cache, **inputs):
        """One forward pass continuing ``cache`` (None: from scratch): (logits, new cache)."""
        out = self.model(**inputs, **{self.cache_keyword: cache}, use_cache=True,
                         **self.keep_last)
        return out.logits, getattr(out, self.cache_keyword)

    @staticmethod
    def _batches(members, lengths, batch_size, cached=0):
        """``members`` in batches of one padded length, at most ``batch_size`` each, and fewer
        where long prompts (after ``cached`` shared tokens) would make the attention scores of
        a pass exceed ``ATTENTION_SCORES_PER_PASS`` per head."""
        width = dict(zip(members, map(padded_length, lengths), strict=True))
        size = dict(zip(members, lengths, strict=True))
        ordered = sorted(members, key=lambda i: (width[i], size[i]))
        batches = []
        for padded, same in itertools.groupby(ordered, key=width.get):
            same = list(same)
            fits = max(1, ATTENTION_SCORES_PER_PASS // (padded * (cached + padded)))
            step = min(batch_size, fits)
            batches += [same[b : b + step] for b in range(0, len(same), step)]
        return batches

    def _digit_sums(self, logits):
        """Next-token probabilities at the last position, and their sums per first digit."""
        probs = torch.softmax(logits[:, -1, :].to(torch.float64), dim=-1)
        if probs.shape[1] != self.vocabulary:  # output layer padded past the tokenizer (or short)
            width = min(probs.shape[1], self.vocabulary)
            probs = torch.nn.functional.pad(probs[:, :width], (0, self.vocabulary - width))
        sums = torch.zeros(probs.shape[0], 10, dtype=torch.float64, device=self.device)
        return probs, sums.index_add_(1, self.first_digit, probs)[:, 1:]

    def _score(self, suffixes, cache, cached, whitespace_tol, chunk):
        """Digit mass of token rows continuing ``cache`` (``cached`` tokens long) if given.

        Every row is padded on the left to ``padded_length`` of its length (all rows of a batch
        share it), with an attention mask and the position ids of the real tokens.
        """
        lengths = torch.tensor([len(ids) for ids in suffixes], device=self.device)
        width = padded_length(int(lengths.max()))
        if self.context_length is not None:  # room for the prompt and the whitespace step
            width = max(int(lengths.max()), min(width, self.context_length - 1 - cached))
        input_ids = torch.tensor(
            [[self.pad_id] * (width - len(ids)) + list(ids) for ids in suffixes], device=self.device
        )
        new = torch.arange(width, device=self.device)[None, :] >= (width - lengths)[:, None]
        mask = torch.cat([new.new_ones(len(suffixes), cached), new], dim=1).long()
        positions = (cached + new.long().cumsum(1) - 1).clamp(min=0)
        logits, cache = self._forward(cache, input_ids=input_ids, attention_mask=mask,
                                      position_ids=positions)
        probs, mass = self._digit_sums(logits)
        if self.whitespace.numel():
            mass += self._whitespace_step(cache, probs[:, self.whitespace], mask,
                                          cached + lengths, whitespace_tol, chunk)
        return mass.cpu().numpy()

    def _whitespace_step(self, cache, space_probs, mask, lengths, whitespace_tol, chunk):
        """Digit mass reached through one whitespace-only token, from the prompts' cached state.

        ``mask`` is the attention mask of the padded prompts and ``lengths`` their real lengths,
        the position of the new token; ``chunk`` (prompt, whitespace token) pairs per pass.
        """
        # Per prompt, follow the likeliest whitespace tokens until what is left is <= tol.
        ordered, order = torch.sort(space_probs, dim=1, descending=True)
        left_after = ordered.flip(1).cumsum(1).flip(1) - ordered  # mass of the tokens after each
        needed = torch.ones_like(ordered, dtype=torch.bool)
        needed[:, 1:] = left_after[:, :-1] > whitespace_tol
        needed &= ordered > 0
        pair_rows, pair_ranks = torch.nonzero(needed, as_tuple=True)
        mass = torch.zeros(space_probs.shape[0], 9, dtype=torch.float64, device=self.device)
        # Each pair gets its own copy of its prompt's cache (and the pass another, one token
        # longer): long prompts take fewer pairs per pass.
        row_bytes = cache_bytes(cache) / max(1, space_probs.shape[0])
        chunk = max(1, min(chunk, int(CACHE_BYTES_PER_PASS // max(row_bytes, 1))))
        for start in range(0, len(pair_rows), chunk):
            rows = pair_rows[start : start + chunk]
            ranks = pair_ranks[start : start + chunk]
            logits, _ = self._forward(
                select_cache_rows(cache, rows),
                input_ids=self.whitespace[order[rows, ranks]][:, None],
                attention_mask=torch.cat([mask[rows], mask.new_ones(len(rows), 1)], dim=1),
                position_ids=lengths[rows, None],
            )
            _, next_mass = self._digit_sums(logits)
            mass.index_add_(0, rows, ordered[rows, ranks, None] * next_mass)
        return mass
