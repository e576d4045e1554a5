"""What the Tune room asks for: a training job (``TrainJob``, run by ``main.py train``) and a base-vs-tuned
comparison (``CompareRequest``, answered by the engine host), as JSON-serialisable dataclasses, with the
checks that run before any model loads and the job's rough memory estimate.

Stdlib only, so the GUI process uses it too: the Tune room builds and checks the same job (and shows the
estimate) that ``main.py train`` validates before torch is imported, so a mistyped field fails in a
fraction of a second.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engines.core.errors import ModelFileError, RequestError
from engines.core.requests import from_json
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


@dataclass
class CompareRequest:
    """Base vs tuned (``/hearth/tune/compare``): both models answer each prompt with the same seed and settings."""

    adapter: str  # the output folder of a finished sft/dpo/kto/rl run
    prompts: list[Any] = field(default_factory=list)  # text or chat-message lists
    reward_model: str = ""  # the output folder of a finished reward run ("" = no scores)
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 128
    seed: int = 0  # prompt i is answered with seed + i, by both models
    system_prompt: str = DEFAULT_SYSTEM_PROMPT  # added to plain-text prompts, as in Chat and training
    device: str = "auto"
    request_id: str = ""

    def validate(self) -> None:
        if not isinstance(self.adapter, str) or not self.adapter:
            raise RequestError("Field 'adapter' is empty.", hint="Send the output folder of a finished training run.")
        if not isinstance(self.prompts, list) or not self.prompts:
            raise RequestError("Field 'prompts' must be a non-empty list.", hint="Send at least one held-out prompt.")
        for i, prompt in enumerate(self.prompts):
            text_ok = isinstance(prompt, str) and prompt.strip()
            chat_ok = isinstance(prompt, list) and prompt and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ("system", "user", "assistant")
                for m in prompt)
            if not (text_ok or chat_ok):
                raise RequestError(f"prompts[{i}] is neither text nor a list of chat messages.")
        if not isinstance(self.temperature, (int, float)) or not 0.0 <= self.temperature <= 5.0:
            raise RequestError(f"Field 'temperature' is {self.temperature!r}.", hint="Use a number between 0 and 5.")
        if not isinstance(self.top_p, (int, float)) or not 0.0 < self.top_p <= 1.0:
            raise RequestError(f"Field 'top_p' is {self.top_p!r}.", hint="Use a number in (0, 1].")
        if not isinstance(self.max_tokens, int) or not 1 <= self.max_tokens <= 8192:
            raise RequestError(f"Field 'max_tokens' is {self.max_tokens!r}.", hint="Use a whole number from 1 to 8192.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise RequestError(f"Field 'seed' is {self.seed!r}.", hint="Use a whole number.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CompareRequest":
        return from_json(cls, data, "compare request")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- memory -----------------------------------------------------------------------------------
# The job's rough memory need: the Train form shows it, and the trainer refuses a run that does not fit.
GB = 1_000_000_000


def count_parameters(folder: Path) -> int:
    """Parameters from the safetensors headers (no weights are read)."""
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
