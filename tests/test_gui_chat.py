"""Chat against the fake engine host: fast checks of the whole reply cycle."""
from __future__ import annotations

import os
import signal

from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from gui_support import no_leaks, open_hearth  # noqa: F401  (fixtures)


def test_reply_streams_with_stats_and_persists(open_hearth):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.qtbot.waitUntil(lambda: hearth.chat.model_picker.combo.count() == 4)
    picker = hearth.chat.model_picker
    assert "Q4_1" in picker.info.text() and "135M params" in picker.info.text()
    assert "needs ~180 MB of 8.0 GB available" in picker.info.text()
    picker.context.setValue(8192)  # a longer context needs a bigger KV cache
    assert "needs ~220 MB of 8.0 GB available" in picker.info.text()
    picker.combo.setCurrentIndex(1)
    assert picker.info.property("fits") is False and picker.info.text().startswith("⚠")
    picker.combo.setCurrentIndex(0)

    hearth.chat.sampling.presets.apply("Precise")
    hearth.send("What is the capital of France?")
    assert hearth.chat.busy and hearth.chat.composer.stop_button.isEnabled()
    hearth.wait_reply_done()
    bubble = hearth.last_bubble()
    assert "Paris" in bubble.message.content
    assert bubble.message.meta["finish_reason"] == "stop" and bubble.message.meta["completion_tokens"] > 0
    assert "tok/s" in bubble.stats_label.text() and "first token" in bubble.stats_label.text()
    assert hearth.chat.loaded["model"] == "default"
    conv = hearth.session.conversations.get(hearth.chat.conversation.id)
    assert conv.title == "What is the capital of France?"
    assert [m.role for m in conv.messages] == ["user", "assistant"] and conv.messages[1].meta["tokens_per_s"] > 0


def test_regenerate_and_edit_and_resend(open_hearth):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.send("hello there")
    hearth.wait_reply_done()
    hearth.send("second question")
    hearth.wait_reply_done()
    store, chat = hearth.session.conversations, hearth.chat

    first_reply = store.get(chat.conversation.id).messages[-1]
    hearth.last_bubble().regenerate_button.click()
    hearth.wait_reply_done()
    messages = store.get(chat.conversation.id).messages
    assert len(messages) == 4 and messages[-1].created > first_reply.created
    assert messages[-1].content == "You said: second question"

    first_user = chat.message_view.bubbles[0]
    first_user.edit_button.click()
    assert chat.composer.text() == "hello there" and chat.composer.edit_bar.isVisibleTo(chat)
    chat.composer.set_text("hello again")
    hearth.qtbot.keyClick(chat.composer.editor, Qt.Key.Key_Return)
    hearth.wait_reply_done()
    messages = store.get(chat.conversation.id).messages
    assert [m.content for m in messages] == ["hello again", "You said: hello again"]
    assert len(chat.message_view.bubbles) == 2


def test_escape_stops_and_next_send_works(open_hearth):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.send("please write something long")
    hearth.qtbot.waitUntil(lambda: hearth.chat.reply is not None and hearth.chat.reply.tokens >= 5, timeout=20_000)
    hearth.qtbot.keyClick(hearth.chat.composer.editor, Qt.Key.Key_Escape)
    hearth.wait_reply_done(10_000)
    stopped = hearth.last_bubble().message
    assert stopped.meta["finish_reason"] == "cancelled" and "stopped by you" in hearth.last_bubble().stats_label.text()
    assert 0 < len(stopped.content) < 200
    hearth.send("What is the capital of France?")
    hearth.wait_reply_done()
    assert "Paris" in hearth.last_bubble().message.content


def test_bad_model_and_bad_request_are_notifications(open_hearth):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.qtbot.waitUntil(lambda: hearth.chat.model_picker.combo.count() == 4)
    hearth.chat.model_picker.combo.setCurrentIndex(2)
    hearth.send("hello")
    hearth.wait_reply_done()
    texts = hearth.window.notifications.texts()
    assert any("did not load" in t and "broken.gguf is truncated" in t for t in texts), texts
    assert hearth.last_bubble().message.meta.get("interrupted")
    hearth.chat.model_picker.combo.setCurrentIndex(0)
    hearth.send("this will fail")
    hearth.wait_reply_done()
    assert any("does not fit" in t for t in hearth.window.notifications.texts())
    hearth.send("hello again")
    hearth.wait_reply_done()
    assert hearth.last_bubble().message.content == "You said: hello again"


