"""The engine host is closed to web pages: foreign Host headers, foreign origins and non-JSON bodies are refused;
an origin the user allowed gets proper CORS answers; binding beyond loopback needs a key."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.helpers import ROOT, HostProcess

PAGE = "http://evil.example"
FRONT_END = "http://localhost:3000"
CHAT_BODY = json.dumps({"model": "default", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})


@pytest.fixture(scope="module")
def open_host(tmp_path_factory):
    """A host started as most people start a local server: no key."""
    proc = HostProcess(tmp_path_factory.mktemp("home"), api_key="", extra_args=("--allow-origin", FRONT_END))
    yield proc
    proc.stop()


def test_a_cross_origin_simple_post_does_not_run(open_host):
    # What a web page can send without a CORS preflight: text/plain, with the page's Origin.
    r = httpx.post(f"{open_host.url}/v1/chat/completions", content=CHAT_BODY,
                   headers={"Content-Type": "text/plain", "Origin": PAGE})
    assert r.status_code == 403
    assert r.json()["error"]["kind"] == "forbidden_origin" and PAGE in r.json()["error"]["message"]
    r = httpx.post(f"{open_host.url}/hearth/models/load", content=json.dumps({"model": "/etc/passwd"}),
                   headers={"Content-Type": "application/json", "Origin": PAGE})
    assert r.status_code == 403
    # Even without an Origin, a body that is not JSON is refused before any endpoint runs.
    r = httpx.post(f"{open_host.url}/v1/chat/completions", content=CHAT_BODY, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = httpx.post(f"{open_host.url}/hearth/cancel", data={"request_id": "x"})  # a form post
    assert r.status_code == 415
    assert httpx.get(f"{open_host.url}/hearth/health").json()["active"] == 0


def test_a_foreign_host_header_is_refused(open_host):
    # DNS rebinding: the page's own name resolves to 127.0.0.1, so the Host header carries that name.
    for host in (f"evil.example:{open_host.port}", "evil.example", f"127.0.0.1.nip.io:{open_host.port}",
                 f"localhost:{open_host.port + 1}"):
        r = httpx.get(f"{open_host.url}/hearth/health", headers={"Host": host})
        assert r.status_code == 403, host
        assert r.json()["error"]["kind"] == "forbidden_host"
    for host in (f"127.0.0.1:{open_host.port}", f"localhost:{open_host.port}", f"LOCALHOST:{open_host.port}"):
        assert httpx.get(f"{open_host.url}/hearth/health", headers={"Host": host}).status_code == 200, host


def test_plain_local_clients_work_without_a_key(open_host):
    r = httpx.post(f"{open_host.url}/hearth/cancel", json={"request_id": "nope"})
    assert r.status_code == 200 and r.json() == {"cancelled": False}
    assert httpx.get(f"http://localhost:{open_host.port}/hearth/health").json()["status"] == "ok"


def test_an_allowed_origin_gets_cors_answers_and_others_do_not(open_host):
    preflight = {"Origin": FRONT_END, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,authorization"}
    r = httpx.options(f"{open_host.url}/v1/chat/completions", headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == FRONT_END
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    r = httpx.options(f"{open_host.url}/v1/chat/completions", headers={**preflight, "Origin": PAGE})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers

    r = httpx.post(f"{open_host.url}/hearth/cancel", json={"request_id": "nope"}, headers={"Origin": FRONT_END})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == FRONT_END
    r = httpx.get(f"{open_host.url}/hearth/health", headers={"Origin": FRONT_END})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == FRONT_END


def test_an_allowed_page_can_read_a_401_but_not_pass_without_the_key(tmp_path):
    proc = HostProcess(tmp_path / "home", api_key="k", extra_args=("--allow-origin", FRONT_END))
    try:
        r = httpx.get(f"{proc.url}/hearth/health", headers={"Origin": FRONT_END})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == FRONT_END
        r = httpx.get(f"{proc.url}/hearth/health", headers={"Origin": FRONT_END, "Authorization": "Bearer k"})
        assert r.status_code == 200
        preflight = {"Origin": FRONT_END, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        assert httpx.options(f"{proc.url}/v1/chat/completions", headers=preflight).status_code == 200
    finally:
        proc.stop()


def test_binding_beyond_loopback_without_a_key_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HEARTH_API_KEY"}
    env["HEARTH_HOME"] = str(tmp_path)
    for address in ("0.0.0.0", "::"):
        out = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--host", address, "--port", "0"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("error: ") and address in out.stderr and "--api-key" in out.stderr
        assert "HEARTH_HOST_READY" not in out.stdout
