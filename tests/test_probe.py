"""Tests of BenfordDigitProbe on tiny local models, and one slow test on the default SmolLM2."""

import contextlib
import copy
import os
import time
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from lm_fixtures import MIXED_PROMPTS, TableLM, TinyGPT2Folder, save_tiny_gpt2, table_tokenizer
from numpy_text import STRING_DTYPE, needs_string_dtype
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from sklearn_rpf.benford import BenfordDigitProbe, mean_absolute_deviation
from sklearn_rpf.benford._digit_scoring import (
    MIN_SHARED_PREFIX,
    DigitScorer,
    padded_length,
    shared_prefix_groups,
)
from sklearn_rpf.benford._lm_loading import ModelNotFoundError

PROMPTS = MIXED_PROMPTS


@parametrize_with_checks([BenfordDigitProbe(model=TinyGPT2Folder(), batch_size=8)])
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input skips itself unless this variable is set; with the NumPy namespace it
    # checked here, SciPy's array API mode makes no difference, so the check can run.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


# ----------------------------------------------------------------------- exact marginalisation
@pytest.fixture
def table_model():
    """TableLM with two prompts, "a" and "b a", whose digit distributions are known by hand."""
    tokenizer = table_tokenizer()
    tid = tokenizer.convert_tokens_to_ids
    a, b, space, newline = tid("a"), tid("b"), tid("Ġ"), tid("Ċ")
    first_step = {  # after a prompt ending in "a"
        a: {
            tid("Ġ1"): 0.10,  # " 1"
            tid("1,000"): 0.05,  # added token
            tid("Ġ12"): 0.05,  # " 12": digit 1, not 12
            tid("0"): 0.10,  # zero is not a first digit
            tid("Ġ0"): 0.05,
            tid("Ġ7"): 0.10,
            tid("x"): 0.10,
            tid("<|endoftext|>"): 0.05,
            space: 0.30,
            newline: 0.10,
        }
    }
    second_step = {  # one token after a whitespace token, depending on the prompt's first token
        (a, space): {tid("2"): 0.5, tid("Ġ3"): 0.25, tid("x"): 0.25},
        (a, newline): {tid("9"): 0.6, newline: 0.4},  # a second whitespace step is not followed
        (b, space): {tid("5"): 1.0},
        (b, newline): {tid("12"): 0.5, tid("Ġ"): 0.5},
    }
    expected_a = np.zeros(9)
    expected_a[0] = 0.10 + 0.05 + 0.05
    expected_a[6] = 0.10
    expected_a[1] = 0.30 * 0.5
    expected_a[2] = 0.30 * 0.25
    expected_a[8] = 0.10 * 0.6
    expected_b = np.zeros(9)
    expected_b[0] = 0.10 + 0.05 + 0.05 + 0.10 * 0.5
    expected_b[6] = 0.10
    expected_b[4] = 0.30 * 1.0
    model = TableLM(len(tokenizer), first_step, second_step).eval()
    return model, tokenizer, {"a": expected_a, "b a": expected_b}


