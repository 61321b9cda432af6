"""Pickling a fitted probe by reference to its model, and cloning without copying weights."""

import pickle
import shutil
from dataclasses import replace

import numpy as np
import pytest
from lm_fixtures import save_tiny_gguf, save_tiny_gpt2
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_rpf.benford import BenfordDigitProbe, _lm_loading, _model_cache
from sklearn_rpf.benford._lm_loading import (
    ModelChangedError,
    ModelNotFoundError,
    _folder_fingerprint,
    clear_memory_cache,
)

PROMPTS = ["The city has a population of", "Room 101 is on floor", "She ran 42 km in"]


@pytest.fixture
def own_folder(tmp_path):
    """A tiny GPT-2 folder this test may change or delete."""
    yield save_tiny_gpt2(tmp_path / "model")
    clear_memory_cache()


def test_pickles_by_reference_and_reloads_on_first_use(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder, template="{0} has", batch_size=2).fit([["The town"]])
    P = probe.transform([["The town"], ["Room 101"]])
    data = pickle.dumps(probe)
    assert len(data) < 20_000  # the tiny model's weights alone are larger
    clear_memory_cache()  # as in a fresh process: the model comes back from its folder
    restored = pickle.loads(data)
    assert "model_" not in vars(restored)  # nothing loaded until it is used
    np.testing.assert_array_equal(restored.transform([["The town"], ["Room 101"]]), P)
    assert restored.model_ is not probe.model_ and restored.batch_size == 2
    assert restored.token_first_digit_.shape == probe.token_first_digit_.shape
    assert len(pickle.dumps(restored)) < 20_000  # and it pickles small again
    assert probe.model_ is not None  # pickling did not strip the original


def test_gguf_probe_pickles_by_reference(tmp_path, monkeypatch):
    monkeypatch.setenv(_model_cache.CACHE_ENV, str(tmp_path / "cache"))
    gguf_file = save_tiny_gguf(tmp_path / "tiny.gguf")
    probe = BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
    data = pickle.dumps(probe)
    assert len(data) < 20_000
    clear_memory_cache()
    np.testing.assert_array_equal(pickle.loads(data).transform(PROMPTS), probe.transform(PROMPTS))
    clear_memory_cache()


def test_changed_model_is_an_error_at_use_time(own_folder):
    data = pickle.dumps(BenfordDigitProbe(str(own_folder)).fit(PROMPTS))
    save_tiny_gpt2(own_folder, seed=1)  # other weights at the same place
    clear_memory_cache()
    restored = pickle.loads(data)  # unpickling itself works
    with pytest.raises(ModelChangedError, match=rf"fitted with {own_folder}.*differs.*Refit"):
        restored.transform(PROMPTS)


def test_documentation_beside_the_model_is_not_a_change(own_folder):
    # A model card, a licence or git metadata added next to the weights: the model is the same.
    probe = BenfordDigitProbe(str(own_folder)).fit(PROMPTS)
    data = pickle.dumps(probe)
    (own_folder / "README.md").write_text("# My model\n")
    (own_folder / "LICENSE").write_text("MIT\n")
    (own_folder / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    clear_memory_cache()
    np.testing.assert_array_equal(pickle.loads(data).transform(PROMPTS), probe.transform(PROMPTS))
    (own_folder / "tokenizer_config.json").write_text("{}")  # a file transformers reads
    clear_memory_cache()
    with pytest.raises(ModelChangedError, match="differs"):
        pickle.loads(data).transform(PROMPTS)


def test_fingerprint_over_every_file_from_earlier_versions_still_matches(own_folder):
    (own_folder / "README.md").write_text("# My model\n")
    probe = BenfordDigitProbe(str(own_folder)).fit(PROMPTS)
    every_file = sorted(p for p in own_folder.iterdir() if p.is_file())
    legacy = _folder_fingerprint(own_folder, every_file)  # how a folder was fingerprinted
    assert legacy != probe._model_reference.fingerprint
    probe._model_reference = replace(probe._model_reference, fingerprint=legacy)
    data = pickle.dumps(probe)
    clear_memory_cache()
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.transform(PROMPTS), probe.transform(PROMPTS))
    assert restored._model_reference.fingerprint != legacy  # re-pickles with today's fingerprint
    (own_folder / "README.md").write_text("# Edited\n")  # the old fingerprint covered it
    clear_memory_cache()
    with pytest.raises(ModelChangedError, match="differs"):
        pickle.loads(data).transform(PROMPTS)


def test_changed_gguf_is_refused_before_it_is_converted(tmp_path, monkeypatch):
    monkeypatch.setenv(_model_cache.CACHE_ENV, str(tmp_path / "cache"))
    gguf_file = save_tiny_gguf(tmp_path / "tiny.gguf")
    data = pickle.dumps(BenfordDigitProbe(str(gguf_file)).fit(PROMPTS))
    save_tiny_gguf(gguf_file, seed=1)  # other weights in the same file
    clear_memory_cache()

    def no_conversion(*args, **kwargs):
        raise AssertionError("the changed file was converted before it was refused")

    monkeypatch.setattr(_lm_loading, "cached_conversion", no_conversion)
    with pytest.raises(ModelChangedError, match=rf"fitted with {gguf_file}.*differs"):
        pickle.loads(data).transform(PROMPTS)
    clear_memory_cache()


def test_missing_model_is_an_error_at_use_time(own_folder):
    data = pickle.dumps(BenfordDigitProbe(str(own_folder)).fit(PROMPTS))
    shutil.rmtree(own_folder)
    clear_memory_cache()
    restored = pickle.loads(data)
    with pytest.raises(ModelNotFoundError, match=rf"pickled with a reference to {own_folder}"):
        restored.transform(PROMPTS)


def test_in_memory_model_pickles_its_weights(tiny_lm_folder):
    fitted = BenfordDigitProbe(tiny_lm_folder).fit(["a"])
    pair = (fitted.model_, fitted.tokenizer_)
    probe = BenfordDigitProbe(pair).fit(PROMPTS)
    restored = pickle.loads(pickle.dumps(probe))
    assert restored.model_ is not fitted.model_  # a copy of the weights travelled
    np.testing.assert_array_equal(restored.transform(PROMPTS), probe.transform(PROMPTS))


def test_clone_shares_an_in_memory_model(tiny_lm_folder):
    fitted = BenfordDigitProbe(tiny_lm_folder).fit(["a"])
    probe = BenfordDigitProbe((fitted.model_, fitted.tokenizer_), template="{0} is").fit([["x"]])
    probe.set_output(transform="pandas")
    copy = clone(probe)
    assert copy.model[0] is probe.model[0] and copy.model[1] is probe.model[1]
    assert copy.get_params()["template"] == "{0} is" and not hasattr(copy, "n_features_in_")
    assert list(copy.fit_transform([["x"]]).columns)[0] == "digit_1"  # output config kept
    # No grid-search fold copies the model either.
    X = np.array([["Springfield"], ["Riverside"], ["Lakeside"], ["Hill Valley"]], dtype=object)
    search = GridSearchCV(BenfordDigitProbe((fitted.model_, fitted.tokenizer_)),
                          {"template": ["{0} has", "{0}"]}, cv=2).fit(X)
    assert search.best_estimator_.model[0] is fitted.model_
    assert search.best_estimator_.model_ is fitted.model_  # eval mode, float32: no copy needed


def test_clone_of_a_named_model_copies_parameters_only(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=3).fit(["a"])
    copy = clone(probe)
    assert copy.get_params() == probe.get_params() and not hasattr(copy, "scorer_")
