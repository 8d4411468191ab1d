"""LLM agents: ``llm`` (the model alone), ``llm-minimax`` (PokéChamp-style alpha-beta) and
``llm-mcts`` (PUCT with the LLM's prior).

>>> from plyground import agents
>>> a = agents.make("llm-minimax:depth=2,k=3,n_threads=1")        # the bundled SmolLM2-135M
>>> a = agents.make("llm:adapter=connect4")        # ... with its LoRA fine-tuned on connect four
>>> a = agents.make("llm:backend=openai,base_url=http://127.0.0.1:8000/v1,model=qwen2.5-7b,"
...                 "api_key_env=OPENAI_API_KEY")                 # any OpenAI-compatible server

All three take ``backend=local|openai|transformers`` and the backend's options (``model``,
``adapter``, ``base_url``, ``api_key_env``, ``n_threads``, ``n_ctx``, ``cache``, ``timeout``,
``call_retries``...) in the spec, or in a table (``{"name": "llm", "backend": {"name": "openai",
"base_url": ...}}`` works too); they go to ``plyground.agents.llm.backends.make_backend``.  The
key itself is never a parameter: ``api_key_env`` names the environment variable holding it.

Each Decision's ``llm`` section holds the move's calls, cache hits, tokens, latency, every call's
raw reply and parsed move (or the score method and the top moves) and the errors;
``Decision.fallback`` names any fallback taken.  An unreachable backend raises
``InfrastructureError`` (the arena aborts the game); any other LLM failure is a fallback.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Any, Mapping

from plyground.agents.base import Agent, merged_seed
from plyground.agents.decision import Decision
from plyground.agents.params import AgentSpecError, Param
from plyground.games.errors import PlygroundError, UnsupportedGameError

# backend options an agent passes through (agent parameter -> make_backend option)
BACKEND_PARAMS: dict[str, Param] = {
    "backend": Param(str, "local", "LLM backend", choices=("local", "openai", "transformers")),
    "model": Param(str, None, "GGUF path (local), served model name (openai) or model directory (transformers)"),
    "adapter": Param(str, None, "LoRA adapter on the model: a bundled name (connect4: SmolLM2 fine-tuned on connect "
                     "four) or a GGUF adapter file (local); a peft adapter directory (transformers)"),
    "base_url": Param(str, None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (openai)"),
    "api_key_env": Param(str, None, "name of the environment variable holding the API key (openai)"),
    "n_threads": Param(int, None, "CPU threads for the model (local; default 1)", min=1),
    "n_ctx": Param(int, None, "context length in tokens (local)", min=16),
    "cache": Param(str, None, "SQLite answer cache path ('true': the default path); unset = no cache"),
    "timeout": Param(float, None, "seconds per backend call attempt", min=0.0),
    "call_retries": Param(int, None, "backend retries on transport errors (HTTP 5xx, timeouts)", min=0),
    "concurrency": Param(int, None, "simultaneous calls to the endpoint (openai)", min=1),
    "score_method": Param(str, None, "how the openai backend scores moves (default auto: the first that works)",
                          choices=("auto", "logprobs", "top_logprobs", "sample")),
}
_PASS_THROUGH = {"model": "model", "adapter": "adapter", "base_url": "base_url", "api_key_env": "api_key_env",
                 "n_threads": "n_threads", "n_ctx": "n_ctx", "cache": "cache", "timeout": "timeout",
                 "call_retries": "retries", "concurrency": "concurrency", "score_method": "score_method"}

PROMPT_PARAMS: dict[str, Param] = {
    "templates": Param(str, None, "prompt template file (TOML or plain text with {placeholders})"),
    "history": Param(int, 2, "recent moves shown in prompts (plies)", min=0),
    "temperature": Param(float, 1.0, "softmax temperature of the move and outcome distributions", min=1e-6),
    "max_failures": Param(int, 2, "failed LLM calls in one move before the roles stop calling (fallbacks)",
                          min=1),
}

ROLE_NAMES = ("propose", "opponent", "value")


def _flatten_backend_table(params: dict[str, Any]) -> dict[str, Any]:
    """``backend = {name = "openai", base_url = ...}`` (a TOML sub-table) -> flat parameters."""
    b = params.get("backend")
    if isinstance(b, Mapping):
        params = dict(params)
        table = dict(b)
        params["backend"] = table.pop("name", "local")
        for k, v in table.items():
            if k in params:
                raise AgentSpecError(f"backend option {k!r} is given both in the backend table and outside it")
            params[k] = v
    return params


class LLMAgentBase(Agent):
    """Shared machinery: the backend (built on first use), the prompt templates and the call log."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**_flatten_backend_table(params))
        from plyground.agents.llm.roles import CallLog
        self._backend = None
        self._templates = None
        self.log = CallLog(max_failures=self.params["max_failures"])
        self._seed = self.params.get("seed")
        self._run_seed = self._seed            # the agent's seed merged with the game's (reset)
        self.rng = random.Random(self._seed)
        self._sec_per_char = 0.0               # seconds to read a prompt character uncached (warm_up measures it)
        self._paces: deque[float] = deque(maxlen=8)  # seconds per prompt character of the latest calls
        if self.params["templates"]:
            self._templates = self._load_templates()
        self._check_backend_options()

    # ------------------------------------------------------------------ set-up
    def _load_templates(self):
        from plyground.agents.llm.prompts import load_templates
        return load_templates(self.params["templates"])

    def backend_options(self) -> dict[str, Any]:
        """The options for ``make_backend`` (only those given)."""
        opts: dict[str, Any] = {}
        for key, opt in _PASS_THROUGH.items():
            v = self.params.get(key)
            if v is None:
                continue
            if key == "cache" and str(v).strip().lower() in ("true", "yes", "1", "on"):
                v = True
            elif key == "cache" and str(v).strip().lower() in ("false", "no", "0", "off", ""):
                continue
            opts[opt] = v
        return opts

    def _check_backend_options(self) -> None:
        from plyground.agents.llm.backends import backend_options
        name = self.params["backend"]
        allowed = backend_options(name)
        for key, opt in _PASS_THROUGH.items():
            if self.params.get(key) is not None and opt not in allowed:
                ok = [k for k, o in _PASS_THROUGH.items() if o in allowed]
                raise AgentSpecError(f"agent {self.name!r}: {key}={self.params[key]!r} is not an option of the "
                                     f"{name!r} backend; its options: {', '.join(ok)}")

    @property
    def backend(self):
        """The LLM backend, created on first use (model loading is shared per process)."""
        if self._backend is None:
            from plyground.agents.llm.backends import make_backend
            try:
                self._backend = make_backend(self.params["backend"], **self.backend_options())
            except (ValueError, FileNotFoundError, ImportError) as e:
                raise AgentSpecError(f"agent {self.name!r}: cannot make the {self.params['backend']!r} "
                                     f"backend: {e}") from None
        return self._backend

    def reset(self, seed: int | None = None) -> None:
        self._run_seed = merged_seed(self._seed, seed)
        self.rng = random.Random(self._run_seed)

    # ------------------------------------------------------------------ games
    def check_game(self, game) -> None:
        """Refuse simultaneous-move games (cheap: reads the game's traits, loads no model)."""
        super().check_game(game)
        t = _traits(game)
        if t.simultaneous:
            raise UnsupportedGameError(f"{self.name} plays games whose moves come in turns; {t.name} is a "
                                       "simultaneous-move game")

    def _refuse_for_search(self, game, engine: str) -> None:
        """What llm-minimax and llm-mcts cannot play: their engines search full states with the LLM
        as hooks (hidden information would be read), for two players, valuing win/draw/loss."""
        t = _traits(game)
        if not t.perfect_information:
            raise UnsupportedGameError(
                f"{self.name} runs {engine} over full states with the LLM as its hooks; {t.name} has hidden "
                "information (cards, dice or moves a player does not see), which that search would read: "
                "use llm, which prompts only from what the player sees")
        if t.num_players != 2:
            raise UnsupportedGameError(f"{self.name} is a two-player search; {t.name} has {t.num_players} players")
        if not t.win_draw_loss:
            raise UnsupportedGameError(
                f"{self.name} values positions as win, draw or loss for the player to move (zero- or "
                f"constant-sum utilities); {t.name} is {t.utility.replace('_', '-')}")

    def warm_up(self, game) -> None:
        """Make the backend and load its model (llama.cpp: the bundled model by default), then
        evaluate the prompt of the game's first position into its key/value cache: the rules and the
        answer format that start every prompt of this game are decoded before the clock runs."""
        super().warm_up(game)
        prompt = _first_prompt(game, self._templates, self.params["history"])
        self.backend.warm_up(None)                       # the model, loaded apart from the timing below
        t = time.perf_counter()
        self.backend.warm_up(prompt)
        if prompt:  # how fast this machine reads a prompt it has not cached: budgets calls against the clock
            self._sec_per_char = (time.perf_counter() - t) / max(1, _chars(prompt))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def _decision(self, action: int, t0: float, **kw: Any) -> Decision:
        summary = self.log.summary()
        return Decision(action=int(action), think_time=time.perf_counter() - t0, llm=summary,
                        fallback=kw.pop("fallback", None) or self.log.fallback_text(), **kw)


