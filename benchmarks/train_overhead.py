"""DPO steps/s through ``main.py train`` vs a plain TRL script: same model, data and settings.

Both run as fresh processes on the bundled SmolLM2 (converted once for transformers), LoRA r=8 on
q_proj/v_proj, batch 2. Steady-state speed is measured between the first and the last optimizer
step (step 1 warms up); model loading and set-up are reported separately. The pair is run
``--rounds`` times, alternating, and each side keeps its best round (the machine is shared).
Prints one JSON object on its last line: ``ratio`` = hearth / raw steps per second.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT  # noqa: E402

SYSTEM = DEFAULT_SYSTEM_PROMPT
PAIRS = [
    ("Name a fruit.", "An apple.", "Fruits are many; one could say that an apple is, in some sense, a fruit."),
    ("What is 2+2?", "4.", "Well, if you add two and two together you will find that the answer is four."),
    ("Say hello.", "Hello!", "Greetings and salutations to you on this fine day, my dear friend."),
    ("Pick a colour.", "Blue.", "There are so many colours to choose from, but I suppose I would pick blue."),
    ("Capital of France?", "Paris.", "The capital city of the country of France is the city of Paris."),
    ("Name a planet.", "Mars.", "One of the planets in our solar system is the red planet called Mars."),
    ("Give me a number.", "7.", "A number that I could give you, if you would like one, is seven."),
    ("What is ice?", "Frozen water.", "Ice is what you get when water gets cold enough that it freezes solid."),
]
SETTINGS = {"max_steps": 12, "batch_size": 2, "learning_rate": 5e-5, "beta": 0.1, "max_length": 256, "seed": 0,
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}


def write_data(path: Path) -> None:
    rows = [{"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}],
             "chosen": [{"role": "assistant", "content": c}], "rejected": [{"role": "assistant", "content": r}]}
            for p, c, r in PAIRS * 2]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def raw_main(data: str, base: str) -> None:
    """The plain TRL script: what a user would write by hand."""
    t0 = time.time()
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.time())

    s = SETTINGS
    tokenizer = AutoTokenizer.from_pretrained(base)
    args = DPOConfig(output_dir=tempfile.mkdtemp(), max_steps=s["max_steps"], per_device_train_batch_size=s["batch_size"],
                     learning_rate=s["learning_rate"], beta=s["beta"], max_length=s["max_length"], seed=s["seed"],
                     logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True,
                     bf16=False, gradient_checkpointing=False, model_init_kwargs={"dtype": torch.float32})
    lora = s["lora"]
    trainer = DPOTrainer(model=base, args=args, train_dataset=load_dataset("json", data_files=data, split="train"),
                         processing_class=tokenizer, callbacks=[Stamp()],
                         peft_config=LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                                target_modules=lora["target_modules"], task_type="CAUSAL_LM"))
    setup = time.time() - t0
    trainer.train()
    print("RAW " + json.dumps({"stamps": stamps, "setup_s": setup}), flush=True)


def steady_rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def run_raw(data: Path, base: Path, env: dict) -> dict:
    t0 = time.time()
    out = subprocess.run([sys.executable, __file__, "--raw", str(data), str(base)], env=env, capture_output=True,
                         text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RAW "))
    info = json.loads(line[4:])
    return {"steps_per_s": steady_rate(info["stamps"]), "load_s": info["setup_s"], "wall_s": time.time() - t0}


def run_hearth(data: Path, work: Path, env: dict, n: int) -> dict:
    out = work / f"hearth-{n}"
    job = {"method": "dpo", "base_model": "default", "dataset": str(data), "output_dir": str(out), "device": "cpu",
           "save_steps": 1000, "logging_steps": 1, **SETTINGS}
    job_file = work / f"job-{n}.json"
    job_file.write_text(json.dumps(job))
    t0 = time.time()
    subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--job", str(job_file)], env=env,
                   capture_output=True, text=True, check=True)
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    stamps = [e["time"] for e in events if e["event"] == "step"]
    start = next(e["time"] for e in events if e["event"] == "start")
    return {"steps_per_s": steady_rate(stamps), "load_s": start - t0, "wall_s": time.time() - t0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", nargs=2, metavar=("DATA", "BASE"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.raw:
        raw_main(*args.raw)
        return
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    from engines.models import bundled_default_path
    from engines.text.hf_convert import ensure_converted

    t0 = time.time()
    base = ensure_converted(bundled_default_path())  # cached after the first run
    convert_s = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "pairs.jsonl"
        write_data(data)
        raws, hearths = [], []
        for n in range(args.rounds):
            raws.append(run_raw(data, base, env))
            hearths.append(run_hearth(data, work, env, n))
            print(f"round {n}: raw {raws[-1]['steps_per_s']:.3f} steps/s, hearth {hearths[-1]['steps_per_s']:.3f} steps/s",
                  file=sys.stderr)
    raw = max(raws, key=lambda r: r["steps_per_s"])
    hearth = max(hearths, key=lambda r: r["steps_per_s"])
    print(json.dumps({
        "benchmark": "train_overhead", "method": "dpo", "model": "SmolLM2-135M-Instruct (bundled, fp32, CPU)",
        "steps": SETTINGS["max_steps"], "batch_size": SETTINGS["batch_size"], "rounds": args.rounds,
        "hearth_steps_per_s": round(hearth["steps_per_s"], 4), "raw_steps_per_s": round(raw["steps_per_s"], 4),
        "ratio": round(hearth["steps_per_s"] / raw["steps_per_s"], 3),
        "hearth_load_s": round(hearth["load_s"], 2), "raw_load_s": round(raw["load_s"], 2),
        "conversion_s": round(convert_s, 2),
        "all_rounds": {"hearth": [round(h["steps_per_s"], 4) for h in hearths], "raw": [round(r["steps_per_s"], 4) for r in raws]},
    }))


if __name__ == "__main__":
    main()
