"""Chat images in the store: content-addressed files beside the database, the schema upgrade, export/import, and
what a missing file turns into."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3

import pytest

from engines.core.errors import RequestError
from engines.store import storage
from engines.core.content import parse_data_url
from engines.store.chat_images import ChatImage
from engines.store.conversations import ConversationStore

# A 1×1 PNG and a 1×1 GIF (different formats, different names).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


@pytest.fixture
def store(tmp_path):
    db = storage.Database(tmp_path / "data" / "hearth.sqlite3")
    yield ConversationStore(db)
    db.close()


def test_images_are_files_beside_the_database_named_by_content(store, tmp_path):
    first = store.images.add(PNG, "dot.png")
    again = store.images.add(PNG, "same dot, another name.png")
    other = store.images.add(GIF, "dot.gif")
    assert first.file == f"{hashlib.sha256(PNG).hexdigest()}.png" and other.file.endswith(".gif")
    assert store.images.folder == tmp_path / "data" / "chat-images"
    assert sorted(p.name for p in store.images.folder.iterdir()) == sorted([first.file, other.file])  # stored once
    assert again.file == first.file and again.name == "same dot, another name.png"
    assert store.images.read(first) == PNG and first.mime == "image/png"
    assert parse_data_url(store.images.data_url(other), "x") == ("image/gif", GIF)


def test_bad_images_are_refused_by_name_and_nothing_is_written(store):
    with pytest.raises(RequestError, match="notes.txt is not a PNG, JPEG, GIF, WebP or BMP image"):
        store.images.add(b"hello, not a picture", "notes.txt")
    with pytest.raises(RequestError, match="not a chat image file name"):
        store.images.path(ChatImage("../../hearth.sqlite3"))
    assert not store.images.folder.exists()


def test_a_failed_write_leaves_no_half_file(store, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.images.add(PNG, "dot.png")
    assert list(store.images.folder.iterdir()) == []  # neither the temp file nor a partial image


def test_messages_keep_their_images_in_order_and_unused_files_are_pruned(store):
    conv = store.create("Pictures")
    dot, gif = store.images.add(PNG, "dot.png"), store.images.add(GIF, "dot.gif")
    store.add_message(conv.id, "user", "two pictures", images=[gif, dot])
    reply = store.add_message(conv.id, "assistant", "I see them")
    other = store.create("Other")
    store.add_message(other.id, "user", "", images=[dot])
    assert [(i.file, i.name) for i in store.get(conv.id).messages[0].images] == [(gif.file, "dot.gif"), (dot.file, "dot.png")]
    assert store.get(conv.id).messages[1].images == []

    store.truncate_from(conv.id, reply.id)  # the user message stays: its images too
    assert store.images.exists(gif) and store.images.exists(dot)
    store.delete(conv.id)  # the GIF was only there; the PNG is still used by the other conversation
    assert not store.images.exists(gif) and store.images.exists(dot)
    assert store.db.query("SELECT COUNT(*) FROM message_images")[0][0] == 1


def test_a_database_from_before_chat_images_opens_and_upgrades(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite3"
    monkeypatch.setattr(storage, "MIGRATIONS", storage.MIGRATIONS[:4])  # the schema Hearth had before images
    old = storage.Database(path)
    conv_id = old.execute("INSERT INTO conversations(title, created, updated) VALUES ('Old chat', 1, 1)")
    old.execute("INSERT INTO messages(conversation_id, position, role, content, created) VALUES (?, 0, 'user', 'hi', 1)",
                (conv_id,))
    old.close()
    monkeypatch.undo()

    db = storage.Database(path)
    assert db.version == len(storage.MIGRATIONS) == 5
    store = ConversationStore(db)
    conv = store.get(conv_id)
    assert [(m.content, m.images) for m in conv.messages] == [("hi", [])]
    store.add_message(conv_id, "user", "now with a picture", images=[store.images.add(PNG, "dot.png")])
    assert store.get(conv_id).messages[1].images[0].name == "dot.png"
    db.close()


def test_export_import_round_trip_carries_the_images(store, tmp_path):
    conv = store.create("Pictures")
    dot = store.images.add(PNG, "dot.png")
    store.add_message(conv.id, "user", "what is it?", images=[dot, store.images.add(GIF, "dot.gif")])
    store.add_message(conv.id, "assistant", "a dot")
    for name, export in (("c.json", store.export_json), ("c.md", store.export_markdown)):
        out = tmp_path / name
        export(conv.id, out)
        store.images.prune(set())  # only the export holds them now
        back = store.import_file(out)
        first = back.messages[0]
        assert first.content == "what is it?" and [i.name for i in first.images] == ["dot.png", "dot.gif"]
        assert [store.images.read(i) for i in first.images] == [PNG, GIF]
        assert back.messages[1].content == "a dot" and back.messages[1].images == []
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["messages"][0]["images"][0]["data_url"].startswith("data:image/png;base64,")
    assert "images" not in data["messages"][1]


def test_a_missing_file_exports_and_imports_as_a_placeholder(store, tmp_path):
    conv = store.create("Lost")
    dot = store.images.add(PNG, "dot.png")
    store.add_message(conv.id, "user", "look", images=[dot])
    store.images.path(dot).unlink()
    loaded = store.get(conv.id).messages[0]  # reloading does not fail
    assert loaded.images == [dot] and not store.images.exists(dot)
    with pytest.raises(RequestError, match="dot.png is missing from"):
        store.images.read(dot)
    store.export_json(conv.id, tmp_path / "lost.json")
    assert json.loads((tmp_path / "lost.json").read_text())["messages"][0]["images"] == [
        {"name": "dot.png", "file": dot.file, "missing": True}]
    back = store.import_file(tmp_path / "lost.json")
    assert back.messages[0].images == [dot] and not store.images.exists(dot)
    store.export_markdown(conv.id, tmp_path / "lost.md")
    assert "*[image dot.png was missing when this was exported]*" in (tmp_path / "lost.md").read_text()


def test_broken_images_in_an_import_name_the_message_and_import_nothing(store, tmp_path):
    bad = tmp_path / "bad.json"
    for images, error in (([{"data_url": "http://example.com/x.png"}], r"messages\[1\].images\[0\].data_url' is not a base64"),
                          ([{"data_url": "data:image/png;base64,@@@"}], r"messages\[1\].images\[0\].data_url' has base64 data"),
                          ([{"data_url": "data:image/png;base64," + base64.b64encode(b"text").decode()}], "is not a PNG"),
                          ("dot.png", "'images' field that is not a list")):
        bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                {"role": "user", "content": "x", "images": images}]}))
        with pytest.raises(RequestError, match=error):
            store.import_file(bad)
    assert store.list() == []
    assert sqlite3.connect(store.db.path).execute("SELECT COUNT(*) FROM message_images").fetchone()[0] == 0


def test_the_request_body_splices_long_data_urls_into_the_same_json():
    from desktop.host_client import json_pieces

    url = "data:image/png;base64," + base64.b64encode(os.urandom(300_000)).decode()
    body = {"quote": 'a "b" \\ c', "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "é " * 40_000 + '"'}]}], "top_p": 0.5}
    pieces = list(json_pieces(body))
    assert json.loads(b"".join(pieces)) == body
    assert pieces[1] == url.encode() and len(pieces) == 3  # the URL went around json.dumps; the long text did not (é, ")
    big = {"url": "data:image/png;base64," + "A" * 2_500_000}
    assert [len(p) for p in json_pieces(big)][1:4] == [1024 ** 2, 1024 ** 2, 2_500_022 - 2 * 1024 ** 2]
