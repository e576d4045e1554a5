"""What the engine host holds: its engines, the cancel tokens of running requests, the model list and the
usage log. Declared here in one place (engines that only some routes need are created on first use) and
closed together when the host stops. Route modules take it from ``request.app.state.hearth``.
"""
from __future__ import annotations

import sys
import threading

from starlette.concurrency import run_in_threadpool

from engines.core.cancel import CancelToken
from engines.core.errors import NotLoadedError
from engines.core.events import Result
from engines.image.engine import ImageEngine
from engines.text.embeddings import EmbeddingService
from engines.text.engine import TextEngine
from engines.text.explore_service import ExploreService
from engines.core.requests.text import LoadRequest


class HostState:
    """What the app holds: the engines and the cancel tokens of running requests."""

    def __init__(self) -> None:
        self.text = TextEngine()
        self.image = ImageEngine()
        self.explore = ExploreService(self.text)
        self.embeddings = EmbeddingService()
        self._usage = None
        self._decode = None  # engines.decode.engine.DecodeEngine, on the first decode run
        self._comparer = None  # engines.tune.compare.Comparer, on the first comparison
        self.active: dict[str, CancelToken] = {}
        self._models_cache: list[dict] | None = None
        self._scan_lock = threading.Lock()

    def register(self, request_id: str) -> CancelToken:
        token = CancelToken()
        self.active[request_id] = token
        return token

    def list_models(self, refresh: bool = False) -> tuple[list[dict], list[dict]]:
        from engines.models import configured_folders, scan_models

        with self._scan_lock:
            if self._models_cache is None or refresh:
                entries, errors = scan_models(configured_folders())
                self._models_cache = [e.to_dict() for e in entries]
                self._scan_errors = [e.to_wire() for e in errors]
            return self._models_cache, self._scan_errors

    @property
    def decode(self):
        if self._decode is None:
            from engines.decode.engine import DecodeEngine

            self._decode = DecodeEngine(self.image)
        return self._decode

    @property
    def comparer(self):
        if self._comparer is None:
            from engines.tune.compare import Comparer

            self._comparer = Comparer()
        return self._comparer

    def release_comparer(self) -> bool:
        """Free the comparison models, if a comparison loaded any (the Compare tab is done with them)."""
        return self._comparer is not None and bool(self._comparer.release())

    def close(self) -> None:
        """Release every engine's models (the host is stopping)."""
        if self._comparer is not None:
            self._comparer.release()
        if self._decode is not None:
            self._decode.close()
        self.text.close()
        self.image.close()
        self.explore.close()
        self.embeddings.close()

    def usage_log(self):
        if self._usage is None:
            from engines.store.storage import Database
            from engines.store.usage import UsageLog

            self._usage = UsageLog(Database())
        return self._usage


def record_usage(state: HostState, model: str, source: str, result: Result) -> None:
    """Count a finished completion in the usage log; a failure here never fails the reply."""
    data = result.data
    if not (data.get("prompt_tokens") or data.get("completion_tokens")):
        return
    try:
        state.usage_log().record(model, source, data.get("prompt_tokens") or 0, data.get("completion_tokens") or 0,
                                 data.get("total_s") or 0.0)
    except Exception as exc:  # noqa: BLE001 - losing a usage row must never cost the user the reply
        print(f"hearth: usage not recorded: {type(exc).__name__}: {exc}", file=sys.stderr)


async def ensure_text_model(state: HostState, model: str) -> str:
    """The id of ``model`` in the text engine, loading it first (with default options) if needed."""
    try:
        return state.text.get(model).id
    except NotLoadedError:
        if model in ("", "auto"):
            model = "default"
        loaded = await run_in_threadpool(state.text.load, LoadRequest(model=model))
        return loaded.id




def host(request) -> HostState:
    """The state of the host serving ``request`` (a FastAPI request)."""
    return request.app.state.hearth
