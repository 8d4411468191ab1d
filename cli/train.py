"""CLI: ``plyground train distill CONFIG.toml``, ``plyground train llm CONFIG.toml`` and ``plyground train plot
DIR [--out PNG]`` (the logic lives in plyground.datasets.training, .llm_train and .plot)."""

from __future__ import annotations

import argparse


def add_parsers(top_sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add ``plyground train`` and its commands; returns its subparsers (for more commands)."""
    q = top_sub.add_parser(
        "train", help="train policy-value networks: distillation of recorded search, plots",
        description="Train policy-value networks (torch) on datasets built from the record, and plot their runs.",
        epilog="Run 'plyground train COMMAND --help' for a command's options.")
    sub = q.add_subparsers(dest="train_command", metavar="COMMAND", required=True)

    d = sub.add_parser(
        "distill", help="supervised training on a dataset directory, with checkpoints and exact resume",
        description="Train the network CONFIG.toml describes on its dataset ([data] dir, built by 'plyground "
                    "datasets build'): soft-target cross-entropy on the masked policy plus value_weight x the value "
                    "MSE, AdamW, a held-out split evaluated every eval_every steps.  Writes OUT/metrics.jsonl as it "
                    "goes, OUT/checkpoint.pt every checkpoint_every steps and OUT/model.pt at the end (playable: "
                    "neural:model=OUT/model.pt).  Running the same command again resumes from the checkpoint "
                    "(the final weights equal an uninterrupted run's); a finished run says so.",
        epilog="Config sections: out = DIR; [data] dir, holdout, seed; [network] kind (auto|resnet|mlp), width, "
               "blocks; [train] steps, batch_size, lr, weight_decay, value_weight, value_target "
               "(outcome|root|mix), value_mix, log_every, eval_every, checkpoint_every, seed, threads.  Relative "
               "paths resolve against the config's directory.  Example: examples/distill_tictactoe.toml")
    d.add_argument("config", metavar="CONFIG.toml", help="distillation config (see examples/distill_tictactoe.toml)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=run_distill)

    sp = sub.add_parser(
        "selfplay", help="expert iteration: self-play, training and rated evaluation per generation, resumable",
        description="AlphaZero-style expert iteration from a random network, as CONFIG.toml describes: each generation "
                    "plays [selfplay] games games of network-guided PUCT against itself (Dirichlet root noise, moves "
                    "sampled by visits for the first temperature_plies plies), many games in lockstep so one network "
                    "call evaluates the leaves of all of them, recorded in OUT/record.db like arena games; trains on "
                    "a FIFO buffer of the latest [buffer] positions; then plays an arena gauntlet against [evaluate] "
                    "references and the previous generation, rated jointly (OUT/generations.jsonl).  Killed at any "
                    "moment, the same command resumes from the last completed step (no game lost or recorded twice).",
        epilog="Config: game, out, name, seed, generations, hours (a training-time budget); [network] kind, width, blocks; [selfplay] games, "
               "lockstep, sims, c, leaves, dirichlet_alpha, dirichlet_frac, temperature_plies, workers, backend "
               "(local|ray); [buffer] positions, augment; [train] as for distill (steps = per generation); "
               "[evaluate] games, sims, references, previous, every, workers, move_time.  Example: "
               "examples/selfplay_connect4.toml")
    sp.add_argument("config", metavar="CONFIG.toml", help="self-play config (see examples/selfplay_connect4.toml)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=run_selfplay)

    p = sub.add_parser(
        "plot", help="loss curves (and Elo per generation and per hour, for self-play) as a PNG",
        description="Draw DIR/metrics.jsonl's loss curves (train and held-out policy cross-entropy, value MSE, "
                    "top-1 agreement) and, when DIR has a generations.jsonl (self-play), Elo per generation and "
                    "per hour of training with 95% intervals, into one PNG.")
    p.add_argument("dir", metavar="DIR", help="a training run's out directory")
    p.add_argument("--out", default=None, metavar="PNG", help="where to write the image (default DIR/training.png)")
    p.set_defaults(func=run_plot)

    lm = sub.add_parser(
        "llm", help="fine-tune a causal LM (default the bundled SmolLM2-135M) on 'datasets llm' exports: SFT, then DPO",
        description="SFT with TRL's SFTTrainer on [sft] data (a 'plyground datasets llm --format sft' directory; loss "
                    "on the completion only), then, with a [dpo] section, DPOTrainer on a dpo export starting from the "
                    "SFT model; LoRA through peft ([lora], default) or full fine-tuning; CPU, offline.  Writes "
                    "OUT/metrics.jsonl as it goes, OUT/<stage>/checkpoint-N every save_every steps, then OUT/adapter "
                    "(LoRA) and OUT/adapter.gguf (the adapter for llama.cpp, when the base is a GGUF such as the bundled model; "
                    "play it with llm:adapter=OUT/adapter.gguf), OUT/model (merged; play it with "
                    "llm:backend=transformers,model=OUT/model) and the model card OUT/README.md.  Running the same command again resumes from the last checkpoint.",
        epilog="Config: out, base (bundled | model directory | .gguf), seed, threads, precision (fp32|bf16); [lora] enabled, r, alpha, dropout, "
               "target_modules; [sft] and [dpo]: data, steps, batch_size, grad_accum, lr, lr_schedule "
               "(constant|linear|cosine), warmup_steps, weight_decay, max_length, save_every, log_every, "
               "keep_checkpoints; [dpo] beta.  Example: examples/llm_sft_connect4.toml")
    lm.add_argument("config", metavar="CONFIG.toml", help="llm training config (see examples/llm_sft_connect4.toml)")
    lm.add_argument("--quiet", action="store_true", help="no progress bar")
    lm.set_defaults(func=run_llm)
    return sub


def run_distill(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from plyground.datasets.training import distill, load_config

    cfg = load_config(args.config)
    console = Console(stderr=True)
    t = cfg.train
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TextColumn("held-out {task.fields[held]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=console, transient=False, disable=args.quiet)
    task = None

    def progress(s) -> None:
        nonlocal task
        if s.phase == "start":  # the dataset is loaded and the run is about to train
            console.print(f"[bold]distill[/]: {cfg.data.dir} -> {cfg.out}: {cfg.network.kind} network, width "
                          f"{cfg.network.width}, {cfg.network.blocks} blocks; {t.steps} steps of {t.batch_size} "
                          f"rows, lr {t.lr:g}; {s.rows_train} training rows, {s.rows_holdout} held out")
            if s.start_step:
                console.print(f"resuming from step {s.start_step} ({cfg.out / 'checkpoint.pt'})")
            bar.start()
            task = bar.add_task("steps", total=t.steps, completed=s.step, loss="-", held="-")
            return
        if task is None:
            return
        fields = {}
        if s.loss is not None:
            fields["loss"] = f"{s.loss:.4f}"
        if s.eval:
            fields["held"] = f"ce {s.eval['policy_ce']:.4f} mse {s.eval['value_mse']:.4f} top1 {s.eval['top1']:.3f}"
        bar.update(task, completed=s.step, **fields)

    try:
        result = distill(cfg, progress=progress)
    finally:
        if task is not None:
            bar.stop()
    if result.already_finished:
        print(f"{cfg.out} is finished: {result.steps} steps (train.steps = {t.steps}); model: {result.model}")
        return 0
    ev = result.final_eval
    held = (f"; held-out ({ev['rows']} rows): policy cross-entropy {ev['policy_ce']:.4f}, value MSE "
            f"{ev['value_mse']:.4f}, top-1 {ev['top1']:.3f}") if ev else ""
    start = f" (resumed from step {result.start_step})" if result.start_step else ""
    print(f"trained {result.steps} steps{start} in {result.seconds:.1f}s: final train loss "
          f"{result.final_loss:.4f}{held}")
    print(f"model: {result.model}\nmetrics: {result.metrics}\ncheckpoint: {result.checkpoint}")
    return 0


def run_selfplay(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from plyground.datasets.selfplay import load_selfplay_config, selfplay

    cfg = load_selfplay_config(args.config)
    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console, disable=args.quiet)
    task = None

    def progress(s) -> None:
        nonlocal task
        desc = f"generation {s.generation}/{s.generations} {s.phase}"
        if task is None:
            bar.start()
            task = bar.add_task(desc, total=max(s.total, 1), completed=s.done, detail=s.detail)
        else:
            bar.update(task, description=desc, total=max(s.total, 1), completed=s.done, detail=s.detail)

    console.print(f"[bold]selfplay[/]: {cfg.game}, {cfg.generations} generations of {cfg.selfplay.games} games "
                  f"({cfg.selfplay.sims} simulations a move) -> {cfg.out}")
    try:
        result = selfplay(cfg, progress=progress)
    finally:
        if task is not None:
            bar.stop()
    print(f"{result.generations} generations, {result.games} self-play games in {cfg.out}"
          + (" (resumed)" if result.resumed else ""))
    if result.positions_per_second:
        print(f"this run: {result.positions_per_second:.1f} self-play positions/s, "
              f"{result.evaluations_per_second:.0f} network evaluations/s inside self-play")
    gens = cfg.out / "generations.jsonl"
    if gens.exists():
        print(f"ratings per generation: {gens} (plot: plyground train plot {cfg.out})")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from plyground.datasets.plot import plot_training

    path = plot_training(args.dir, args.out)
    print(f"wrote {path}")
    return 0


def run_llm(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from plyground.datasets.llm_train import load_llm_config, train_llm

    cfg = load_llm_config(args.config)
    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=console, disable=args.quiet)
    tasks: dict[str, int] = {}

    def progress(s) -> None:
        if s.phase == "load":
            st = getattr(cfg, s.stage)
            console.print(f"[bold]{s.stage}[/]: {st.data} ({s.rows} rows) -> {cfg.out / s.stage}: {st.steps} steps of "
                          f"{st.batch_size}x{st.grad_accum} rows, lr {st.lr:g}, "
                          + (f"LoRA r {cfg.lora.r}" if cfg.lora.enabled else "full fine-tuning")
                          + (f"; resuming from step {s.step}" if s.step else ""))
            return
        if s.phase == "skip":
            console.print(f"{s.stage}: complete ({s.steps} steps)")
            return
        if s.phase == "merge":
            console.print("writing the final model" + (" (merging the adapter)" if cfg.lora.enabled else ""))
            return
        if s.stage not in tasks:
            if not tasks:
                bar.start()
            tasks[s.stage] = bar.add_task(s.stage, total=s.steps, completed=s.step, loss="-")
        fields = {"loss": f"{s.loss:.4f}"} if s.loss is not None else {}
        bar.update(tasks[s.stage], completed=s.step, **fields)

    try:
        result = train_llm(cfg, progress=progress)
    finally:
        if tasks:
            bar.stop()
    if result.already_finished:
        print(f"{cfg.out} is finished; model: {result.model}")
        return 0
    for stage, d in result.stages.items():
        fl = d.get("final_loss")
        print(f"{stage}: {d['steps']} steps, final loss {'-' if fl is None else f'{fl:.4f}'}")
    print(f"model: {result.model}" + (f"\nadapter: {result.adapter}" if result.adapter else "")
          + f"\nmodel card: {result.card}\nmetrics: {result.metrics}")
    print(f"play it: llm:backend=transformers,model={result.model}")
    gguf = result.out / "adapter.gguf"
    if result.adapter and gguf.is_file():
        print(f"or through llama.cpp: llm:adapter={gguf}")
    return 0
