"""Benford's law: the first-digit distribution, conformity measures, and a language-model probe.

The statistics (:func:`first_digit_distribution`, :func:`mean_absolute_deviation`, ...) work on
any collection of numbers; :class:`BenfordDigitProbe` measures the first-digit distribution a
causal language model continues a prompt with.
"""

from ._law import (
    DIGITS,
    NIGRINI_FIRST_DIGIT_THRESHOLDS,
    BenfordChisquareResult,
    benford_chisquare,
    benford_distribution,
    first_digit_distribution,
    kl_divergence,
    mean_absolute_deviation,
    nigrini_conformity,
)
from ._probe import BenfordDigitProbe

__all__ = [
    "DIGITS",
    "NIGRINI_FIRST_DIGIT_THRESHOLDS",
    "BenfordChisquareResult",
    "BenfordDigitProbe",
    "benford_chisquare",
    "benford_distribution",
    "first_digit_distribution",
    "kl_divergence",
    "mean_absolute_deviation",
    "nigrini_conformity",
]
