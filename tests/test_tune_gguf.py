"""GGUF export of tuned models: a tiny Llama (BPE tokenizer with merges and a ChatML template) with a
LoRA adapter is merged, exported, loaded by llama-cpp-python and must write the same greedy tokens as
the merged transformers model; Q8_0 stays close to F16; bad input is refused naming the file."""
from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines.core.errors import HearthError, ModelFileError, RequestError, UnsupportedModelError
from engines.core.events import Result
from engines.tune.gguf_export import check_source, export_gguf
from tests.tune_support import CHATML, build_tiny_adapter, build_tiny_model

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "Tell me the weather in the north, then the south."}]
WORDS = ["the", "he", "th", "in", "er", "an", "at", "or", "ou", "en"]


def build_bpe_tokenizer():
    """Byte-level BPE with a few real merges (so llama.cpp's merge path is exercised) and ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = [("t", "h"), ("h", "e"), ("th", "e"), ("i", "n"), ("e", "r"), ("a", "n"), ("a", "t"), ("o", "r"),
              ("o", "u"), ("e", "n"), ("Ġ", "the"), ("Ġ", "t"), ("Ġ", "1"), ("1", "2"), ("12", "3"), ("Ċ", "Ċ"),
              ("Ġ", "Ġ"), ("'", "l"), ("'l", "l"), ("ĉ", "O")]  # digits, spaces and tabs: pre-tokenizers differ there
    merged = [a + b for a, b in merges]
    vocab = {tok: i for i, tok in enumerate(specials + alphabet + merged)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.add_special_tokens({"additional_special_tokens": specials[1:]})
    fast.chat_template = CHATML
    return fast


def build_llama(folder: Path, seed: int = 0, **config) -> Path:
    """A 2-layer Llama with weights large enough that greedy choices are not near-ties."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_bpe_tokenizer()
    settings = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                    tie_word_embeddings=False, initializer_range=0.25, rope_theta=10000.0)
    settings.update(config)
    model = LlamaForCausalLM(LlamaConfig(**settings))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    base = build_llama(root / "tiny-llama")
    run = build_tiny_adapter(base, root / "runs" / "dpo-run-1")
    return {"root": root, "base": base, "run": run}


def export(source, out, quant="f16") -> dict:
    result = [e for e in export_gguf(source, out, quant) if isinstance(e, Result)]
    return result[-1].data


def merged_model(run: Path):
    from engines.tune.adapters import load_tuned_model

    model, tokenizer = load_tuned_model(run)
    return model.merge_and_unload().eval(), tokenizer


def transformers_greedy(model, ids: list[int], n: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None,
                             pad_token_id=0)
    return out[0, len(ids):].tolist()


def llama_cpp(path: Path, n_ctx: int = 256):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=2, verbose=False, logits_all=True, seed=0)


def llama_greedy(llm, ids: list[int], n: int) -> list[int]:
    out = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(token)
        if len(out) == n:
            break
    return out


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_f16_export_writes_the_same_greedy_tokens_as_the_merged_model(tiny, tmp_path):
    before = snapshot(tiny["run"])
    out = tmp_path / "exports" / "tuned.F16.gguf"
    data = export(tiny["run"], out)
    assert data["file"] == str(out) and data["architecture"] == "llama" and out.stat().st_size == data["bytes"]
    assert snapshot(tiny["run"]) == before  # the run folder is only read
    assert list(out.parent.iterdir()) == [out]  # no temp file left beside it

    model, tokenizer = merged_model(tiny["run"])
    text = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    llm = llama_cpp(out)
    # The tokenizer and its template travel in the metadata: llama.cpp splits the prompt the same way
    # (merges and special tokens included) and knows the chat template and end-of-turn token.
    assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
    assert any(len(tokenizer.decode([i])) > 1 for i in ids if i > 2)  # merged tokens are in play
    assert llm.metadata["tokenizer.chat_template"] == CHATML
    assert llm.token_eos() == tokenizer.eos_token_id
    expected = transformers_greedy(model, ids, 24)
    assert llama_greedy(llm, ids, 24) == expected
    # ... and the adapter mattered: the base model says something else.
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny["base"])).eval()
    assert transformers_greedy(base, ids, 24) != expected


