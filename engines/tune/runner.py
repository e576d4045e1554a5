"""Run one training job (``python main.py train --job JOB.json``) with TRL + PEFT LoRA.

The flow, the same for every method and under ``torchrun``/``accelerate launch``:
1. check the job (fields, paths, dataset columns) before anything heavy is imported;
2. resolve the base model (``default`` = the bundled SmolLM2, converted once for transformers)
   and check the run fits in memory;
3. build the method's TRL trainer (``train_<method>.py``) with a LoRA config;
4. train, writing ``events.jsonl`` from a TrainerCallback and checkpoints every ``save_steps``;
   SIGTERM (or a ``cancel`` file in the output folder) saves a checkpoint and stops cleanly;
5. save the adapter (+ tokenizer) and ``summary.json`` in the output folder.

The output folder is a run folder; engines.store.runs owns its layout (this writes it through that
module, and the app and the adapter loaders read it through the same one)::

    job.json  events.jsonl  summary.json  adapter_model.safetensors  adapter_config.json
    tokenizer files  checkpoints/checkpoint-N/
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.core.errors import HearthError, ModelFileError, OutOfMemoryError, RequestError
from engines.core.requests.tune import GB, TrainJob, estimate_training_bytes
from engines.store import runs
from engines.tune.datasets import read_dataset

CANCEL_FILE = runs.CANCEL  # the GUI's Cancel on platforms without SIGTERM: touch OUTPUT/cancel


def world_rank() -> int:
    """This process's rank under torchrun/accelerate (0 when run alone): only rank 0 writes the run's logs."""
    return int(os.environ.get("RANK", "0"))


@dataclass
class StopRequest:
    requested: bool = False
    reason: str = ""


@dataclass
class JobContext:
    """What a ``train_<method>.build_trainer`` gets."""

    job: TrainJob
    base_path: Path
    rows: list[dict]
    tokenizer: Any
    config_kwargs: dict
    peft_config: Any
    callbacks: list
    device: str
    extra: dict = field(default_factory=dict)

    def dataset(self):
        from datasets import Dataset

        return Dataset.from_list(self.rows)


# -- events -------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


# Metric names differ per TRL trainer; events.jsonl uses one name for each idea.
_ALIASES = {
    "reward_accuracy": ("rewards/accuracies", "accuracy"),
    "reward_margin": ("rewards/margins", "margin"),
    "kl": ("kl", "objective/kl"),
    "reward": ("reward", "rewards/chosen"),
}


def _make_callback(log: runs.EventLog, stop: StopRequest, samples_per_step: int, cancel_file: Path):
    from transformers import TrainerCallback

    class HearthCallback(TrainerCallback):
        """events.jsonl, and a clean stop (checkpoint first) on SIGTERM or a cancel file."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.time()
            self.step0 = state.global_step
            self.last_t, self.last_step = self.t0, state.global_step
            log.write("start", step=state.global_step, max_steps=state.max_steps, world_size=args.world_size,
                      samples_per_step=samples_per_step)

        def on_step_end(self, args, state, control, **kwargs):
            if cancel_file.exists() and not stop.requested:
                stop.requested, stop.reason = True, "cancel file"
            if _agree_across_ranks(stop.requested, args.device):
                stop.requested = True
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if "train_runtime" in logs:
                log.write("trained", step=state.global_step, **logs)
                return
            now = time.time()
            steps = state.global_step - self.last_step
            window = now - self.last_t
            rate = (state.global_step - self.step0) / max(now - self.t0, 1e-9)
            record = {
                "step": state.global_step,
                "epoch": logs.get("epoch"),
                "loss": logs.get("loss"),
                "learning_rate": logs.get("learning_rate"),
                "samples_per_s": round(steps * samples_per_step / window, 4) if steps > 0 and window > 0 else None,
                "eta_s": round((state.max_steps - state.global_step) / rate, 1) if rate > 0 else None,
            }
            for name, keys in _ALIASES.items():
                record[name] = next((logs[k] for k in keys if k in logs), None)
            record["metrics"] = logs
            self.last_t, self.last_step = now, state.global_step
            log.write("step", **record)

        def on_save(self, args, state, control, **kwargs):
            log.write("checkpoint", step=state.global_step, path=str(Path(args.output_dir) / f"checkpoint-{state.global_step}"))

    return HearthCallback()


