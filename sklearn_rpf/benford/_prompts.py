"""Rows of X to prompts to token ids, for :class:`~sklearn_rpf.BenfordDigitProbe`.

Templates are format strings restricted to plain positional fields (``{0}``, ``{1}``, ``{}``, each
with an optional format spec): ``str.format`` would otherwise let a field walk a cell's attributes
(``{0.__class__...}``) and read whatever they reach. Prompts must be valid Unicode text (a lone
surrogate left by a bad decode reaches the tokenizer as a TypeError otherwise).
"""

import datetime
import math
import re
import string
import warnings
from numbers import Integral, Number

import numpy as np

from .._stack import caller_stacklevel

__all__ = ["check_template", "encode_prompts", "format_prompts", "warn_unused_columns"]

_POSITIONAL_FIELD = re.compile(r"[0-9]*")


def _check_text(text, what):
    """Tokenizers take valid Unicode only: a lone surrogate (from a bad decode) is an error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} is not valid Unicode text: it holds the lone surrogate "
            f"{text[exc.start]!r} at character {exc.start} (text decoded with "
            "errors='surrogateescape', or broken UTF-16). Repair it first, for instance with "
            "text.encode('utf-8', 'replace').decode('utf-8')."
        ) from None


def check_template(template, n_features):
    """Check that a template has only plain positional fields ``{0}``, ``{1}`` or ``{}``, each with
    an optional format spec (which may itself hold such fields), for ``n_features`` columns.

    Attribute or index access (``{0.real}``, ``{0[1]}``) and conversion flags (``{0!r}``) are
    refused: a field would otherwise reach any attribute of a cell's value.
    """
    _check_text(template, "template")
    formatter = string.Formatter()
    hint = (
        "use plain positional fields {0}, {1}, ... (or {}) for the columns of X, with an "
        "optional format spec such as {0:.1f}; attribute access ({0.x}), indexing ({0[x]}) "
        "and conversions ({0!r}) are not allowed"
    )
    indices, numbered, automatic = [], False, 0

    def visit(text, depth):
        nonlocal numbered, automatic
        try:
            fields = [(field, spec, conversion)
                      for _, field, spec, conversion in formatter.parse(text) if field is not None]
        except ValueError as exc:
            raise ValueError(f"template {template!r} is not a valid format string: {exc}.") from None
        for field, spec, conversion in fields:
            written = "{" + field + ("!" + conversion if conversion else "") + (
                ":" + spec if spec else "") + "}"
            if conversion is not None or not _POSITIONAL_FIELD.fullmatch(field):
                kind = "not positional" if conversion is None else "uses a conversion flag"
                raise ValueError(f"template field {written} is {kind}: {hint}.")
            if depth > 1:
                raise ValueError(f"template field {written} is nested too deeply: {hint}.")
            if field == "":
                indices.append(automatic)
                automatic += 1
            else:
                numbered = True
                indices.append(int(field))
            if spec:
                visit(spec, depth + 1)

    visit(template, 0)
    if numbered and automatic:
        raise ValueError(
            f"template {template!r} mixes automatic {{}} and numbered {{0}} fields; use one kind."
        )
    if indices and max(indices) >= n_features:
        raise ValueError(
            f"template refers to column {max(indices)} but X has {n_features} column(s)."
        )
    return sorted(set(indices))


def warn_unused_columns(template, n_features):
    """A warning where the template leaves columns of X out of the prompts (none used: every
    row gets the same prompt, so the same P(d), which looks like per-row results)."""
    if template is None:
        return
    used = check_template(template, n_features)
    if not used:
        message = (f"template {template!r} has no field: every row of X gives the same prompt, "
                   "so every row gets the same P(d). Put X's values in it with {0}, {1}, ...")
    elif len(used) < n_features:
        unused = sorted(set(range(n_features)) - set(used))
        message = (f"template {template!r} uses column(s) {used} of X's {n_features}; column(s) "
                   f"{unused} do not reach the prompts.")
    else:
        return
    warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())


def _finite(number):
    """Whether a real number is finite, for every kind ``numbers.Number`` admits (Python ints
    wider than 64 bits, Decimal, Fraction), not only NumPy's."""
    if isinstance(number, Integral):
        return True
    try:
        return math.isfinite(number)
    except (OverflowError, TypeError, ValueError):  # e.g. Decimal("sNaN")
        return False


