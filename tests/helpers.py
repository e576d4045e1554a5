"""Shared test helpers: bad model files made on the fly, and a real engine host subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
GREEDY = {"temperature": 0.0, "seed": 0}
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
FRANCE = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]


def bundled_gguf() -> Path:
    from engines.models import bundled_default_path

    return bundled_default_path()


def make_bad_models(folder: Path) -> dict[str, Path]:
    """Every kind of broken model the issue names, made in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    good = bundled_gguf().read_bytes()
    files = {
        "empty": folder / "empty.gguf",
        "random": folder / "random.gguf",
        "truncated": folder / "truncated.gguf",
        "no_model_folder": folder / "no-model",
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(os.urandom(4096))
    files["truncated"].write_bytes(good[: len(good) * 9 // 10])
    files["no_model_folder"].mkdir(exist_ok=True)
    (files["no_model_folder"] / "notes.txt").write_text("nothing to see")
    return files


class HostProcess:
    """``python main.py serve --port 0`` in a subprocess, with a fresh HEARTH_HOME."""

    def __init__(self, home: Path, api_key: str = "test-key", extra_args: tuple[str, ...] = ()) -> None:
        env = dict(os.environ, HEARTH_HOME=str(home), HF_HUB_OFFLINE="1", HEARTH_API_KEY=api_key)
        self.api_key = api_key
        # stderr goes to a file: a pipe nobody drains would stall the host once full, and tests read the log.
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / "host-stderr.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0", *extra_args],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        deadline = time.time() + 120
        self.port = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("HEARTH_HOST_READY"):
                self.port = json.loads(line.split(" ", 1)[1])["port"]
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError(f"host did not start: {self.log()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._log.close()

    def log(self) -> str:
        """What the host has written to stderr so far."""
        return self.log_path.read_text(errors="replace")


def sse_events(response) -> list[dict]:
    out = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[6:]
            out.append({"done": True} if payload == "[DONE]" else json.loads(payload))
    return out