def test_marginalisation_matches_hand_computation(table_model):
    model, tokenizer, expected = table_model
    probe = BenfordDigitProbe((model, tokenizer), whitespace_tol=0, return_numeric_mass=True)
    P = probe.fit_transform(["a", "b a"])
    for row, prompt in zip(P, ["a", "b a"], strict=True):
        mass = expected[prompt].sum()
        np.testing.assert_allclose(row[:9], expected[prompt] / mass, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(row[9], mass, rtol=1e-12)


def test_whitespace_step_continues_from_the_cache(table_model):
    model, tokenizer, _ = table_model
    probe = BenfordDigitProbe((model, tokenizer), whitespace_tol=0).fit(["a"])
    assert model.calls == [((1, 1), 0, 0, False)]  # fit's one-token check that it is a causal LM
    model.calls.clear()
    probe.transform(["a", "b a"])
    calls = sorted(model.calls)
    # "a" is one token, "b a" three ("b", " ", "a"): both padded on the left to 8 tokens, in one
    # forward pass with an attention mask (TableLM checks the position ids against it).
    assert [call for call in calls if call[1] == 0] == [((2, 8), 0, 1, True)]
    # Each prompt's two whitespace continuations: one new token each on top of its cached prompt,
    # and only the last position's logits.
    assert [call for call in calls if call[1] > 0] == [((4, 1), 8, 1, True)]


def test_repeated_prompts_are_scored_once(table_model):
    model, tokenizer, expected = table_model
    probe = BenfordDigitProbe((model, tokenizer), whitespace_tol=0).fit(["a"])
    model.calls.clear()  # fit's causal-LM check
    P = probe.transform(["b a", "b a"])
    assert [call[0] for call in model.calls] == [(1, 8), (2, 1)]  # one prompt, two spaces
    np.testing.assert_allclose(P, np.tile(expected["b a"] / expected["b a"].sum(), (2, 1)),
                               atol=1e-12)


def test_whitespace_tol_bounds_the_error(table_model):
    model, tokenizer, expected = table_model
    # 0.15 covers the newline (0.10) but not the space (0.30): only the space is followed.
    probe = BenfordDigitProbe((model, tokenizer), whitespace_tol=0.15, return_numeric_mass=True)
    row = probe.fit_transform(["a"])[0]
    unnormalised = row[:9] * row[9]
    without_newline = expected["a"].copy()
    without_newline[8] = 0.0
    np.testing.assert_allclose(unnormalised, without_newline, atol=1e-12)
    assert 0 < expected["a"].sum() - row[9] <= 0.15


def test_caller_model_is_not_modified(table_model):
    model, tokenizer, _ = table_model
    model.train()
    probe = BenfordDigitProbe((model, tokenizer)).fit(["a"])
    assert model.training and probe.model_ is not model and not probe.model_.training
    probe_bf16 = BenfordDigitProbe((model.eval(), tokenizer), dtype="bfloat16").fit(["a"])
    assert model.anchor.dtype == torch.float32
    assert probe_bf16.model_.anchor.dtype == torch.bfloat16


def test_token_tables_of_byte_level_tokenizer(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder).fit(["a"])
    vocab = probe.tokenizer_.get_vocab()
    digit = probe.token_first_digit_
    assert digit[vocab["Ġ12"]] == 1 and digit[vocab["1"]] == 1 and digit[vocab["1,000"]] == 1
    assert digit[vocab["Ġ0"]] == 0 and digit[vocab["0"]] == 0 and digit[vocab["Ġ9"]] == 9
    assert digit[vocab["<|endoftext|>"]] == 0 and digit[vocab["The"]] == 0
    whitespace = set(probe.whitespace_token_ids_.tolist())
    assert {vocab["Ġ"], vocab["Ċ"], vocab["ĉ"]} <= whitespace
    assert vocab["Ġ1"] not in whitespace and vocab["<|endoftext|>"] not in whitespace


def test_token_tables_of_sentencepiece_style_tokenizer():
    """ "▁" marks a leading space that decoding a token alone would drop."""
    vocab = {"<unk>": 0, "▁": 1, "▁1": 2, "1": 3, "a": 4, "▁a": 5, "▁0": 6, "▁▁": 7, "5x": 8}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    model = TableLM(len(vocab), {}, {}).eval()
    probe = BenfordDigitProbe((model, tokenizer)).fit(["a"])
    np.testing.assert_array_equal(probe.token_first_digit_, [0, 0, 1, 1, 0, 0, 0, 0, 5])
    np.testing.assert_array_equal(probe.whitespace_token_ids_, [1, 7])


# ------------------------------------------------------------------------- tiny GPT-2 behaviour
def test_batched_equals_one_at_a_time(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=3, whitespace_tol=0).fit(PROMPTS)
    batched = probe.transform(PROMPTS)
    single = np.vstack([probe.transform([prompt]) for prompt in PROMPTS])
    np.testing.assert_allclose(batched, single, atol=1e-6, rtol=0)
    assert np.ptp(batched, axis=0).max() > 1e-3  # the prompts do differ


TEMPLATED = [
    "According to the annual report published last spring, the town of Hill Valley has a "
    "population of",
    "According to the annual report published last spring, the town of Riverside has a "
    "population of",
    "According to the annual report published last spring, the old bridge is",
    "According to the annual report published last spring, the town of Hill Valley employs",
    "The river is about",
]


@contextlib.contextmanager
def _count_tokens(model):
    """Record how many token positions each forward pass of ``model`` computes; the hook goes
    when the block ends (the loaded model is shared with the other tests)."""
    seen = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"].numel()), with_kwargs=True
    )
    try:
        yield seen
    finally:
        handle.remove()


def test_shared_prefix_groups():
    seqs = [(1, 2, 3, 4, 5, 6), (1, 2, 3, 4, 5, 7, 8), (9, 9), (1, 2, 3, 4, 9), (1, 2, 3, 4, 5, 6, 1)]
    groups = {tuple(sorted(members)): prefix for prefix, members in shared_prefix_groups(seqs, 4)}
    # The three (1, 2, 3, 4, 5, ...) share 5 tokens, saving 2 * 5 = 10; with (1, 2, 3, 4, 9) four
    # share 4, saving 3 * 4 = 12, so it joins. (9, 9) stays alone.
    assert groups == {(0, 1, 3, 4): 4, (2,): 0}
    # Every member keeps at least one token of its own.
    assert shared_prefix_groups([(1, 2, 3, 4, 5), (1, 2, 3, 4, 5, 6)], 4) == [(4, [0, 1])]