def test_host_killed_mid_reply_restarts_and_reloads(open_hearth):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.send("something long please")
    hearth.qtbot.waitUntil(lambda: hearth.chat.reply is not None and hearth.chat.reply.tokens >= 5, timeout=20_000)
    old_pid = hearth.session.host.pid
    os.kill(old_pid, signal.SIGKILL)
    hearth.wait_reply_done(20_000)
    texts = lambda: " ".join(hearth.window.notifications.texts())  # noqa: E731
    hearth.qtbot.waitUntil(lambda: "stopped unexpectedly" in texts(), timeout=10_000)  # the stream may notice first
    assert "restarting it and reloading default" in texts()
    interrupted = hearth.last_bubble().message
    assert interrupted.meta.get("interrupted") and interrupted.content and interrupted.id is not None
    assert "interrupted" in hearth.last_bubble().stats_label.text()
    hearth.wait_ready()
    assert hearth.session.host.pid != old_pid
    hearth.qtbot.waitUntil(lambda: hearth.chat.loaded is not None, timeout=20_000)
    hearth.send("What is the capital of France?")
    hearth.wait_reply_done()
    assert "Paris" in hearth.last_bubble().message.content


def test_gui_thread_never_stalls_while_streaming(open_hearth, monkeypatch):
    monkeypatch.setenv("FAKE_HOST_LONG_DELAY", "0.01")  # ~100 tokens/s: more repaints, shorter test
    hearth = open_hearth("fake")
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    probe = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer)
    probe.timeout.connect(tick)
    probe.start()
    hearth.wait_ready()
    hearth.send("a long answer please")
    hearth.wait_reply_done(30_000)
    probe.stop()
    assert hearth.last_bubble().message.meta["completion_tokens"] > 100
    assert max(gaps) < 250, f"longest GUI-thread stall {max(gaps)} ms"


def test_load_options_and_model_folders_persist(open_hearth, monkeypatch, tmp_path):
    from desktop.host_client import HostClient
    from desktop.widgets import model_folders

    sent = []
    real_load = HostClient.load

    def spy(self, request):
        sent.append(request.to_dict())
        return real_load(self, request)

    monkeypatch.setattr(HostClient, "load", spy)
    hearth = open_hearth("fake")
    hearth.wait_ready()
    picker = hearth.chat.model_picker
    picker.gpu_layers.setValue(0)
    picker.device.setCurrentText("cpu")
    picker.load_button.click()
    hearth.qtbot.waitUntil(lambda: hearth.chat.loaded is not None)
    assert sent[-1]["gpu_layers"] == 0 and sent[-1]["device"] == "cpu"
    assert hearth.session.settings.get("load_options") == {"gpu_layers": 0, "device": "cpu"}
    # A model whose own chat template is broken: the user picks another one, and it sticks.
    jinja = tmp_path / "mine.jinja"
    jinja.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}", encoding="utf-8")
    monkeypatch.setattr("desktop.widgets.model_picker.QFileDialog.getOpenFileName", lambda *a, **k: (str(jinja), ""))
    picker.template_file.click()
    assert picker.template.currentText() == str(jinja)
    for choice in (str(jinja), "chatml"):
        picker.template.setCurrentText(choice)
        before = hearth.chat.loaded
        picker.load_button.click()
        hearth.qtbot.waitUntil(lambda: hearth.chat.loaded is not before)
        assert sent[-1]["chat_template"] == choice
        assert hearth.session.settings.get("load_options")["chat_template"] == choice

    folder = tmp_path / "my-models"
    folder.mkdir()
    monkeypatch.setattr(model_folders.QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    monkeypatch.setattr(model_folders.ModelFoldersDialog, "exec", lambda self: (self._add(), 1)[1])
    hearth.chat.edit_model_folders()
    assert hearth.session.settings.get("model_folders") == [str(folder)]
