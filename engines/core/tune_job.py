"""A training job: one JSON-serialisable dataclass, the checks that run before any model loads,
and the rough memory estimate.

Light on purpose (stdlib only), and in ``engines.core`` so the GUI process uses it too: the Tune
room builds and checks the same job (and shows the estimate) that ``main.py train`` validates
before torch is imported, so a mistyped field fails in a fraction of a second.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engines.core.errors import RequestError
from engines.core.jsonl import is_text_or_messages, read_jsonl
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

METHODS = ("sft", "reward", "dpo", "kto", "rl")

# Sensible starting points per method for LoRA on small models; the GUI shows them as presets.
PRESETS: dict[str, dict[str, Any]] = {
    "sft": {"learning_rate": 2e-4, "beta": 0.0},
    "reward": {"learning_rate": 2e-4, "beta": 0.0},
    "dpo": {"learning_rate": 2e-4, "beta": 0.1},
    "kto": {"learning_rate": 5e-5, "beta": 0.1},
    "rl": {"learning_rate": 1e-4, "beta": 0.05},
}


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainJob:
    method: str
    dataset: str
    output_dir: str
    base_model: str = "default"
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_steps: int = 100
    learning_rate: float | None = None  # None: the method's preset
    batch_size: int = 2
    gradient_accumulation_steps: int = 1
    beta: float | None = None  # DPO/KTO temperature; RL KL coefficient (must be > 0)
    seed: int = 0
    reward_model: str | None = None  # rl: the folder of a reward job's output
    max_length: int = 512
    max_completion_length: int = 64  # rl: tokens generated per sample
    num_generations: int = 2  # rl: samples per prompt (RLOO's leave-one-out baseline needs >= 2)
    temperature: float = 1.0  # rl sampling
    save_steps: int = 50
    logging_steps: int = 1
    on_error: str = "stop"  # malformed dataset lines: stop, or skip and report them
    device: str = "auto"  # auto | cpu | cuda
    chat_format: str = "auto"  # auto: wrap plain-text rows as chat messages when the tokenizer has a template
    system_prompt: str = DEFAULT_SYSTEM_PROMPT  # added to wrapped plain-text prompts, as Chat does

    # -- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        from engines.core.paths import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any, where: str = "the job") -> "TrainJob":
        if not isinstance(data, dict):
            raise RequestError(f"{where} must be a JSON object.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RequestError(f"{where} has unknown field(s) {', '.join(unknown)}.",
                               hint=f"Known fields: {', '.join(sorted(known))}.")
        missing = [k for k in ("method", "dataset", "output_dir") if k not in data]
        if missing:
            raise RequestError(f"{where} is missing {', '.join(missing)}.", hint="Every job needs method, dataset and output_dir.")
        data = dict(data)
        lora = data.pop("lora", None) or {}
        if not isinstance(lora, dict):
            raise RequestError(f"{where}: 'lora' must be an object with r, alpha, dropout, target_modules.")
        lora_known = {f.name for f in fields(LoraSettings)}
        if set(lora) - lora_known:
            raise RequestError(f"{where}: 'lora' has unknown field(s) {', '.join(sorted(set(lora) - lora_known))}.",
                               hint="Use r, alpha, dropout, target_modules.")
        job = cls(**data, lora=LoraSettings(**lora))
        job.check_fields(where)
        return job

    @classmethod
    def load(cls, path: str | Path) -> "TrainJob":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RequestError(f"The job file {path} does not exist.", path=path) from exc
        except json.JSONDecodeError as exc:
            raise RequestError(f"The job file {path} is not valid JSON (line {exc.lineno}: {exc.msg}).", path=path) from exc
        except OSError as exc:
            raise RequestError(f"Cannot read the job file {path}: {exc}.", path=path) from exc
        job = cls.from_dict(data, where=str(path))
        job._resolve_relative_to(path.parent)
        return job

    def _resolve_relative_to(self, folder: Path) -> None:
        # Paths in a job file are relative to the file, so an exported job folder can move.
        def fix(p: str | None) -> str | None:
            if p is None or p == "default" or Path(p).is_absolute():
                return p
            return str((folder / p).resolve())
        self.dataset, self.output_dir = fix(self.dataset), fix(self.output_dir)
        self.base_model, self.reward_model = fix(self.base_model), fix(self.reward_model)

    # -- the effective values -----------------------------------------------------------
    @property
    def lr(self) -> float:
        return float(self.learning_rate if self.learning_rate is not None else PRESETS[self.method]["learning_rate"])

    @property
    def kl_beta(self) -> float:
        return float(self.beta if self.beta is not None else PRESETS[self.method]["beta"])

    # -- checks -------------------------------------------------------------------------
    def check_fields(self, where: str = "the job") -> None:
        def bad(name: str, why: str) -> RequestError:
            return RequestError(f"{where}: '{name}' {why}.")
        if self.method not in METHODS:
            raise bad("method", f"is {self.method!r}; use one of {', '.join(METHODS)}")
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps",
                     "max_length", "max_completion_length", "num_generations"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, f"must be a whole number of at least 1 (got {value!r})")
        if self.learning_rate is not None and not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise bad("learning_rate", f"must be a positive number (got {self.learning_rate!r})")
        if self.lora.r < 1 or self.lora.alpha <= 0 or not 0 <= self.lora.dropout < 1:
            raise bad("lora", "needs r >= 1, alpha > 0 and 0 <= dropout < 1")
        if not self.lora.target_modules:
            raise bad("lora.target_modules", "is empty; name the layers to adapt, e.g. [\"q_proj\", \"v_proj\"]")
        if self.on_error not in ("stop", "skip"):
            raise bad("on_error", "must be 'stop' or 'skip'")
        if self.chat_format not in ("auto", "chat", "text"):
            raise bad("chat_format", "must be 'auto', 'chat' or 'text'")
        if self.method in ("dpo", "kto", "rl") and self.kl_beta <= 0:
            raise bad("beta", f"must be above 0 for {self.method} (it weighs the KL penalty against the base model)")
        if self.method == "kto" and self.batch_size < 2:
            raise bad("batch_size", "must be at least 2 for kto (its KL estimate pairs replies within a batch)")
        if self.method == "rl":
            if not self.reward_model:
                raise bad("reward_model", "is required for rl: the output folder of a 'reward' job")
            if self.num_generations < 2:
                raise bad("num_generations", "must be at least 2 for rl (RLOO compares samples of one prompt)")
            if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
                raise bad("batch_size", f"times gradient_accumulation_steps must be a multiple of num_generations "
                                        f"({self.num_generations}) for rl")

    def check_paths(self, resume: bool = False) -> None:
        """The dataset, output folder, base and reward model exist (or not) as the job needs."""
        if not Path(self.dataset).is_file():
            raise RequestError(f"The dataset {self.dataset} does not exist.", path=self.dataset,
                               hint="Export labels from the Tune room, or choose a JSONL file.")
        out = Path(self.output_dir)
        if resume:
            if not (out / "checkpoints").is_dir():
                raise RequestError(f"There is nothing to resume in {out}: it has no checkpoints folder.", path=out,
                                   hint="Start the job without --resume.")
        elif out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise RequestError(f"The output folder {out} already exists.", path=out,
                               hint="Choose a new output folder, delete this one, or pass --resume to continue it.")
        if self.base_model != "default" and not Path(self.base_model).exists():
            raise RequestError(f"The base model {self.base_model} does not exist.", path=self.base_model,
                               hint="Use 'default' (the bundled SmolLM2) or a transformers model folder.")
        if self.method == "rl":
            rm = Path(self.reward_model)
            if not (rm / "adapter_config.json").is_file() and not (rm / "config.json").is_file():
                raise RequestError(f"The reward model {rm} is not a model folder (no adapter_config.json or config.json).",
                                   path=rm, hint="Choose the output folder of a finished 'reward' job.")


# -- datasets -------------------------------------------------------------------------------
# Which columns each method reads; the first layout a row matches wins.
LAYOUTS: dict[str, list[tuple[str, ...]]] = {
    "sft": [("prompt", "completion"), ("messages",), ("text",), ("prompt", "chosen")],
    "reward": [("prompt", "chosen", "rejected")],
    "dpo": [("prompt", "chosen", "rejected")],
    "kto": [("prompt", "completion", "label"), ("prompt", "chosen", "rejected")],
    "rl": [("prompt",)],
}


def read_dataset(path: str | Path, method: str, on_error: str = "stop") -> tuple[list[dict], list]:
    """The rows of a JSONL dataset for ``method`` with only the columns it uses.

    KTO also takes preference rows (chosen -> desirable, rejected -> undesirable); SFT takes
    preference rows (the chosen reply) and unpaired rows (thumbs-up replies only). Raises
    RequestError naming the missing columns, an empty file, or (``on_error="stop"``) the
    first malformed line; with ``"skip"`` the skipped lines come back as the second value.
    """
    layouts = LAYOUTS[method]

    def check(obj: dict) -> str | None:
        for layout in layouts:
            if all(k in obj for k in layout):
                for k in layout:
                    if k == "label":
                        if not isinstance(obj[k], bool):
                            return "has a 'label' that is not true or false"
                    elif k == "text":
                        if not isinstance(obj[k], str):
                            return "has a 'text' that is not a string"
                    elif not is_text_or_messages(obj[k]):
                        return f"has a {k!r} that is neither text nor a list of chat messages"
                return None
        wanted = " or ".join("+".join(layout) for layout in layouts)
        return f"lacks the columns {method} needs ({wanted}); it has {', '.join(obj) or 'none'}"

    path = Path(path)
    records, errors = read_jsonl(path, on_error, check)
    if not records:
        detail = f" ({len(errors)} malformed lines skipped, first: {errors[0]})" if errors else ""
        raise RequestError(f"The dataset {path} has no usable rows for {method}{detail}.", path=path,
                           hint="Label some replies first, or choose another file.")
    rows = []
    for _, obj in records:
        layout = next(lay for lay in layouts if all(k in obj for k in lay))
        if method == "sft" and obj.get("label") is False:
            continue  # a thumbs-down reply is not one to imitate
        if method == "sft" and layout == ("prompt", "chosen"):
            rows.append({"prompt": obj["prompt"], "completion": obj["chosen"]})
        elif method == "kto" and layout == ("prompt", "chosen", "rejected"):
            rows.append({"prompt": obj["prompt"], "completion": obj["chosen"], "label": True})
            rows.append({"prompt": obj["prompt"], "completion": obj["rejected"], "label": False})
        else:
            rows.append({k: obj[k] for k in layout})
    if not rows:
        raise RequestError(f"The dataset {path} has no rows {method} can learn from (every reply is labelled bad).",
                           path=path, hint="Add thumbs-up replies or preference pairs.")
    if method == "rl":  # one row per distinct prompt
        seen, unique = set(), []
        for row in rows:
            key = json.dumps(row["prompt"], sort_keys=True)
            if key not in seen:
                seen.add(key)
                unique.append(row)
        rows = unique
    return rows, errors


def world_rank() -> int:
    return int(os.environ.get("RANK", "0"))


# -- memory -----------------------------------------------------------------------------------
GB = 1_000_000_000


def count_parameters(folder: Path) -> int:
    """Parameters from the safetensors headers (no weights are read)."""
    from engines.core.errors import ModelFileError

    total = 0
    for f in sorted(Path(folder).glob("*.safetensors")):
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for d in info["shape"]:
                    count *= d
                total += count
    if total == 0:
        raise ModelFileError(f"{folder} holds no *.safetensors weights.", path=folder,
                             hint="Hearth trains from safetensors only (pickle checkpoints are refused).")
    return total


def estimate_bytes_for(job: TrainJob, params: int, config: dict, reward_params: int = 0) -> int:
    """The estimate from a parameter count and a transformers config dict (missing keys: typical values)."""
    vocab = int(config.get("vocab_size") or 32000)
    sequences = job.batch_size * (2 if job.method in ("dpo", "reward") else 1)
    length = job.max_length if job.method != "rl" else job.max_length + job.max_completion_length
    weights = params * 4
    logits = sequences * length * vocab * 4 * 3  # logits, log-softmax and their gradient
    activations = sequences * length * int(config.get("hidden_size") or 1024) * int(config.get("num_hidden_layers") or 24) * 4 * 16
    return weights + logits + activations + GB // 2 + reward_params * 4


def estimate_training_bytes(job: TrainJob, base: Path, reward_base: Path | None = None) -> int:
    """A deliberately rough upper estimate: fp32 weights, logits for each sequence, and the runtime."""
    config = json.loads((Path(base) / "config.json").read_text())
    reward = count_parameters(reward_base) if reward_base is not None else 0
    return estimate_bytes_for(job, count_parameters(base), config, reward)