def test_shared_prefix_and_duplicates_give_the_same_answer(tiny_lm_folder, monkeypatch):
    prompts = TEMPLATED + TEMPLATED[:2]  # two exact repeats
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=2, whitespace_tol=0).fit(prompts)
    single = np.vstack([probe.transform([prompt]) for prompt in TEMPLATED])
    batched = probe.transform(prompts)
    np.testing.assert_allclose(batched[:5], single, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(batched[5:], batched[:2])

    # Token positions computed for the prompts (whitespace step off): the shared start of the four
    # "According to ..." prompts once, the repeats not at all.
    ids = [tuple(i) for i in probe.tokenizer_(TEMPLATED)["input_ids"]]
    groups = shared_prefix_groups(ids, MIN_SHARED_PREFIX)
    shared = max(groups, key=lambda group: len(group[1]))
    assert sorted(shared[1]) == [0, 1, 2, 3] and shared[0] >= MIN_SHARED_PREFIX
    monkeypatch.setattr(DigitScorer, "_whitespace_step", lambda *args: 0.0)
    with _count_tokens(probe.model_) as seen:
        probe.transform(prompts)
    prefix = shared[0]
    assert seen.count(prefix) >= 1  # the one pass over the shared start
    padded = [padded_length(len(ids[i]) - (prefix if i < 4 else 0)) for i in range(5)]
    assert sum(seen) == prefix + sum(padded)
    assert sum(seen) < sum(padded_length(len(i)) for i in ids)


def test_no_shared_starts_with_sliding_window_attention(tiny_lm_folder, monkeypatch):
    from transformers import GPT2Config, GPTNeoConfig, MistralConfig

    from sklearn_rpf.benford._digit_scoring import _has_sliding_window

    assert not _has_sliding_window(GPT2Config())
    assert _has_sliding_window(MistralConfig()) and _has_sliding_window(GPTNeoConfig())
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=2).fit(TEMPLATED)
    shared = probe.transform(TEMPLATED)
    model = copy.deepcopy(probe.model_)  # the loaded model is cached: leave it as it is
    model.config.sliding_window = 64
    windowed = BenfordDigitProbe((model, probe.tokenizer_), batch_size=2).fit(TEMPLATED)
    monkeypatch.setattr(DigitScorer, "_whitespace_step", lambda *args: 0.0)
    with _count_tokens(model) as seen:
        windowed.transform(TEMPLATED)
    lengths = [len(ids) for ids in probe.tokenizer_(TEMPLATED)["input_ids"]]
    assert sum(seen) == sum(padded_length(n) for n in lengths)  # every prompt in full
    monkeypatch.undo()
    np.testing.assert_allclose(windowed.transform(TEMPLATED), shared, atol=1e-6)


def test_transform_is_deterministic(tiny_lm_folder):
    first = BenfordDigitProbe(tiny_lm_folder, return_numeric_mass=True).fit_transform(PROMPTS)
    second = BenfordDigitProbe(tiny_lm_folder, return_numeric_mass=True).fit_transform(PROMPTS)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first[:, :9].sum(axis=1), 1.0)
    assert np.all((first[:, 9] > 0) & (first[:, 9] < 1))


