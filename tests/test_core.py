"""engines.core: events, cancel, errors, paths, storage migrations, settings, conversations."""
from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from engines.store import storage
from engines.core.cancel import CancelToken
from engines.store.conversations import ConversationStore, from_markdown, to_markdown
from engines.core.errors import ContextOverflowError, HearthError, ModelFileError, RequestError
from engines.core.events import Preview, Result, Token, event_from_wire, event_to_wire
from engines.core.paths import atomic_write_text
from engines.store.settings import Settings


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path))
    database = storage.Database()
    yield database
    database.close()


def test_events_round_trip_through_the_wire_format():
    events = [Token("Par", 3), Preview(step=2, png=b"\x89PNG..."), Result("length", {"text": "hi", "completion_tokens": 2})]
    for event in events:
        wire = json.loads(json.dumps(event_to_wire(event)))
        assert event_from_wire(wire) == event
    with pytest.raises(ValueError):
        event_from_wire({"type": "Nope"})


def test_events_are_immutable():
    token = Token("a")
    with pytest.raises(Exception):
        token.text = "b"  # type: ignore[misc]


def test_cancel_token_wakes_a_waiter():
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    assert token.wait(5) is True
    assert token.cancelled


def test_errors_keep_their_kind_across_the_wire():
    err = ModelFileError("/m/x.gguf is truncated.", path="/m/x.gguf", hint="Re-copy the file.")
    back = HearthError.from_wire(err.to_wire())
    assert isinstance(back, ModelFileError)
    assert "truncated" in str(back) and "Re-copy" in str(back)
    assert back.path == "/m/x.gguf"


def test_database_is_wal_and_migrated(db):
    assert db.version == len(storage.MIGRATIONS)
    mode = db.query("PRAGMA journal_mode")[0][0]
    assert mode == "wal"


def test_migrations_run_once_in_order(tmp_path, monkeypatch):
    path = tmp_path / "m.sqlite3"
    monkeypatch.setattr(storage, "MIGRATIONS", storage.MIGRATIONS + ["CREATE TABLE extra (x INTEGER)"])
    first = storage.Database(path)
    assert first.version == len(storage.MIGRATIONS)
    first.close()
    again = storage.Database(path)  # re-opening must not re-run migrations (CREATE TABLE would fail)
    assert again.version == len(storage.MIGRATIONS)
    again.close()


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "m.sqlite3"
    storage.Database(path).close()
    good = len(storage.MIGRATIONS)
    monkeypatch.setattr(storage, "MIGRATIONS", storage.MIGRATIONS + ["CREATE TABLE t (x); CREATE TABLE broken ("])
    with pytest.raises(HearthError, match="could not be upgraded to schema"):
        storage.Database(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == good
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchone() is None
    conn.close()


def test_newer_database_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "m.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(HearthError, match="newer Hearth"):
        storage.Database(path)


def test_corrupt_database_names_the_file(tmp_path):
    path = tmp_path / "m.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HearthError) as info:
        storage.Database(path)
    assert str(path) in str(info.value)


def test_settings_and_presets_persist(db):
    settings = Settings(db)
    assert settings.get("default_system_prompt") == "You are a helpful assistant."
    settings.set("model_folders", ["/models"])
    settings.save_preset("sampling", "Precise", {"temperature": 0})
    reopened = Settings(storage.Database(db.path))
    assert reopened.get("model_folders") == ["/models"]
    assert reopened.presets("sampling") == {"Precise": {"temperature": 0}}
    reopened.delete_preset("sampling", "Precise")
    assert settings.presets("sampling") == {}


def test_conversation_round_trip_through_the_database(db):
    store = ConversationStore(db)
    conv = store.create("Geography", system_prompt="You are a helpful assistant.", model="default", settings={"temperature": 0})
    store.add_message(conv.id, "user", "What is the capital of France?")
    store.add_message(conv.id, "assistant", "The capital of France is **Paris**.", {"completion_tokens": 8, "tokens_per_s": 70.0})
    again = ConversationStore(storage.Database(db.path)).get(conv.id)
    assert [m.role for m in again.messages] == ["user", "assistant"]
    assert again.messages[1].meta["completion_tokens"] == 8
    assert again.settings == {"temperature": 0}
    assert [c.title for c in store.list("paris")] == ["Geography"]
    assert store.list("nothing like this") == []
    store.rename(conv.id, "Capitals")
    assert store.get(conv.id).title == "Capitals"


def test_truncate_from_drops_the_message_and_everything_after(db):
    store = ConversationStore(db)
    conv = store.create()
    ids = [store.add_message(conv.id, role, text).id for role, text in
           [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]]
    store.truncate_from(conv.id, ids[2])
    assert [m.content for m in store.get(conv.id).messages] == ["a", "b"]
    store.delete(conv.id)
    assert store.list() == []
    assert db.query("SELECT COUNT(*) FROM messages")[0][0] == 0


@pytest.mark.parametrize("suffix", [".json", ".md"])
def test_export_import_round_trip(db, tmp_path, suffix):
    store = ConversationStore(db)
    conv = store.create("Code help", system_prompt="Be brief.", model="default")
    store.add_message(conv.id, "user", "Show a loop")
    store.add_message(conv.id, "assistant", "```python\nfor i in range(3):\n    print(i)\n```\n\nDone.")
    out = tmp_path / f"conv{suffix}"
    (store.export_json if suffix == ".json" else store.export_markdown)(conv.id, out)
    imported = store.import_file(out)
    assert imported.id != conv.id
    assert imported.title == "Code help" and imported.system_prompt == "Be brief."
    original = store.get(conv.id)
    assert [(m.role, m.content) for m in imported.messages] == [(m.role, m.content) for m in original.messages]


def test_import_of_bad_files_names_the_file(db, tmp_path):
    store = ConversationStore(db)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(RequestError, match="bad.json"):
        store.import_file(bad_json)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}))
    with pytest.raises(RequestError, match="message 0"):
        store.import_file(wrong)
    empty_md = tmp_path / "empty.md"
    empty_md.write_text("# Nothing here\n")
    with pytest.raises(RequestError, match="empty.md"):
        store.import_file(empty_md)
    assert store.list() == []  # nothing half-imported


