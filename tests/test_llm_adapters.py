"""LoRA adapters in llama.cpp: a peft adapter converted to GGUF changes llama.cpp's next-token
distribution the way peft changes transformers' (the independent truth: the same base weights with
the same LoRA in torch), bundled names resolve, and a bad adapter is a clear error."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from plyground import agents
from plyground.agents.llm.adapters import (
    AdapterError, bundled_adapters, check_adapter, lora_to_gguf, resolve_adapter,
)
from plyground.agents.llm.local import LocalBackend, default_gguf_path
from plyground.agents.params import AgentSpecError

TEXT = ("<|im_start|>user\nLegal moves: 1, 2, 3, 4, 5, 6, 7\nBoard:\n.......\n...x...\n"
        "o to move. Move?<|im_end|>\n<|im_start|>assistant\n")


def _logp(x):
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def _cpp_logp(base: str, adapter: str | None, tokens=None):
    from llama_cpp import Llama
    m = Llama(base, n_ctx=256, n_threads=1, logits_all=True, verbose=False, lora_path=adapter)
    try:
        toks = tokens or m.tokenize(TEXT.encode(), add_bos=False, special=True)
        m.eval(toks)
        return toks, _logp(m.scores[len(toks) - 1])
    finally:
        m.close()


@pytest.fixture(scope="module")
def random_lora(tmp_path_factory):
    """A peft LoRA with random A and B on the query and key projections only (where the GGUF row
    permutation matters) and on one MLP matrix, saved next to transformers' logits with and without it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    base = default_gguf_path()
    hf = AutoModelForCausalLM.from_pretrained(os.path.dirname(base), gguf_file=os.path.basename(base),
                                              dtype=torch.float32)
    toks, _ = _cpp_logp(base, None)
    with torch.no_grad():
        plain = _logp(hf(torch.tensor([toks])).logits[0, -1].numpy())
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "up_proj"], init_lora_weights=False)
    pm = get_peft_model(hf, cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.mul_(4.0 if "lora_B" in name else 1.0)
        tuned = _logp(pm(torch.tensor([toks])).logits[0, -1].numpy())
    d = tmp_path_factory.mktemp("lora")
    pm.save_pretrained(d / "peft")
    return {"dir": d, "peft": d / "peft", "tokens": toks, "plain": plain, "tuned": tuned, "base": base}


def test_converted_adapter_matches_peft_in_transformers(random_lora):
    r = random_lora
    out = lora_to_gguf(r["peft"], r["dir"] / "a.gguf", r["base"], dtype="f32")
    meta = check_adapter(str(out), r["base"])
    assert meta["adapter.lora.alpha"] == 8.0
    _, cpp_plain = _cpp_logp(r["base"], None, r["tokens"])
    _, cpp_tuned = _cpp_logp(r["base"], str(out), r["tokens"])
    top = np.argsort(-r["tuned"])[:10]
    # the LoRA moves the distribution far more than llama.cpp and torch differ on the same weights
    moved = np.abs(r["tuned"][top] - r["plain"][top]).max()
    assert moved > 1.0
    assert np.abs(cpp_plain[top] - r["plain"][top]).max() < 0.5 * moved
    # with the adapter, llama.cpp follows peft: close to the tuned distribution, far from the plain one
    err = np.abs(cpp_tuned[top] - r["tuned"][top]).max()
    assert err < 0.25 * moved, (err, moved)
    assert int(np.argmax(cpp_tuned)) == int(np.argmax(r["tuned"]))


def test_without_the_query_key_permutation_llamacpp_disagrees(random_lora, monkeypatch):
    """The permutation is needed: skipping it (a plausible converter bug) gives another distribution."""
    from plyground.agents.llm import adapters
    r = random_lora
    monkeypatch.setattr(adapters, "_permute_rows", lambda w, n: w)
    out = lora_to_gguf(r["peft"], r["dir"] / "noperm.gguf", r["base"], dtype="f32")
    _, wrong = _cpp_logp(r["base"], str(out), r["tokens"])
    monkeypatch.undo()
    good = lora_to_gguf(r["peft"], r["dir"] / "perm.gguf", r["base"], dtype="f32")
    _, right = _cpp_logp(r["base"], str(good), r["tokens"])
    top = np.argsort(-r["tuned"])[:10]
    assert np.abs(wrong[top] - r["tuned"][top]).max() > 2 * np.abs(right[top] - r["tuned"][top]).max()


def test_f16_adapter_is_half_the_size_and_plays_the_same(random_lora):
    r = random_lora
    a32 = lora_to_gguf(r["peft"], r["dir"] / "a32.gguf", r["base"], dtype="f32")
    a16 = lora_to_gguf(r["peft"], r["dir"] / "a16.gguf", r["base"])
    assert os.path.getsize(a16) < 0.6 * os.path.getsize(a32)
    _, l32 = _cpp_logp(r["base"], str(a32), r["tokens"])
    _, l16 = _cpp_logp(r["base"], str(a16), r["tokens"])
    top = np.argsort(-l32)[:10]
    moved = np.abs(l32[top] - r["plain"][top]).max()
    # llama.cpp multiplies f16 matrices with f16-rounded activations: small next to what the adapter does
    assert np.abs(l32[top] - l16[top]).max() < 0.25 * moved


def test_bundled_adapter_resolves_and_fits_the_bundled_model():
    assert "connect4" in bundled_adapters()
    path = resolve_adapter("connect4")
    # a LoRA of a few MB (r 16 in f16 is under 10 MB), not a copy of the ~100 MB base model
    assert Path(path).is_file() and Path(path).stat().st_size < 12_000_000
    meta = check_adapter(path, default_gguf_path())
    assert meta["general.type"] == "adapter"


def test_bad_adapters_are_clear_errors(tmp_path):
    with pytest.raises(AdapterError, match="neither a bundled adapter .*connect4"):
        resolve_adapter("no-such-adapter")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(AdapterError, match="not a readable GGUF"):
        check_adapter(str(junk), default_gguf_path())
    # the base model itself is a GGUF but not an adapter
    with pytest.raises(AdapterError, match="not a LoRA adapter"):
        check_adapter(default_gguf_path(), default_gguf_path())
    with pytest.raises(ValueError, match="adapter"):
        LocalBackend(adapter="no-such-adapter")
    a = agents.make("llm:adapter=no-such-adapter")
    with pytest.raises(AgentSpecError, match="no-such-adapter"):
        _ = a.backend
    with pytest.raises(AgentSpecError, match="adapter"):
        agents.make("llm:backend=openai,base_url=http://127.0.0.1:1/v1,model=x,adapter=connect4")


def test_transformers_adapter_without_peft_is_a_clear_error(tmp_path, monkeypatch):
    # a peft adapter directory for the transformers backend; peft made unimportable (the one fault here
    # that cannot be caused otherwise: the test environment has peft)
    model, adapter = tmp_path / "model", tmp_path / "adapter"
    model.mkdir(), adapter.mkdir()
    (model / "config.json").write_text("{}")
    (adapter / "adapter_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "peft", None)
    a = agents.make(f"llm:backend=transformers,model={model},adapter={adapter}")
    with pytest.raises(AgentSpecError, match="needs peft, which is not installed"):
        _ = a.backend
