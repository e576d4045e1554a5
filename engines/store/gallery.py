"""The image gallery: one row per saved PNG. Stdlib only, so the GUI browses it directly."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.store.storage import Database


@dataclass
class GalleryImage:
    id: int
    path: str
    prompt: str
    negative_prompt: str
    model: str
    mode: str
    seed: int | None
    width: int | None
    height: int | None
    request: dict[str, Any]
    created: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Gallery:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, path: str | Path, request: dict[str, Any], seed: int | None) -> int:
        return self.db.execute(
            "INSERT INTO images(path, prompt, negative_prompt, model, mode, seed, width, height, request_json, created) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (str(path), request.get("prompt", ""), request.get("negative_prompt", ""), request.get("model", ""),
             request.get("mode", "txt2img"), seed, request.get("width"), request.get("height"), json.dumps(request), time.time()),
        )

    def list(self, search: str = "", model: str = "", limit: int = 500) -> list[GalleryImage]:
        """Newest first; ``search`` matches the prompt, ``model`` the model id (both case-insensitive)."""
        sql, params = "SELECT * FROM images WHERE 1=1", []
        if search:
            sql += " AND prompt LIKE ?"
            params.append(f"%{search}%")
        if model:
            sql += " AND model LIKE ?"
            params.append(f"%{model}%")
        sql += " ORDER BY created DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return [self._row(r) for r in self.db.query(sql, tuple(params))]

    def get(self, image_id: int) -> GalleryImage | None:
        rows = self.db.query("SELECT * FROM images WHERE id = ?", (image_id,))
        return self._row(rows[0]) if rows else None

    def delete(self, image_id: int, delete_file: bool = True) -> None:
        image = self.get(image_id)
        self.db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        if image and delete_file:
            Path(image.path).unlink(missing_ok=True)

    @staticmethod
    def _row(r) -> GalleryImage:
        return GalleryImage(r["id"], r["path"], r["prompt"], r["negative_prompt"], r["model"], r["mode"], r["seed"],
                            r["width"], r["height"], json.loads(r["request_json"]), r["created"])
