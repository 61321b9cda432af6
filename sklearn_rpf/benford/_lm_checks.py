"""What a loaded language model must be before it scores anything: its own weights in memory,
and a causal LM that returns next-token logits with a KV cache."""

import torch

from ._kv_cache import cache_keyword


def in_memory(model):
    """Weights copied out of the memory-mapped safetensors file: a model read in place would
    change, silently, when the file is rewritten (and crash when it is truncated)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:  # tied weights appear once
            tensor.data = tensor.data.clone()
    return model


def check_causal_lm(model, tokenizer, description):
    """Fail at fit, in plain words, when ``model`` cannot score a next token with a KV cache:
    a base model without a language-modelling head, a classifier, an encoder."""
    ids = tokenizer.encode("1", add_special_tokens=False)[:1] or [0]
    device = next(iter(model.parameters()), torch.empty(0)).device
    try:
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=device), use_cache=True)
        logits, cache = getattr(out, "logits", None), getattr(out, cache_keyword(model), None)
        ok = isinstance(logits, torch.Tensor) and logits.dim() == 3 and cache is not None
    except Exception:  # noqa: BLE001 - any failure means "not a usable causal LM"
        ok = False
    if not ok:
        raise ValueError(
            f"{description} is not a causal language model with a KV cache: a forward pass must "
            "return next-token logits for every token and past_key_values (e.g. a "
            "...ForCausalLM model such as GPT2LMHeadModel, not GPT2Model or an encoder)."
        )
