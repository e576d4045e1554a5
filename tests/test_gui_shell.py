"""The shell: rooms, notification area, host indicator, and a window that is not blank."""
from __future__ import annotations

import sys

import psutil
from PySide6.QtWidgets import QLabel

from gui_support import HEAVY_MODULES, no_leaks, open_hearth  # noqa: F401  (fixtures)
from desktop.main_window import ROOMS


def test_shell_shows_five_rooms_and_paints(open_hearth, tmp_path):
    hearth = open_hearth(host=None)
    window = hearth.window
    labels = [window.room_list.item(i).text() for i in range(window.room_list.count())]
    assert [label.split()[-1] for label in labels] == ["Chat", "Image", "Decode", "Tune", "Explore"]
    assert list(window.rooms) == list(ROOMS)
    for name in ROOMS[1:]:
        window.show_room(name)
        assert window.stack.currentWidget() is window.rooms[name]
    window.show_room("Decode")
    assert "fMRI" in " ".join(label.text() for label in window.rooms["Decode"].findChildren(QLabel))
    window.show_room("Chat")

    image = window.grab().toImage()
    image.save(str(tmp_path / "shell.png"))
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20, "the window looks blank"


def test_send_waits_for_the_host_but_history_and_settings_work(open_hearth):
    hearth = open_hearth(host=None)  # the host never starts: like the first seconds after launch
    chat = hearth.chat
    assert not chat.composer.send_button.isEnabled()
    assert "engine host starting" in chat.composer.hint.text()
    assert "starting" in hearth.window.host_indicator.text().lower()
    chat.conversation_list.new_button.click()
    chat.sampling.presets.apply("Precise")
    assert chat.sampling.temperature.value() == 0.0
    assert chat.system_prompt.text() == "You are a helpful assistant."
    for name in HEAVY_MODULES:
        assert name not in sys.modules, f"the GUI imported {name}"


def test_notifications_are_dismissable(open_hearth):
    hearth = open_hearth(host=None)
    area = hearth.window.notifications
    area.notify("error", "Something went wrong with model.gguf; download it again.")
    area.notify("warning", "Low memory.")
    assert area.isVisible() and len(area.texts()) == 2
    area._banners[0].close_button.click()
    assert area.texts() == ["Low memory."]
    area.clear()
    assert not area.isVisible()


def test_qt_bindings_keep_reference_counts(qapp):
    """PySide6 6.12.0 on Python 3.11 drops a reference to None (and True/False) on every call
    that returns nothing, so the app aborts with 'deallocating None' after a few thousand calls.
    Python 3.12+ hides it (immortal None); on 3.11 pin PySide6-Essentials to 6.11.x."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    before = sys.getrefcount(None)
    for _ in range(500):
        label.setText("x")
        qapp.processEvents()
    assert sys.getrefcount(None) >= before - 50, "these PySide6 bindings leak None references (see docstring)"


def test_help_menu_runs_the_selftest_and_shows_each_line(open_hearth, qtbot, monkeypatch):
    import desktop.widgets.selftest_dialog as dialog_module

    script = ("import sys; print('PASS  data folder    /tmp is writable (0.0 s)'); "
              "print('FAIL  text model     The bundled file x.gguf is missing. (0.1 s)'); sys.exit(1)")
    seen = []
    monkeypatch.setattr(dialog_module, "child_command", lambda *args: seen.append(args) or [sys.executable, "-c", script])
    hearth = open_hearth(host=None)
    help_menu = next(a.menu() for a in hearth.window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if a.text().startswith("&Self-test"))
    action.trigger()
    dialog = hearth.window.selftest_dialog
    qtbot.waitUntil(lambda: dialog.passed is not None, timeout=20000)
    assert seen == [("selftest",)]
    text = dialog.output.toPlainText()
    assert "PASS  data folder" in text and "FAIL  text model" in text and "x.gguf" in text
    assert dialog.passed is False and "failed" in dialog.status.text()
    dialog.close()


def test_a_second_window_gets_its_own_engine_host(open_hearth):
    first, second = open_hearth(host="fake"), open_hearth(host="fake")
    first.wait_ready()
    second.wait_ready()
    a, b = first.session.host, second.session.host
    assert a.base_url != b.base_url and a.key != b.key and a.pid != b.pid
    first.close()  # closing one leaves the other's host running
    assert b.is_ready and psutil.pid_exists(b.pid)


def test_a_missing_style_sheet_is_a_warning_not_a_crash(qapp, monkeypatch, tmp_path):
    import desktop.app as app_module

    monkeypatch.setattr(app_module, "THEME", tmp_path / "theme.qss")
    warning = app_module.apply_theme(qapp)
    assert str(tmp_path / "theme.qss") in warning and "Reinstall" in warning
    monkeypatch.undo()
    assert app_module.apply_theme(qapp) == ""  # the real one is back
