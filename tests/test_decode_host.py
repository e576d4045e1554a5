"""The engine host's decode endpoint over real HTTP: progress events and the result, errors before any event,
cancel."""
from __future__ import annotations

import json

import pytest

from tests.helpers import HostProcess, sse_events

SMALL = {"voxels": 800, "train": 100, "test": 6, "samples": 1, "steps": 4}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    proc = HostProcess(tmp_path_factory.mktemp("home"))
    yield proc
    proc.stop()


def test_run_streams_stages_and_the_result(host):
    with host.client() as c, c.stream("POST", "/hearth/decode/run", json=SMALL) as r:
        assert r.status_code == 200
        events = sse_events(r)
    assert events[-1] == {"done": True}
    stages = [e["message"] for e in events if e.get("type") == "Progress"]
    assert stages[0] == "stimuli" and "fit" in stages and "reconstruct shuffled" in stages
    result = events[-2]
    assert result["type"] == "Result" and result["finish_reason"] == "stop"
    assert set(result["data"]["metrics"]) == {"decoded", "oracle", "shuffled", "lowlevel"}
    assert len(result["data"]["rows"]) == 6 and result["data"]["figure_png"]


def test_bad_requests_are_4xx_before_any_event(host, tmp_path):
    with host.client() as c:
        r = c.post("/hearth/decode/run", json={**SMALL, "snr": -1})
        assert r.status_code == 400 and "snr" in r.json()["error"]["message"]
        r = c.post("/hearth/decode/run", json={"colour": "red"})
        assert r.status_code == 400 and "Unknown field" in r.json()["error"]["message"]
        (tmp_path / "x.npz").write_bytes(b"PK\x03\x04broken")
        r = c.post("/hearth/decode/run", json={**SMALL, "source": "data", "path": str(tmp_path / "x.npz")})
        assert r.status_code == 400 and r.json()["error"]["kind"] == "data_file" and "x.npz" in r.json()["error"]["message"]


def test_cancel_ends_with_a_cancelled_result(host):
    with host.client() as c:
        with c.stream("POST", "/hearth/decode/run", json={**SMALL, "steps": 60, "samples": 4, "request_id": "dec-1"}) as r:
            events = []
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                events.append(json.loads(line[6:]))
                if events[-1].get("message") == "reconstruct":
                    assert c.post("/hearth/cancel", json={"request_id": "dec-1"}).json() == {"cancelled": True}
        assert events[-1]["type"] == "Result" and events[-1]["finish_reason"] == "cancelled"


def test_wrongly_typed_fields_are_400_not_500(host):
    with host.client() as c:
        for bad in ({"sweep": ["x"]}, {"sweep": 3}, {"strength": "high"}, {"guidance": None}):
            r = c.post("/hearth/decode/run", json={**SMALL, **bad})
            assert r.status_code == 400, (bad, r.text)
            assert next(iter(bad)) in r.json()["error"]["message"]
