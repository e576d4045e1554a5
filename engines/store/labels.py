"""The Tune room's label store: prompt sets, candidate replies, preference labels, Elo, undo, JSONL I/O.

Light (stdlib only) like ``conversations``: the GUI labels at keyboard speed straight into the
database, and training jobs (``engines/tune``) read the same store or its JSONL exports. Every
label is committed before the call returns, so a killed process keeps each acknowledged label.

Formats (``prompt`` and replies are plain text or chat-message lists, as TRL accepts):
- preference JSONL (TRL): ``{"prompt", "chosen", "rejected"}``
- unpaired JSONL (TRL/KTO): ``{"prompt", "completion", "label": true|false}``
- ranking JSONL, OpenAssistant style: ``{"prompt": {"role": "prompter", "text", "replies":
  [{"role": "assistant", "text", "rank"}]}}`` (rank 0 is best; equal ranks are ties)
Keys Hearth does not know are kept with the label and written back on export; Hearth's own
details (which model/adapter, sampling, seed) travel under a ``"hearth"`` key.

No library covers this bookkeeping or Elo for pairwise human labels, so both are written here.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from engines.core.errors import RequestError
from engines.core.jsonl import LineError, is_text_or_messages, read_jsonl
from engines.core.paths import atomic_write_text
from engines.core.resources import resource
from engines.store.storage import Database

OUTCOMES = ("a", "b", "tie", "skip")
STARTER_PROMPTS = resource("assets", "prompts", "starter.jsonl")
ELO_START = 1000.0
ELO_K = 32.0
CHAT_THUMBS_SOURCE = "chat:thumbs"  # the prompt set that holds thumbed Chat replies


@dataclass
class ImportReport:
    """What an import did. ``errors`` lists the skipped lines (``on_error="skip"``)."""

    path: str
    imported: int = 0
    errors: list[LineError] = field(default_factory=list)
    set_id: int | None = None

    def describe(self) -> str:
        text = f"{self.imported} records imported from {self.path}"
        if self.errors:
            shown = "; ".join(str(e) for e in self.errors[:5])
            more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            text += f", {len(self.errors)} lines skipped: {shown}{more}"
        return text


def _needs(*keys: str, label: bool = False) -> Callable[[dict], str | None]:
    def check(obj: dict) -> str | None:
        missing = [k for k in keys if k not in obj]
        if missing:
            return f"has no {', '.join(repr(k) for k in missing)} (it has {', '.join(repr(k) for k in obj) or 'no keys'})"
        for k in keys:
            if k == "label":
                if not isinstance(obj[k], bool):
                    return "has a 'label' that is not true or false"
            elif not is_text_or_messages(obj[k]):
                return f"has a {k!r} that is neither text nor a list of chat messages"
        return None
    return check


validate_preference = _needs("prompt", "chosen", "rejected")
validate_unpaired = _needs("prompt", "completion", "label")


# -- records ----------------------------------------------------------------------------------
@dataclass
class Prompt:
    id: int
    set_id: int
    prompt: Any  # text or a chat-message list
    meta: dict = field(default_factory=dict)


@dataclass
class Candidate:
    id: int
    prompt_id: int
    completion: Any  # text or a chat-message list
    model: str = ""
    adapter: str = ""
    sampling: dict = field(default_factory=dict)
    seed: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def system(self) -> str:
        """The name Elo rates: the model, plus the adapter when there is one."""
        return f"{self.model}+{self.adapter}" if self.adapter else (self.model or "unknown")

    def details(self) -> dict:
        out: dict[str, Any] = {}
        if self.model:
            out["model"] = self.model
        if self.adapter:
            out["adapter"] = self.adapter
        if self.sampling:
            out["sampling"] = self.sampling
        if self.seed is not None:
            out["seed"] = self.seed
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass
class Label:
    id: int
    kind: str  # pair | ranking | thumb
    prompt_id: int
    a_id: int | None
    b_id: int | None
    outcome: str  # pair: a/b/tie/skip; thumb: up/down
    ranking: list[list[int]]
    meta: dict
    created: float
    undone: bool


@dataclass
class PairOutcome:
    """One comparison: ``winner`` beat ``loser`` (or they tied). Rankings expand to many."""

    label_id: int
    prompt_id: int
    winner: int
    loser: int
    tie: bool = False


# -- the store --------------------------------------------------------------------------------
class LabelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # prompt sets -------------------------------------------------------------------------
    def create_prompt_set(self, name: str, source: str = "") -> int:
        return self.db.execute("INSERT INTO prompt_sets(name, source, created) VALUES (?,?,?)", (name, source, time.time()))

    def prompt_sets(self) -> list[dict]:
        rows = self.db.query(
            "SELECT s.id, s.name, s.source, s.created, "
            "(SELECT COUNT(*) FROM prompts p WHERE p.set_id = s.id) AS prompts, "
            "(SELECT COUNT(*) FROM labels l JOIN prompts p ON l.prompt_id = p.id WHERE p.set_id = s.id AND l.undone = 0) AS labels "
            "FROM prompt_sets s ORDER BY s.id")
        return [dict(r) for r in rows]

    def add_prompts(self, set_id: int, prompts: Iterable[Any], metas: Iterable[dict] | None = None) -> list[int]:
        prompts = list(prompts)
        metas = list(metas) if metas is not None else [{} for _ in prompts]
        ids = []
        with self.db.transaction() as conn:
            start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM prompts WHERE set_id = ?", (set_id,)).fetchone()[0]
            now = time.time()
            for i, (prompt, meta) in enumerate(zip(prompts, metas)):
                if not is_text_or_messages(prompt) or (isinstance(prompt, str) and not prompt.strip()):
                    raise RequestError(f"Prompt {i + 1} is empty or not text / chat messages.")
                ids.append(conn.execute(
                    "INSERT INTO prompts(set_id, position, prompt_json, meta_json, created) VALUES (?,?,?,?,?)",
                    (set_id, start + i, json.dumps(prompt, ensure_ascii=False), json.dumps(meta or {}), now)).lastrowid)
        return ids

    def prompts(self, set_id: int) -> list[Prompt]:
        return [self._prompt(r) for r in self.db.query("SELECT * FROM prompts WHERE set_id = ? ORDER BY position", (set_id,))]

    def prompt(self, prompt_id: int) -> Prompt:
        rows = self.db.query("SELECT * FROM prompts WHERE id = ?", (prompt_id,))
        if not rows:
            raise RequestError(f"Prompt {prompt_id} does not exist.")
        return self._prompt(rows[0])

    def import_prompts(self, path: str | Path, name: str | None = None, on_error: str = "stop") -> ImportReport:
        """A prompt set from CSV (a ``prompt`` column, else the first) or JSONL (``prompt`` or ``text``)."""
        path = Path(path)
        report = ImportReport(str(path))
        prompts, metas = [], []
        if path.suffix.lower() == ".csv":
            try:
                with open(path, newline="", encoding="utf-8-sig") as fh:
                    rows = list(csv.reader(fh))
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise RequestError(f"Cannot read {path}: {exc}.", path=path, hint="Choose a UTF-8 CSV file.") from exc
            column, start = 0, 0
            if rows and "prompt" in [c.strip().lower() for c in rows[0]]:
                column, start = [c.strip().lower() for c in rows[0]].index("prompt"), 1
            for number, row in enumerate(rows[start:], start=start + 1):
                text = row[column].strip() if len(row) > column else ""
                if text:
                    prompts.append(text)
                    metas.append({})
                elif any(c.strip() for c in row):
                    problem = f"{path} line {number} has no prompt in column {column + 1}."
                    if on_error == "stop":
                        raise RequestError(problem, path=path)
                    report.errors.append(LineError(number, f"has no prompt in column {column + 1}"))
        else:
            def check(obj: dict) -> str | None:
                value = obj.get("prompt", obj.get("text"))
                if value is None:
                    return "has no 'prompt' (or 'text')"
                return None if is_text_or_messages(value) else "has a prompt that is neither text nor chat messages"
            records, report.errors = read_jsonl(path, on_error, check)
            for _, obj in records:
                prompts.append(obj.get("prompt", obj.get("text")))
                metas.append({k: v for k, v in obj.items() if k not in ("prompt", "text")})
        if not prompts:
            raise RequestError(f"{path} holds no prompts.", path=path, hint="Put one prompt per line (JSONL) or row (CSV).")
        report.set_id = self.create_prompt_set(name or path.stem, source=str(path))
        self.add_prompts(report.set_id, prompts, metas)
        report.imported = len(prompts)
        return report

    def load_starter_set(self) -> int:
        """The bundled ~50 varied prompts (``assets/prompts/starter.jsonl``), added once."""
        rows = self.db.query("SELECT id FROM prompt_sets WHERE source = 'bundled:starter'")
        if rows:
            return rows[0]["id"]
        report = self.import_prompts(STARTER_PROMPTS, name="Starter prompts")
        self.db.execute("UPDATE prompt_sets SET source = 'bundled:starter' WHERE id = ?", (report.set_id,))
        return report.set_id

    def prompts_from_history(self, name: str = "From chat history", limit: int = 200) -> int:
        """A prompt set of the user's recent chat questions (distinct, newest first)."""
        rows = self.db.query(
            "SELECT content, MAX(created) AS last FROM messages WHERE role = 'user' AND TRIM(content) != '' "
            "GROUP BY content ORDER BY last DESC LIMIT ?", (limit,))
        if not rows:
            raise RequestError("Chat history has no questions yet.", hint="Chat first, or import a prompt file.")
        set_id = self.create_prompt_set(name, source="history")
        self.add_prompts(set_id, [r["content"] for r in rows])
        return set_id

    # candidates --------------------------------------------------------------------------
    def add_candidate(self, prompt_id: int, completion: Any, *, model: str = "", adapter: str = "",
                      sampling: dict | None = None, seed: int | None = None, meta: dict | None = None) -> int:
        if not is_text_or_messages(completion):
            raise RequestError("A candidate reply must be text or a list of chat messages.")
        return self.db.execute(
            "INSERT INTO candidates(prompt_id, completion_json, model, adapter, sampling_json, seed, meta_json, created) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (prompt_id, json.dumps(completion, ensure_ascii=False), model, adapter, json.dumps(sampling or {}), seed,
             json.dumps(meta or {}), time.time()))

    def candidates(self, prompt_id: int) -> list[Candidate]:
        return [self._candidate(r) for r in self.db.query("SELECT * FROM candidates WHERE prompt_id = ? ORDER BY id", (prompt_id,))]

    def candidate(self, candidate_id: int) -> Candidate:
        rows = self.db.query("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        if not rows:
            raise RequestError(f"Candidate {candidate_id} does not exist.")
        return self._candidate(rows[0])

    # labels ------------------------------------------------------------------------------
    def judge(self, a_id: int, b_id: int, outcome: str, meta: dict | None = None) -> int:
        """A pairwise judgement: ``a`` (A is better), ``b``, ``tie`` or ``skip``."""
        if outcome not in OUTCOMES:
            raise RequestError(f"Unknown judgement {outcome!r}.", hint="Use a, b, tie or skip.")
        a, b = self.candidate(a_id), self.candidate(b_id)
        if a.prompt_id != b.prompt_id or a_id == b_id:
            raise RequestError("A and B must be two different replies to the same prompt.")
        return self._insert_label("pair", a.prompt_id, a_id=a_id, b_id=b_id, outcome=outcome, meta=meta)

    def rank(self, ranking: list, meta: dict | None = None) -> int:
        """A K-way ranking, best first. An item is a candidate id or a list of ids that tie."""
        groups = [[int(c)] if not isinstance(c, (list, tuple)) else [int(x) for x in c] for c in ranking]
        groups = [g for g in groups if g]
        ids = [c for g in groups for c in g]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise RequestError("A ranking needs at least two different replies, each listed once.")
        prompts = {self.candidate(c).prompt_id for c in ids}
        if len(prompts) != 1:
            raise RequestError("All replies in a ranking must answer the same prompt.")
        return self._insert_label("ranking", prompts.pop(), ranking=groups, meta=meta)

    def thumb(self, candidate_id: int, up: bool, meta: dict | None = None) -> int:
        c = self.candidate(candidate_id)
        return self._insert_label("thumb", c.prompt_id, a_id=candidate_id, outcome="up" if up else "down", meta=meta)

    # Chat replies ------------------------------------------------------------------------
    def thumb_chat_reply(self, message_id: int, up: bool | None, prompt: Any, reply: str, model: str = "") -> int | None:
        """Thumb up/down a Chat reply, or clear its thumb (``up=None``); returns the new label id.

        The reply becomes a candidate (tagged with ``chat_message_id``) of its prompt -- the
        conversation before it -- in the "Chat replies" set, made on first use. A new thumb on
        the same reply replaces the old one, so each reply counts once.
        """
        current = self._chat_candidate(message_id)
        if current is not None:
            for row in self.db.query("SELECT id FROM labels WHERE kind = 'thumb' AND undone = 0 AND a_id = ?", (current,)):
                self.retract(row["id"])
        if up is None:
            return None
        if current is None:
            rows = self.db.query("SELECT id FROM prompt_sets WHERE source = ?", (CHAT_THUMBS_SOURCE,))
            set_id = rows[0]["id"] if rows else self.create_prompt_set("Chat replies", source=CHAT_THUMBS_SOURCE)
            key = json.dumps(prompt, ensure_ascii=False)
            found = self.db.query("SELECT id FROM prompts WHERE set_id = ? AND prompt_json = ?", (set_id, key))
            prompt_id = found[0]["id"] if found else self.add_prompts(set_id, [prompt])[0]
            current = self.add_candidate(prompt_id, reply, model=model, meta={"chat_message_id": message_id})
        return self.thumb(current, up)

    def chat_thumbs(self, message_ids: Iterable[int]) -> dict[int, bool]:
        """``{message_id: up}`` for the Chat replies among ``message_ids`` that carry a live thumb."""
        ids = [int(i) for i in message_ids if i is not None]
        if not ids:
            return {}
        rows = self.db.query(
            "SELECT json_extract(c.meta_json, '$.chat_message_id') AS mid, l.outcome FROM labels l "
            "JOIN candidates c ON l.a_id = c.id WHERE l.kind = 'thumb' AND l.undone = 0 AND "
            f"json_extract(c.meta_json, '$.chat_message_id') IN ({','.join('?' * len(ids))}) ORDER BY l.id", tuple(ids))
        return {int(r["mid"]): r["outcome"] == "up" for r in rows}

    def _chat_candidate(self, message_id: int) -> int | None:
        rows = self.db.query("SELECT id FROM candidates WHERE json_extract(meta_json, '$.chat_message_id') = ? ORDER BY id",
                             (int(message_id),))
        return rows[0]["id"] if rows else None

    def undo(self) -> Label | None:
        """Take back the most recent label (it stays in the database, flagged); None if there is none."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM labels WHERE undone = 0 ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute("UPDATE labels SET undone = 1 WHERE id = ?", (row["id"],))
        label = self._label(row)
        label.undone = True
        return label

    def retract(self, label_id: int) -> None:
        """Take back one particular label (flagged like ``undo``), e.g. a thumb clicked a second time."""
        self.db.execute("UPDATE labels SET undone = 1 WHERE id = ?", (label_id,))

    def labels(self, include_undone: bool = False, kind: str | None = None) -> list[Label]:
        sql, params = "SELECT * FROM labels WHERE 1=1", []
        if not include_undone:
            sql += " AND undone = 0"
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        return [self._label(r) for r in self.db.query(sql + " ORDER BY id", tuple(params))]

    def counts(self) -> dict[str, int]:
        out = {"pairs": 0, "ties": 0, "skips": 0, "rankings": 0, "thumbs_up": 0, "thumbs_down": 0}
        for label in self.labels():
            if label.kind == "pair":
                out["skips" if label.outcome == "skip" else "ties" if label.outcome == "tie" else "pairs"] += 1
            elif label.kind == "ranking":
                out["rankings"] += 1
            else:
                out["thumbs_up" if label.outcome == "up" else "thumbs_down"] += 1
        out["preference_pairs"] = sum(1 for p in self.pair_outcomes() if not p.tie)
        return out

    def pair_outcomes(self) -> list[PairOutcome]:
        """Every comparison the labels imply, in label order; rankings expand to all their pairs."""
        out = []
        for label in self.labels():
            if label.kind == "pair" and label.outcome in ("a", "b", "tie"):
                winner, loser = (label.a_id, label.b_id) if label.outcome != "b" else (label.b_id, label.a_id)
                out.append(PairOutcome(label.id, label.prompt_id, winner, loser, label.outcome == "tie"))
            elif label.kind == "ranking":
                out.extend(ranking_to_pairs(label.ranking, label.id, label.prompt_id))
        return out

    def elo(self, k: float = ELO_K, start: float = ELO_START) -> dict[str, dict]:
        """Elo per model/adapter from every comparison between replies of different systems.

        Sequential updates in label order (the classic online Elo); ties score 0.5 each.
        Returns ``{system: {"rating", "games", "wins", "losses", "ties"}}``, best first.
        """
        cache: dict[int, Candidate] = {}

        def system(cid: int) -> str:
            if cid not in cache:
                cache[cid] = self.candidate(cid)
            return cache[cid].system

        table: dict[str, dict] = {}
        for p in self.pair_outcomes():
            sw, sl = system(p.winner), system(p.loser)
            if sw == sl:
                continue  # two replies of the same system say nothing about its rating
            for s in (sw, sl):
                table.setdefault(s, {"rating": start, "games": 0, "wins": 0, "losses": 0, "ties": 0})
            rw, rl = table[sw]["rating"], table[sl]["rating"]
            expected_w = 1.0 / (1.0 + 10 ** ((rl - rw) / 400.0))
            score_w = 0.5 if p.tie else 1.0
            table[sw]["rating"] = rw + k * (score_w - expected_w)
            table[sl]["rating"] = rl + k * ((1.0 - score_w) - (1.0 - expected_w))
            for s, key in ((sw, "ties" if p.tie else "wins"), (sl, "ties" if p.tie else "losses")):
                table[s]["games"] += 1
                table[s][key] += 1
        return dict(sorted(table.items(), key=lambda kv: -kv[1]["rating"]))

    # export ------------------------------------------------------------------------------
    def preference_records(self) -> list[dict]:
        """TRL preference rows (ties and skips have no chosen/rejected, so they are left out)."""
        out = []
        for p in self.pair_outcomes():
            if p.tie:
                continue
            label = self._label_by_id(p.label_id)
            chosen, rejected = self.candidate(p.winner), self.candidate(p.loser)
            record = {"prompt": self.prompt(p.prompt_id).prompt, "chosen": chosen.completion, "rejected": rejected.completion}
            hearth = {k: v for k, v in (("chosen", chosen.details()), ("rejected", rejected.details())) if v}
            if label.kind == "ranking":
                hearth["from_ranking"] = label.id
            if hearth:
                record["hearth"] = hearth
            record.update({k: v for k, v in label.meta.items() if k not in record})
            out.append(record)
        return out

    def unpaired_records(self, include_pairs: bool = False) -> list[dict]:
        """TRL unpaired rows from thumbs; ``include_pairs`` adds each preference pair as one good + one bad row."""
        out = []
        for label in self.labels(kind="thumb"):
            c = self.candidate(label.a_id)
            record = {"prompt": self.prompt(label.prompt_id).prompt, "completion": c.completion, "label": label.outcome == "up"}
            if c.details():
                record["hearth"] = c.details()
            record.update({k: v for k, v in label.meta.items() if k not in record})
            out.append(record)
        if include_pairs:
            for r in self.preference_records():
                out.append({"prompt": r["prompt"], "completion": r["chosen"], "label": True})
                out.append({"prompt": r["prompt"], "completion": r["rejected"], "label": False})
        return out

    def ranking_records(self, include_pairs: bool = False) -> list[dict]:
        """OpenAssistant-style trees: one prompter message whose assistant replies carry ``rank``."""
        out = []
        for label in self.labels():
            if label.kind == "ranking":
                groups = label.ranking
            elif include_pairs and label.kind == "pair" and label.outcome in ("a", "b", "tie"):
                groups = {"a": [[label.a_id], [label.b_id]], "b": [[label.b_id], [label.a_id]],
                          "tie": [[label.a_id, label.b_id]]}[label.outcome]
            else:
                continue
            prompt = self.prompt(label.prompt_id).prompt
            replies = []
            for rank, group in enumerate(groups):
                for cid in group:
                    c = self.candidate(cid)
                    reply = {"role": "assistant", "text": _as_text(c.completion), "rank": rank}
                    if not isinstance(c.completion, str):
                        reply["hearth_messages"] = c.completion
                    reply.update(c.details())
                    replies.append(reply)
            message = {"role": "prompter", "text": _as_text(prompt), "replies": replies}
            if not isinstance(prompt, str):
                message["hearth_messages"] = prompt
            record = {"prompt": message}
            record.update({k: v for k, v in label.meta.items() if k not in record})
            out.append(record)
        return out

    def export_preference(self, path: str | Path) -> int:
        return _write_jsonl(path, self.preference_records())

    def export_unpaired(self, path: str | Path, include_pairs: bool = False) -> int:
        return _write_jsonl(path, self.unpaired_records(include_pairs))

    def export_rankings(self, path: str | Path, include_pairs: bool = False) -> int:
        return _write_jsonl(path, self.ranking_records(include_pairs))

    # import ------------------------------------------------------------------------------
    def import_preference(self, path: str | Path, on_error: str = "stop", name: str | None = None) -> ImportReport:
        records, errors = read_jsonl(path, on_error, validate_preference)
        report = ImportReport(str(path), errors=errors)
        report.set_id = self.create_prompt_set(name or Path(path).stem, source=str(path))
        prompts: dict[str, int] = {}
        for _, obj in records:
            pid = self._intern_prompt(report.set_id, obj["prompt"], prompts)
            hearth = obj.get("hearth") or {}
            chosen = self._intern_candidate(pid, obj["chosen"], hearth.get("chosen") or {})
            rejected = self._intern_candidate(pid, obj["rejected"], hearth.get("rejected") or {})
            meta = {k: v for k, v in obj.items() if k not in ("prompt", "chosen", "rejected", "hearth")}
            self._insert_label("pair", pid, a_id=chosen, b_id=rejected, outcome="a", meta=meta)
            report.imported += 1
        return report

    def import_unpaired(self, path: str | Path, on_error: str = "stop", name: str | None = None) -> ImportReport:
        records, errors = read_jsonl(path, on_error, validate_unpaired)
        report = ImportReport(str(path), errors=errors)
        report.set_id = self.create_prompt_set(name or Path(path).stem, source=str(path))
        prompts: dict[str, int] = {}
        for _, obj in records:
            pid = self._intern_prompt(report.set_id, obj["prompt"], prompts)
            cid = self._intern_candidate(pid, obj["completion"], obj.get("hearth") or {})
            meta = {k: v for k, v in obj.items() if k not in ("prompt", "completion", "label", "hearth")}
            self._insert_label("thumb", pid, a_id=cid, outcome="up" if obj["label"] else "down", meta=meta)
            report.imported += 1
        return report

    def import_rankings(self, path: str | Path, on_error: str = "stop", name: str | None = None) -> ImportReport:
        def check(obj: dict) -> str | None:
            msg = obj.get("prompt")
            if not isinstance(msg, dict) or not isinstance(msg.get("text"), str) or not isinstance(msg.get("replies"), list):
                return "has no 'prompt' message with 'text' and 'replies'"
            ranked = [r for r in msg["replies"] if isinstance(r, dict) and isinstance(r.get("text"), str)
                      and isinstance(r.get("rank"), int)]
            if len(ranked) < 2:
                return "has fewer than two replies with 'text' and an integer 'rank'"
            return None
        records, errors = read_jsonl(path, on_error, check)
        report = ImportReport(str(path), errors=errors)
        report.set_id = self.create_prompt_set(name or Path(path).stem, source=str(path))
        prompts: dict[str, int] = {}
        detail_keys = ("model", "adapter", "sampling", "seed", "meta")
        for _, obj in records:
            msg = obj["prompt"]
            pid = self._intern_prompt(report.set_id, msg.get("hearth_messages", msg["text"]), prompts)
            by_rank: dict[int, list[int]] = {}
            for reply in msg["replies"]:
                if not (isinstance(reply, dict) and isinstance(reply.get("text"), str) and isinstance(reply.get("rank"), int)):
                    continue  # OpenAssistant trees hold unranked replies too
                cid = self._intern_candidate(pid, reply.get("hearth_messages", reply["text"]),
                                             {k: reply[k] for k in detail_keys if k in reply})
                by_rank.setdefault(reply["rank"], []).append(cid)
            groups = [by_rank[r] for r in sorted(by_rank)]
            meta = {k: v for k, v in obj.items() if k != "prompt"}
            self._insert_label("ranking", pid, ranking=groups, meta=meta)
            report.imported += 1
        return report

    # internals ---------------------------------------------------------------------------
    def _insert_label(self, kind: str, prompt_id: int, *, a_id: int | None = None, b_id: int | None = None,
                      outcome: str = "", ranking: list | None = None, meta: dict | None = None) -> int:
        return self.db.execute(
            "INSERT INTO labels(kind, prompt_id, a_id, b_id, outcome, ranking_json, meta_json, created) VALUES (?,?,?,?,?,?,?,?)",
            (kind, prompt_id, a_id, b_id, outcome, json.dumps(ranking or []), json.dumps(meta or {}, ensure_ascii=False),
             time.time()))

    def _intern_prompt(self, set_id: int, prompt: Any, seen: dict[str, int]) -> int:
        key = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
        if key not in seen:
            seen[key] = self.add_prompts(set_id, [prompt])[0]
        return seen[key]

    def _intern_candidate(self, prompt_id: int, completion: Any, details: dict) -> int:
        text = json.dumps(completion, ensure_ascii=False)
        model, adapter = str(details.get("model", "")), str(details.get("adapter", ""))
        sampling, seed, meta = details.get("sampling") or {}, details.get("seed"), details.get("meta") or {}
        for r in self.db.query("SELECT * FROM candidates WHERE prompt_id = ? AND completion_json = ? AND model = ? AND adapter = ?",
                               (prompt_id, text, model, adapter)):
            c = self._candidate(r)
            if c.sampling == sampling and c.seed == seed and c.meta == meta:
                return c.id
        return self.add_candidate(prompt_id, completion, model=model, adapter=adapter, sampling=sampling, seed=seed, meta=meta)

    def _label_by_id(self, label_id: int) -> Label:
        return self._label(self.db.query("SELECT * FROM labels WHERE id = ?", (label_id,))[0])

    @staticmethod
    def _prompt(r) -> Prompt:
        return Prompt(r["id"], r["set_id"], json.loads(r["prompt_json"]), json.loads(r["meta_json"]))

    @staticmethod
    def _candidate(r) -> Candidate:
        return Candidate(r["id"], r["prompt_id"], json.loads(r["completion_json"]), r["model"], r["adapter"],
                         json.loads(r["sampling_json"]), r["seed"], json.loads(r["meta_json"]))

    @staticmethod
    def _label(r) -> Label:
        return Label(r["id"], r["kind"], r["prompt_id"], r["a_id"], r["b_id"], r["outcome"], json.loads(r["ranking_json"]),
                     json.loads(r["meta_json"]), r["created"], bool(r["undone"]))


def ranking_to_pairs(groups: list[list[int]], label_id: int = 0, prompt_id: int = 0) -> list[PairOutcome]:
    """Expand a ranking (best group first; a group's members tie) into every pairwise comparison."""
    out = []
    for i, group in enumerate(groups):
        for x in range(len(group)):
            for y in range(x + 1, len(group)):
                out.append(PairOutcome(label_id, prompt_id, group[x], group[y], tie=True))
        for lower in groups[i + 1:]:
            for w in group:
                for loser in lower:
                    out.append(PairOutcome(label_id, prompt_id, w, loser))
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "\n\n".join(m.get("content", "") for m in value)


def _write_jsonl(path: str | Path, records: list[dict]) -> int:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return len(records)