def _traits(game):
    from plyground.games.traits import traits
    return traits(game)


def _first_prompt(game, templates, history_plies: int):
    """The move prompt of ``game``'s first position where a player moves (chance: the first listed
    outcome), as that player sees it; None if there is none (a game that ends at once)."""
    from plyground.agents.llm.prompts import move_prompt
    try:
        s = game.new_initial_state(referee=False)     # PettingZoo: no live env
    except TypeError:
        s = game.new_initial_state()
    for _ in range(10_000):
        if s.is_terminal() or not s.is_chance_node():
            break
        s.apply_action(s.chance_outcomes()[0][0])
    if s.is_terminal() or s.is_chance_node():
        return None
    return move_prompt(s, templates, history_plies=history_plies)


def _chars(messages) -> int:
    return sum(len(m.get("content", "")) for m in messages) if isinstance(messages, list) else len(messages or "")


def _fits(t0: float, clock: float | None, need: float, share: float) -> bool:
    """True if ``need`` more seconds still end within ``share`` of the move's ``clock`` begun at ``t0``."""
    return clock is None or time.perf_counter() - t0 + need <= share * clock


# ============================================================================ llm
class LLMAgent(LLMAgentBase):
    name = "llm"
    summary = "the LLM alone: asks for a move, parses it against the legal set, re-asks, then falls back"
    PARAMS = {
        "retries": Param(int, 2, "re-asks with the error shown after an unusable reply", min=0),
        "max_tokens": Param(int, 16, "reply length limit in tokens", min=1),
        "sample_temperature": Param(float, 0.0, "sampling temperature of the reply (0 = greedy)", min=0.0),
        "fallback": Param(str, "score", "after the re-asks: the LLM's most likely legal move by score, "
                          "or a seeded random legal move", choices=("score", "random")),
        "seed": Param(int, None, "random seed (sampling and the random fallback)"),
        **PROMPT_PARAMS, **BACKEND_PARAMS,
    }

    def check_game(self, game) -> None:
        """The LLM alone plays any turn-based game; in a hidden-information game it is handed the
        player's view and prompts from it, so the game must describe what a player sees."""
        super().check_game(game)
        gt = getattr(game, "game_type", None)
        t = _traits(game)
        if not t.perfect_information and (gt is None or not (gt.provides_observation_string
                                                             or gt.provides_information_state_string)):
            raise UnsupportedGameError(f"llm prompts from what the player sees; {t.name} has hidden information "
                                       "and describes no player's observation or information state")

    def act(self, state, clock: float | None = None) -> Decision:
        from plyground.agents.llm.backend import LLMError
        from plyground.agents.llm.parsing import parse_move
        from plyground.agents.llm.prompts import move_prompt, prompt_digest, retry_message

        t0 = time.perf_counter()
        legal = [int(a) for a in state.legal_actions()]
        if not legal:
            raise PlygroundError(f"agent 'llm' asked to move in a state with no legal actions:\n{state}")
        p = self.params
        self.log.reset()
        values, messages = self.move_messages(state)
        sent = prompt_digest(messages)   # recorded: a prompt rebuilt later is checked against it
        temp = p["sample_temperature"]
        seed = self.rng.randrange(2**31) if temp > 0 else None
        asked = 0
        # A call's expected seconds: 1.5 times the last one, or the whole prompt read at the slowest pace
        # of the latest calls (the warm-up's before any; a prompt may not share the cached start), the
        # larger.  No call is made, the first included, that would end past 80% of the clock.
        pace = max(self._paces) if self._paces else self._sec_per_char
        last = 0.0
        no_time = False
        for _ in range(p["retries"] + 1):
            if self.log.broken:
                break
            if not _fits(t0, clock, max(1.5 * last, pace * _chars(messages)), 0.8):
                no_time = True
                break
            asked += 1
            t_call = time.perf_counter()
            try:
                reply = self.backend.chat(messages, max_tokens=p["max_tokens"], temperature=temp, seed=seed)
            except LLMError as e:
                self.log.record_error("move", e)
                continue
            finally:
                last = time.perf_counter() - t_call
                self._paces.append(last / max(1, _chars(messages)))
                pace = max(self._paces)
            parsed = parse_move(reply.text, state, legal)
            self.log.record(reply.stats, "move", raw=reply.text, parsed=parsed.to_json())
            if parsed.ok:
                return self._decision(parsed.action, t0, info={"asked": asked, "parsed_how": parsed.how,
                                                                 "prompt_digest": sent})
            messages = messages + retry_message(reply.text, parsed.error, values, self._templates)
        # fallback: scoring reads the prompt and every legal move's text; with too little clock left, random
        score_chars = _chars(move_prompt(state, self._templates, values=values)) + sum(
            len(state.action_to_string(a)) + 1 for a in legal)
        late = "; no further call would end within the clock" if no_time else ""
        if p["fallback"] == "score" and not self.log.broken:
            if _fits(t0, clock, max(1.5 * last, pace * score_chars), 0.8):
                scorer = self._scorer()
                t_call = time.perf_counter()
                dist = scorer.scores(state, "fallback")
                self._paces.append((time.perf_counter() - t_call) / max(1, score_chars))
                if dist:
                    best = max(legal, key=lambda a: dist.get(a, 0.0))
                    return self._decision(best, t0, fallback=self._why("highest-scored legal move") + late,
                                          info={"asked": asked, "prompt_digest": sent})
            else:
                late = "; no further call would end within the clock"
        action = self.rng.choice(legal)
        return self._decision(action, t0, fallback=self._why("seeded random legal move") + late,
                              info={"asked": asked, "prompt_digest": sent})

    def move_messages(self, state) -> tuple[dict[str, str], list[dict[str, str]]]:
        """The template fields and the chat messages of this agent's first call for ``state`` (its
        templates and history length).  ``act`` sends these, and the LLM datasets export them as the
        prompt, so training and play see the same text."""
        from plyground.agents.llm.prompts import move_prompt, prompt_fields
        values = prompt_fields(state, history_plies=self.params["history"], templates=self._templates)
        return values, move_prompt(state, self._templates, values=values)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._move_scorer = None
        self._paces.clear()     # a new game: a slow spell of the last one does not keep the LLM silent

    def _why(self, what: str) -> str:
        replies = sum(1 for e in self.log.entries if e.get("role") == "move" and "raw" in e)
        failed = sum(1 for e in self.log.entries if e.get("role") == "move" and "error" in e)
        parts = []
        if replies:
            parts.append(f"no legal move in {replies} repl{'y' if replies == 1 else 'ies'}")
        if failed:
            parts.append(f"{failed} failed call{'s' if failed > 1 else ''}")
        return f"move: {what} ({', '.join(parts) or ('LLM unavailable' if self.log.broken else 'no call made')})"

    def _scorer(self):
        from plyground.agents.llm.roles import MoveScorer
        if getattr(self, "_move_scorer", None) is None:
            self._move_scorer = MoveScorer(self.backend, templates=self._templates, log=self.log,
                                           temperature=self.params["temperature"],
                                           history_plies=self.params["history"])
        return self._move_scorer


