"""The image endpoints of the engine host over real HTTP (a tiny model built from configs)."""
from __future__ import annotations

import base64
import io
import json

import pytest

from tests.helpers import HostProcess, sse_events
from tests.image_support import save_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = save_tiny_model(tmp_path_factory.mktemp("m") / "tiny-sd")
    proc = HostProcess(tmp_path_factory.mktemp("home"))
    yield proc, model
    proc.stop()


def body(model, **extra):
    return {"model": str(model), "prompt": "a red circle", "steps": 4, "width": 32, "height": 32, "seed": 3, **extra}


def test_generate_streams_progress_previews_and_result(setup):
    from PIL import Image

    host, model = setup
    with host.client() as c, c.stream("POST", "/hearth/image/generate", json=body(model)) as r:
        assert r.status_code == 200
        events = sse_events(r)
    kinds = [e.get("type") for e in events]
    assert kinds.count("Progress") == 4 and kinds.count("Preview") == 4 and kinds[-2] == "Result" and events[-1] == {"done": True}
    preview = next(e for e in events if e.get("type") == "Preview")
    assert Image.open(io.BytesIO(base64.b64decode(preview["png"]))).size[0] <= 128
    result = events[-2]
    assert result["finish_reason"] == "stop"
    path = result["data"]["images"][0]["path"]
    with host.client() as c:
        meta = c.post("/hearth/image/metadata", json={"path": path}).json()
        gallery = c.get("/hearth/image/gallery", params={"search": "red"}).json()["images"]
        listed = c.get("/hearth/image/models").json()
    assert meta["parsed"]["Seed"] == 3 and meta["hearth"]["steps"] == 4
    assert gallery[0]["path"] == path
    assert listed["loaded"][0]["model"] == str(model)


def test_bad_requests_are_4xx_before_any_event(setup, tmp_path):
    host, model = setup
    with host.client() as c:
        r = c.post("/hearth/image/generate", json=body(model, width=33))
        assert r.status_code == 400 and "multiple of 8" in r.json()["error"]["message"]
        evil = tmp_path / "evil.ckpt"
        evil.write_bytes(b"\x80\x04junk")
        r = c.post("/hearth/image/generate", json=body(evil))
        assert r.status_code == 400 and r.json()["error"]["kind"] == "unsupported_model"
        assert "pickle" in r.json()["error"]["message"]


def test_cancel_stops_the_job_and_the_lane_stays_usable(setup):
    host, model = setup
    with host.client() as c:
        with c.stream("POST", "/hearth/image/generate", json=body(model, steps=200, request_id="img-cancel")) as r:
            events = []
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                events.append(event)
                if event["type"] == "Progress" and event["step"] == 2:
                    assert c.post("/hearth/cancel", json={"request_id": "img-cancel"}).json() == {"cancelled": True}
        assert events[-1]["type"] == "Result" and events[-1]["finish_reason"] == "cancelled"
        assert max(e["step"] for e in events if e["type"] == "Progress") < 10
        with c.stream("POST", "/hearth/image/generate", json=body(model)) as r:
            assert sse_events(r)[-2]["finish_reason"] == "stop"