def _agree_across_ranks(flag: bool, device) -> bool:
    """All ranks stop at the same step (else the others wait forever in the next all-reduce)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return flag
    import torch

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


# -- models and memory --------------------------------------------------------------------------
def resolve_base(base_model: str) -> Path:
    """A transformers folder for ``base_model``: 'default', a GGUF file (converted once) or a folder."""
    from engines.text.hf_convert import ensure_converted

    if base_model == "default":
        from engines.models import bundled_default_path

        return ensure_converted(bundled_default_path())
    path = Path(base_model)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ensure_converted(path)
    if not (path / "config.json").is_file():
        raise ModelFileError(f"The base model {path} is not a transformers folder (no config.json).", path=path,
                             hint="Use 'default', a GGUF file, or a folder with config.json and *.safetensors.")
    return path


def check_memory(job: TrainJob, base: Path, device: str, reward_base: Path | None = None) -> int:
    need = estimate_training_bytes(job, base, reward_base)
    if device.startswith("cuda"):
        import torch

        available = torch.cuda.mem_get_info()[0]
        where = "GPU memory"
    else:
        from engines.models import estimate

        available = estimate.available_memory()
        where = "RAM"
    if need > available:
        raise OutOfMemoryError(
            f"Training {job.method} on {base.name} needs about {need / GB:.1f} GB but only {available / GB:.1f} GB of "
            f"{where} is free.", path=base,
            hint="Lower batch_size or max_length, close other apps, or choose a smaller base model.")
    return need


def lora_config(job: TrainJob, task_type: str):
    from peft import LoraConfig

    kwargs = {}
    if task_type == "SEQ_CLS":
        # The score head is new and trained in full: without this it is not in the adapter and a
        # reloaded reward model scores with a fresh random head.
        kwargs["modules_to_save"] = ["score"]
    return LoraConfig(r=job.lora.r, lora_alpha=job.lora.alpha, lora_dropout=job.lora.dropout,
                      target_modules=job.lora.target_modules, task_type=task_type, **kwargs)


def to_chat_rows(rows: list[dict], tokenizer, job: TrainJob) -> list[dict]:
    """Plain-text rows as chat messages when the model has a chat template (so the adapter fits Chat)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if job.chat_format == "chat" and not has_template:
        raise RequestError(f"The base model {job.base_model} has no chat template, so chat_format 'chat' cannot be used.",
                           hint="Use chat_format 'text' or 'auto'.")
    any_messages = any(isinstance(v, list) for r in rows for v in r.values())
    if any_messages and not has_template:
        raise RequestError(f"The dataset {job.dataset} holds chat messages but the base model has no chat template.",
                           path=job.dataset, hint="Use plain-text rows, or a base model with a chat template.")
    wrap = has_template and (job.chat_format == "chat" or (job.chat_format == "auto" and (any_messages or "text" not in rows[0])))
    if not wrap:
        return rows
    system = [{"role": "system", "content": job.system_prompt}] if job.system_prompt else []
    out = []
    for row in rows:
        new = dict(row)
        if isinstance(row.get("prompt"), str):
            new["prompt"] = system + [{"role": "user", "content": row["prompt"]}]
        for key in ("chosen", "rejected", "completion"):
            if isinstance(row.get(key), str):
                new[key] = [{"role": "assistant", "content": row[key]}]
        out.append(new)
    return out


def pick_device(job: TrainJob) -> str:
    from engines.core.devices import select_device

    device = select_device(job.device)
    return "cuda" if device.startswith("cuda") else device


def _versions() -> dict:
    import peft
    import torch
    import transformers
    import trl

    return {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__, "peft": peft.__version__}


# -- the run ------------------------------------------------------------------------------------
def run_job(job: TrainJob, resume: bool = False) -> dict:
    """Train ``job``; returns the summary (also written to OUTPUT/summary.json)."""
    # 1. check inputs (light)
    job.check_fields()
    job.check_paths(resume=resume)
    rows, skipped = read_dataset(job.dataset, job.method, job.on_error)
    out = Path(job.output_dir)
    ckpt_dir = out / runs.CHECKPOINTS
    last_checkpoint = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint

        last_checkpoint = get_last_checkpoint(str(ckpt_dir))
        if world_rank() == 0:
            (out / CANCEL_FILE).unlink(missing_ok=True)  # the cancel that stopped the last attempt must not stop this one
        if last_checkpoint is None:
            raise RequestError(f"There is nothing to resume in {out}: {ckpt_dir} holds no checkpoint-N folder.", path=out,
                               hint="Start the job again without --resume (into a new folder).")

    stop = StopRequest()
    previous = _install_stop_handlers(stop)
    try:
        return _run(job, resume, rows, skipped, out, ckpt_dir, last_checkpoint, stop)
    except HearthError as exc:
        if (out / runs.EVENTS).exists():  # the GUI tailing the log hears why the run ended
            runs.EventLog(out, enabled=world_rank() == 0, default=_jsonable).write("error", message=str(exc))
        raise
    finally:
        _restore_handlers(previous)