class _AsPrinted:
    """A NumPy float in a template field: with no format spec, written as NumPy prints it ("0.1"
    for a float32 0.1; ``format`` would widen it to a Python float, "0.10000000149011612"), and
    with a spec (``{0:.2f}``) formatted as a Python float."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __format__(self, spec):
        return _printed(self.value) if not spec else format(float(self.value), spec)


def _printed(value):
    """``str`` of a value, a NumPy float as NumPy prints it by default (the shortest digits that
    read back to it) whatever the caller's print options: ``legacy="1.13"`` would cut it to 12
    significant digits and change the prompt."""
    if not isinstance(value, np.floating):
        return str(value)
    with np.printoptions(legacy=False):
        return str(value)


def format_prompts(X, template):
    """One prompt per row of the validated 2-D array X: ``template`` filled with the row's
    values, or the values joined with spaces when it is None."""
    if template is not None:
        check_template(template, X.shape[1])
    prompts = []
    for row_index, row in enumerate(X):
        for value in row:
            if value is None:
                raise ValueError(
                    f"Input X contains None (row {row_index}); prompts need text or numbers "
                    "in every cell."
                )
            # NumPy's timedelta64 is an integer type: it would be written in nanoseconds.
            if not isinstance(value, (str, Number, np.bool_)) or isinstance(
                value, (complex, np.complexfloating, np.timedelta64, datetime.timedelta)
            ):
                raise TypeError(
                    f"Input X contains a {type(value).__name__} object (row {row_index}); "
                    "expected text (str) or real numbers in every cell."
                )
            if not isinstance(value, str) and not _finite(value):
                raise ValueError(f"Input X contains NaN or infinity (row {row_index}).")
        if template is None:
            prompt = " ".join(_printed(value) for value in row)
        else:
            try:
                prompt = template.format(*(_AsPrinted(value) if isinstance(value, np.floating)
                                           else value for value in row))
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"template {template!r} cannot format row {row_index} "
                    f"({list(row)!r:.100}): {exc}."
                ) from None
        if prompt == "":
            raise ValueError(
                f"Row {row_index} of X gives an empty prompt; the model needs some text to "
                "continue."
            )
        _check_text(prompt, f"Row {row_index} of X")
        prompts.append(prompt)
    return prompts


def encode_prompts(tokenizer, prompts, context_length):
    """Token ids of each prompt; prompts longer than the context keep their end, with a warning
    (one position stays free for the whitespace step).

    A prompt far longer than the context is cut before tokenising (:func:`_spare_tail`): the
    tokenizer would otherwise read all of it (minutes for 100 million characters) to keep its
    last few thousand tokens."""
    limit = None if context_length is None else context_length - 1
    prompts = list(prompts)
    vocabulary = getattr(tokenizer, "get_vocab", None)
    if (limit is not None and vocabulary is not None
            and max(map(len, prompts), default=0) > _TAIL_FACTOR * limit):
        longest_token = max(map(len, vocabulary()), default=1)
        prompts = [_spare_tail(p, _TAIL_FACTOR * limit * max(longest_token, 1)) for p in prompts]
    encoded = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    n_truncated = 0
    for i, ids in enumerate(encoded):
        if len(ids) == 0:
            raise ValueError(f"Prompt {prompts[i]!r:.200} encodes to no token at all.")
        if limit is not None and len(ids) > limit:
            encoded[i] = ids[-limit:]  # one position stays free for the whitespace step
            n_truncated += 1
    if n_truncated:
        warnings.warn(
            f"{n_truncated} prompt(s) are longer than the model's context of "
            f"{context_length} tokens; only their last {limit} tokens are used.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    return encoded


# A prompt is cut before tokenising only where what is left still holds this many times the
# context in tokens: the tokens kept, the last quarter, are then far from the cut.
_TAIL_FACTOR = 4
# A whitespace right after a word, read backwards: tokenizers split words there before merging.
_REVERSED_BREAK = re.compile(r"\s(?=\S)")


def _spare_tail(prompt, n_chars):
    """The end of ``prompt`` from the first whitespace run at least ``n_chars`` characters from
    its end (the whole prompt when it is shorter, or when no such break exists: one long word
    is tokenised whole, its merges could depend on where it starts).

    ``n_chars`` is the context times the longest vocabulary entry times ``_TAIL_FACTOR``: no
    token covers more characters than its vocabulary entry has (a normaliser that drops
    characters, such as accent stripping, aside: the factor leaves room for it), so the tail
    still holds about ``_TAIL_FACTOR`` times the context in tokens; and tokenizers (byte-level
    BPE, SentencePiece) split words at whitespace before merging, so the last tokens are those
    of the whole prompt.
    """
    if len(prompt) <= n_chars:
        return prompt
    start = len(prompt) - n_chars
    # The last word break at or before the cut, found as the first one in the reversed head.
    match = _REVERSED_BREAK.search(prompt[start::-1])
    return prompt if match is None else prompt[start - match.start():]
