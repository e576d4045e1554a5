"""Training jobs on a tiny Llama built from a config: every method, the reward head, errors, SIGTERM/resume,
two processes under torchrun, and the exported cluster job."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.core.errors import OutOfMemoryError, RequestError
from engines.core.requests.tune import TrainJob
from tests.helpers import ROOT
from tests.tune_support import (PROMPTS, build_tiny_model, build_tokenizer, job_dict, preference_rows, sft_rows,
                                unpaired_rows, write_jsonl)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    base = build_tiny_model(root / "tiny-llama")
    data = {
        "sft": write_jsonl(root / "sft.jsonl", sft_rows()),
        "pref": write_jsonl(root / "pref.jsonl", preference_rows()),
        "unpaired": write_jsonl(root / "unpaired.jsonl", unpaired_rows()),
    }
    return {"root": root, "base": base, **data}


@pytest.fixture(scope="session")
def reward_dir(tiny):
    """A reward model trained once for the session (the rl tests need one)."""
    from engines.tune.runner import run_job

    out = tiny["root"] / "reward-run"
    summary = run_job(TrainJob.from_dict(job_dict("reward", tiny["base"], tiny["pref"], out, max_steps=6)))
    assert summary["status"] == "completed"
    return out


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _logits(model, tokenizer, text="<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"):
    import torch

    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


def _assert_trained(out: Path, method: str, base: Path):
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["method"] == method and summary["steps"] == 3
    assert math.isfinite(summary["final_loss"])
    assert (out / "adapter_model.safetensors").stat().st_size > 0 and (out / "adapter_config.json").is_file()
    assert (out / "checkpoints" / "checkpoint-2").is_dir()  # save_steps=2
    assert not (out / "training_args.bin").exists()  # no pickles next to the adapter
    steps = [e for e in _events(out) if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    for e in steps:
        assert math.isfinite(e["loss"]) and e["learning_rate"] > 0 and e["eta_s"] is not None
    assert steps[-1]["samples_per_s"] > 0
    assert _events(out)[-1] == {**_events(out)[-1], "event": "end", "status": "completed"}
    return steps


def _assert_adapter_changes_output(out: Path, base: Path):
    from transformers import AutoModelForCausalLM

    from engines.tune.adapters import load_tuned_model

    tuned, tokenizer = load_tuned_model(out)
    plain = AutoModelForCausalLM.from_pretrained(str(base))
    diff = (_logits(tuned, tokenizer) - _logits(plain, tokenizer)).abs().max().item()
    assert diff > 1e-4, "the reloaded adapter does not change the model's output"


@pytest.mark.parametrize("method,data", [("sft", "sft"), ("dpo", "pref"), ("kto", "unpaired")])
def test_method_trains_saves_and_reloaded_adapter_changes_output(tiny, tmp_path, method, data):
    from engines.tune.runner import run_job

    out = tmp_path / method
    run_job(TrainJob.from_dict(job_dict(method, tiny["base"], tiny[data], out)))
    steps = _assert_trained(out, method, tiny["base"])
    if method == "dpo":
        assert steps[-1]["reward_accuracy"] is not None and steps[-1]["reward_margin"] is not None
    if method == "kto":
        assert steps[-1]["kl"] is not None
    _assert_adapter_changes_output(out, tiny["base"])
    if method == "sft":
        _assert_merged_model_matches_adapter(out, tmp_path / "merged")


def _assert_merged_model_matches_adapter(out: Path, target: Path):
    import torch
    from transformers import AutoModelForCausalLM

    from engines.tune.adapters import load_tuned_model, merge_adapter

    merge_adapter(out, target)
    assert (target / "model.safetensors").is_file() and not (target / "adapter_config.json").exists()
    tuned, tokenizer = load_tuned_model(out)
    merged = AutoModelForCausalLM.from_pretrained(str(target))
    assert torch.allclose(_logits(tuned, tokenizer), _logits(merged, tokenizer), atol=1e-4)


def test_reward_model_keeps_its_score_head(tiny, reward_dir):
    import torch
    from safetensors import safe_open

    from engines.tune.adapters import load_reward_model, reward_scores

    with safe_open(str(reward_dir / "adapter_model.safetensors"), "pt") as f:
        assert any(k.endswith("score.weight") for k in f.keys())
    steps = [e for e in _events(reward_dir) if e["event"] == "step"]
    assert all(e["reward_accuracy"] is not None and e["reward_margin"] is not None for e in steps)

    chosen = [r["chosen"] for r in preference_rows()]
    rejected = [r["rejected"] for r in preference_rows()]
    scores = []
    for seed in (1, 2):  # a head left random would score differently under another seed
        torch.manual_seed(seed)
        model, tok = load_reward_model(reward_dir)
        scores.append((reward_scores(model, tok, PROMPTS, chosen), reward_scores(model, tok, PROMPTS, rejected)))
    assert scores[0] == scores[1]
    good, bad = scores[0]
    assert sum(good) / len(good) > sum(bad) / len(bad)  # it learned the labels


def test_reward_head_starts_as_transformers_initialises_it(reward_dir):
    head = next(e for e in _events(reward_dir) if e["event"] == "score_head")
    assert head["expected_std"] == 0.02 and 0.01 < head["std"] < 0.04 and head["shape"] == [1, 32]


def test_score_head_check_refuses_a_head_of_the_wrong_scale(tiny):
    import torch
    from transformers import AutoModelForSequenceClassification

    from engines.core.errors import ModelFileError
    from engines.tune.train_reward import check_score_head

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny["base"]), num_labels=1)
    assert 0.01 < check_score_head(model, tiny["base"])["std"] < 0.04
    with torch.no_grad():
        model.score.weight.mul_(100.0)  # e.g. a head trained for something else
    with pytest.raises(ModelFileError, match="score head .* starts with std"):
        check_score_head(model, tiny["base"])


def _length_pairs(prompts: list[str], salt: int, prefer_short: bool) -> list[dict]:
    """Pairs of a one-word and a long reply, with words that differ per prompt (held-out pairs share none)."""
    words = ["apple", "river", "stone", "cloud", "green", "quiet", "north", "maple", "tiger", "ocean", "piano", "lemon"]
    rows = []
    for i, prompt in enumerate(prompts):
        w = [words[(i * 5 + salt + j) % len(words)] for j in range(12)]
        short, long = f"{w[0].title()}.", " ".join(w[1:1 + 8 + (i + salt) % 4]).capitalize() + "."
        rows.append({"prompt": prompt, "chosen": short if prefer_short else long, "rejected": long if prefer_short else short})
    return rows


def test_reward_model_learns_a_length_preference_that_holds_on_unseen_pairs(tiny, tmp_path):
    """The demo preference in miniature: trained on 24 pairs, it ranks 12 unseen ones (new prompts, new replies).
    Both directions, from the same seed: a head that happened to favour one length from the start passes only one."""
    from engines.tune.adapters import load_reward_model, reward_scores
    from engines.tune.runner import run_job

    for prefer_short in (True, False):
        train = write_jsonl(tmp_path / f"train-{prefer_short}.jsonl",
                            _length_pairs([f"Question {i}?" for i in range(24)], 0, prefer_short))
        heldout = _length_pairs([f"Another question {i}, please?" for i in range(12)], 7, prefer_short)
        out = tmp_path / f"reward-{prefer_short}"
        run_job(TrainJob.from_dict(job_dict("reward", tiny["base"], train, out, max_steps=24, batch_size=4, learning_rate=3e-3)))
        model, tok = load_reward_model(out)
        prompts = [r["prompt"] for r in heldout]
        good = reward_scores(model, tok, prompts, [r["chosen"] for r in heldout])
        bad = reward_scores(model, tok, prompts, [r["rejected"] for r in heldout])
        accuracy = sum(g > b for g, b in zip(good, bad)) / len(heldout)
        assert accuracy >= 0.9, (prefer_short, accuracy, good, bad)


def test_rl_uses_the_reward_model_with_a_kl_penalty(tiny, reward_dir, tmp_path):
    from engines.tune.runner import run_job

    out = tmp_path / "rl"
    run_job(TrainJob.from_dict(job_dict("rl", tiny["base"], tiny["pref"], out, reward_model=str(reward_dir), beta=0.1)))
    steps = _assert_trained(out, "rl", tiny["base"])
    assert all(e["kl"] is not None and e["reward"] is not None for e in steps)
    assert json.loads((out / "job.json").read_text())["beta"] == 0.1
    _assert_adapter_changes_output(out, tiny["base"])


# -- bad input ----------------------------------------------------------------------------------
def test_job_errors_name_the_field_or_file(tiny, tmp_path, monkeypatch):
    from engines.tune.runner import run_job

    def job(**kw):
        return TrainJob.from_dict(job_dict(kw.pop("method", "dpo"), tiny["base"], kw.pop("dataset", tiny["pref"]),
                                           kw.pop("out", tmp_path / "out"), **kw))

    with pytest.raises(RequestError, match="lacks the columns dpo needs .*line 1|line 1 lacks the columns dpo needs"):
        run_job(job(dataset=tiny["unpaired"]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(RequestError, match="has no usable rows"):
        run_job(job(dataset=empty))
    broken = write_jsonl(tmp_path / "broken.jsonl", preference_rows())
    broken.write_text(broken.read_text() + "{not json\n")
    with pytest.raises(RequestError, match="line 7 is not valid JSON"):
        run_job(job(dataset=broken))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "x").write_text("x")
    with pytest.raises(RequestError, match="already exists.*--resume"):
        run_job(job(out=existing))
    with pytest.raises(RequestError, match="nothing to resume"):
        run_job(job(out=tmp_path / "fresh"), resume=True)
    with pytest.raises(RequestError, match="reward_model.*required"):
        job(method="rl")
    with pytest.raises(RequestError, match="beta.*above 0"):
        job(method="rl", reward_model="x", beta=0)
    with pytest.raises(RequestError, match="batch_size.*at least 2 for kto"):
        job(method="kto", batch_size=1)
    with pytest.raises(RequestError, match="unknown field"):
        TrainJob.from_dict({**job_dict("dpo", tiny["base"], tiny["pref"], tmp_path), "epochs": 3})

    from engines.models import estimate
    monkeypatch.setattr(estimate, "available_memory", lambda: 50_000_000)
    with pytest.raises(OutOfMemoryError, match="needs about .* GB but only 0.1 GB"):
        run_job(job())
    assert not (tmp_path / "out").exists()  # nothing was created for a job that could not start


def test_reward_model_that_does_not_match_its_tokenizer_is_refused(reward_dir, tmp_path):
    from engines.tune.adapters import load_reward_model

    bad = tmp_path / "bad-reward"
    shutil.copytree(reward_dir, bad)
    build_tokenizer(extra_tokens=500).save_pretrained(bad)
    with pytest.raises(RequestError, match="does not match its tokenizer.*tokens but the model knows"):
        load_reward_model(bad)
    sft_like = tmp_path / "not-reward"
    shutil.copytree(reward_dir, sft_like)
    summary = json.loads((sft_like / "summary.json").read_text())
    (sft_like / "summary.json").write_text(json.dumps({**summary, "method": "sft"}))
    with pytest.raises(RequestError, match="is not a reward model"):
        load_reward_model(sft_like)


def _cli(*args, **kw):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, **kw)


def test_cli_user_error_is_one_line_without_traceback(tiny, tmp_path):
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job_dict("dpo", tiny["base"], tmp_path / "missing.jsonl", tmp_path / "o")))
    proc = _cli("train", "--job", str(job_file))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: The dataset") and "missing.jsonl does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- SIGTERM, resume, distributed ---------------------------------------------------------------
def test_sigterm_saves_a_checkpoint_and_resume_finishes(tiny, tmp_path):
    out = tmp_path / "run"
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job_dict("dpo", tiny["base"], tiny["pref"], out, max_steps=10, save_steps=1000)))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--job", str(job_file)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if (out / "events.jsonl").exists() and any(e["event"] == "step" for e in _events(out)):
                break
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "cancelled" and summary["reason"] == "SIGTERM"
    stopped_at = summary["steps"]
    assert 1 <= stopped_at < 10
    assert (out / "checkpoints" / f"checkpoint-{stopped_at}").is_dir()
    assert not (out / "adapter_model.safetensors").exists()

    proc = _cli("train", "--job", str(job_file), "--resume", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 10
    events = _events(out)
    resumed = [e for e in events if e["event"] == "job"][-1]
    assert resumed["resume"] and resumed["resume_from"].endswith(f"checkpoint-{stopped_at}")
    after = [e["step"] for e in events[events.index(resumed):] if e["event"] == "step"]
    assert after == list(range(stopped_at + 1, 11))
    assert (out / "adapter_model.safetensors").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_same_entry_point_runs_in_two_processes(tiny, tmp_path):
    out = tmp_path / "ddp"
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job_dict("dpo", tiny["base"], tiny["pref"], out, max_steps=2, batch_size=1)))
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(_free_port()), str(ROOT / "main.py"), "train", "--job",
                           str(job_file)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2 and summary["steps"] == 2
    start = next(e for e in _events(out) if e["event"] == "start")
    assert start["world_size"] == 2 and start["samples_per_step"] == 2
    assert len([e for e in _events(out) if e["event"] == "step"]) == 2  # rank 0 writes the log, once per step
    assert (out / "adapter_model.safetensors").is_file()


def test_export_job_writes_config_and_launch_command(tiny, tmp_path):
    import yaml

    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job_dict("dpo", tiny["base"], tiny["pref"], tmp_path / "o")))
    target = tmp_path / "export"
    proc = _cli("export-job", "--job", str(job_file), "--to", str(target), "--gpus", "4", "--machines", "2",
                "--strategy", "deepspeed-zero3")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["files"] == ["JOB.json", "accelerate.yaml", "dataset.jsonl", "launch.sh"]
    config = yaml.safe_load((target / "accelerate.yaml").read_text())
    assert config["distributed_type"] == "DEEPSPEED" and config["deepspeed_config"]["zero_stage"] == 3
    assert config["num_processes"] == 8 and config["num_machines"] == 2
    assert result["command"].startswith("accelerate launch --config_file accelerate.yaml --machine_rank $MACHINE_RANK")
    assert result["command"].endswith("main.py train --job JOB.json")
    assert result["command"] in (target / "launch.sh").read_text()
    exported = TrainJob.load(target / "JOB.json")  # relative paths resolve against the job file
    assert exported.dataset == str((target / "dataset.jsonl").resolve())
    assert exported.output_dir == str((target / "output").resolve())
