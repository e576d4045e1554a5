"""Base vs tuned on held-out prompts: both replies with the same seed and settings, reward-model scores
for each, and the tuned model's win rate.

One model serves both sides: the base model with the run's adapter applied but not merged, so the
adapter can be switched off (``disable_adapter``) for the base reply. The comparer keeps it (and the
reward model) loaded between calls, because the desktop asks for one prompt at a time and stores
each pair as it arrives; ``release()`` frees them. The request (``CompareRequest``) lives in
``engines.core.requests.tune``, where the desktop builds it too.

    comparer = Comparer()
    for event in comparer.compare(CompareRequest(adapter=run_dir, prompts=[...], reward_model=rm_dir)):
        ...   # Progress per reply, then one Result: {"pairs": [...], "summary": {...}, ...}
"""
from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any, Iterator

from engines.core.cancel import CancelToken
from engines.core.compare_stats import reward_win_rate
from engines.core.devices import release_memory
from engines.core.errors import RequestError
from engines.core.events import Event, Progress, Result
from engines.core.requests.tune import CompareRequest


class Comparer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policy: tuple[tuple, Any, Any] | None = None  # (key, peft model, tokenizer)
        self._reward: tuple[tuple, Any, Any] | None = None

    def compare(self, request: CompareRequest, cancel: CancelToken | None = None) -> Iterator[Event]:
        """Progress for each reply, then one Result holding every finished pair and the summary."""
        from engines.core.devices import select_device
        from engines.store.runs import check_adapter

        # 1. Check inputs: the adapter and reward folders before any weights load.
        request.validate()
        cancel = cancel or CancelToken()
        info = check_adapter(request.adapter)
        reward_dir = Path(request.reward_model).expanduser() if request.reward_model else None
        if reward_dir is not None and not (reward_dir / "adapter_config.json").is_file() and not (reward_dir / "config.json").is_file():
            raise RequestError(f"The reward model {reward_dir} is not a model folder (no adapter_config.json or config.json).",
                               path=reward_dir, hint="Choose the output folder of a finished 'reward' run.")
        device = select_device(request.device)
        total = 2 * len(request.prompts)
        with self._lock:
            # 2. Load the models (kept between calls).
            if self._policy is None or self._policy[0] != (info.path, device):
                yield Progress(0, total, f"Loading {info.name} on its base model")
            model, tokenizer = self._policy_for(info.path, device)
            scorer = None
            if reward_dir is not None:
                if self._reward is None or self._reward[0] != (str(reward_dir.resolve()), device):
                    yield Progress(0, total, f"Loading the reward model {reward_dir.name}")
                scorer = self._reward_for(reward_dir, device)

            # 3. Each prompt: the base reply (adapter off), then the tuned one, with the same seed.
            pairs: list[dict] = []
            for i, prompt in enumerate(request.prompts):
                if cancel.cancelled:
                    break
                seed = request.seed + i
                yield Progress(2 * i, total, f"Prompt {i + 1} of {len(request.prompts)}: the base model")
                with model.disable_adapter():
                    base = self._generate(model, tokenizer, prompt, request, seed, cancel, device)
                yield Progress(2 * i + 1, total, f"Prompt {i + 1} of {len(request.prompts)}: the tuned model")
                tuned = self._generate(model, tokenizer, prompt, request, seed, cancel, device)
                if cancel.cancelled:
                    break  # a reply cut short is not a sample of either model
                pair = {"index": i, "prompt": prompt, "base": base, "tuned": tuned, "seed": seed}
                if scorer is not None:
                    from engines.tune.adapters import reward_scores

                    base_score, tuned_score = reward_scores(scorer[0], scorer[1], [prompt, prompt], [base, tuned],
                                                            request.system_prompt)
                    pair.update(base_score=base_score, tuned_score=tuned_score)
                pairs.append(pair)
            yield Progress(total, total, "Done")

        scored = [(p["base_score"], p["tuned_score"]) for p in pairs if "base_score" in p]
        yield Result(finish_reason="cancelled" if cancel.cancelled else "stop", data={
            "pairs": pairs, "summary": reward_win_rate(scored) if reward_dir is not None else None,
            "adapter": info.path, "base_model": info.base_model, "tuned_model": f"{info.base_model}+{info.path}",
            "reward_model": str(reward_dir) if reward_dir is not None else "",
            "sampling": {"temperature": request.temperature, "top_p": request.top_p, "max_tokens": request.max_tokens},
        })

    def _policy_for(self, adapter: str, device: str):
        key = (adapter, device)
        if self._policy is None or self._policy[0] != key:
            from engines.tune.adapters import load_tuned_model

            self._policy = None
            gc.collect()
            model, tokenizer = load_tuned_model(adapter, device)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._policy = (key, model, tokenizer)
        return self._policy[1], self._policy[2]

    def _reward_for(self, reward_dir: Path, device: str):
        key = (str(reward_dir.resolve()), device)
        if self._reward is None or self._reward[0] != key:
            from engines.tune.adapters import load_reward_model

            self._reward = None
            gc.collect()
            self._reward = (key, *load_reward_model(reward_dir, device))
        return self._reward[1], self._reward[2]

    @staticmethod
    def _generate(model, tokenizer, prompt: Any, request: CompareRequest, seed: int, cancel: CancelToken, device: str) -> str:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        from engines.tune.adapters import chat_text

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancel.cancelled, dtype=torch.bool, device=input_ids.device)

        text = chat_text(tokenizer, prompt, None, request.system_prompt)
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
        sampling = request.temperature > 0
        kwargs: dict[str, Any] = dict(max_new_tokens=request.max_tokens, do_sample=sampling,
                                      pad_token_id=tokenizer.pad_token_id, stopping_criteria=StoppingCriteriaList([_Cancel()]))
        if sampling:
            kwargs.update(temperature=request.temperature, top_p=request.top_p, top_k=None)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs)
        return tokenizer.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def release(self) -> bool:
        """Free the models; True if something was loaded."""
        with self._lock:
            had = self._policy is not None or self._reward is not None
            self._policy = self._reward = None
        release_memory()
        return had