def test_template_columns_and_pandas_output(tiny_lm_folder):
    X = pd.DataFrame({"city": ["Springfield", "Riverside"], "year": [1990.0, 2012.0]})
    probe = BenfordDigitProbe(
        tiny_lm_folder, template="In {1:.0f} {0} had", return_numeric_mass=True
    ).set_output(transform="pandas")
    out = probe.fit_transform(X)
    assert list(out.columns) == [f"digit_{d}" for d in range(1, 10)] + ["numeric_mass"]
    np.testing.assert_array_equal(probe.feature_names_in_, ["city", "year"])
    as_prompts = BenfordDigitProbe(tiny_lm_folder).fit_transform(
        ["In 1990 Springfield had", "In 2012 Riverside had"]
    )
    np.testing.assert_allclose(out.to_numpy()[:, :9], as_prompts, atol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        probe.transform(X[["city"]])


def test_default_template_joins_values(tiny_lm_folder):
    X = np.array([["Room", 101], ["She ran", 42]], dtype=object)
    joined = BenfordDigitProbe(tiny_lm_folder).fit_transform(X)
    texts = BenfordDigitProbe(tiny_lm_folder).fit_transform(["Room 101", "She ran 42"])
    np.testing.assert_allclose(joined, texts, atol=1e-12)


def test_score_and_grid_search_over_templates(tiny_lm_folder):
    X = np.array([["Springfield"], ["Riverside"], ["Lakeside"], ["Hill Valley"]], dtype=object)
    probe = BenfordDigitProbe(tiny_lm_folder).fit(X)
    assert probe.score(X) == pytest.approx(-mean_absolute_deviation(probe.transform(X)).mean())
    templates = ["{0} has a population of", "The area of {0} is", "{0}"]
    search = GridSearchCV(BenfordDigitProbe(tiny_lm_folder), {"template": templates}, cv=2)
    search.fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["template"] == templates[int(np.argmax(scores))]
    assert np.all(scores <= 0) and len(set(np.round(scores, 12))) == 3


def test_bfloat16_stays_close_to_float32(tiny_lm_folder):
    p32 = BenfordDigitProbe(tiny_lm_folder).fit_transform(PROMPTS)
    probe16 = BenfordDigitProbe(tiny_lm_folder, dtype="bfloat16").fit(PROMPTS)
    p16 = probe16.transform(PROMPTS)
    assert probe16.model_.dtype == torch.bfloat16 and p16.dtype == np.float64
    assert 0 < np.abs(p16 - p32).max() < 0.05


def test_long_prompt_is_cut_from_the_left_with_a_warning(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder).fit(["a"])
    tail = "the bridge is 1 mile long " * 20
    long_prompt = "Room 101 " * 200 + tail
    with pytest.warns(UserWarning, match="context of 256 tokens") as record:
        P = probe.transform([long_prompt])
    assert record[0].filename == __file__  # the caller's line, past set_output's wrapper
    ids = probe.tokenizer_(long_prompt)["input_ids"][-(probe.context_length_ - 1) :]
    cut = probe.tokenizer_.decode(ids)
    np.testing.assert_allclose(P, probe.transform([cut]), atol=1e-6)


def test_verbose_shows_progress(tiny_lm_folder, capsys):
    BenfordDigitProbe(tiny_lm_folder, verbose=1).fit_transform(PROMPTS)
    assert "Scoring prompts" in capsys.readouterr().err


def test_input_is_not_modified(tiny_lm_folder):
    X = np.array([["Room", 101.0], ["She ran", 42.0]], dtype=object)
    before = X.copy()
    BenfordDigitProbe(tiny_lm_folder).fit_transform(X)
    np.testing.assert_array_equal(X, before)


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, error, match",
    [
        ([], ValueError, "0 sample"),
        (np.empty((0, 1), dtype=object), ValueError, "0 sample"),
        ("a single string", ValueError, "single string"),
        (np.array([["Room"], [None]], dtype=object), ValueError, "None"),
        (np.array([["Room"], [{"a": 1}]], dtype=object), TypeError, "dict"),
        (np.array([["Room"], [np.nan]], dtype=object), ValueError, "NaN"),
        (np.array([["Room"], [np.inf]], dtype=object), ValueError, "infinity"),
        (np.array([["Room"], [""]], dtype=object), ValueError, "empty prompt"),
        # A bad cell in a 1-D list is named too, not reported as a shape problem.
        ([None], ValueError, "contains None"),
        ([b"Room"], TypeError, "bytes object"),
        (np.array([b"Room"]), TypeError, "bytes object"),
        # Missing values that scikit-learn's own check cannot even compare.
        (pd.Series(["Room", None], dtype="string"), ValueError, r"pandas.NA, row 1"),
        (pd.DataFrame({"a": pd.Series(["Room", None], dtype="string")}), ValueError, "pandas.NA"),
        ([["Room"], [pd.NA]], ValueError, "pandas.NA"),
        ([[Decimal("sNaN")]], ValueError, "Decimal NaN"),
        ([[Decimal("NaN")]], ValueError, "Decimal NaN"),
        ([[Decimal("Infinity")]], ValueError, "infinity"),
    ],
)
def test_bad_input_gets_a_clear_error(tiny_lm_folder, X, error, match):
    probe = BenfordDigitProbe(tiny_lm_folder)
    with pytest.raises(error, match=match):
        probe.fit_transform(X)


def test_numbers_numpy_cannot_check_are_prompts_too(tiny_lm_folder):
    # Python ints wider than 64 bits, Decimal and Fraction are real numbers: formatted as text.
    X = [[10**30], [Decimal("1.5")], [Fraction(1, 3)], [2**70]]
    probe = BenfordDigitProbe(tiny_lm_folder).fit(X)
    as_text = probe.transform([[str(row[0])] for row in X])
    np.testing.assert_allclose(probe.transform(X), as_text)


@pytest.mark.parametrize(
    "template, match",
    [
        ("{name} has", "not positional"),
        ("{0} and {1}", "column 1 but X has 1"),
        ("{}{}", "column 1"),
    ],
)
def test_bad_template(tiny_lm_folder, template, match):
    with pytest.raises(ValueError, match=match):
        BenfordDigitProbe(tiny_lm_folder, template=template).fit(["Room"])


def test_model_without_tokenizer(tmp_path, table_model):
    folder = save_tiny_gpt2(tmp_path / "tiny")
    for name in os.listdir(folder):
        if name.startswith("tokenizer"):
            os.remove(folder / name)
    with pytest.raises(ValueError, match="No tokenizer could be loaded"):
        BenfordDigitProbe(str(folder)).fit(["a"])
    model, _, _ = table_model
    with pytest.raises(ValueError, match="no usable tokenizer"):
        BenfordDigitProbe((model, None)).fit(["a"])
    with pytest.raises(ValueError, match=r"\(model, tokenizer\)"):
        BenfordDigitProbe((model,)).fit(["a"])