def _run(job, resume, rows, skipped, out, ckpt_dir, last_checkpoint, stop) -> dict:
    started = time.time()
    # 2. models and memory
    device = pick_device(job)
    base = resolve_base(job.base_model)
    method = importlib.import_module(f"engines.tune.train_{job.method}")
    extra = method.prepare(job) if hasattr(method, "prepare") else {}
    check_memory(job, base, device, extra.get("reward_base"))

    import torch
    from accelerate import PartialState
    from transformers import AutoTokenizer

    state = PartialState(cpu=device == "cpu")  # joins the process group under torchrun / accelerate launch (gloo on CPU)
    is_main = state.is_main_process
    state.wait_for_everyone()  # every rank has checked the output folder before rank 0 creates it
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            job.save(out / runs.JOB)
    state.wait_for_everyone()
    log = runs.EventLog(out, enabled=is_main, default=_jsonable)
    log.write("job", method=job.method, base_model=job.base_model, base_path=str(base), resume=resume,
              resume_from=last_checkpoint, rows=len(rows), skipped_lines=[str(e) for e in skipped])

    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = to_chat_rows(rows, tokenizer, job)

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    world = state.num_processes
    samples_per_step = job.batch_size * job.gradient_accumulation_steps * world
    config_kwargs = dict(
        output_dir=str(ckpt_dir), max_steps=job.max_steps, per_device_train_batch_size=job.batch_size,
        gradient_accumulation_steps=job.gradient_accumulation_steps, learning_rate=job.lr,
        logging_steps=job.logging_steps, save_strategy="steps", save_steps=job.save_steps, save_total_limit=3,
        report_to="none", seed=job.seed, disable_tqdm=True, use_cpu=device == "cpu", bf16=bf16, fp16=False,
        gradient_checkpointing=device == "cuda", dataloader_num_workers=0,
        model_init_kwargs={"dtype": torch.bfloat16 if bf16 else torch.float32},
    )
    callback = _make_callback(log, stop, samples_per_step, out / CANCEL_FILE)
    ctx = JobContext(job, base, rows, tokenizer, config_kwargs, None, [callback], device, extra)

    # 3. the method's trainer
    if stop.requested:
        return _finish(job, out, log, is_main, "cancelled", started, None, 0, base, world, reason=stop.reason)
    try:
        trainer = method.build_trainer(ctx)
    except ValueError as exc:  # TRL/PEFT reject settings with ValueError; say which job field to change
        raise RequestError(f"The {job.method} trainer refused the job: {str(exc).splitlines()[0]}",
                           hint="Adjust the job's fields (batch_size, max_length, lora.target_modules, ...).") from exc

    if "score_head" in extra:  # the reward model's new head, as it starts (train_reward.check_score_head)
        log.write("score_head", **extra["score_head"])
    dataset = getattr(trainer, "train_dataset", None)
    if dataset is not None and hasattr(dataset, "__len__") and len(dataset) == 0:
        raise RequestError(f"No row of {job.dataset} survived {job.method}'s preprocessing: every reply was cut off by "
                           f"max_length={job.max_length}.", path=job.dataset, hint="Raise max_length or shorten the prompts.")

    # 4. train
    log.write("train", step=0 if not last_checkpoint else int(Path(last_checkpoint).name.split("-")[-1]))
    result = trainer.train(resume_from_checkpoint=last_checkpoint)
    steps = trainer.state.global_step

    # 5. save
    status = "cancelled" if stop.requested and steps < job.max_steps else "completed"
    if status == "completed":
        trainer.save_model(str(out))  # PEFT adapter (adapter_model.safetensors + adapter_config.json) + tokenizer
        if is_main:
            for stray in ("training_args.bin", "README.md"):  # pickled args / an empty model card
                (out / stray).unlink(missing_ok=True)
    state.wait_for_everyone()
    metrics = dict(result.metrics) if result is not None else {}
    last_log = next((h for h in reversed(trainer.state.log_history) if "loss" in h), {})
    return _finish(job, out, log, is_main, status, started, metrics, steps, base, world, last_log=last_log,
                   reason=stop.reason)


def _finish(job, out, log, is_main, status, started, metrics, steps, base, world, last_log=None, reason="") -> dict:
    summary = {
        "status": status, "reason": reason, "method": job.method, "base_model": job.base_model, "base_path": str(base),
        "output_dir": str(out), "steps": steps, "max_steps": job.max_steps, "world_size": world,
        "adapter": str(out / runs.ADAPTER_WEIGHTS) if status == "completed" else None,
        "final_loss": (last_log or {}).get("loss"), "last_metrics": last_log or {}, "train_metrics": metrics or {},
        "started": started, "finished": time.time(), "seconds": round(time.time() - started, 2),
        "reward_model": job.reward_model, "versions": _versions(),
    }
    if is_main:
        runs.write_summary(out, summary, default=_jsonable)
    log.write("end", status=status, steps=steps, reason=reason)
    return summary


def _install_stop_handlers(stop: StopRequest):
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        stop.requested, stop.reason = True, signal.Signals(signum).name

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT) + ((signal.SIGBREAK,) if hasattr(signal, "SIGBREAK") else ()):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_handlers(previous) -> None:
    for sig, h in (previous or {}).items():
        signal.signal(sig, h)


def run_cli(args) -> int:
    """``main.py train --job JOB.json [--resume]``: prints a one-line JSON result; exits 0 (done or cancelled cleanly) or 2 (user error)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job = TrainJob.load(args.job)
    summary = run_job(job, resume=args.resume)
    if world_rank() == 0:
        print(json.dumps({k: summary[k] for k in ("status", "method", "steps", "final_loss", "output_dir", "seconds")}),
              flush=True)
    return 0  # a cancelled run also ends cleanly; summary.json says which


__all__ = ["run_job", "run_cli", "resolve_base", "lora_config", "estimate_training_bytes", "HearthError"]
