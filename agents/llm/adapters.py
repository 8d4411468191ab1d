"""LoRA adapters for the ``local`` backend: the bundled ones, and peft adapters converted to GGUF.

llama.cpp applies a LoRA adapter stored as GGUF (``general.type = adapter``) on top of the base
model it was trained from, quantised or not, so a fine-tune ships as a few megabytes instead of a
whole model.  ``llm:adapter=connect4`` plays the bundled SmolLM2-135M with the adapter
``agents/llm/adapters/connect4.gguf`` (trained by ``plyground train llm
examples/llm_sft_connect4.toml``); ``adapter=PATH.gguf`` takes any adapter file.

``lora_to_gguf(peft_dir, out, base_gguf)`` converts a peft LoRA adapter of a Llama-architecture
model (the bundled SmolLM2 is one) into that format.  It follows llama.cpp's own converter
(``convert_lora_to_gguf.py``): tensors are named after the base GGUF's (``blk.N.attn_q.weight``
+ ``.lora_a`` / ``.lora_b``), ``lora_a`` is peft's ``lora_A`` (rank x inputs) and ``lora_b`` its
``lora_B`` (outputs x rank), and the alpha goes in the metadata (llama.cpp scales by alpha / rank,
as peft does).  The one twist: llama.cpp's converter permutes the rows of the query and key
projections of Llama models (its rotary-embedding layout), and transformers undoes that when it
loads a GGUF, so ``lora_B`` of ``q_proj`` and ``k_proj`` -- whose rows are those outputs -- is
permuted the same way here.

>>> from plyground.agents.llm.adapters import bundled_adapters
>>> "connect4" in bundled_adapters()
True
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ADAPTERS_DIR", "AdapterError", "bundled_adapters", "resolve_adapter", "check_adapter",
           "adapter_digest", "lora_to_gguf"]

ADAPTERS_DIR = Path(__file__).with_name("adapters")
_SUPPORTED_ARCHS = ("llama",)          # architectures whose tensor layout this converter knows


class AdapterError(ValueError):
    """An adapter that cannot be found, read, converted or applied to the chosen base model."""


def bundled_adapters() -> list[str]:
    """Names of the adapters shipped with plyground (``adapter=NAME``)."""
    return sorted(p.stem for p in ADAPTERS_DIR.glob("*.gguf"))


def resolve_adapter(value: str | os.PathLike) -> str:
    """A bundled adapter's name or a path to a GGUF adapter file -> the file's path."""
    text = os.fspath(value)
    if text in bundled_adapters():
        return str(ADAPTERS_DIR / f"{text}.gguf")
    if os.path.isfile(text):
        return text
    names = ", ".join(bundled_adapters()) or "none"
    raise AdapterError(f"adapter {text!r} is neither a bundled adapter ({names}) nor a GGUF adapter file")


def adapter_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of an adapter file's sha256 (what answer caches key on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _fields(path: str) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """A GGUF file's metadata (scalars and strings) and its tensors' shapes (numpy order)."""
    import gguf
    try:
        r = gguf.GGUFReader(path)
    except Exception as e:          # a truncated or foreign file: gguf raises several kinds
        raise AdapterError(f"{path!r} is not a readable GGUF file ({type(e).__name__}: {e})") from None
    meta: dict[str, Any] = {}
    for k, f in r.fields.items():
        if k.startswith("tokenizer.") or k.startswith("GGUF."):
            continue
        try:
            meta[k] = f.contents()
        except Exception:           # arrays of arrays etc.: not needed here
            continue
    shapes = {t.name: tuple(int(x) for x in reversed(t.shape)) for t in r.tensors}
    return meta, shapes


def check_adapter(adapter: str, base: str) -> dict[str, Any]:
    """Check that ``adapter`` is a LoRA adapter GGUF that fits the base model GGUF ``base`` (same
    architecture; every adapted tensor exists in the base with matching shapes); returns the
    adapter's metadata.  llama.cpp's own failure here would be a bare "failed to load"."""
    meta, shapes = _fields(adapter)
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise AdapterError(f"{adapter!r} is not a LoRA adapter GGUF (general.type="
                           f"{meta.get('general.type')!r}, adapter.type={meta.get('adapter.type')!r})")
    bmeta, bshapes = _fields(base)
    if meta.get("general.architecture") != bmeta.get("general.architecture"):
        raise AdapterError(f"adapter {Path(adapter).name!r} is for a {meta.get('general.architecture')!r} "
                           f"model, the base {Path(base).name!r} is {bmeta.get('general.architecture')!r}")
    for name, shape in shapes.items():
        stem, _, kind = name.rpartition(".")
        target = bshapes.get(stem)
        if target is None:
            raise AdapterError(f"adapter {Path(adapter).name!r} adapts {stem!r}, which the base "
                               f"{Path(base).name!r} does not have: it was trained from another model")
        want = len(shape) == 2 and ((shape[1] == target[1]) if kind == "lora_a" else (shape[0] == target[0]))
        if not want:
            raise AdapterError(f"adapter {Path(adapter).name!r}: {name} has shape {shape}, which does not fit "
                               f"{stem} {target} of the base {Path(base).name!r}: it was trained from another model")
    return meta


def _permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's Llama q/k row permutation (halves of each head's rotary pairs interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def lora_to_gguf(peft_dir: str | os.PathLike, out: str | os.PathLike, base_gguf: str | os.PathLike,
                 dtype: str = "f16", name: str | None = None) -> Path:
    """Convert the peft LoRA adapter in ``peft_dir`` (``adapter_config.json`` +
    ``adapter_model.safetensors``) of a model loaded from ``base_gguf`` into a llama.cpp adapter
    GGUF at ``out`` (``dtype`` f16 or f32 tensors); returns ``out``.  Written to a temporary file
    first, so ``out`` is either the whole adapter or absent."""
    import gguf
    from safetensors.numpy import load_file

    peft_dir, out, base_gguf = Path(peft_dir), Path(out), str(base_gguf)
    if dtype not in ("f16", "f32"):
        raise AdapterError(f"dtype {dtype!r} is not allowed; allowed: f16, f32")
    try:
        cfg = json.loads((peft_dir / "adapter_config.json").read_text())
        tensors = load_file(str(peft_dir / "adapter_model.safetensors"))
    except (OSError, json.JSONDecodeError) as e:
        raise AdapterError(f"{str(peft_dir)!r} is not a peft adapter directory ({e})") from None
    if cfg.get("peft_type") != "LORA":
        raise AdapterError(f"{str(peft_dir)!r} holds a {cfg.get('peft_type')!r} adapter; only LoRA converts")
    if cfg.get("use_rslora") or cfg.get("use_dora") or cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise AdapterError(f"{str(peft_dir)!r}: rsLoRA, DoRA and per-module ranks or alphas have no llama.cpp "
                           "adapter form; train a plain LoRA")
    bmeta, bshapes = _fields(base_gguf)
    arch = bmeta.get("general.architecture")
    if arch not in _SUPPORTED_ARCHS:
        raise AdapterError(f"base {Path(base_gguf).name!r} is a {arch!r} model; the converter knows "
                           f"{', '.join(_SUPPORTED_ARCHS)}")
    n_head = int(bmeta[f"{arch}.attention.head_count"])
    n_kv = int(bmeta.get(f"{arch}.attention.head_count_kv", n_head))
    n_blocks = int(bmeta[f"{arch}.block_count"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    np_dtype = np.float16 if dtype == "f16" else np.float32

    writer_rows: list[tuple[str, np.ndarray]] = []
    for key in sorted(tensors):
        if ".lora_A." not in key and ".lora_B." not in key:
            raise AdapterError(f"{str(peft_dir)!r}: tensor {key!r} is not a LoRA matrix (trained embeddings or "
                               "modules_to_save have no llama.cpp adapter form)")
        kind = "lora_a" if ".lora_A." in key else "lora_b"
        module = key.split(".lora_")[0]
        module = module[len("base_model.model."):] if module.startswith("base_model.model.") else module
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None or target not in bshapes:
            raise AdapterError(f"{str(peft_dir)!r}: {module!r} has no tensor in the base {Path(base_gguf).name!r}")
        w = tensors[key].astype(np.float32)
        if kind == "lora_b" and module.endswith("self_attn.q_proj"):
            w = _permute_rows(w, n_head)
        elif kind == "lora_b" and module.endswith("self_attn.k_proj"):
            w = _permute_rows(w, n_kv)
        writer_rows.append((f"{target}.{kind}", w.astype(np_dtype)))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg.get("lora_alpha", cfg.get("r", 8))))
    w.add_name(name or out.stem)
    w.add_string("plyground.base_model", Path(base_gguf).name)
    for tname, arr in writer_rows:
        w.add_tensor(tname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)
    return out
