"""Images through the engine host: the ``openai`` client sends content parts (data: URLs) to /v1/chat/completions,
streaming and not; file paths and http URLs are a 400 naming the field; the host keeps answering after each."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from engines.core.content import data_url
from tests.helpers import ROOT, HostProcess
from tests.vision_support import build_tiny_llava, png_bytes

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava")


@pytest.fixture(scope="module")
def host(tmp_path_factory, llava):
    home = tmp_path_factory.mktemp("home")
    shutil.copytree(llava, home / "models" / "tiny-llava")
    proc = HostProcess(home)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(host):
    from openai import OpenAI

    return OpenAI(base_url=f"{host.url}/v1", api_key=host.api_key, timeout=300)


def parts(url: str, question: str = "What colour is it?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": question}]}]


def test_the_openai_client_sends_an_image_streaming_and_not(client, llava):
    url = data_url(png_bytes((48, 48), (20, 200, 40)))
    reply = client.chat.completions.create(model=str(llava), messages=parts(url), max_tokens=4, temperature=0, seed=0)
    text_reply = client.chat.completions.create(model=str(llava), messages=[{"role": "user", "content": "What colour is it?"}],
                                                max_tokens=4, temperature=0, seed=0)
    assert reply.choices[0].message.content is not None and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens == text_reply.usage.prompt_tokens + 17  # 16 image tokens and a newline
    chunks = list(client.chat.completions.create(model=str(llava), messages=parts(url), max_tokens=4, temperature=0,
                                                 seed=0, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == reply.choices[0].message.content


def test_bad_images_are_400s_naming_the_field_and_the_host_keeps_running(client, host, llava):
    import openai

    png = png_bytes()
    cases = [
        (parts("https://example.com/cat.png"), "messages[0].content[0].image_url.url' is an http(s) URL"),
        (parts("file:///etc/passwd"), "messages[0].content[0].image_url.url' is 'file:///etc/passwd'"),
        (parts(data_url(b"not a picture at all")), "messages[0].content[0]' is not an image"),
        (parts(data_url(png[: len(png) // 2])), "messages[0].content[0]' is a damaged or truncated PNG"),
    ]
    for messages, words in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model=str(llava), messages=messages, max_tokens=2)
        assert words in str(err.value)
    with host.client() as http:
        response = http.post("/hearth/chat", json={"model": str(llava), "messages": [
            {"role": "user", "content": [{"type": "image", "path": "/etc/hosts"}, {"type": "text", "text": "hi"}]}]})
        assert response.status_code == 400 and "over HTTP Hearth takes images only as data URLs" in response.text
        # A text-only model given an image: which models can see.
        response = http.post("/v1/chat/completions", json={"model": "default", "messages": parts(data_url(png))})
        assert response.status_code == 400 and "cannot see images" in response.text and "tiny-llava" in response.text
        assert http.get("/hearth/health").json()["status"] == "ok"
    ok = client.chat.completions.create(model=str(llava), messages=parts(data_url(png)), max_tokens=2)
    assert ok.choices[0].message.content is not None


def test_the_cli_chats_about_image_files(tmp_path, llava):
    image = tmp_path / "shape.png"
    image.write_bytes(png_bytes())
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "chat", "--model", str(llava), "--image", str(image),
                          "--image", str(image), "--prompt", "Compare them.", "--max-tokens", "3", "--temperature", "0",
                          "--stats"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    prompt_tokens = int(re.search(r"prompt (\d+) tokens", run.stderr)[1])
    assert prompt_tokens > 2 * 17  # both images (16 tokens and a newline each) and the text
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "chat", "--model", str(llava), "--image", str(bad),
                          "--prompt", "What is it?"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "error: Field 'messages[1].content[0]' is not an image" in run.stderr
