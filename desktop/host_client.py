"""A small synchronous client for the engine host's HTTP API, used from worker threads only.

Every failure comes out as a ``HearthError``: the host's own errors rebuilt with
``HearthError.from_wire``, and transport failures as ``HostError``.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any, Iterator

import httpx

from engines.core.errors import HearthError, HostError
from engines.core.events import Event, event_from_wire
from engines.core.requests.decode import DecodeRequest
from engines.core.requests.explore import (
    AnalogyRequest, AttentionRequest, FewShotEvalRequest, FewShotPromptRequest, NeighboursRequest, PageRequest,
    ProjectionRequest, TokensRequest,
)
from engines.core.requests.image import ImageRequest
from engines.core.requests.text import ChatRequest, LoadRequest
from engines.core.requests.tune import CompareRequest

# Loading a model or waiting for the first token can take minutes on a CPU, so streaming and
# loading calls wait without a read timeout; connecting to loopback never takes long.
_QUICK = httpx.Timeout(30.0, connect=5.0)
_LONG = httpx.Timeout(None, connect=5.0)
LONG_STRING = 64 * 1024  # strings longer than this (images as data: URLs) bypass json.dumps; see json_pieces
PIECE = 1024 * 1024
# The quick Explore calls: JSON in, JSON out, at /hearth/explore/<path>.
EXPLORE_PATHS = {TokensRequest: "tokens", NeighboursRequest: "neighbours", AnalogyRequest: "analogy",
                 ProjectionRequest: "projection", AttentionRequest: "attention", FewShotPromptRequest: "fewshot/prompt"}
ExploreCall = TokensRequest | NeighboursRequest | AnalogyRequest | ProjectionRequest | AttentionRequest | FewShotPromptRequest


class HostClient:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        # verify=False: loopback plain HTTP; it also skips loading a CA bundle we never use.
        self._http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=_QUICK, verify=False)

    def close(self) -> None:
        self._http.close()

    # -- plain calls ---------------------------------------------------
    def health(self) -> dict:
        return self._call("GET", "/hearth/health")

    def models(self, refresh: bool = False) -> list[dict]:
        return self._call("GET", "/hearth/models", params={"refresh": 1} if refresh else None).get("models", [])

    def memory(self) -> dict:
        return self._call("GET", "/hearth/memory")

    def load(self, request: LoadRequest) -> dict:
        return self._call("POST", "/hearth/models/load", json=request.to_dict(), timeout=_LONG)

    def unload(self, model: str | None = None) -> dict:
        return self._call("POST", "/hearth/models/unload", json={"model": model} if model else {})

    def cancel(self, request_id: str) -> bool:
        return bool(self._call("POST", "/hearth/cancel", json={"request_id": request_id}).get("cancelled"))

    # -- streaming -----------------------------------------------------
    def stream_chat(self, request: ChatRequest) -> Iterator[Event]:
        """POST /hearth/chat and yield its events until ``[DONE]``."""
        return self.stream_events("/hearth/chat", request.to_dict(), unfinished="the reply was complete")

    # -- images ----------------------------------------------------------
    def image_models(self) -> dict:
        return self._call("GET", "/hearth/image/models")

    def image_metadata(self, path: str) -> dict:
        return self._call("POST", "/hearth/image/metadata", json={"path": path})

    def stream_image(self, request: ImageRequest) -> Iterator[Event]:
        """POST /hearth/image/generate and yield Progress/Preview/Result events until ``[DONE]``."""
        return self.stream_events("/hearth/image/generate", request.to_dict(), unfinished="the image was finished")

    # -- decode ----------------------------------------------------------
    def stream_decode(self, request: DecodeRequest) -> Iterator[Event]:
        """POST /hearth/decode/run and yield Progress/Result events until ``[DONE]``."""
        return self.stream_events("/hearth/decode/run", request.to_dict(), unfinished="the decoding run was finished")

    # -- tune ------------------------------------------------------------
    def stream_compare(self, request: CompareRequest) -> Iterator[Event]:
        """POST /hearth/tune/compare: base and tuned replies (and reward scores) for the request's prompts."""
        return self.stream_events("/hearth/tune/compare", request.to_dict(), unfinished="the comparison was finished")

    def compare_release(self) -> bool:
        return bool(self._call("POST", "/hearth/tune/compare/release").get("released"))

    def merge_adapter(self, adapter: str, target: str) -> dict:
        """Merge a run's adapter into its base and save it as ``target`` (minutes for big models: no read timeout)."""
        return self._call("POST", "/hearth/tune/merge", json={"adapter": adapter, "target": target}, timeout=_LONG)

    # -- explore ---------------------------------------------------------
    def explore(self, request: ExploreCall) -> dict:
        """POST /hearth/explore/<tokens | neighbours | analogy | projection | attention | fewshot/prompt>, by the
        request's type. No read timeout: the first call on a model loads its tokenizer and embeddings, and
        attention may convert it first."""
        return self._call("POST", f"/hearth/explore/{EXPLORE_PATHS[type(request)]}", json=request.to_dict(), timeout=_LONG)

    def stream_fewshot_evaluate(self, request: FewShotEvalRequest) -> Iterator[Event]:
        """POST /hearth/explore/fewshot/evaluate: Progress per completion, a Metric per K, then the Result."""
        return self.stream_events("/hearth/explore/fewshot/evaluate", request.to_dict())

    def stream_page(self, request: PageRequest) -> Iterator[Event]:
        """POST /hearth/explore/page: the page's Token events as the model writes it, then the Result."""
        return self.stream_events("/hearth/explore/page", request.to_dict())

    def stream_events(self, path: str, body: dict, unfinished: str = "the job was finished") -> Iterator[Event]:
        """POST an SSE endpoint (``/hearth/chat``, ``/hearth/explore/page``, ...) and yield its events until ``[DONE]``."""
        try:
            with self._http.stream("POST", path, content=b"".join(json_pieces(body)), headers={"Content-Type": "application/json"},
                                   timeout=_LONG) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from_response(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    data = json.loads(payload)
                    if data.get("type") == "Error":
                        raise HearthError.from_wire(data.get("error") or {})
                    yield event_from_wire(data)
        except httpx.TransportError as exc:
            raise _host_error(self.base_url, exc, mid_stream=True) from exc
        # A stream that ends without [DONE] means the host went away mid-job.
        raise HostError(f"The engine host closed the connection before {unfinished}.")

    def _call(self, method: str, path: str, timeout: httpx.Timeout | None = None, **kwargs: Any) -> dict:
        try:
            response = self._http.request(method, path, timeout=timeout or _QUICK, **kwargs)
        except httpx.TransportError as exc:
            raise _host_error(self.base_url, exc) from exc
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response.json()


def json_pieces(body: dict) -> Iterator[bytes]:
    """``body`` as JSON bytes, in pieces (joined, a plain copy, they make the request body).

    json.dumps encodes a string in one C call that holds the GIL: for a chat message carrying a photo as a data: URL
    (megabytes) the window's thread would wait tens of ms on this worker. So long strings that JSON carries as they
    are (printable ASCII without quotes or backslashes: base64 data URLs) are lifted out, the rest is dumped, and
    the long strings are spliced back in 1 MB pieces.
    """
    marker = f"hearth-long-{uuid.uuid4().hex}-"
    lifted: list[str] = []

    def lift(value):
        if isinstance(value, dict):
            return {k: lift(v) for k, v in value.items()}
        if isinstance(value, list):
            return [lift(v) for v in value]
        if (isinstance(value, str) and len(value) > LONG_STRING and value.isascii() and value.isprintable()
                and '"' not in value and "\\" not in value):
            lifted.append(value)
            return f"{marker}{len(lifted) - 1}"
        return value

    small = json.dumps(lift(body))
    for i, text in enumerate(re.split(f"{marker}(\\d+)", small)):
        if i % 2 == 0:
            yield text.encode("utf-8")
        else:
            long = lifted[int(text)]
            for start in range(0, len(long), PIECE):
                yield long[start:start + PIECE].encode("ascii")


def _host_error(base_url: str, exc: Exception, mid_stream: bool = False) -> HostError:
    if mid_stream and not isinstance(exc, httpx.ConnectError):
        return HostError("The engine host stopped in the middle of the reply.")
    return HostError(f"The engine host is not reachable at {base_url} ({type(exc).__name__}: {exc}).",
                     hint="It may be starting or restarting; try again in a moment.")


def _error_from_response(response: httpx.Response) -> HearthError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return HearthError.from_wire(body["error"])
    if response.status_code == 401:
        return HostError("The engine host refused the request (401): the access key did not match.")
    return HostError(f"The engine host answered {response.status_code} for {response.request.url.path}: {response.text[:200]}")