@pytest.mark.parametrize(
    "model, match",
    [
        ("./no/such/folder", "No file or folder"),
        ("missing.gguf", "No file or folder"),
        ("some-org/some-model-that-is-not-cached", "HF_HUB_OFFLINE is set"),
    ],
)
def test_missing_model_fails_fast(model, match, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=match):
        BenfordDigitProbe(model).fit(["a"])
    assert time.perf_counter() - start < 10  # no network retries


def test_unreachable_hub_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    with pytest.raises(ModelNotFoundError, match="cannot be reached"):
        BenfordDigitProbe("some-org/some-model-that-is-not-cached").fit(["a"])


def test_clone_refit_reuses_the_loaded_model(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder).fit(["a"])
    refit = clone(probe).fit(["b"])
    assert refit.model_ is probe.model_  # in-memory cache: estimator checks refit many times


# ------------------------------------------------------------------- the default SmolLM2 model
NUMERIC_PROMPTS = [
    "with a population size of",
    "The city has a population of",
    "The country covers an area of",
    "Last year the company reported revenue of $",
    "The distance from the airport to the hotel is",
    "The price of the new car is $",
    "The lake has a surface area of",
    "The mountain has an elevation of",
    "The stadium has a seating capacity of",
    "The company employs",
    "The book has sold",
    "The galaxy is at a distance of",
    "The file has a size of",
    "The budget for the project was $",
    "The bridge has a total length of",
    "The river is about",
]
NON_NUMERIC_PROMPTS = [
    "My favourite colour is",
    "The capital of France is",
    "She opened the door and",
    "Thank you very much for your",
    "The name of the dog is",
]


@pytest.mark.slow
def test_default_model_is_benford_like():
    from sklearn_rpf.benford._lm_loading import default_model_path
    from sklearn_rpf.benford._model_cache import entry_folder, entry_problem

    probe = BenfordDigitProbe(return_numeric_mass=True).fit(NUMERIC_PROMPTS)
    entry = entry_folder(default_model_path())
    assert (entry / "model.safetensors").is_file() and entry_problem(entry) is None
    P = probe.transform(NUMERIC_PROMPTS + NON_NUMERIC_PROMPTS)
    digits = P[: len(NUMERIC_PROMPTS), :9]
    mad_benford = mean_absolute_deviation(digits).mean()
    mad_uniform = mean_absolute_deviation(digits, expected=np.full(9, 1 / 9)).mean()
    pooled = digits.mean(axis=0)
    non_numeric_mass = P[len(NUMERIC_PROMPTS) :, 9]
    print(
        f"\nmean MAD to Benford {mad_benford:.4f}, to uniform {mad_uniform:.4f} "
        f"(ratio {mad_benford / mad_uniform:.3f}); pooled P(d) {np.round(pooled, 3)}; "
        f"numeric mass of non-numeric prompts {np.round(non_numeric_mass, 4)}"
    )
    assert mad_benford <= 0.5 * mad_uniform
    assert np.argmax(pooled) == 0
    assert np.all(non_numeric_mass < 0.05)


# ------------------------------------------------------------------------ templates, hostile ones
@pytest.mark.parametrize(
    "template, match",
    [
        ("{0.__class__.__new__.__globals__[sys].modules[os].environ[HOME]}", "not positional"),
        ("{0.__class__}", "not positional"),
        ("{0[x]}", "not positional"),
        ("{0!r}", "conversion flag"),
        ("{0!s:>5}", "conversion flag"),
        ("{0:{0.real}}", "not positional"),
        ("{0:{0!r}}", "conversion flag"),
        ("{0:{0:{0}}}", "nested too deeply"),
        ("{0} and {}", "mixes automatic"),
        ("{\u0663}", "not positional"),  # an Arabic-Indic digit
        ("{0", "not a valid format string"),
        ("{0}\ud800", "template is not valid Unicode"),
    ],
)
def test_template_takes_plain_positional_fields_only(tiny_lm_folder, template, match):
    with pytest.raises(ValueError, match=match):
        BenfordDigitProbe(tiny_lm_folder, template=template).fit([["Room"]])


def test_template_cannot_walk_a_cells_attributes(tiny_lm_folder):
    import enum

    class City(enum.StrEnum):
        SPRINGFIELD = "Springfield"

    X = np.array([[City.SPRINGFIELD]], dtype=object)
    probe = BenfordDigitProbe(tiny_lm_folder, template="{0.__class__.__init__.__globals__}")
    with pytest.raises(ValueError, match="not positional"):
        probe.fit(X)
    fitted = BenfordDigitProbe(tiny_lm_folder, template="{0} has").fit(X)
    with pytest.raises(ValueError, match="not positional"):  # set after fit: checked again
        fitted.set_params(template="{0.__class__}").transform(X)
    np.testing.assert_allclose(
        fitted.set_params(template="{0} has").transform(X),
        BenfordDigitProbe(tiny_lm_folder).fit_transform(["Springfield has"]),
        atol=1e-12,
    )