def test_q8_0_logits_stay_close_to_f16(tiny, tmp_path):
    import numpy as np

    f16, q8 = tmp_path / "t.F16.gguf", tmp_path / "t.Q8_0.gguf"
    export(tiny["run"], f16)
    export(tiny["run"], q8, "q8_0")
    assert q8.stat().st_size < f16.stat().st_size * 0.7
    from gguf import GGUFReader
    from gguf.quants import dequantize

    tensors16 = {t.name: t for t in GGUFReader(str(f16)).tensors}
    tensors8 = {t.name: t for t in GGUFReader(str(q8)).tensors}
    assert tensors8["blk.0.attn_q.weight"].tensor_type.name == "Q8_0"
    assert tensors8["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    for name, t16 in tensors16.items():  # each quantised weight within 1% (rms) of its F16 twin
        x = dequantize(t16.data, t16.tensor_type).ravel()
        y = dequantize(tensors8[name].data, tensors8[name].tensor_type).ravel()
        assert np.sqrt(np.mean((x - y) ** 2) / np.mean(x ** 2)) < 0.01, name
    model, tokenizer = merged_model(tiny["run"])
    ids = tokenizer("the other one then went in there, and the north wind blew.").input_ids

    def nll(path):  # mean negative log-likelihood of the text, the log of its perplexity
        llm = llama_cpp(path)
        llm.reset()
        llm.eval(ids)
        logits = np.asarray(llm.scores[: len(ids) - 1], dtype=np.float64)
        logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
        return -float(np.mean(logp[np.arange(len(ids) - 1), ids[1:]])), logits

    # A random tiny model's perplexity (~2000 here) is far from a trained one's and swings with any noise,
    # so this test compares logits; the 1% perplexity check runs on the bundled SmolLM2 (slow test below).
    (nll16, logits16), (nll8, logits8) = nll(f16), nll(q8)
    relative = float(np.sqrt(np.mean((logits8 - logits16) ** 2) / np.mean(logits16 ** 2)))
    agree = float((logits8.argmax(1) == logits16.argmax(1)).mean())
    print(f"q8_0 vs f16: relative rms logit difference {relative:.4f}, argmax agreement {agree:.2f}, "
          f"ppl {math.exp(nll8):.1f} vs {math.exp(nll16):.1f}")
    # measured: 0.055 and 0.97 (the random network amplifies the 0.5% weight error; llama.cpp also
    # quantises activations to 8 bits for Q8_0 products)
    assert relative < 0.1 and agree >= 0.9


def test_qwen2_exports_with_biases_and_no_reordering(tmp_path):
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(3)
    tokenizer = build_bpe_tokenizer()
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True, initializer_range=0.25)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    folder = tmp_path / "tiny-qwen2"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "qwen2.gguf"
    assert export(folder, out)["architecture"] == "qwen2"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    ids = tokenizer.apply_chat_template(PROMPT, tokenize=True, add_generation_prompt=True)
    ids = list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    assert llama_greedy(llama_cpp(out), ids, 16) == transformers_greedy(model.eval(), ids, 16)


