"""The Image room's gallery: filters wait for a pause in typing, thumbnails load off the GUI thread."""
from __future__ import annotations

import threading

from PIL import Image

from gui_support import no_leaks, open_hearth  # noqa: F401  (fixtures)
import desktop.rooms.image as image_room


def _add_images(room, folder, prompts):
    for i, prompt in enumerate(prompts):
        path = folder / f"{i}.png"
        Image.new("RGB", (64, 64), (40 * i % 255, 120, 200)).save(path)
        room.gallery.add(str(path), {"prompt": prompt, "model": "default", "mode": "txt2img", "width": 64, "height": 64}, i)


def test_filter_waits_for_a_pause_and_thumbnails_load_off_the_gui_thread(open_hearth, tmp_path, monkeypatch):
    decoded_on = set()
    load = image_room._load_thumbnails
    monkeypatch.setattr(image_room, "_load_thumbnails",
                        lambda paths: decoded_on.add(threading.current_thread().name) or load(paths))
    hearth = open_hearth(host=None)
    room = hearth.window.image
    _add_images(room, tmp_path, ["a red circle", "a blue square", "a red star"])
    room.refresh_gallery()
    assert room.gallery_list.count() == 3
    hearth.qtbot.waitUntil(lambda: all(not room.gallery_list.item(r).icon().isNull() for r in range(3)), timeout=10_000)
    assert decoded_on and threading.main_thread().name not in decoded_on

    hearth.qtbot.keyClicks(room.search, "red")
    assert room.gallery_list.count() == 3  # nothing re-queried per keystroke
    assert room._filter_timer.isActive()
    hearth.qtbot.waitUntil(lambda: room.gallery_list.count() == 2, timeout=5_000)
    texts = sorted(room.gallery_list.item(r).text() for r in range(2))
    assert texts == ["a red circle", "a red star"]
    # Thumbnails already decoded come from the cache at once.
    assert all(not room.gallery_list.item(r).icon().isNull() for r in range(2))
