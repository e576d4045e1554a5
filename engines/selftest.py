"""``hearth selftest``: checks that this Hearth (from source or frozen) works end to end.

Each check prints one line (PASS/FAIL, name, reason) as it finishes; ``--json`` adds one JSON object
last. ``--full`` adds the longer checks: a small decoding demo and a one-step LoRA training job. The engine host, the bundled models and the main window run in child processes started through
the one child-command helper, so the frozen app checks itself the same way it runs. Those children
get a temporary data folder: a self-test never writes into the user's conversations or gallery.

Stdlib only (and the light parts of engines): this process never imports torch or Qt.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from engines.core.version import __version__
from engines.core import paths, resources
from engines.core.errors import HearthError
from engines.core.launch import HOST_READY_PREFIX, child_command
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

HOST_START_S = 180.0
QUESTION = "What is the capital of France?"
IMAGE_PROMPT = "a large red circle in the center on a white background"
VISION_QUESTION = "What colour is the shape?"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<14} {self.detail} ({self.seconds:.1f} s)"


class CheckFailed(Exception):
    """A check's reason for failing, in words a user can act on."""


# -- bundled files --------------------------------------------------------------------------
def bundled_files() -> list[Path]:
    """Every bundled file Hearth cannot work without; raises CheckFailed naming each bad one."""
    from engines.models.gguf_file import inspect_gguf
    from engines.models.image_models import BUNDLED_IMAGE_DIR, SINGLE_FILE_CONFIGS
    from engines.models.mmproj import read_projector
    from engines.models.registry import VISION_ASSET, bundled_default_path
    from engines.models.safetensors_file import read_safetensors

    checked: list[Path] = []
    problems: list[str] = []
    try:
        gguf = bundled_default_path()
        inspect_gguf(gguf, source="bundled", entry_id="default")  # header, metadata and tensor bounds
        checked.append(gguf)
    except HearthError as exc:
        problems.append(exc.message)
    mmproj = resources.resource(*VISION_ASSET)
    if mmproj.exists():  # its absence is the vision check's report, not a broken text or image model
        try:
            read_projector(mmproj)
            checked.append(mmproj)
        except HearthError as exc:
            problems.append(exc.message)
    for component, weights in (("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                               ("text_encoder", "model.safetensors")):
        path = BUNDLED_IMAGE_DIR / component / weights
        try:
            read_safetensors(path)  # header and data bounds
            checked.append(path)
        except HearthError as exc:
            problems.append(f"{path}: {exc.message}" if str(path) not in exc.message else exc.message)
    json_files = [BUNDLED_IMAGE_DIR / "model_index.json", BUNDLED_IMAGE_DIR / "tokenizer" / "tokenizer.json",
                  *(BUNDLED_IMAGE_DIR / c / "config.json" for c in ("unet", "vae", "text_encoder")),
                  BUNDLED_IMAGE_DIR / "scheduler" / "scheduler_config.json",
                  resources.resource("assets", "explore", "fewshot_tasks.json"),
                  resources.resource("assets", "explore", "relations.json")]
    for path in json_files:
        try:
            json.loads(path.read_text(encoding="utf-8"))
            checked.append(path)
        except FileNotFoundError:
            problems.append(f"The bundled file {path} is missing.")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"The bundled file {path} is damaged ({exc}).")
    for path in (resources.resource("desktop", "theme.qss"), resources.resource("assets", "prompts", "starter.jsonl"),
                 SINGLE_FILE_CONFIGS):
        if path.exists():
            checked.append(path)
        else:
            problems.append(f"The bundled file {path} is missing.")
    if problems:
        where = "unpack the archive again" if resources.is_frozen() else "check out the project again"
        raise CheckFailed(" ".join(problems) + f" Reinstall Hearth ({where}).")
    return checked


def check_bundled_files() -> str:
    files = bundled_files()
    return f"{len(files)} bundled files present and readable (text model: {files[0].name})"


def check_data_folder() -> str:
    where = os.environ.get("HEARTH_HOME") or "the data folder"
    try:
        home = paths.home()
        where = str(home)
        probe = home / f".selftest-{os.getpid()}"
        try:
            paths.atomic_write_text(probe, "ok")
            if probe.read_text(encoding="utf-8") != "ok":
                raise CheckFailed(f"{home} does not read back what was written.")
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise CheckFailed(f"The data folder {where} is not writable ({exc.strerror or exc}). "
                          "Set HEARTH_HOME to a folder you can write to.") from exc
    from engines.store.storage import Database

    try:
        Database().close()
    except HearthError as exc:
        raise CheckFailed(str(exc)) from exc
    return f"{home} is writable and its database opens"


# -- the engine host ------------------------------------------------------------------------
class HostProcess:
    """An engine host child on a free loopback port with a per-run key."""

    def __init__(self, env: dict[str, str]) -> None:
        self.key = secrets.token_urlsafe()
        self.env = dict(env, HEARTH_API_KEY=self.key, PYTHONUNBUFFERED="1")
        self.process: subprocess.Popen | None = None
        self.base_url = ""
        self._stderr: list[str] = []

    def start(self, timeout: float = HOST_START_S) -> str:
        self.process = subprocess.Popen(child_command("serve", "--port", "0", "--parent-pid", str(os.getpid())),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        ready: list[str] = []
        reader = threading.Thread(target=self._read_ready, args=(ready,), daemon=True)
        reader.start()
        reader.join(timeout)
        if not ready:
            self.stop()
            tail = " | ".join(self._stderr[-3:])
            raise CheckFailed(f"The engine host did not start within {timeout:.0f} s" + (f": {tail}" if tail else "."))
        port = int(json.loads(ready[0][len(HOST_READY_PREFIX):])["port"])
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def _read_ready(self, ready: list[str]) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(HOST_READY_PREFIX):
                ready.append(line.strip())
                return

    def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            if line.strip():
                self._stderr.append(line.strip())

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 300.0):
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        try:
            return urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise CheckFailed(f"{method} {path} answered {exc.code}: {exc.read().decode('utf-8', 'replace')[:300]}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise CheckFailed(f"{method} {path} failed: {exc}") from exc

    def json(self, method: str, path: str, body: dict | None = None, timeout: float = 300.0) -> dict:
        with self.request(method, path, body, timeout) as response:
            return json.loads(response.read())

    def events(self, path: str, body: dict, timeout: float = 600.0) -> Iterator[dict]:
        """The SSE events of one Hearth job."""
        with self.request("POST", path, body, timeout) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield json.loads(line[len("data: "):])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def check_host(host: HostProcess) -> str:
    url = host.start()
    health = host.json("GET", "/hearth/health")
    if health.get("status") != "ok":
        raise CheckFailed(f"The engine host answered {health!r} on /hearth/health.")
    return f"answers on {url} (pid {health.get('pid')})"


def check_text(host: HostProcess) -> str:
    reply = host.json("POST", "/v1/chat/completions", {
        "model": "default", "messages": [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                                         {"role": "user", "content": QUESTION}],
        "temperature": 0, "max_tokens": 32, "seed": 0})
    text = reply["choices"][0]["message"]["content"].strip()
    if "paris" not in text.lower():
        raise CheckFailed(f"The bundled text model answered {text!r} to {QUESTION!r} (expected Paris).")
    return f"the bundled model answers {text!r}"


def check_image(host: HostProcess) -> str:
    body = {"prompt": IMAGE_PROMPT, "model": "default", "steps": 8, "width": 64, "height": 64, "seed": 1,
            "preview_every": 0}
    result: dict = {}
    for event in host.events("/hearth/image/generate", body):
        if event.get("type") == "Error":
            raise CheckFailed(f"The image job failed: {event.get('error', {}).get('message')}")
        if event.get("type") == "Result":
            result = event.get("data") or {}
    images = result.get("images") or []
    if not images:
        raise CheckFailed("The image job finished without an image.")
    path = Path(images[0]["path"])
    if not path.is_file() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise CheckFailed(f"The image job did not write a PNG at {path}.")
    data = path.read_bytes()
    if b"parameters" not in data or IMAGE_PROMPT.encode("utf-8") not in data:
        raise CheckFailed(f"{path} has no A1111 'parameters' text with the prompt.")
    return f"the bundled model wrote a {len(data)}-byte PNG with its parameters"


def check_vision(host: HostProcess) -> str:
    """The bundled vision model names the colour of a rendered shapes scene (through the OpenAI API, as a data URL)."""
    import io

    from engines.core.content import data_url
    from engines.image.shapes import Scene, render
    from engines.models.registry import VISION_ASSET, VISION_ID

    mmproj = resources.resource(*VISION_ASSET)
    if not mmproj.is_file():
        raise CheckFailed(f"The bundled vision model's projector {mmproj} is missing from this build, so Chat cannot "
                          "see images out of the box (other vision models still work).")
    scene = Scene("red", "circle", "large", "center", "white")
    png = io.BytesIO()
    render(scene).save(png, format="PNG")
    reply = host.json("POST", "/v1/chat/completions", {
        "model": VISION_ID, "temperature": 0, "max_tokens": 24, "seed": 0,
        "messages": [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                     {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png.getvalue())}},
                                                  {"type": "text", "text": VISION_QUESTION}]}]})
    text = reply["choices"][0]["message"]["content"].strip()
    if scene.color not in text.lower():
        raise CheckFailed(f"The bundled vision model answered {text!r} to {VISION_QUESTION!r} about {scene.caption()} "
                          f"(expected {scene.color}).")
    return f"the bundled vision model sees {scene.caption()!r} and answers {text!r}"