def test_cli_writes_into_the_models_folder_by_default(tiny, hearth_home):
    env = {"HEARTH_HOME": str(hearth_home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "export-gguf", "--run", str(tiny["run"]),
                           "--quant", "q8_0"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(data["file"]) == hearth_home / "models" / "dpo-run-1.Q8_0.gguf" and Path(data["file"]).is_file()
    # Chat's model list scans the models folder
    from engines.models import configured_folders, scan_models

    entries, _errors = scan_models(configured_folders(), include_hf_cache=False)
    assert any(entry.path == data["file"] for entry in entries)


def test_cli_refuses_an_existing_output_file(tiny, tmp_path):
    out = tmp_path / "taken.gguf"
    out.write_bytes(b"mine")
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "export-gguf", "--run", str(tiny["run"]),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and str(out) in proc.stderr
    assert "already exists" in proc.stderr and out.read_bytes() == b"mine"


def test_unfinished_runs_and_unknown_architectures_are_refused(tiny, tmp_path):
    import shutil

    unfinished = tmp_path / "runs" / "sft-run-2"
    shutil.copytree(tiny["run"], unfinished)
    summary = json.loads((unfinished / "summary.json").read_text())
    (unfinished / "summary.json").write_text(json.dumps({**summary, "status": "cancelled"}))
    with pytest.raises(ModelFileError) as info:
        check_source(unfinished)
    assert "not a finished run" in str(info.value) and str(unfinished) in str(info.value)

    training = tmp_path / "runs" / "still-training"
    training.mkdir()
    (training / "events.jsonl").write_text('{"event": "start"}\n')
    with pytest.raises(ModelFileError, match="not a finished run"):
        check_source(training)

    with pytest.raises(ModelFileError, match="does not exist"):
        check_source(tmp_path / "nowhere")

    # an adapter whose base is a GPT-2: named with its architecture and the run folder
    gpt2 = tmp_path / "gpt2-base"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    foreign = tmp_path / "runs" / "gpt2-run"
    shutil.copytree(tiny["run"], foreign)
    (foreign / "summary.json").write_text(json.dumps({**summary, "base_model": str(gpt2)}))
    with pytest.raises(UnsupportedModelError) as info:
        check_source(foreign)
    assert "'gpt2'" in str(info.value) and str(foreign) in str(info.value) and "Llama" in str(info.value)

    reward = build_tiny_adapter(tiny["base"], tmp_path / "runs" / "reward-run", task="SEQ_CLS")
    with pytest.raises(RequestError, match="reward model"):
        check_source(reward)

    with pytest.raises(RequestError, match=r"\.gguf"):
        list(export_gguf(tiny["run"], tmp_path / "model.bin"))

    no_merges = build_tiny_model(tmp_path / "no-merges")  # one token per byte: nothing llama.cpp can load
    with pytest.raises(UnsupportedModelError, match="no merges"):
        export(no_merges, tmp_path / "no-merges.gguf")
    assert not (tmp_path / "no-merges.gguf").exists()

    # A Unigram tokenizer (T5, some SentencePiece models) is refused before any weights are read (these are
    # not even weights).
    unigram = tmp_path / "unigram-llama"
    unigram.mkdir()
    (unigram / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (unigram / "model.safetensors").write_bytes(b"")
    (unigram / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}))
    with pytest.raises(UnsupportedModelError) as info:
        check_source(unigram)
    assert "Unigram" in str(info.value) and "not a BPE" in str(info.value) and str(unigram) in str(info.value)


def test_a_full_disk_leaves_no_file_under_the_target_name(tiny, tmp_path, monkeypatch):
    import gguf

    write = gguf.GGUFWriter.write_tensor_data
    written = []

    def fills_up(self, tensor, *args, **kwargs):
        if len(written) == 3:  # header, metadata and three tensors are on disk under the temp name
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(tensor.nbytes)
        return write(self, tensor, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", fills_up)
    before = snapshot(tiny["run"])
    out = tmp_path / "out" / "full.gguf"
    out.parent.mkdir()
    with pytest.raises(HearthError) as info:
        export(tiny["run"], out)
    assert "disk is full" in str(info.value) and str(out) in str(info.value)
    assert list(out.parent.iterdir()) == []  # neither the target nor the temp file
    assert snapshot(tiny["run"]) == before


# A few paragraphs of plain prose (~460 SmolLM2 tokens) for the perplexity check.
TEXT = """\
The river runs past the old mill and under the stone bridge before it reaches the sea. In spring the water rises,
and the children of the village watch the boats carry timber down to the harbour. Every evening the miller closes
the gates, counts the sacks of flour and walks home along the bank, where the swallows fly low over the water and
the lamps of the houses come on one by one.\

His house stands at the end of a narrow lane, between the bakery and the school. The baker starts work long before
dawn, and by the time the first cart rattles over the cobbles the smell of fresh bread has filled the street. The
teacher arrives at eight, unlocks the heavy door and opens the windows to let in the morning air. Thirty children
sit at wooden desks and learn to read, to write and to count, and in the afternoon they go out into the yard to play
until their parents come to fetch them.\

On market days the square is full of stalls. Farmers bring eggs, cheese, apples and potatoes from the hills; a
fisherman sells the morning catch from a barrel of ice; an old woman sells honey and candles made by her own bees.
People come from the nearby towns to buy and to talk, and the inn on the corner of the square serves soup and bread
to anyone who is hungry. In the evening the stalls are taken down, the square is swept, and the only sound left is
the fountain in the middle of it.\

In winter the river freezes near the banks and the mill stops turning. The miller mends the wheel, sharpens his
tools and repairs the roof of the barn. The days are short and the nights are long, so the families of the village
gather by the fire to tell stories, sing old songs and play cards. When the snow melts and the first green leaves
appear on the trees, the water runs fast again, the wheel begins to turn, and the year starts over.\

Visitors sometimes ask why the people stay in such a small place when the city offers more work and more money. The
answer is usually the same: here everyone knows their neighbours, the air is clean, the food is good, and there is
always time to stop on the bridge and watch the river go by."""


@pytest.mark.slow
def test_the_bundled_smollm2_with_an_adapter_matches_its_transformers_twin(tmp_path_factory, tmp_path):
    """The real check: SmolLM2 (converted from the bundled GGUF) + a small LoRA, exported F16 and Q8_0."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.text.hf_convert import ensure_converted
    from engines.models import bundled_default_path

    cache = tmp_path_factory.getbasetemp() / "hearth-shared-cache"  # shared with the Explore tests
    cache.mkdir(exist_ok=True)
    old = os.environ.get("HEARTH_CACHE")
    os.environ["HEARTH_CACHE"] = str(cache)
    try:
        base = ensure_converted(bundled_default_path())
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.02)
        run = tmp_path / "runs" / "dpo-smollm2"
        peft_model.save_pretrained(str(run), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(run))
        (run / "summary.json").write_text(json.dumps({"status": "completed", "method": "dpo", "base_model": "default"}))

        f16, q8 = tmp_path / "smollm2-tuned.F16.gguf", tmp_path / "smollm2-tuned.Q8_0.gguf"
        export(run, f16)
        export(run, q8, "q8_0")

        merged, tokenizer = merged_model(run)
        messages = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "What is the capital of France?"}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False).input_ids
        expected = transformers_greedy(merged, ids, 32)
        llm = llama_cpp(f16)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        got = llama_greedy(llm, ids, 32)
        print("transformers:", repr(tokenizer.decode(expected)), "\nllama.cpp F16:", repr(tokenizer.decode(got)))
        assert got == expected

        # The exported model chats with its own template: llama.cpp's chat completion gives the same reply.
        reply = llm.create_chat_completion(messages, temperature=0.0, top_k=1, repeat_penalty=1.0, max_tokens=32,
                                           seed=0)["choices"][0]["message"]["content"]
        eos = expected.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in expected else len(expected)
        assert reply.strip() == tokenizer.decode(expected[:eos]).strip()

        text_ids = tokenizer(TEXT).input_ids

        def perplexity(path):
            llm = llama_cpp(path, n_ctx=1024)
            llm.reset()
            llm.eval(text_ids)
            logits = np.asarray(llm.scores[: len(text_ids) - 1], dtype=np.float64)
            top = logits.max(1, keepdims=True)
            logp = logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))
            return math.exp(-float(np.mean(logp[np.arange(len(text_ids) - 1), text_ids[1:]])))

        ppl16, ppl8 = perplexity(f16), perplexity(q8)
        print(f"perplexity F16 {ppl16:.3f}, Q8_0 {ppl8:.3f} ({(ppl8 / ppl16 - 1) * 100:+.2f}%)")
        assert abs(ppl8 / ppl16 - 1) < 0.01
    finally:
        if old is None:
            os.environ.pop("HEARTH_CACHE", None)
        else:
            os.environ["HEARTH_CACHE"] = old


@pytest.mark.parametrize("kind", ["mistral", "llama3-rope"])
def test_mistral_and_llama3_rope_folders_match_on_llama_cpp(kind, tmp_path):
    """A plain transformers folder (as "Merge and save…" writes) exports too: Mistral is written as a Llama,
    Llama 3.1's "llama3" rope scaling travels as the rope_freqs factors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(5)
    tokenizer = build_bpe_tokenizer()
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, eos_token_id=tokenizer.eos_token_id,
                  tie_word_embeddings=False, initializer_range=0.25)
    if kind == "mistral":
        model = MistralForCausalLM(MistralConfig(max_position_embeddings=256, sliding_window=None, **common))
    else:
        rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
        model = LlamaForCausalLM(LlamaConfig(max_position_embeddings=256, rope_parameters=rope, **common))
    folder = tmp_path / f"tiny-{kind}"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    out = tmp_path / f"{kind}.gguf"
    assert export(folder, out)["architecture"] == "llama"
    text = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert llama_greedy(llama_cpp(out), ids, 16) == transformers_greedy(model.eval(), ids, 16)


def test_a_cancelled_export_leaves_nothing(tiny, tmp_path):
    from engines.core.cancel import CancelToken
    from engines.core.events import Progress

    token = CancelToken()
    out = tmp_path / "out" / "cancelled.gguf"
    events = []
    for event in export_gguf(tiny["run"], out, "q8_0", token):
        events.append(event)
        if isinstance(event, Progress) and event.step == 2:  # the tensors are about to be written
            token.cancel()
    assert isinstance(events[-1], Result) and events[-1].finish_reason == "cancelled"
    assert list(out.parent.iterdir()) == []  # neither the file nor its temporary twin


QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@pytest.mark.parametrize("pre", ["gpt-2", "qwen2", "llama-bpe", "smollm"])
def test_pre_tokenizers_split_text_as_transformers_does(pre, tmp_path):
    """Digits, spaces, tabs and contractions: llama.cpp's named pre-tokenizer splits like the tokenizer.json it came
    from (the four give four different token lists for this text with build_bpe_tokenizer's merges)."""
    from gguf import GGUFReader
    from llama_cpp import Llama
    from tokenizers import Regex, pre_tokenizers
    from transformers import AutoTokenizer

    tokenizer = build_bpe_tokenizer()
    backend = tokenizer.backend_tokenizer
    if pre == "gpt-2":
        pass  # build_bpe_tokenizer's plain ByteLevel
    elif pre == "smollm":
        backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                         pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:
        split = pre_tokenizers.Split(Regex(QWEN2_SPLIT if pre == "qwen2" else LLAMA3_SPLIT), behavior="isolated")
        backend.pre_tokenizer = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                                                         use_regex=False)])
    folder = build_llama(tmp_path / f"tiny-{pre}")
    tokenizer.save_pretrained(folder)  # replaces the plain byte-level one
    out = tmp_path / f"{pre}.gguf"
    export(folder, out)
    assert str(GGUFReader(str(out)).fields["tokenizer.ggml.pre"].contents()) == pre
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    llm = Llama(model_path=str(out), vocab_only=True, verbose=False)
    text = "In 2024 they'll count 12345 apples,\n\n  then   THE other's 7 pears!\tOK?"
    assert llm.tokenize(text.encode(), add_bos=False) == tokenizer(text, add_special_tokens=False).input_ids