def test_markdown_keeps_headings_inside_code_in_place():
    from engines.store.conversations import Conversation, Message

    conv = Conversation("T", messages=[Message("user", "# heading in text\nmore"), Message("assistant", "ok")])
    back = from_markdown(to_markdown(conv))
    assert [(m.role, m.content) for m in back.messages] == [("user", "# heading in text\nmore"), ("assistant", "ok")]


def test_atomic_write_never_leaves_a_half_file(tmp_path, monkeypatch):
    folder = tmp_path / "atomic"
    target = folder / "out.txt"
    atomic_write_text(target, "good")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "bad")
    assert target.read_text() == "good"
    assert [p.name for p in folder.iterdir()] == ["out.txt"]


def test_context_policy_stop_and_truncate():
    from engines.text.context import fit_messages

    def count(msgs):
        return sum(len(m["content"]) for m in msgs)

    msgs = [{"role": "system", "content": "s" * 10}] + [
        {"role": r, "content": r[0] * 30} for r in ["user", "assistant"] * 3
    ] + [{"role": "user", "content": "q" * 10}]
    with pytest.raises(ContextOverflowError, match="context holds 100 tokens"):
        fit_messages(msgs, count, n_ctx=100, max_tokens=20, policy="stop")
    kept, n, dropped = fit_messages(msgs, count, n_ctx=100, max_tokens=20, policy="truncate")
    assert kept[0]["role"] == "system" and kept[-1]["content"] == "q" * 10
    assert kept[1]["role"] == "user"  # never starts with an assistant turn after the system prompt
    assert n + 20 <= 100 and dropped == len(msgs) - len(kept)
    with pytest.raises(ContextOverflowError, match="last message"):
        fit_messages([{"role": "user", "content": "x" * 500}], count, n_ctx=100, max_tokens=20, policy="truncate")
