"""Concurrency on purpose: requests for one model wait in a first-come, first-served queue that /hearth/queue shows;
a waiting client that goes away leaves it; eight clients at once are all answered."""
from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import SYSTEM, HostProcess

LONG = [SYSTEM, {"role": "user", "content": "Write a very long essay about the history of rivers."}]
QUESTIONS = ["What is the capital of France?", "What is 2 + 2?", "Name a colour.", "What is the capital of Italy?",
             "Name an animal.", "What is water made of?", "Who wrote Hamlet?", "Name a planet."]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    proc = HostProcess(tmp_path_factory.mktemp("home"))
    with proc.client() as c:
        assert c.post("/hearth/models/load", json={"model": "default", "backend": "llama", "context_length": 2048}).status_code == 200
    yield proc
    proc.stop()


def ask(host, question: str, stream: bool) -> dict:
    body = {"model": "default", "messages": [SYSTEM, {"role": "user", "content": question}], "max_tokens": 12,
            "temperature": 0, "seed": 0, "stream": stream}
    with host.client(timeout=300) as c:
        if not stream:
            r = c.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            return {"text": r.json()["choices"][0]["message"]["content"], "tokens": r.json()["usage"]["completion_tokens"]}
        text, usage = "", None
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    if chunk["choices"]:
                        text += chunk["choices"][0]["delta"].get("content") or ""
                    usage = chunk.get("usage") or usage
        return {"text": text, "tokens": usage["completion_tokens"]}


def queue(host) -> dict:
    with host.client() as c:
        return next(m for m in c.get("/hearth/queue").json()["models"] if m["model"] == "default")


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_eight_concurrent_clients_are_all_answered_in_turn(host):
    alone = {q: ask(host, q, stream=False)["text"] for q in QUESTIONS[:2]}
    seen_waiting: list[list[dict]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            waiting = queue(host)["waiting"]
            if waiting:
                seen_waiting.append(waiting)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(ask, host, q, i % 2 == 0) for i, q in enumerate(QUESTIONS)]
            answers = [f.result(timeout=300) for f in futures]
    finally:
        stop.set()
        watcher.join()
    assert time.monotonic() - started < 300
    assert all(a["text"].strip() and a["tokens"] > 0 for a in answers), answers
    # One at a time, none mixed up: each reply is the one the question gets alone.
    assert [answers[0]["text"], answers[1]["text"]] == [alone[QUESTIONS[0]], alone[QUESTIONS[1]]]
    # The queue was visible while it filled, in arrival order, naming the clients.
    assert max(len(w) for w in seen_waiting) >= 3
    for waiting in seen_waiting:
        assert [j["job"] for j in waiting] == sorted(j["job"] for j in waiting)
        assert all(j["client"].startswith("openai 127.0.0.1:") and j["waited_s"] >= 0 for j in waiting)
    after = queue(host)
    assert after["running"] is None and after["waiting"] == []
    with host.client() as c:
        assert c.get("/hearth/health").json()["active"] == 0


def _raw_request(host, body: dict) -> socket.socket:
    """A client that sends its request and can then vanish (close) at a moment of the test's choosing."""
    payload = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", host.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (host.port, host.api_key.encode(), len(payload), payload))
    return sock


def test_a_waiting_client_that_disconnects_leaves_the_queue(host):
    long_done = threading.Event()

    def long_job() -> None:
        with host.client(timeout=300) as c:
            c.post("/hearth/chat", json={"request_id": "long", "messages": LONG, "max_tokens": 1500, "temperature": 0})
        long_done.set()

    runner = threading.Thread(target=long_job)
    runner.start()
    try:
        wait_for(lambda: (queue(host)["running"] or {}).get("request_id") == "long")
        question = {"messages": LONG, "max_tokens": 5}
        streaming = _raw_request(host, {**question, "stream": True})
        plain = _raw_request(host, question)
        waiting = wait_for(lambda: len(queue(host)["waiting"]) == 2 and queue(host)["waiting"])
        assert all(j["client"].startswith("openai ") for j in waiting)
        streaming.close()
        wait_for(lambda: len(queue(host)["waiting"]) == 1, timeout=5)
        plain.close()
        wait_for(lambda: queue(host)["waiting"] == [], timeout=5)
        assert (queue(host)["running"] or {}).get("request_id") == "long" and not long_done.is_set()
    finally:
        with host.client() as c:
            c.post("/hearth/cancel", json={"request_id": "long"})
        runner.join(timeout=60)
    assert long_done.is_set()
    # The model serves the next client at once: the two who left did not run.
    started = time.monotonic()
    assert ask(host, QUESTIONS[0], stream=False)["tokens"] > 0
    assert time.monotonic() - started < 30
    with host.client() as c:
        assert c.get("/hearth/health").json()["active"] == 0


def test_a_chat_room_reply_that_must_wait_says_who_uses_the_model(host):
    def long_job() -> None:
        with host.client(timeout=300) as c:
            c.post("/v1/chat/completions", json={"messages": LONG, "max_tokens": 1500, "temperature": 0, "stream": True})

    runner = threading.Thread(target=long_job)
    runner.start()
    try:
        running = wait_for(lambda: queue(host)["running"])
        with host.client(timeout=300) as c, c.stream("POST", "/hearth/chat", json={
                "request_id": "gui", "messages": [SYSTEM, {"role": "user", "content": "Name a colour."}], "max_tokens": 8}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            first = json.loads(next(l for l in lines if l.startswith("data: "))[6:])
            assert first["type"] == "Log" and running["client"] in first["message"] and "Waiting" in first["message"]
            with host.client() as other:
                other.post("/hearth/cancel", json={"request_id": running["request_id"]})
            events = [json.loads(l[6:]) for l in lines if l.startswith("data: {")]
        assert events[-1]["type"] == "Result" and events[-1]["data"]["completion_tokens"] > 0
    finally:
        runner.join(timeout=60)
