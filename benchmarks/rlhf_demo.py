"""The whole RLHF loop on the bundled SmolLM2 with a scripted labeler, through Hearth's own pieces.

1. generate K candidates per training prompt (bundled model through transformers, varied seeds);
2. label them in the label store with a scripted labeler that prefers the shorter of two replies;
3. export TRL preference JSONL; train a reward model, then DPO and the rl method (RLOO with the
   reward model and a KL penalty), each as ``main.py train --job`` with LoRA;
4. on held-out prompts, measure how the tuned models moved: mean reply length (greedy), the
   reward model's win rate vs the base, and its accuracy on held-out scripted pairs.
Prints one JSON object on its last line with the before/after figures.
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
SYSTEM = "You are a helpful assistant."


def generate(model, tokenizer, prompts: list[str], *, sample: bool, seed: int, max_new_tokens: int) -> list[str]:
    import torch

    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}],
                                           tokenize=False, add_generation_prompt=True) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=sample, temperature=0.9 if sample else None,
                             top_p=0.95 if sample else None, pad_token_id=tokenizer.pad_token_id)
    return [tokenizer.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in out]


def shorter_wins(a: str, b: str) -> str:
    """The scripted labeler: both replies must say something; the shorter one wins."""
    if not a.strip() or not b.strip():
        return "b" if not a.strip() else "a"
    return "tie" if len(a) == len(b) else ("a" if len(a) < len(b) else "b")


def train(job: dict, work: Path, env: dict) -> dict:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-prompts", type=int, default=24)
    parser.add_argument("--heldout-prompts", type=int, default=8)
    parser.add_argument("--k", type=int, default=2, help="candidates per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--reward-steps", type=int, default=30)
    parser.add_argument("--dpo-steps", type=int, default=30)
    parser.add_argument("--rl-steps", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hearth-rlhf-"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    os.environ.update(HF_HUB_OFFLINE="1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.store.labels import LabelStore
    from engines.store.storage import Database
    from engines.tune.adapters import load_reward_model, load_tuned_model, reward_scores
    from engines.tune.runner import resolve_base

    t_start = time.time()
    base_dir = resolve_base("default")
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()

    # 1-2. candidates and scripted labels in the label store
    store = LabelStore(Database(work / "labels.sqlite3"))
    set_id = store.load_starter_set()
    prompts = store.prompts(set_id)
    train_prompts = prompts[: args.train_prompts]
    heldout = prompts[len(prompts) - args.heldout_prompts:]
    t0 = time.time()
    candidates = {p.id: [] for p in prompts}
    for k in range(args.k):
        for group in (train_prompts, heldout):
            texts = generate(base, tokenizer, [p.prompt for p in group], sample=True, seed=k, max_new_tokens=args.max_new_tokens)
            for p, text in zip(group, texts):
                candidates[p.id].append(store.add_candidate(p.id, text, model="default", sampling={"temperature": 0.9,
                                                                                                      "top_p": 0.95}, seed=k))
    generate_s = time.time() - t0
    for p in train_prompts:
        ids = candidates[p.id]
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                store.judge(ids[i], ids[j], shorter_wins(store.candidate(ids[i]).completion, store.candidate(ids[j]).completion))
    prefs = work / "prefs.jsonl"
    n_pairs = store.export_preference(prefs)

    # 3. reward model, DPO, RL
    lora = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    common = {"base_model": "default", "dataset": str(prefs), "lora": lora, "batch_size": 2, "seed": 0, "device": "cpu",
              "max_length": 256, "save_steps": 1000}
    reward = train({**common, "method": "reward", "output_dir": str(work / "reward"), "max_steps": args.reward_steps,
                    "learning_rate": 2e-4}, work, env)
    dpo = train({**common, "method": "dpo", "output_dir": str(work / "dpo"), "max_steps": args.dpo_steps,
                 "learning_rate": 2e-4, "beta": 0.1}, work, env)
    rl = train({**common, "method": "rl", "output_dir": str(work / "rl"), "max_steps": args.rl_steps, "batch_size": 4,
                "num_generations": 2, "max_completion_length": args.max_new_tokens, "learning_rate": 5e-5, "beta": 0.05,
                "reward_model": str(work / "reward")}, work, env)

    # 4. held-out evaluation
    rm, rm_tok = load_reward_model(work / "reward")
    held_prompts = [p.prompt for p in heldout]
    held_pairs = [(store.candidate(candidates[p.id][0]).completion, store.candidate(candidates[p.id][1]).completion, p.prompt)
                  for p in heldout if args.k >= 2]
    correct = total = 0
    for a, b, prompt in held_pairs:
        verdict = shorter_wins(a, b)
        if verdict == "tie":
            continue
        sa, sb = reward_scores(rm, rm_tok, [prompt, prompt], [a, b])
        correct += (sa > sb) == (verdict == "a")
        total += 1
    replies = {"base": generate(base, tokenizer, held_prompts, sample=False, seed=0, max_new_tokens=args.max_new_tokens)}
    for name in ("dpo", "rl"):
        model, tok = load_tuned_model(work / name)
        replies[name] = generate(model, tok, held_prompts, sample=False, seed=0, max_new_tokens=args.max_new_tokens)
    scores = {name: reward_scores(rm, rm_tok, held_prompts, texts) for name, texts in replies.items()}

    def win_rate(name: str) -> float:
        pairs = list(zip(scores[name], scores["base"]))
        return sum(1.0 if s > b else 0.5 if s == b else 0.0 for s, b in pairs) / len(pairs)

    result = {
        "benchmark": "rlhf_demo", "model": "SmolLM2-135M-Instruct (bundled)", "labeler": "prefers the shorter reply",
        "train_prompts": len(train_prompts), "heldout_prompts": len(heldout), "candidates_per_prompt": args.k,
        "preference_pairs": n_pairs, "generate_s": round(generate_s, 1),
        "reward": {"steps": reward["steps"], "final_loss": reward["final_loss"], "wall_s": reward["wall_s"],
                   "train_accuracy_last": reward["last_metrics"].get("accuracy"),
                   "heldout_pair_accuracy": round(correct / total, 3) if total else None, "heldout_pairs": total},
        "dpo": {"steps": dpo["steps"], "final_loss": dpo["final_loss"], "wall_s": dpo["wall_s"]},
        "rl": {"steps": rl["steps"], "final_loss": rl["final_loss"], "wall_s": rl["wall_s"],
               "kl_last": rl["last_metrics"].get("kl"), "reward_last": rl["last_metrics"].get("reward")},
        "mean_reply_chars": {k: round(sum(map(len, v)) / len(v), 1) for k, v in replies.items()},
        "mean_reward_score": {k: round(sum(v) / len(v), 3) for k, v in scores.items()},
        "reward_win_rate_vs_base": {"dpo": round(win_rate("dpo"), 3), "rl": round(win_rate("rl"), 3)},
        "total_s": round(time.time() - t_start, 1), "work_dir": str(work),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