def check_window(env: dict[str, str]) -> str:
    try:
        done = subprocess.run(child_command("gui-probe"), env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed("The main window did not open within 120 s.") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"The main window did not open (exit {done.returncode}): {tail}")
    probe = json.loads(lines[-1])
    if not probe.get("shown"):
        raise CheckFailed("The main window was created but not shown.")
    if probe.get("ml_imported"):
        raise CheckFailed(f"The GUI process imported {', '.join(probe['ml_imported'])}: it must leave them to the host.")
    return (f"opened on the {probe.get('platform')} platform in {probe.get('seconds', 0):.2f} s; "
            "the GUI process has not imported torch")


# -- the longer checks (--full) -------------------------------------------------------------
def _run_child(args: list[str], env: dict[str, str], timeout: float, what: str) -> None:
    try:
        done = subprocess.run(child_command(*args), env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{what} did not finish within {timeout:.0f} s.") from exc
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise CheckFailed(f"{what} failed (exit {done.returncode}): {lines[-1]}")


def check_decode(env: dict[str, str], scratch: Path) -> str:
    out = scratch / "decode"
    _run_child(["decode", "--demo", "--voxels", "300", "--train", "40", "--test", "2", "--samples", "1", "--steps", "4",
                "--seed", "0", "--out", str(out)], env, 900, "The decoding demo")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    if not (out / "figure.png").is_file():
        raise CheckFailed(f"The decoding demo wrote no figure into {out}.")
    return f"simulated fMRI decoded and reconstructed; {len(metrics)} metric groups and a figure written"


def check_tune(env: dict[str, str], scratch: Path) -> str:
    data = scratch / "prefs.jsonl"
    pairs = [("Say hello.", "Hello!", "Go away."), ("Name a colour.", "Blue.", "I will not."),
             ("What is 2 + 2?", "4.", "Fish."), ("Greet me.", "Good morning!", "No.")]
    paths.atomic_write_text(data, "".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in pairs))
    run = scratch / "run"
    job = {"method": "dpo", "base_model": "default", "dataset": str(data), "output_dir": str(run), "max_steps": 1,
           "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
    paths.atomic_write_text(scratch / "job.json", json.dumps(job))
    _run_child(["train", "--job", str(scratch / "job.json")], env, 900, "The training job")
    adapter = run / "adapter_model.safetensors"
    if not adapter.is_file():
        raise CheckFailed(f"The training job wrote no LoRA adapter at {adapter}.")
    return f"a one-step DPO job on the bundled model wrote its LoRA adapter ({adapter.stat().st_size // 1024} KB)"


# -- the run --------------------------------------------------------------------------------
def run_checks(report: Callable[[Check], None] = lambda check: None, full: bool = False) -> list[Check]:
    checks: list[Check] = []

    def run(name: str, fn: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            check = Check(name, True, fn())
        except CheckFailed as exc:
            check = Check(name, False, str(exc))
        except Exception as exc:  # a bug: still one line with the reason, never a traceback
            check = Check(name, False, f"{type(exc).__name__}: {exc}")
        check.seconds = round(time.perf_counter() - started, 2)
        checks.append(check)
        report(check)
        return check.ok

    run("bundled files", check_bundled_files)
    run("data folder", check_data_folder)
    scratch = Path(tempfile.mkdtemp(prefix="hearth-selftest-"))
    env = dict(os.environ, HEARTH_HOME=str(scratch / "home"), HF_HUB_OFFLINE="1")
    host = HostProcess(env)
    try:
        if run("engine host", lambda: check_host(host)):
            run("text model", lambda: check_text(host))
            run("image model", lambda: check_image(host))
            run("vision model", lambda: check_vision(host))
        else:
            for name in ("text model", "image model", "vision model"):
                skipped = Check(name, False, "not run: the engine host did not start")
                checks.append(skipped)
                report(skipped)
        host.stop()
        run("main window", lambda: check_window(env))
        if full:
            run("decode", lambda: check_decode(env, scratch))
            run("tune", lambda: check_tune(env, scratch))
    finally:
        host.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return checks


def summary(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "version": __version__, "frozen": resources.is_frozen(),
            "executable": sys.executable, "checks": [asdict(c) for c in checks]}


def run_cli(args) -> int:
    print(f"Hearth {__version__} self-test ({'frozen' if resources.is_frozen() else 'from source'}: {sys.executable})",
          flush=True)
    checks = run_checks(lambda check: print(check.line(), flush=True), full=args.full)
    failed = [c.name for c in checks if not c.ok]
    # Not pytest's "N passed, N failed" wording: CI reads that line as the test count.
    print(f"self-test: {len(failed)} of {len(checks)} checks failed" if failed else
          f"self-test: all {len(checks)} checks passed", flush=True)
    if args.json:
        print(json.dumps(summary(checks)), flush=True)
    return 0 if not failed else 1