def test_template_with_nested_format_spec(tiny_lm_folder):
    X = np.array([["ab", 5], ["cd", 3]], dtype=object)
    nested = BenfordDigitProbe(tiny_lm_folder, template="Room {0:>{1}} is").fit_transform(X)
    plain = BenfordDigitProbe(tiny_lm_folder).fit_transform(["Room    ab is", "Room  cd is"])
    np.testing.assert_allclose(nested, plain, atol=1e-12)


def test_template_that_cannot_format_a_cell(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder, template="{0:.1f} people")
    with pytest.raises(ValueError, match=r"cannot format row 1 \(\['Room'\]\).*code 'f'"):
        probe.fit_transform(np.array([[1.5], ["Room"]], dtype=object))


# ------------------------------------------------------------------------- more bad input
@pytest.mark.parametrize(
    "X, error, match",
    [
        (["a", None], ValueError, r"contains None \(row 1\)"),
        (("a", None, "b"), ValueError, r"contains None \(row 1\)"),
        (["\ud800"], ValueError, "Row 0 of X is not valid Unicode text.*surrogate"),
        (np.array([["ok"], ["caf\udce9"]], dtype=object), ValueError, "Row 1 of X is not valid"),
        (np.array([[1 + 2j]]), ValueError, "Complex data not supported"),
        ([[1 + 2j, 3.0]], ValueError, "Complex data not supported"),
        (np.array([["a", 1 + 2j]], dtype=object), TypeError, r"complex object \(row 0\)"),
    ],
)
def test_more_bad_input_gets_a_clear_error(tiny_lm_folder, X, error, match):
    with pytest.raises(error, match=match):
        BenfordDigitProbe(tiny_lm_folder).fit_transform(X)


# --------------------------------------------------------------------- set_params after fit
def test_scoring_parameters_apply_at_transform_time(tiny_lm_folder, monkeypatch):
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=32).fit(PROMPTS)
    seen = []
    scoring = DigitScorer.digit_mass
    monkeypatch.setattr(DigitScorer, "digit_mass",
                        lambda self, ids, **kw: seen.append(kw) or scoring(self, ids, **kw))
    exact = probe.set_params(whitespace_tol=0.0, batch_size=2).transform(PROMPTS)
    assert seen[-1] == {"batch_size": 2, "whitespace_tol": 0.0, "verbose": False}
    fresh = BenfordDigitProbe(tiny_lm_folder, whitespace_tol=0.0, batch_size=2).fit(PROMPTS)
    np.testing.assert_array_equal(exact, fresh.transform(PROMPTS))
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="batch_size"):
        probe.set_params(batch_size=0).transform(PROMPTS)


@pytest.mark.filterwarnings("ignore:X has feature names")  # fitted on lists, on purpose
def test_each_cell_is_formatted_as_its_own_column_holds_it(tiny_lm_folder):
    # validate_data turns a mixed DataFrame or nested list into one NumPy dtype: the prompts read
    # "12.0" for 12, "3.0" for a nullable Int64 3, "0.10000000149011612" for a float32 0.1, and
    # "{0:d}" failed on an int column. Each cell now keeps its column's type.
    probe = BenfordDigitProbe(tiny_lm_folder, template="Town {0} has {1} people").fit([["a", 1]])
    text = BenfordDigitProbe(tiny_lm_folder).fit(["x"])
    expected = text.transform(["Town 12 has 0.5 people"])
    frames = [
        pd.DataFrame({"n": [12], "m": [0.5]}),
        pd.DataFrame({"n": pd.array([12], dtype="Int64"), "m": [0.5]}),
        pd.DataFrame({"n": [12], "m": np.float32([0.5])}),
    ]
    for X in (*frames, [[12, 0.5]], ((12, 0.5),)):
        np.testing.assert_array_equal(probe.transform(X), expected)
    np.testing.assert_array_equal(  # "0.1", not "0.10000000149011612"
        probe.transform(pd.DataFrame({"n": [12], "m": np.float32([0.1])})),
        text.transform(["Town 12 has 0.1 people"]))
    # Rows of 0-d tensors are read as numbers, as before.
    np.testing.assert_array_equal(probe.transform([[torch.tensor(12), torch.tensor(0.5)]]),
                                  expected)
    ints = BenfordDigitProbe(tiny_lm_folder, template="{0:d} people").fit([[1]])
    np.testing.assert_array_equal(ints.transform(pd.DataFrame({"n": [12], "m": [0.5]})[["n"]]),
                                  ints.transform(np.array([[12]])))
    both = pd.DataFrame({"n": [12], "m": [0.5]})
    np.testing.assert_array_equal(
        BenfordDigitProbe(tiny_lm_folder, template="{0:d} and {1}").fit(both).transform(both),
        text.transform(["12 and 0.5"]))


