"""Settings and named presets, stored as JSON in the database."""
from __future__ import annotations

import json
from typing import Any

from engines.store.storage import Database
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

DEFAULTS: dict[str, Any] = {
    "model_folders": [],
    "default_system_prompt": DEFAULT_SYSTEM_PROMPT,
    "context_length": 4096,
    "overflow_policy": "truncate",
    "gpu_layers": -1,
    "backend": "llama",
    "last_model": "default",
}


class Settings:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str, default: Any = None) -> Any:
        rows = self.db.query("SELECT value_json FROM settings WHERE key = ?", (key,))
        if rows:
            return json.loads(rows[0]["value_json"])
        return DEFAULTS.get(key, default) if default is None else default

    def set(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO settings(key, value_json) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json",
            (key, json.dumps(value)),
        )

    # Presets: named JSON blobs per kind ("sampling", "system_prompt", ...).
    def save_preset(self, kind: str, name: str, value: dict) -> None:
        self.db.execute(
            "INSERT INTO presets(kind, name, value_json) VALUES (?, ?, ?) "
            "ON CONFLICT(kind, name) DO UPDATE SET value_json = excluded.value_json",
            (kind, name, json.dumps(value)),
        )

    def presets(self, kind: str) -> dict[str, dict]:
        rows = self.db.query("SELECT name, value_json FROM presets WHERE kind = ? ORDER BY name", (kind,))
        return {r["name"]: json.loads(r["value_json"]) for r in rows}

    def delete_preset(self, kind: str, name: str) -> None:
        self.db.execute("DELETE FROM presets WHERE kind = ? AND name = ?", (kind, name))
