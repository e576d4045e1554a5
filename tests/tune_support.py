"""Tiny causal LMs built from a config with a locally built byte-level tokenizer: no downloads."""
from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(extra_tokens: int = 0):
    """A byte-level BPE with no merges (one token per byte) plus ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS + sorted(alphabet) + [f"<x{i}>" for i in range(extra_tokens)])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    fast.chat_template = CHATML
    return fast


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 32) saved as safetensors with its tokenizer in ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


PROMPTS = ["Say hi.", "Name a fruit.", "What is 2+2?", "Pick a colour.", "Greet me.", "Count to three."]


def preference_rows() -> list[dict]:
    return [{"prompt": p, "chosen": "Yes.", "rejected": "No no no no no, absolutely not."} for p in PROMPTS]


def unpaired_rows() -> list[dict]:
    rows = []
    for p in PROMPTS:
        rows.append({"prompt": p, "completion": "Yes.", "label": True})
        rows.append({"prompt": p, "completion": "No no no no.", "label": False})
    return rows


def sft_rows() -> list[dict]:
    return [{"prompt": p, "completion": "Yes."} for p in PROMPTS]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def job_dict(method: str, base: Path, dataset: Path, output_dir: Path, **overrides) -> dict:
    job = {"method": method, "base_model": str(base), "dataset": str(dataset), "output_dir": str(output_dir),
           "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
           "max_steps": 3, "batch_size": 2, "learning_rate": 5e-3, "seed": 0, "save_steps": 2, "logging_steps": 1,
           "max_length": 160, "max_completion_length": 8, "num_generations": 2, "device": "cpu"}
    job.update(overrides)
    return job


def build_tiny_adapter(base: Path, folder: Path, *, seed: int = 1, task: str = "CAUSAL_LM", method: str = "dpo") -> Path:
    """A LoRA adapter for ``base`` laid out like a finished training run (adapter, tokenizer, summary.json),
    with random B matrices so it visibly changes the model (a freshly initialised LoRA changes nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    if task == "SEQ_CLS":
        model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS", modules_to_save=["score"])
    else:
        model = AutoModelForCausalLM.from_pretrained(str(base))
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(str(folder), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(folder))
    summary = {"status": "completed", "method": "reward" if task == "SEQ_CLS" else method, "base_model": str(base),
               "steps": 3, "max_steps": 3, "final_loss": 0.5}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder
