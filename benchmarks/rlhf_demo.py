"""The whole RLHF loop on the bundled SmolLM2 with the scripted "short answers" labeler, through Hearth's own pieces.

1. generate K sampled candidates per prompt (bundled model through transformers, one seed per round);
2. label every pair of them in the label store with the scripted labeler of
   ``engines.core.preference_demo`` (the clearly shorter reply wins, near-equal lengths tie);
3. export TRL preference JSONL from the training prompts (plain prompts: the hint is not in the data); train a reward model, then DPO and the rl
   method (RLOO with the reward model and a KL penalty), each as ``main.py train --job`` with LoRA;
4. on held-out prompts: the reward model's accuracy on the labeler's held-out pairs, mean reply words
   (greedy, fixed seed) for base/DPO/RL, how far each tuned model moved toward the preferred end
   (0 words; 1.0 = all the way), the reward model's win rate of each tuned model against the base,
   and the RL run's reward and KL curve ends.

``--quick`` is the whole loop in a few minutes; without it, the same loop at a larger scale.
Prints one JSON object on its last line; ``--keep`` keeps the work folder (labels, runs, replies).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT  # noqa: E402

SYSTEM = DEFAULT_SYSTEM_PROMPT

# (train prompts, held-out prompts, candidates per training / held-out prompt, new tokens, reward/DPO/RL steps)
SCALES = {
    "quick": dict(train_prompts=40, heldout_prompts=12, k=3, heldout_k=6, max_new_tokens=64, reward_steps=40, dpo_steps=24,
                  rl_steps=24),
    "full": dict(train_prompts=40, heldout_prompts=12, k=6, heldout_k=6, max_new_tokens=96, reward_steps=120, dpo_steps=100,
                 rl_steps=48),
}


def generate(model, tokenizer, prompts: list[str], *, sample: bool, seed: int, max_new_tokens: int,
             system: str = SYSTEM) -> list[str]:
    import torch

    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template([{"role": "system", "content": system}, {"role": "user", "content": p}],
                                           tokenize=False, add_generation_prompt=True) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=sample, temperature=0.7 if sample else None,
                             top_p=0.95 if sample else None, pad_token_id=tokenizer.pad_token_id)
    return [tokenizer.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in out]


def say(text: str) -> None:
    """Progress on stderr (the last stdout line is the result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def train(job: dict, work: Path, env: dict) -> dict:
    say(f"training {job['method']} ({job['max_steps']} steps)")
    job_file = work / f"{job['method']}.json"
    job_file.write_text(json.dumps(job))
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--job", str(job_file)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{job['method']} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((Path(job["output_dir"]) / "summary.json").read_text())
    summary["wall_s"] = round(time.time() - t0, 1)
    return summary


def step_metrics(run_dir: Path, name: str) -> list[float]:
    out = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "step" and event.get(name) is not None:
            out.append(float(event[name]))
    return out


def mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="the whole loop in a few minutes")
    for name, value in SCALES["full"].items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None, help=f"full: {value}")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    scale = dict(SCALES["quick" if args.quick else "full"])
    scale.update({k: getattr(args, k) for k in scale if getattr(args, k) is not None})

    work = Path(tempfile.mkdtemp(prefix="hearth-rlhf-"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    os.environ.update(HF_HUB_OFFLINE="1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.core import preference_demo as demo
    from engines.store.labels import LabelStore
    from engines.store.storage import Database
    from engines.tune.adapters import load_reward_model, load_tuned_model, reward_scores
    from engines.tune.runner import resolve_base

    t_start = time.time()
    load = os.getloadavg()[0]
    base_dir = resolve_base("default")
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()

    # 1-2. candidates and scripted labels in the label store
    store = LabelStore(Database(work / "labels.sqlite3"))
    prompts = store.prompts(store.load_starter_set())
    train_prompts = prompts[: scale["train_prompts"]]
    heldout = prompts[len(prompts) - scale["heldout_prompts"]:]
    if len(train_prompts) + len(heldout) > len(prompts):
        sys.exit(f"The starter set has {len(prompts)} prompts; train + held-out prompts must not overlap.")
    t0 = time.time()
    texts = {p.id: [] for p in train_prompts + heldout}
    rounds = max(scale["k"], scale["heldout_k"])
    for k in range(rounds):
        say(f"writing candidates, round {k + 1} of {rounds}")
        group = (train_prompts if k < scale["k"] else []) + (heldout if k < scale["heldout_k"] else [])
        system = demo.reply_system_prompt(SYSTEM, k)
        for p, text in zip(group, generate(base, tokenizer, [p.prompt for p in group], sample=True, seed=k,
                                           max_new_tokens=scale["max_new_tokens"], system=system)):
            cid = store.add_candidate(p.id, text, model="default", sampling={"temperature": 0.7, "top_p": 0.95}, seed=k,
                                      meta={"system_prompt": system})
            texts[p.id].append((cid, text))
    generate_s = time.time() - t0
    heldout_pairs = []
    for p in train_prompts + heldout:
        for (ia, a), (ib, b) in itertools.combinations(texts[p.id], 2):
            verdict = demo.scripted_judgement(a, b)
            if p in heldout:
                if verdict != "tie":
                    heldout_pairs.append((p.prompt, a, b, verdict))
            else:
                store.judge(ia, ib, verdict, meta={"labeler": "scripted"})
    prefs = work / "prefs.jsonl"
    n_pairs = store.export_preference(prefs)
    held_prompts = [p.prompt for p in heldout]
    partial = {"preference_pairs": n_pairs, "heldout_pairs": len(heldout_pairs), "generate_s": round(generate_s, 1)}

    def note(**figures) -> None:  # each stage's figures as soon as they exist (work/partial.json and stderr)
        partial.update(figures)
        (work / "partial.json").write_text(json.dumps(partial, indent=1))
        say(json.dumps(figures))

    replies = {"base": generate(base, tokenizer, held_prompts, sample=False, seed=0, max_new_tokens=scale["max_new_tokens"])}
    note(base_words=round(demo.mean_words(replies["base"]), 1), **partial)

    # 3. reward model, DPO, RL (learning rate and beta from the method presets; RL's from the demo preference)
    lora = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    common = {"base_model": "default", "dataset": str(prefs), "lora": lora, "seed": 0, "device": "cpu",
              "max_length": 192, "save_steps": 1000}
    reward = train({**common, "method": "reward", "output_dir": str(work / "reward"), "max_steps": scale["reward_steps"],
                    "batch_size": 8}, work, env)
    # 4. held-out evaluation, stage by stage
    t0 = time.time()
    rm, rm_tok = load_reward_model(work / "reward")
    correct = 0
    for prompt, a, b, verdict in heldout_pairs:
        sa, sb = reward_scores(rm, rm_tok, [prompt, prompt], [a, b])
        correct += (sa > sb) == (verdict == "a")
    note(reward_accuracy=round(correct / len(heldout_pairs), 3) if heldout_pairs else None)
    eval_s = time.time() - t0
    dpo = train({**common, "method": "dpo", "output_dir": str(work / "dpo"), "max_steps": scale["dpo_steps"],
                 "batch_size": 4}, work, env)
    t0 = time.time()
    model, tok = load_tuned_model(work / "dpo")
    replies["dpo"] = generate(model, tok, held_prompts, sample=False, seed=0, max_new_tokens=scale["max_new_tokens"])
    note(dpo_words=round(demo.mean_words(replies["dpo"]), 1))
    eval_s += time.time() - t0
    rl = train({**common, "method": "rl", "output_dir": str(work / "rl"), "max_steps": scale["rl_steps"], "batch_size": 8,
                "num_generations": 4, "max_completion_length": scale["max_new_tokens"], "learning_rate": demo.RL_LEARNING_RATE,
                "reward_model": str(work / "reward")}, work, env)
    t0 = time.time()
    model, tok = load_tuned_model(work / "rl")
    replies["rl"] = generate(model, tok, held_prompts, sample=False, seed=0, max_new_tokens=scale["max_new_tokens"])
    note(rl_words=round(demo.mean_words(replies["rl"]), 1))
    scores = {name: reward_scores(rm, rm_tok, held_prompts, texts_) for name, texts_ in replies.items()}
    eval_s += time.time() - t0

    def win_rate(name: str) -> float:
        pairs = list(zip(scores[name], scores["base"]))
        return round(sum(1.0 if s > b else 0.5 if s == b else 0.0 for s, b in pairs) / len(pairs), 3)

    words = {name: round(demo.mean_words(texts_), 1) for name, texts_ in replies.items()}
    rl_reward, rl_kl = step_metrics(work / "rl", "reward"), step_metrics(work / "rl", "kl")
    quarter = max(1, len(rl_reward) // 4)
    (work / "replies.json").write_text(json.dumps({"prompts": held_prompts, **replies}, indent=1))
    result = {
        "benchmark": "rlhf_demo", "mode": "quick" if args.quick else "full", "model": "SmolLM2-135M-Instruct (bundled)",
        "preference": demo.TITLE, "labeler": demo.LABELER_NAME, "scale": scale,
        "train_prompts": len(train_prompts), "heldout_prompts": len(heldout), "preference_pairs": n_pairs,
        "generate_s": round(generate_s, 1), "eval_s": round(eval_s, 1),
        "reward_accuracy": partial["reward_accuracy"],
        "heldout_pairs": len(heldout_pairs),
        "measure": "mean words per greedy reply on held-out prompts (preferred end: 0)",
        "words": words, "empty_replies": {k: sum(1 for t in v if not t.strip()) for k, v in replies.items()},
        "moved": {name: round(demo.moved(words["base"], words[name]), 3) for name in ("dpo", "rl")},
        "win_rate": {"dpo": win_rate("dpo"), "rl": win_rate("rl")},
        "kl": rl_kl[-1] if rl_kl else None,
        "rl_curve": {"reward_first_quarter": mean(rl_reward[:quarter]), "reward_last_quarter": mean(rl_reward[-quarter:]),
                     "kl_max": max(rl_kl) if rl_kl else None},
        "mean_reward_score": {k: round(sum(v) / len(v), 3) for k, v in scores.items()},
        "runs": {name: {"steps": s["steps"], "final_loss": s["final_loss"], "wall_s": s["wall_s"]}
                 for name, s in (("reward", reward), ("dpo", dpo), ("rl", rl))},
        "reward_train_accuracy_last": reward["last_metrics"].get("accuracy"),
        "example": {"prompt": held_prompts[0], **{k: v[0] for k, v in replies.items()}},
        "load_avg_1min_at_start": round(load, 2), "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
        "wall_s": round(time.time() - t_start, 1), "work_dir": str(work) if args.keep else None,
    }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