# ============================================================================ llm-minimax
def _parse_roles(agent: str, text: str) -> frozenset[str]:
    parts = [r.strip() for r in str(text).replace("+", ",").replace(";", ",").split(",") if r.strip()]
    if len(parts) == 1 and parts[0].lower() in ("none", "off"):
        return frozenset()
    bad = [r for r in parts if r not in ROLE_NAMES]
    if bad:
        raise AgentSpecError(f"agent {agent!r}: roles={text!r} names {bad}; allowed: any of {list(ROLE_NAMES)} "
                             "separated by '+' (or ',' in a table), or 'none'")
    return frozenset(parts)


class LLMMinimaxAgent(LLMAgentBase):
    name = "llm-minimax"
    summary = ("PokéChamp-style depth-limited alpha-beta: the LLM proposes own moves (top k), predicts "
               "the opponent's (opp_k / opp_mode) and values the leaves")
    PARAMS = {
        "depth": Param(int, 2, "search depth in plies", min=1),
        "k": Param(int, 3, "own candidate moves kept from the proposer (0 = all)", min=0),
        "opp_k": Param(int, 3, "opponent replies kept in topk mode", min=1),
        "opp_mode": Param(str, "topk", "opponent nodes: every reply (full), the top opp_k (topk), "
                          "or an expectation under the model", choices=("full", "topk", "expectation")),
        "roles": Param(str, "propose+opponent+value", "which roles use the LLM ('+'-separated, or none); "
                       "stand-ins: every legal move, every reply, the game's heuristic (native) or rollouts"),
        "value_method": Param(str, "words", "LLM leaf values from outcome-word likelihoods or a parsed number",
                              choices=("words", "number")),
        "rollouts": Param(int, 4, "random playouts per leaf for the non-LLM value on non-native games", min=1),
        "time": Param(float, None, "seconds per move (implies deepen: iterative deepening stops in time)",
                      min=0.0),
        "deepen": Param(bool, False, "iterative deepening (automatic with a time limit); costs the LLM "
                        "calls of the shallower iterations"),
        "seed": Param(int, None, "random seed"),
        **PROMPT_PARAMS, **BACKEND_PARAMS,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.roles = _parse_roles(self.name, self.params["roles"])
        self._hooks = None

    def check_game(self, game) -> None:
        super().check_game(game)
        self._refuse_for_search(game, "alpha-beta")

    def _make_hooks(self, state):
        from plyground.agents.llm.roles import (
            LLMActionProposer, LLMOpponentModel, LLMValueEstimator, MoveScorer)
        from plyground.search.hooks import FullWidthOpponent, HeuristicValue, RolloutValue
        p = self.params
        native = getattr(getattr(state, "game", None), "kernel", None) is not None
        stand_in_value = HeuristicValue() if native else RolloutValue(p["rollouts"], seed=self.rng.randrange(2**31))
        scorer = None
        if self.roles & {"propose", "opponent"}:
            scorer = MoveScorer(self.backend, templates=self._templates, log=self.log,
                                temperature=p["temperature"], history_plies=p["history"])
        proposer = LLMActionProposer(self.backend, k=p["k"] or None, scorer=scorer) \
            if "propose" in self.roles else None
        opponent = LLMOpponentModel(self.backend, mode=p["opp_mode"], k=p["opp_k"], scorer=scorer) \
            if "opponent" in self.roles else FullWidthOpponent("full")
        value = LLMValueEstimator(self.backend, method=p["value_method"], temperature=p["temperature"],
                                  templates=self._templates, log=self.log, history_plies=p["history"],
                                  fallback=stand_in_value) if "value" in self.roles else stand_in_value
        return proposer, opponent, value

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._hooks = None     # a new game: fresh memo tables

    def act(self, state, clock: float | None = None) -> Decision:
        from plyground.agents.search_agents import _budget
        from plyground.search import alphabeta

        t0 = time.perf_counter()
        p = self.params
        self.log.reset()
        if self._hooks is None or self._hooks[3] != getattr(getattr(state, "game", None), "name", None):
            self._hooks = (*self._make_hooks(state), getattr(getattr(state, "game", None), "name", None))
        proposer, opponent, value, _g = self._hooks
        k = p["k"] or None
        budget = _budget(p["time"], clock)
        result = alphabeta.search(state, depth=p["depth"], time_limit=budget,
                                  proposer=proposer, proposer_k=k if proposer is not None else None,
                                  opponent=opponent, value=value,
                                  iterative=bool(p["deepen"] or budget is not None))
        return self._decision(result.best_action, t0, value=result.value, search=result.to_json())


# ============================================================================ llm-mcts
class LLMMCTSAgent(LLMAgentBase):
    name = "llm-mcts"
    summary = "PUCT MCTS with the LLM's move distribution as prior (mixed with uniform); leaf values from " \
              "rollouts, the LLM, or both; leaves evaluated in batches"
    PARAMS = {
        "sims": Param(int, 64, "simulations per move", min=1),
        "c": Param(float, 1.5, "PUCT exploration constant", min=0.0),
        "mix": Param(float, 0.5, "uniform share of the prior (LLM-MCTS uses 0.5)", min=0.0, max=1.0),
        "k": Param(int, 0, "children kept per node from the prior (0 = every legal move)", min=0),
        "leaf": Param(str, "rollout", "leaf values: random rollouts, the LLM, or their average",
                      choices=("rollout", "llm", "mixed")),
        "leaf_weight": Param(float, 0.5, "the LLM's weight in leaf=mixed", min=0.0, max=1.0),
        "value_method": Param(str, "words", "LLM leaf values from outcome-word likelihoods or a parsed number",
                              choices=("words", "number")),
        "rollouts": Param(int, 1, "random rollouts per leaf", min=1),
        "batch": Param(int, 8, "leaves selected (virtual loss) and evaluated per batch", min=1),
        "solver": Param(bool, True, "MCTS-Solver: propagate proven wins and losses"),
        "reuse": Param(bool, True, "keep the subtree between moves"),
        "dirichlet": Param(float, None, "Dirichlet root-noise alpha (unset: none)", min=0.0),
        "time": Param(float, None, "seconds per move", min=0.0),
        "seed": Param(int, None, "random seed"),
        **PROMPT_PARAMS, **BACKEND_PARAMS,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._engine = None

    def check_game(self, game) -> None:
        super().check_game(game)
        self._refuse_for_search(game, "MCTS")

    def _make_engine(self):
        from plyground.agents.llm.roles import LLMActionProposer, LLMValueEstimator, MixedValue
        from plyground.search.hooks import RolloutValue
        from plyground.search.mcts import MCTS
        p = self.params
        seed = self.rng.randrange(2**31) if self._run_seed is not None else None
        proposer = LLMActionProposer(self.backend, k=p["k"] or None, mix=p["mix"], temperature=p["temperature"],
                                     templates=self._templates, log=self.log, history_plies=p["history"])
        rollout = RolloutValue(p["rollouts"], seed=seed)
        if p["leaf"] == "rollout":
            value = rollout
        else:
            llm_value = LLMValueEstimator(self.backend, method=p["value_method"], temperature=p["temperature"],
                                          templates=self._templates, log=self.log, history_plies=p["history"],
                                          fallback=rollout)
            value = llm_value if p["leaf"] == "llm" else MixedValue(llm_value, rollout, p["leaf_weight"])
        return MCTS(sims=p["sims"], c=p["c"], variant="puct", solver=p["solver"], rollouts=p["rollouts"],
                    time_limit=p["time"], reuse_tree=p["reuse"], dirichlet_alpha=p["dirichlet"],
                    batch_size=p["batch"], proposer=proposer, value=value, seed=seed)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._engine = None

    def act(self, state, clock: float | None = None) -> Decision:
        from plyground.agents.search_agents import _budget

        t0 = time.perf_counter()
        self.log.reset()
        if self._engine is None:
            self._engine = self._make_engine()
        self._engine.time_limit = _budget(self.params["time"], clock)
        result = self._engine.search(state)
        return self._decision(result.best_action, t0, value=result.value, search=result.to_json())


LLM_AGENTS = (LLMAgent, LLMMinimaxAgent, LLMMCTSAgent)