def test_a_huge_prompt_is_cut_before_tokenising_with_the_same_last_tokens(tiny_lm_folder):
    from sklearn_rpf.benford._prompts import encode_prompts

    probe = BenfordDigitProbe(tiny_lm_folder).fit(["a"])
    tokenizer, limit = probe.tokenizer_, probe.context_length_ - 1
    seen = []

    class Spy:
        def get_vocab(self):
            return tokenizer.get_vocab()

        def __call__(self, prompts, **kwargs):
            seen.append(list(map(len, prompts)))
            return tokenizer(prompts, **kwargs)

    longest = max(map(len, tokenizer.get_vocab()))
    prompts = [
        "Room 101 has   2 beds.\n" * 20_000 + "the bridge is 1 mile long",  # words: cut
        "x " * 10 + "7" * 60_000,  # one long word at the end: from the break before it
        "a" * 60_000,  # no break at all: tokenised whole
        "She ran 42 miles",  # short: untouched
    ]
    with pytest.warns(UserWarning, match="3 prompt"):
        encoded = encode_prompts(Spy(), prompts, limit + 1)
    for prompt, ids in zip(prompts, encoded, strict=True):
        assert ids == tokenizer(prompt)["input_ids"][-limit:]
    lengths = seen[0]
    assert 4 * limit * longest <= lengths[0] < len(prompts[0]) / 10
    assert lengths[1] == 60_001 and lengths[2:] == [60_000, len(prompts[3])]


def test_long_prompts_take_smaller_passes_with_the_same_numbers(tiny_lm_folder, monkeypatch):
    from sklearn_rpf.benford import _digit_scoring, _kv_cache
    from sklearn_rpf.benford._kv_cache import cache_bytes, select_cache_rows

    prompts = ["word " * k + "with a population size of" for k in (20, 40, 60, 80)] + PROMPTS
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=16).fit(prompts)
    expected = probe.transform(prompts)
    with _count_tokens(probe.model_) as seen:
        probe.transform(prompts)
    widest = max(seen)  # one pass held several long prompts
    # Budgets a long prompt fills alone (a prompt of about 100 tokens): the same numbers, up to
    # float32 rounding in passes of other shapes.
    monkeypatch.setattr(_digit_scoring, "ATTENTION_SCORES_PER_PASS", 100 * 100)
    monkeypatch.setattr(_digit_scoring, "CACHE_BYTES_PER_PASS", 1)
    shapes = []
    handle = probe.model_.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True)
    try:
        np.testing.assert_allclose(probe.transform(prompts), expected, rtol=0, atol=1e-6)
    finally:
        handle.remove()
    long_passes = [rows for rows, width in shapes if width > 48]
    assert long_passes and max(long_passes) == 1 < widest / 100
    assert {rows for rows, width in shapes if width == 1} == {1}  # whitespace step: one pair

    # Selecting cache rows copies those rows only and leaves the batch's cache as it was.
    ids = torch.tensor([probe.tokenizer_("she ran 42 miles")["input_ids"][:4]] * 2)
    ids[1] = ids[1].flip(0)
    with torch.inference_mode():
        cache = probe.model_(input_ids=ids, use_cache=True).past_key_values
    # A length counter that a layer advances in place (LFM2's, Qwen3-Next's linear attention):
    # reorder_cache leaves it shared, so the copy must get its own.
    cache.layers[0].seen = torch.tensor(4)
    before = [t.clone() for t in _kv_cache._cache_tensors(cache)]
    selected = select_cache_rows(cache, torch.tensor([1, 1, 0]))
    counter = cache.layers[0].seen.element_size()
    assert cache_bytes(selected) - counter == (cache_bytes(cache) - counter) * 3 // 2
    torch.testing.assert_close(selected.layers[0].keys[2], cache.layers[0].keys[0], rtol=0, atol=0)
    selected.layers[0].seen.add_(1)
    with torch.inference_mode():  # a pass on the copy: its layers append to their own tensors
        probe.model_(input_ids=ids[:1].repeat(3, 1)[:, :1], use_cache=True,
                     **{probe.scorer_.cache_keyword: selected})
    after = _kv_cache._cache_tensors(cache)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert selected.layers[0].seen == 5 and cache.layers[0].seen == 4

    # A state tuple held in two places comes back as one tuple of clones in both.
    state = (torch.tensor(1),)
    holder = type("Holder", (), {})()
    holder.a, holder.b = state, [state]
    _kv_cache._unshared(holder, torch.clone, {})
    assert holder.a is holder.b[0] and holder.a[0] is not state[0]


