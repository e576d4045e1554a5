"""Conversations through the widgets: create, rename, search, delete, persist, export/import."""
from __future__ import annotations

import json

from PySide6.QtWidgets import QFileDialog, QMessageBox

from gui_support import no_leaks, open_hearth  # noqa: F401  (fixtures)


def _titles(hearth):
    return hearth.chat.conversation_list.titles()


def test_create_rename_search_delete_and_persist(open_hearth, qtbot, monkeypatch):
    hearth = open_hearth(host=None)
    conversations = hearth.chat.conversation_list
    conversations.new_button.click()
    conversations.new_button.click()
    conversations.new_button.click()
    assert _titles(hearth) == ["New chat"] * 3

    conversations.list.item(0).setText("Trip to Lyon")  # what editing in place ends with
    conversations.list.item(1).setText("Sourdough notes")
    conversations.list.item(2).setText("Scratch")
    store = hearth.session.conversations
    lyon = next(c for c in store.list() if c.title == "Trip to Lyon")
    store.add_message(lyon.id, "user", "Which trains go from Paris to Lyon?")
    hearth.chat.sampling.presets.apply("Creative")
    hearth.chat.system_prompt.set_text("You are a travel agent.")

    qtbot.keyClicks(conversations.search_box, "trains")  # matches message text, not only titles
    qtbot.waitUntil(lambda: _titles(hearth) == ["Trip to Lyon"])
    conversations.search_box.clear()
    qtbot.waitUntil(lambda: len(_titles(hearth)) == 3)

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    conversations.select(next(c.id for c in store.list() if c.title == "Scratch"))
    conversations.delete_button.click()
    assert sorted(_titles(hearth)) == ["Sourdough notes", "Trip to Lyon"]
    conversations.select(lyon.id)
    assert [b.message.content for b in hearth.chat.message_view.bubbles] == ["Which trains go from Paris to Lyon?"]
    # A user pausing: the debounced save of the panels lands in the store by itself.
    qtbot.waitUntil(lambda: store.get(lyon.id).system_prompt == "You are a travel agent.", timeout=5000)
    hearth.close()

    again = open_hearth(host=None)  # same HEARTH_HOME: everything is still there
    assert sorted(_titles(again)) == ["Sourdough notes", "Trip to Lyon"]
    assert again.chat.conversation is not None and again.chat.conversation.title == "Trip to Lyon"
    assert [b.message.content for b in again.chat.message_view.bubbles] == ["Which trains go from Paris to Lyon?"]
    assert again.chat.system_prompt.text() == "You are a travel agent."
    assert again.chat.sampling.temperature.value() == 1.1


def test_panel_edits_made_just_before_closing_are_kept(open_hearth):
    """Closing the window flushes the debounced save: an edit made a moment before is not lost."""
    hearth = open_hearth(host=None)
    hearth.chat.conversation_list.new_button.click()
    conversation = hearth.chat.conversation
    hearth.chat.system_prompt.set_text("You are a ship's navigator.")
    hearth.chat.sampling.presets.apply("Precise")
    assert hearth.chat._save_panels_timer.isActive()  # the save is still pending when the window closes
    hearth.close()

    again = open_hearth(host=None)
    assert again.session.conversations.get(conversation.id).system_prompt == "You are a ship's navigator."
    assert again.chat.system_prompt.text() == "You are a ship's navigator."
    assert again.chat.sampling.temperature.value() == 0.0


def test_export_and_import_round_trip(open_hearth, monkeypatch, tmp_path):
    hearth = open_hearth(host=None)
    store = hearth.session.conversations
    conv = store.create("Code help", "You are a helpful assistant.", "default", {"temperature": 0.0})
    store.add_message(conv.id, "user", "Write hello world in Python.")
    store.add_message(conv.id, "assistant", "```python\nprint('hello world')\n```",
                      {"completion_tokens": 9, "tokens_per_s": 50.0, "finish_reason": "stop"})
    hearth.chat.refresh_conversations(select=conv.id)
    export_button = hearth.chat.conversation_list.export_button
    as_json, as_markdown = export_button.menu().actions()

    for action, name in ((as_json, "chat.json"), (as_markdown, "chat.md")):
        target = tmp_path / name
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, target=target, **k: (str(target), ""))
        action.trigger()
        assert target.exists()
    assert json.loads((tmp_path / "chat.json").read_text())["messages"][1]["meta"]["completion_tokens"] == 9
    assert "### Assistant" in (tmp_path / "chat.md").read_text()

    for name in ("chat.json", "chat.md"):
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, name=name, **k: (str(tmp_path / name), ""))
        hearth.chat.conversation_list.import_button.click()
        imported = hearth.chat.conversation
        assert imported.id != conv.id and imported.title == "Code help"
        assert [(m.role, m.content) for m in imported.messages] == [
            ("user", "Write hello world in Python."), ("assistant", "```python\nprint('hello world')\n```")]
        assert len(hearth.chat.message_view.bubbles) == 2
    assert _titles(hearth).count("Code help") == 3

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    hearth.chat.conversation_list.import_button.click()
    assert any("not valid JSON" in text for text in hearth.window.notifications.texts())


def test_presets_save_and_reload(open_hearth):
    hearth = open_hearth(host=None)
    sampling = hearth.chat.sampling
    sampling.presets.apply("Precise")
    sampling.max_tokens.setValue(77)
    sampling.stop.setPlainText("###\n\\n\\n")
    sampling.presets.save("Short and exact")
    sampling.presets.apply("Creative")
    assert sampling.values()["temperature"] == 1.1
    sampling.presets.apply("Short and exact")
    values = sampling.values()
    assert values["temperature"] == 0.0 and values["max_tokens"] == 77 and values["stop"] == ["###", "\n\n"]
    hearth.chat.system_prompt.presets.apply("Concise")
    assert hearth.chat.system_prompt.text().startswith("You are a helpful assistant. Answer briefly")
