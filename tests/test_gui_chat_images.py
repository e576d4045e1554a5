"""Images in Chat against the fake engine host: attach (button, drop, paste), thumbnails, enlarge, what the host
receives, reload, export/import, Send to Chat from the Image and Decode rooms, and a text-only model."""
from __future__ import annotations

import base64

import httpx
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QToolTip

from gui_support import no_leaks, open_hearth  # noqa: F401  (fixtures)

VISION = 3  # the fake host's vision model, after the three text models


def _png(path, colour: str, size: int = 48):
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    assert image.save(str(path), "PNG")
    return path


def _chat_requests(hearth) -> list[dict]:
    host = hearth.session.host
    response = httpx.get(f"{host.base_url}/fake/chat-requests", headers={"Authorization": f"Bearer {host.key}"})
    return response.json()["requests"]


def _choose(hearth, index: int) -> None:
    picker = hearth.chat.model_picker
    hearth.qtbot.waitUntil(lambda: picker.combo.count() == 4)
    picker.combo.setCurrentIndex(index)


def _thumbs_loaded(thumbs) -> bool:
    return bool(thumbs) and all(t.has_image() for t in thumbs)


def _drop(widget, files) -> None:
    """Drag files over ``widget`` and drop them, as the window system delivers it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, QDragEnterEvent(QPoint(10, 10), *args))
    QApplication.sendEvent(widget, QDropEvent(QPointF(10, 10), *args))


def test_attach_by_button_drop_and_paste_then_the_host_gets_image_parts(open_hearth, tmp_path, monkeypatch):
    red, green = _png(tmp_path / "red.png", "red"), _png(tmp_path / "green.png", "green")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    _choose(hearth, VISION)
    picker, composer = hearth.chat.model_picker, hearth.chat.composer
    assert picker.combo.currentText().endswith("· vision") and "sees images" in picker.info.text()
    assert "vision" not in picker.combo.itemText(0)
    picker.combo.setCurrentIndex(2)  # an mmproj that does not fit its model: the registry's reason shows
    assert "text only: mmproj-other.gguf projects to 2048 values but broken.gguf embeds 576" in picker.info.text()
    picker.combo.setCurrentIndex(VISION)

    monkeypatch.setattr("desktop.widgets.composer.QFileDialog.getOpenFileNames", lambda *a, **k: ([str(red)], ""))
    composer.attach_button.click()
    _drop(composer.editor.viewport(), [green, notes])  # onto the text; the text file is not an image: only green joins
    _drop(composer, [notes])  # onto the frame around it: nothing to take
    assert composer.text() == ""
    blue = QImage(32, 32, QImage.Format.Format_RGB32)
    blue.fill(QColor("blue"))
    QGuiApplication.clipboard().setImage(blue)
    composer.editor.paste()
    assert [a.name for a in composer.attachments()] == ["red.png", "green.png", "pasted image.png"]
    assert composer.text() == ""  # the paste became an attachment, not text
    hearth.qtbot.waitUntil(lambda: _thumbs_loaded(composer.thumbs()), timeout=10_000)

    thumb = composer.thumbs()[0]
    thumb.button.click()  # enlarge
    viewer = thumb.viewer
    hearth.qtbot.waitUntil(lambda: viewer.label.pixmap() is not None and not viewer.label.pixmap().isNull(), timeout=10_000)
    assert viewer.isVisible() and "48×48" in viewer.caption.text()
    viewer.close()
    assert not viewer.isVisible()

    composer.thumbs()[1].remove_button.click()  # green goes
    assert [a.name for a in composer.attachments()] == ["red.png", "pasted image.png"]

    hearth.send("What colours are these?")
    hearth.wait_reply_done()
    assert hearth.last_bubble().message.content.startswith("I see 2 images.")
    assert composer.attachments() == [] and not composer.thumb_scroll.isVisible()
    sent = _chat_requests(hearth)[-1]["messages"][-1]
    assert sent["role"] == "user"
    parts = sent["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"] and parts[2]["text"] == "What colours are these?"
    assert parts[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(red.read_bytes()).decode()
    first = QImage.fromData(base64.b64decode(parts[1]["image_url"]["url"].split(",", 1)[1]))
    assert first.size().width() == 32 and first.pixelColor(5, 5) == QColor("blue")
    user_bubble = hearth.chat.message_view.bubbles[-2]
    hearth.qtbot.waitUntil(lambda: _thumbs_loaded(user_bubble.image_thumbs), timeout=10_000)
    assert len(user_bubble.image_thumbs) == 2

    # Only a picture, no words: it sends, and the conversation gets a title from the picture.
    hearth.chat.conversation_list.new_button.click()
    composer.add_attachments(composer_attachment(green))
    composer.send_button.click()
    hearth.wait_reply_done()
    assert hearth.chat.conversation.title == "Picture: green.png"
    assert [p["type"] for p in _chat_requests(hearth)[-1]["messages"][-1]["content"]] == ["image_url"]


def composer_attachment(path):
    from desktop.widgets.image_thumbs import Attachment

    return [Attachment(path.name, path=str(path))]


def test_edit_and_resend_keeps_the_images_and_a_broken_one_keeps_the_draft(open_hearth, tmp_path):
    red, fake = _png(tmp_path / "red.png", "red"), tmp_path / "fake.png"
    fake.write_text("a text file with a .png name")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    _choose(hearth, VISION)
    chat, composer = hearth.chat, hearth.chat.composer
    composer.add_attachments(composer_attachment(red))
    hearth.send("first")
    hearth.wait_reply_done()
    stored = hearth.session.conversations.get(chat.conversation.id).messages[0].images[0]

    chat.message_view.bubbles[0].edit_button.click()
    assert composer.text() == "first" and [a.name for a in composer.attachments()] == ["red.png"]
    composer.set_text("first, edited")
    hearth.send("first, edited")
    hearth.wait_reply_done()
    messages = hearth.session.conversations.get(chat.conversation.id).messages
    assert [m.content for m in messages] == ["first, edited", "I see 1 image. You said: first, edited"]
    assert messages[0].images == [stored] and hearth.session.conversations.images.exists(stored)  # not pruned

    composer.add_attachments(composer_attachment(fake))
    hearth.send("and this?")
    hearth.wait_reply_done()
    assert any("fake.png is not a PNG, JPEG, GIF, WebP or BMP image" in t for t in hearth.window.notifications.texts())
    assert composer.text() == "and this?" and [a.name for a in composer.attachments()] == ["fake.png"]
    assert len(hearth.session.conversations.get(chat.conversation.id).messages) == 2


def test_a_saved_conversation_reloads_with_its_images_and_sends_them_again(open_hearth, tmp_path):
    red = _png(tmp_path / "red.png", "red")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    _choose(hearth, VISION)
    hearth.chat.composer.add_attachments(composer_attachment(red))
    hearth.send("Remember this picture.")
    hearth.wait_reply_done()
    conversation_id = hearth.chat.conversation.id
    hearth.close()

    again = open_hearth("fake")
    again.wait_ready()
    assert again.chat.conversation.id == conversation_id
    user_bubble = again.chat.message_view.bubbles[0]
    again.qtbot.waitUntil(lambda: _thumbs_loaded(user_bubble.image_thumbs), timeout=10_000)
    _choose(again, VISION)
    again.send("And what colour was it?")
    again.wait_reply_done()
    messages = _chat_requests(again)[-1]["messages"]
    first_user = next(m for m in messages if m["role"] == "user")
    assert first_user["content"][0]["image_url"]["url"].endswith(base64.b64encode(red.read_bytes()).decode())
    assert messages[-1]["content"] == "And what colour was it?"  # a message without images stays plain text
    again.close()

    # The image file goes missing: the thumbnail says so, nothing crashes, the model gets a note instead.
    for path in (again.session.conversations.images.folder).iterdir():
        path.unlink()
    third = open_hearth("fake")
    third.wait_ready()
    thumb = third.chat.message_view.bubbles[0].image_thumbs[0]
    assert thumb.missing and "missing" in thumb.button.toolTip() and "chat-images" in thumb.button.toolTip()
    thumb.button.click()
    assert thumb.viewer is None and "is no longer in" in QToolTip.text()  # a click says why there is nothing to enlarge
    _choose(third, VISION)
    third.send("Still there?")
    third.wait_reply_done()
    assert any("missing" in t for t in third.window.notifications.texts())
    first_user = next(m for m in _chat_requests(third)[-1]["messages"] if m["role"] == "user")
    assert first_user["content"][0] == {"type": "text", "text": "[An image (red.png) was here; its file is missing.]"}


def test_export_and_import_keep_the_images(open_hearth, tmp_path, monkeypatch):
    red = _png(tmp_path / "red.png", "red")
    hearth = open_hearth(host=None)
    store = hearth.session.conversations
    conv = store.create("Picture chat")
    store.add_message(conv.id, "user", "Look", images=[store.images.add(red.read_bytes(), "red.png")])
    store.add_message(conv.id, "assistant", "A red square.")
    hearth.chat.refresh_conversations(select=conv.id)
    for suffix, kind in ((".json", "json"), (".md", "markdown")):
        target = tmp_path / f"export{suffix}"
        monkeypatch.setattr("desktop.rooms.chat.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
        monkeypatch.setattr("desktop.rooms.chat.QFileDialog.getOpenFileName", lambda *a, **k: (str(target), ""))
        hearth.chat.export_conversation(conv.id, kind)
        for path in store.images.folder.iterdir():  # the export alone carries the picture
            path.unlink()
        hearth.chat.import_conversation()
        imported = hearth.chat.conversation
        assert imported.id != conv.id and imported.title == "Picture chat"
        image = imported.messages[0].images[0]
        assert image.name == "red.png" and store.images.read(image) == red.read_bytes()
        assert [m.content for m in imported.messages] == ["Look", "A red square."]
        thumbs = hearth.chat.message_view.bubbles[0].image_thumbs
        hearth.qtbot.waitUntil(lambda: _thumbs_loaded(thumbs), timeout=10_000)


def test_send_to_chat_from_the_image_gallery_and_the_decode_figure(open_hearth, tmp_path):
    hearth = open_hearth(host=None)
    image_room, decode_room, composer = hearth.window.image, hearth.window.decode, hearth.chat.composer
    green = _png(tmp_path / "gallery.png", "green", 64)
    image_room.gallery.add(str(green), {"prompt": "a green square", "model": "default", "mode": "txt2img"}, 1)
    image_room.refresh_gallery()
    hearth.window.show_room("Image")
    image_room.gallery_list.setCurrentRow(0)
    send = next(a for a in image_room.gallery_list.actions() if a.text() == "Send to Chat")  # the context menu's item
    send.trigger()
    assert hearth.window.stack.currentWidget() is hearth.chat
    assert [(a.name, a.path) for a in composer.attachments()] == [("gallery.png", str(green))]

    hearth.window.show_room("Decode")
    assert not decode_room.chat_button.isEnabled()  # nothing to send before a run
    figure = _png(tmp_path / "figure.png", "white", 80).read_bytes()
    decode_room.result = {"figure_png": base64.b64encode(figure).decode()}
    decode_room._update_buttons()
    decode_room.chat_button.click()
    assert hearth.window.stack.currentWidget() is hearth.chat
    assert composer.attachments()[-1].name == "decode-figure.png" and composer.attachments()[-1].data == figure
    hearth.qtbot.waitUntil(lambda: _thumbs_loaded(composer.thumbs()) and len(composer.thumbs()) == 2, timeout=10_000)


def test_a_text_only_model_keeps_the_draft_and_says_which_models_can_see(open_hearth, tmp_path):
    red = _png(tmp_path / "red.png", "red")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    _choose(hearth, 0)  # the text-only default
    composer = hearth.chat.composer
    composer.add_attachments(composer_attachment(red))
    hearth.send("What is this?")
    texts = hearth.window.notifications.texts()
    assert any("text-only" in t and "vision" in t for t in texts), texts
    assert composer.text() == "What is this?" and len(composer.attachments()) == 1  # nothing lost
    assert not hearth.chat.busy and _chat_requests(hearth) == []

    # A registry entry that does not say: the engine's own error comes back; the message and image are kept.
    hearth.chat.model_picker.current_entry().pop("vision")
    hearth.send("What is this?")
    hearth.wait_reply_done()
    assert any("reads text only and cannot see images" in t and "marked 'vision': SmolLM2 + Hearth shapes vision" in t
               for t in hearth.window.notifications.texts())
    saved = hearth.session.conversations.get(hearth.chat.conversation.id).messages[0]
    assert saved.content == "What is this?" and saved.images[0].name == "red.png"

    # Switching to the vision model and regenerating answers.
    _choose(hearth, VISION)
    hearth.last_bubble().regenerate_button.click()
    hearth.wait_reply_done()
    assert hearth.last_bubble().message.content.startswith("I see 1 image.")


def test_composer_with_images_fits_the_smallest_window(open_hearth, tmp_path):
    hearth = open_hearth(host=None)
    hearth.window.resize(900, 600)
    composer = hearth.chat.composer
    composer.add_attachments([composer_attachment(_png(tmp_path / f"{i}.png", "red"))[0] for i in range(12)])
    hearth.qtbot.waitUntil(lambda: _thumbs_loaded(composer.thumbs()), timeout=10_000)
    QApplication.processEvents()  # the layout requests the new thumbnails posted
    assert hearth.window.size().width() == 900 and hearth.window.size().height() == 600
    for widget in (composer.editor, composer.send_button, composer.stop_button, composer.attach_button, composer.thumb_scroll):
        rect = widget.geometry()
        rect.moveTopLeft(widget.mapTo(composer, rect.topLeft() - widget.pos()))
        assert composer.rect().contains(rect), (widget.objectName() or type(widget).__name__, rect, composer.rect())
    for button in (composer.send_button, composer.stop_button, composer.attach_button):
        assert button.height() >= button.minimumSizeHint().height() and button.width() >= button.minimumSizeHint().width()
    assert composer.editor.height() == 78 and composer.thumb_scroll.height() >= 60  # neither squeezed by the thumbnails
    assert hearth.chat.message_view.height() > 100  # the conversation still shows


def test_pasting_copied_files_attaches_the_images_and_keeps_text_paste(open_hearth, tmp_path):
    hearth = open_hearth(host=None)
    composer = hearth.chat.composer
    copied = QMimeData()  # what a file manager puts on the clipboard for Copy
    copied.setUrls([QUrl.fromLocalFile(str(_png(tmp_path / "copied.png", "red"))), QUrl.fromLocalFile(str(tmp_path / "a.txt"))])
    QGuiApplication.clipboard().setMimeData(copied)
    composer.editor.paste()
    assert [a.name for a in composer.attachments()] == ["copied.png"] and composer.text() == ""
    QGuiApplication.clipboard().setText("plain words")
    composer.editor.paste()
    assert composer.text() == "plain words" and len(composer.attachments()) == 1
