"""A GGUF whose chat template is broken or hostile gives a clear error naming the file (CLI: exit 2; host: 400),
and the user can choose another template (CLI --chat-template, 'chat_template' on load)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import FRANCE, ROOT, HostProcess, bundled_gguf

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TEMPLATES = {
    # Reaches for Python internals: the Jinja sandbox refuses it.
    "hostile": "{{ ''.__class__.__mro__[1].__subclasses__() }}" + CHATML,
    "broken": "{% for message in messages %}{{ message['content'] ",
    # Renders a short exchange, fails on a longer one: the failure comes with a reply, not at load.
    "picky": "{% if messages|length > 2 %}{{ raise_exception('this template takes one question only') }}{% endif %}" + CHATML,
}


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("templates")
    out = {}
    for name, template in TEMPLATES.items():
        path = folder / f"smollm2-{name}.gguf"
        subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(bundled_gguf()), str(path),
                        "--chat-template", template, "--force"], check=True, capture_output=True, timeout=300)
        out[name] = path
    return out


def chat_cli(*args, home):
    env = dict(os.environ, HEARTH_HOME=str(home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "chat", "--prompt", "What is the capital of France?",
                           "--temperature", "0", "--seed", "0", "--max-tokens", "30", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name, reason", [("hostile", "SecurityError"), ("broken", "does not compile")])
def test_cli_names_the_file_and_the_reason(ggufs, tmp_path, name, reason):
    out = chat_cli("--model", str(ggufs[name]), home=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    assert str(ggufs[name]) in out.stderr and reason in out.stderr and "--chat-template" in out.stderr
    assert out.stdout == ""


def test_cli_chat_template_override_answers(ggufs, tmp_path):
    out = chat_cli("--model", str(ggufs["hostile"]), "--chat-template", "chatml", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    jinja = tmp_path / "mine.jinja"
    jinja.write_text(CHATML, encoding="utf-8")
    out = chat_cli("--model", str(ggufs["broken"]), "--chat-template", str(jinja), home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    out = chat_cli("--chat-template", str(tmp_path / "missing.jinja"), home=tmp_path)
    assert out.returncode == 2 and "missing.jinja" in out.stderr


def test_host_load_and_reply_errors_are_400_and_the_template_can_be_chosen(ggufs, tmp_path):
    proc = HostProcess(tmp_path / "home")
    try:
        with proc.client() as c:
            for name in ("hostile", "broken"):
                r = c.post("/hearth/models/load", json={"model": str(ggufs[name])})
                assert r.status_code == 400, r.text
                error = r.json()["error"]
                assert error["kind"] == "model_file" and error["path"] == str(ggufs[name])
                assert "chat template" in error["message"]

            r = c.post("/hearth/models/load", json={"model": str(ggufs["picky"])})
            assert r.status_code == 200, r.text
            model = r.json()["model"]
            question = [{"role": "user", "content": "What is the capital of France?"}]
            r = c.post("/v1/chat/completions", json={"model": model, "messages": question, "max_tokens": 5})
            assert r.status_code == 200, r.text
            for path, body in (("/v1/chat/completions", {"stream": False}), ("/v1/chat/completions", {"stream": True}),
                               ("/hearth/chat", {})):
                r = c.post(path, json={"model": model, "messages": FRANCE * 2, "max_tokens": 5, **body})
                assert r.status_code == 400, (path, body, r.text)
                assert "one question only" in r.json()["error"]["message"] and str(ggufs["picky"]) in r.json()["error"]["message"]

            for choice in ("chatml", "llama3", "gemma"):
                r = c.post("/hearth/models/load", json={"model": str(ggufs["hostile"]), "chat_template": choice})
                assert r.status_code == 200, r.text
                assert r.json()["info"]["chat_template"] == choice
            r = c.post("/hearth/models/load", json={"model": str(ggufs["hostile"]), "chat_template": "chatml"})
            reply = c.post("/v1/chat/completions", json={"model": r.json()["model"], "messages": FRANCE, "temperature": 0,
                                                         "max_tokens": 30}).json()
            assert "Paris" in reply["choices"][0]["message"]["content"]
    finally:
        proc.stop()