def test_fit_checks_the_cells_as_transform_does(tiny_lm_folder):
    # Before, fit loaded the model and only transform refused the cells.
    with pytest.raises(ValueError, match="empty prompt"):
        BenfordDigitProbe(tiny_lm_folder).fit(["a", ""])
    with pytest.raises(ValueError, match="contains None"):
        BenfordDigitProbe(tiny_lm_folder).fit(["a", None])
    waits = pd.DataFrame({"wait": pd.to_timedelta([1.5, 30], unit="D")})
    # A timedelta was written in nanoseconds ("a wait of 129600000000000 nanoseconds").
    with pytest.raises(TypeError, match="contains a timedelta64 object"):
        BenfordDigitProbe(tiny_lm_folder, template="After a wait of {0} the count").fit(waits)
    with pytest.raises(TypeError, match="contains a timedelta64 object"):
        BenfordDigitProbe(tiny_lm_folder).fit(np.array([[np.timedelta64(5, "s")]], dtype=object))


# ------------------------------------------------------- a hostile review's findings (stop 28)
def test_no_digit_mass_is_nan_with_a_warning_not_a_uniform_row():
    # A model that never continues with a digit: P(d) is 0 / 0. It was 1/9 for every digit,
    # silently, and score counted it as the uniform distribution's MAD.
    tokenizer = table_tokenizer()
    probe = BenfordDigitProbe((TableLM(len(tokenizer), {}, {}).eval(), tokenizer),
                              return_numeric_mass=True).fit(["a"])
    with pytest.warns(UserWarning, match="no probability to a first digit 1-9 after 2 of 2") as w:
        P = probe.transform(["a", "b a"])
    assert w[0].filename == __file__
    assert np.isnan(P[:, :9]).all() and np.array_equal(P[:, 9], [0.0, 0.0])
    with pytest.warns(UserWarning, match="no probability"):
        assert np.isnan(probe.score(["a"]))


def test_nan_from_the_model_is_an_error(tiny_lm_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_lm_folder)).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight[0] = float("nan")  # a broken checkpoint
    probe = BenfordDigitProbe((model, AutoTokenizer.from_pretrained(str(tiny_lm_folder))))
    with pytest.raises(ValueError, match="returned NaN or infinite probabilities after 2 of 2"):
        probe.fit(PROMPTS[:2]).transform(PROMPTS[:2])
    with pytest.raises(ValueError, match="returned NaN or infinite"):
        probe.score(PROMPTS[:2])


def test_templates_that_leave_columns_out_warn(tiny_lm_folder):
    rows = [["Springfield", 1], ["Riverside", 999]]
    with pytest.warns(UserWarning, match="has no field: every row of X gives the same prompt") as w:
        BenfordDigitProbe(tiny_lm_folder, template="Population:").fit(rows)
    assert w[0].filename == __file__
    with pytest.warns(UserWarning, match=r"uses column\(s\) \[0\] of X's 2; column\(s\) \[1\]"):
        BenfordDigitProbe(tiny_lm_folder, template="{0} has").fit(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BenfordDigitProbe(tiny_lm_folder, template="{1:.0f} {0} has").fit(rows)
        BenfordDigitProbe(tiny_lm_folder).fit(rows)  # no template: every value joined


def test_a_callers_autocast_does_not_change_the_probabilities(tiny_lm_folder):
    # Inside torch.autocast the language model ran in bfloat16: probabilities moved by 0.002.
    prompts = ["The city has a population of", "Room 101 is on floor"]
    expected = BenfordDigitProbe(tiny_lm_folder).fit(prompts).transform(prompts)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = BenfordDigitProbe(tiny_lm_folder).fit(prompts).transform(prompts)
    np.testing.assert_array_equal(got, expected)


@needs_string_dtype
def test_string_dtype_prompts_read_as_text(tiny_lm_folder):
    # NumPy 2's StringDType: a 1-D array was "Expected 2D array", a column scikit-learn's
    # "dtype argument must be a NumPy dtype".
    prompts = ["The city has a population of", "Room 101 is on floor"]
    probe = BenfordDigitProbe(tiny_lm_folder).fit(prompts)
    expected = probe.transform(prompts)
    text = np.array(prompts, dtype=STRING_DTYPE())
    for X in (text, text[:, None]):
        np.testing.assert_array_equal(probe.transform(X), expected)
        np.testing.assert_array_equal(BenfordDigitProbe(tiny_lm_folder).fit(X).transform(X),
                                      expected)


@pytest.mark.filterwarnings("ignore:X has feature names")
def test_prompts_do_not_follow_the_callers_print_options(tiny_lm_folder):
    # np.set_printoptions(legacy="1.13") wrote 123456789.123456 as "123456789.123" in prompts.
    text = BenfordDigitProbe(tiny_lm_folder).fit(["x"])
    expected = [text.transform([prompt])[0]  # each alone, as below
                for prompt in ("Town of 123456789.123456 people", "123456789.123456 people")]
    with np.printoptions(legacy="1.13"):
        for template, X in (("Town of {0} people", pd.DataFrame({"n": [123456789.123456]})),
                            (None, pd.DataFrame({"n": [123456789.123456], "w": ["people"]}))):
            probe = BenfordDigitProbe(tiny_lm_folder, template=template).fit(X)
            got = probe.transform(X)
            row = 0 if template else 1
            np.testing.assert_array_equal(got[0], expected[row])
