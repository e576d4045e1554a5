"""Chat history in the database, and its export/import as JSON and Markdown.

Light (stdlib only) so the GUI process uses it directly for browsing history while the engine
host warms up. Images attached to messages are files beside the database (engines/store/chat_images.py),
referenced from the ``message_images`` table; an export carries them inline as data: URLs, so one file
holds the whole conversation.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engines.core.errors import RequestError
from engines.core.paths import atomic_write_text
from engines.core.content import parse_data_url
from engines.store.chat_images import FOLDER as IMAGE_FOLDER, ChatImage, ChatImageStore
from engines.store.storage import Database

EXPORT_FORMAT = "hearth.conversation/1"
ROLES = ("system", "user", "assistant")


@dataclass
class Message:
    role: str
    content: str
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created: float = 0.0
    images: list[ChatImage] = field(default_factory=list)  # shown (and sent to the model) before the text


@dataclass
class Conversation:
    title: str
    system_prompt: str = ""
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    id: int | None = None
    created: float = 0.0
    updated: float = 0.0


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.images = ChatImageStore(db.path.parent / IMAGE_FOLDER)

    # -- conversations -------------------------------------------------
    def create(self, title: str = "New chat", system_prompt: str = "", model: str = "", settings: dict | None = None) -> Conversation:
        now = time.time()
        cid = self.db.execute(
            "INSERT INTO conversations(title, system_prompt, model, settings_json, created, updated) VALUES (?,?,?,?,?,?)",
            (title, system_prompt, model, json.dumps(settings or {}), now, now),
        )
        return Conversation(title, system_prompt, model, settings or {}, [], cid, now, now)

    def list(self, search: str = "") -> list[Conversation]:
        """Newest first. ``search`` matches titles and message text (case-insensitive)."""
        if search:
            like = f"%{search}%"
            rows = self.db.query(
                "SELECT * FROM conversations c WHERE c.title LIKE ? OR EXISTS "
                "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content LIKE ?) ORDER BY updated DESC, id DESC",
                (like, like),
            )
        else:
            rows = self.db.query("SELECT * FROM conversations ORDER BY updated DESC, id DESC")
        return [self._row(r) for r in rows]

    def get(self, conversation_id: int) -> Conversation:
        rows = self.db.query("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise RequestError(f"Conversation {conversation_id} does not exist.")
        conv = self._row(rows[0])
        images: dict[int, list[ChatImage]] = {}
        for r in self.db.query("SELECT i.message_id, i.file, i.name FROM message_images i JOIN messages m ON m.id = i.message_id "
                               "WHERE m.conversation_id = ? ORDER BY i.message_id, i.position", (conversation_id,)):
            images.setdefault(r["message_id"], []).append(ChatImage(r["file"], r["name"]))
        conv.messages = [
            Message(r["role"], r["content"], json.loads(r["meta_json"]), r["id"], r["created"], images.get(r["id"], []))
            for r in self.db.query("SELECT * FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,))
        ]
        return conv

    def rename(self, conversation_id: int, title: str) -> None:
        self.db.execute("UPDATE conversations SET title = ?, updated = ? WHERE id = ?", (title, time.time(), conversation_id))

    def update(self, conversation_id: int, *, system_prompt: str | None = None, model: str | None = None, settings: dict | None = None) -> None:
        sets, params = [], []
        for column, value in (("system_prompt", system_prompt), ("model", model)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if settings is not None:
            sets.append("settings_json = ?")
            params.append(json.dumps(settings))
        if not sets:
            return
        sets.append("updated = ?")
        params += [time.time(), conversation_id]
        self.db.execute(f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?", tuple(params))

    def delete(self, conversation_id: int) -> None:
        self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        self.prune_images()

    def prune_images(self) -> int:
        """Delete image files no message refers to any more (after a conversation or its tail went)."""
        return self.images.prune({r["file"] for r in self.db.query("SELECT DISTINCT file FROM message_images")})

    # -- messages ------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str, meta: dict | None = None,
                    images: list[ChatImage] | None = None) -> Message:
        """Append a message; ``images`` must already be stored (``self.images.add``)."""
        if role not in ROLES:
            raise RequestError(f"Unknown message role {role!r}.", hint="Use system, user or assistant.")
        now = time.time()
        with self.db.transaction() as conn:
            position = conn.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()[0]
            mid = conn.execute(
                "INSERT INTO messages(conversation_id, position, role, content, meta_json, created) VALUES (?,?,?,?,?,?)",
                (conversation_id, position, role, content, json.dumps(meta or {}), now),
            ).lastrowid
            _insert_images(conn, mid, images or [])
            conn.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        return Message(role, content, meta or {}, mid, now, list(images or []))

    def update_message(self, message_id: int, content: str, meta: dict | None = None) -> None:
        if meta is None:
            self.db.execute("UPDATE messages SET content = ? WHERE id = ?", (content, message_id))
        else:
            self.db.execute("UPDATE messages SET content = ?, meta_json = ? WHERE id = ?", (content, json.dumps(meta), message_id))

    def truncate_from(self, conversation_id: int, message_id: int, prune: bool = True) -> None:
        """Delete ``message_id`` and everything after it (for regenerate and edit-and-resend). ``prune=False`` keeps
        image files no message refers to any more (an edit about to send them again calls ``prune_images`` after)."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT position FROM messages WHERE id = ? AND conversation_id = ?", (message_id, conversation_id)).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (conversation_id, row[0]))
        if prune:
            self.prune_images()

    # -- export / import -----------------------------------------------
    def export_json(self, conversation_id: int, path: str | Path) -> None:
        data = to_export_dict(self.get(conversation_id), self.images)
        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False))

    def export_markdown(self, conversation_id: int, path: str | Path) -> None:
        atomic_write_text(path, to_markdown(self.get(conversation_id), self.images))

    def import_file(self, path: str | Path) -> Conversation:
        """Import a conversation exported as JSON (``.json``) or Markdown (``.md``)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RequestError(f"Cannot read {path}: {exc}.", path=path, hint="Choose a Hearth .json or .md export.") from exc
        # The image files are stored while parsing, before any row: a file without a row is harmless.
        if path.suffix.lower() in (".md", ".markdown"):
            conv = from_markdown(text, path, self.images)
        else:
            conv = from_export_dict(_load_json(text, path), path, self.images)
        with self.db.transaction() as conn:
            now = time.time()
            cid = conn.execute(
                "INSERT INTO conversations(title, system_prompt, model, settings_json, created, updated) VALUES (?,?,?,?,?,?)",
                (conv.title, conv.system_prompt, conv.model, json.dumps(conv.settings), conv.created or now, now),
            ).lastrowid
            for i, m in enumerate(conv.messages):
                mid = conn.execute(
                    "INSERT INTO messages(conversation_id, position, role, content, meta_json, created) VALUES (?,?,?,?,?,?)",
                    (cid, i, m.role, m.content, json.dumps(m.meta), m.created or now),
                ).lastrowid
                _insert_images(conn, mid, m.images)
        return self.get(cid)

    @staticmethod
    def _row(r) -> Conversation:
        return Conversation(r["title"], r["system_prompt"], r["model"], json.loads(r["settings_json"]), [], r["id"], r["created"], r["updated"])


def _insert_images(conn, message_id: int, images: list[ChatImage]) -> None:
    conn.executemany("INSERT INTO message_images(message_id, position, file, name) VALUES (?,?,?,?)",
                     [(message_id, i, image.file, image.name) for i, image in enumerate(images)])


def _export_image(image: ChatImage, images: ChatImageStore) -> dict:
    """One image of an export: inline as a data: URL, or marked missing (its file was deleted) so the rest still exports."""
    try:
        return {"name": image.name, "data_url": images.data_url(image)}
    except RequestError:
        return {"name": image.name, "file": image.file, "missing": True}


def _import_image(item: Any, where: str, path: Path | None, images: ChatImageStore | None) -> ChatImage:
    if not isinstance(item, dict) or not (isinstance(item.get("data_url"), str) or item.get("missing")):
        raise RequestError(f"{where} needs a 'data_url' (data:image/...;base64,...).", path=path,
                           hint="Choose a conversation exported by Hearth.")
    name = str(item.get("name") or "")
    if item.get("missing") or images is None:  # exported after its file was lost: it stays a placeholder
        return ChatImage(str(item.get("file") or ""), name)
    return images.add(parse_data_url(item["data_url"], f"{where}.data_url")[1], name or "imported image")


def to_export_dict(conv: Conversation, images: ChatImageStore | None = None) -> dict:
    return {
        "format": EXPORT_FORMAT,
        "title": conv.title,
        "system_prompt": conv.system_prompt,
        "model": conv.model,
        "settings": conv.settings,
        "created": conv.created,
        "messages": [{"role": m.role, "content": m.content, "meta": m.meta, "created": m.created,
                      **({"images": [_export_image(i, images) for i in m.images]} if m.images and images else {})}
                     for m in conv.messages],
    }


def _load_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).", path=path,
                           hint="Choose a conversation exported by Hearth.") from exc


def from_export_dict(data: Any, path: Path | None = None, images: ChatImageStore | None = None) -> Conversation:
    """The conversation in an export; its images are stored in ``images`` as they are read."""
    where = str(path) if path else "the conversation"
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise RequestError(f"{where} has no 'messages' list.", path=path, hint="Choose a conversation exported by Hearth.")
    messages = []
    for i, m in enumerate(data["messages"]):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise RequestError(f"{where}: message {i} needs a 'role' (system/user/assistant) and a text 'content'.", path=path)
        if not isinstance(m.get("images", []), list):
            raise RequestError(f"{where}: message {i} has an 'images' field that is not a list.", path=path)
        attached = [_import_image(item, f"{where}: messages[{i}].images[{j}]", path, images)
                    for j, item in enumerate(m.get("images", []))]
        messages.append(Message(m["role"], m["content"], dict(m.get("meta") or {}), None, float(m.get("created") or 0), attached))
    return Conversation(
        str(data.get("title") or "Imported chat"), str(data.get("system_prompt") or ""), str(data.get("model") or ""),
        dict(data.get("settings") or {}), messages, None, float(data.get("created") or 0),
    )


# Markdown export: a heading per message; the JSON header comment keeps what Markdown cannot. A message's
# images come first in its section, as Markdown images with data: URLs (viewers show them; import reads them back).
_MD_HEADING = re.compile(r"^### (System|User|Assistant)\s*$", re.MULTILINE)
_MD_IMAGE = re.compile(r"^!\[([^\]\n]*)\]\((data:image/[a-zA-Z.+-]+;base64,[A-Za-z0-9+/=]*)\)[ \t]*\n?", re.MULTILINE)


def _md_image(image: ChatImage, images: ChatImageStore) -> str:
    alt = image.name.replace("]", ")").replace("\n", " ") or "image"
    try:
        return f"![{alt}]({images.data_url(image)})"
    except RequestError:
        return f"*[image {alt} was missing when this was exported]*"


def to_markdown(conv: Conversation, images: ChatImageStore | None = None) -> str:
    header = {"format": EXPORT_FORMAT, "model": conv.model, "settings": conv.settings}
    parts = [f"# {conv.title}", "", f"<!-- hearth {json.dumps(header, ensure_ascii=False)} -->", ""]
    if conv.system_prompt:
        parts += ["## System prompt", "", conv.system_prompt, ""]
    for m in conv.messages:
        parts += [f"### {m.role.capitalize()}", ""]
        if m.images and images is not None:
            parts += [_md_image(i, images) for i in m.images] + [""]
        parts += [m.content, ""]
    return "\n".join(parts).rstrip() + "\n"


def from_markdown(text: str, path: Path | None = None, images: ChatImageStore | None = None) -> Conversation:
    """The conversation in a Markdown export; its data: URL images are stored in ``images`` (dropped without one)."""
    title_match = re.match(r"#\s+(.+)", text)
    title = title_match.group(1).strip() if title_match else "Imported chat"
    header: dict = {}
    header_match = re.search(r"<!-- hearth (\{.*?\}) -->", text)
    if header_match:
        try:
            header = json.loads(header_match.group(1))
        except json.JSONDecodeError:
            header = {}
    system_prompt = ""
    sys_match = re.search(r"^## System prompt\s*\n\n(.*?)(?=^### |\Z)", text, re.MULTILINE | re.DOTALL)
    if sys_match:
        system_prompt = sys_match.group(1).strip()
    headings = list(_MD_HEADING.finditer(text))
    if not headings:
        raise RequestError(f"{path or 'The Markdown'} has no '### User' / '### Assistant' sections.", path=path,
                           hint="Choose a conversation exported by Hearth as Markdown.")
    messages = []
    for i, h in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        body = text[h.end():end].strip("\n")
        attached = []
        while (found := _MD_IMAGE.match(body.lstrip("\n"))) is not None:
            if images is not None:
                data = parse_data_url(found.group(2), f"{path or 'The Markdown'}: message {i}'s image")[1]
                attached.append(images.add(data, found.group(1) or "imported image"))
            body = body.lstrip("\n")[found.end():]
        messages.append(Message(h.group(1).lower(), body.strip(), images=attached))
    return Conversation(title, system_prompt, str(header.get("model", "")), dict(header.get("settings") or {}), messages)


def conversation_as_dict(conv: Conversation) -> dict:
    return asdict(conv)