LLAMA2_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
                   "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")


def build_sentencepiece_tokenizer():
    """A SentencePiece-style BPE as transformers writes Llama 2's: ▁ for spaces, <0xXX> byte fallback, <s> first."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    chars = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'[]/:") | {"▁"})
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("i", "n"), ("e", "r"), ("▁", "a"), ("o", "u"), ("▁", "w"),
              ("a", "t"), ("▁", "I"), ("I", "N"), ("IN", "S"), ("INS", "T"), ("▁", "["), ("▁[", "/"), ("e", "a")]
    vocab = {t: i for i, t in enumerate(specials + byte_tokens + chars + [a + b for a, b in merges])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = LLAMA2_TEMPLATE
    return fast


def test_a_sentencepiece_llama_exports_with_scores_and_byte_tokens(tmp_path):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(11)
    tokenizer = build_sentencepiece_tokenizer()
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
                                         tie_word_embeddings=False, initializer_range=0.25))
    folder = tmp_path / "tiny-llama2"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "llama2.gguf"
    export(folder, out)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    llm = llama_cpp(out)
    assert llm.metadata["tokenizer.ggml.model"] == "llama"
    text = "In the weather at 20°C, I want tea!"  # ° has no piece: byte fallback
    assert llm.tokenize(text.encode()) == tokenizer(text).input_ids  # <s> first, ▁ prefix, <0xC2><0xB0>
    messages = [{"role": "user", "content": "What is the weather in Iceland?"}]
    chat = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(chat, add_special_tokens=False).input_ids
    assert llm.tokenize(chat.encode(), add_bos=False, special=True) == ids
    assert llama_greedy(llm, ids, 16) == transformers_greedy(model.eval(), ids, 16)
