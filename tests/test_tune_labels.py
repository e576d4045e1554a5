"""The Tune room's label store: judgements, rankings, Elo, undo, JSONL import/export round trips."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from engines.core.errors import RequestError
from engines.core.jsonl import read_jsonl
from engines.store.labels import LabelStore, ranking_to_pairs
from engines.store.storage import Database


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "labels.sqlite3")
    yield LabelStore(db)
    db.close()


def _prompt_with_replies(store, replies, models=None):
    set_id = store.create_prompt_set("test")
    pid = store.add_prompts(set_id, ["Say hi."])[0]
    models = models or ["base"] * len(replies)
    return pid, [store.add_candidate(pid, r, model=m, seed=i) for i, (r, m) in enumerate(zip(replies, models))]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_ranking_with_ties_expands_to_pairs():
    pairs = ranking_to_pairs([[1], [2, 3], [4]])
    wins = {(p.winner, p.loser) for p in pairs if not p.tie}
    ties = {(p.winner, p.loser) for p in pairs if p.tie}
    assert wins == {(1, 2), (1, 3), (1, 4), (2, 4), (3, 4)}
    assert ties == {(2, 3)}


def test_judgements_rankings_thumbs_counts_and_undo(store):
    pid, (a, b, c) = _prompt_with_replies(store, ["hi", "hello there", "hey"])
    store.judge(a, b, "a")
    store.judge(a, c, "tie")
    store.judge(b, c, "skip")
    store.rank([c, [a, b]])
    store.thumb(a, up=True)
    counts = store.counts()
    assert counts["pairs"] == 1 and counts["ties"] == 1 and counts["skips"] == 1
    assert counts["rankings"] == 1 and counts["thumbs_up"] == 1
    assert counts["preference_pairs"] == 3  # a>b, then c>a and c>b from the ranking

    undone = store.undo()
    assert undone.kind == "thumb"
    assert store.counts()["thumbs_up"] == 0
    assert store.undo().kind == "ranking"
    assert store.counts()["preference_pairs"] == 1
    # undone labels stay in the database, flagged
    assert len(store.labels(include_undone=True)) == 5


def test_bad_labels_are_refused(store):
    pid, (a, b) = _prompt_with_replies(store, ["x", "y"])
    with pytest.raises(RequestError, match="Unknown judgement"):
        store.judge(a, b, "maybe")
    with pytest.raises(RequestError, match="two different replies"):
        store.judge(a, a, "a")
    other = store.add_prompts(store.create_prompt_set("other"), ["Other?"])[0]
    z = store.add_candidate(other, "z")
    with pytest.raises(RequestError, match="same prompt"):
        store.rank([a, z])


def test_elo_rewards_the_model_that_wins(store):
    pid, (base, tuned) = _prompt_with_replies(store, ["meh", "great"], models=["base", "base"])
    store.db.execute("UPDATE candidates SET adapter = 'dpo-1' WHERE id = ?", (tuned,))
    for _ in range(5):
        store.judge(base, tuned, "b")
    store.judge(base, tuned, "tie")
    elo = store.elo()
    assert list(elo) == ["base+dpo-1", "base"]
    assert elo["base+dpo-1"]["wins"] == 5 and elo["base+dpo-1"]["ties"] == 1
    assert elo["base+dpo-1"]["rating"] > 1000 > elo["base"]["rating"]
    assert abs(elo["base+dpo-1"]["rating"] + elo["base"]["rating"] - 2000) < 1e-9  # Elo is zero-sum


def test_preference_export_import_round_trip(store, tmp_path):
    set_id = store.create_prompt_set("mixed")
    chat_prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    p1, p2 = store.add_prompts(set_id, ["Name a colour.", chat_prompt])
    r1 = store.add_candidate(p1, "Blue.", model="base", sampling={"temperature": 0.7}, seed=1)
    r2 = store.add_candidate(p1, "The colour blue is a colour.", model="base", seed=2)
    r3 = store.add_candidate(p2, [{"role": "assistant", "content": "4"}], model="base", adapter="sft")
    r4 = store.add_candidate(p2, [{"role": "assistant", "content": "Four, I think."}], model="base")
    r5 = store.add_candidate(p2, [{"role": "assistant", "content": "5"}], model="base")
    store.judge(r2, r1, "b")
    store.rank([r3, r4, r5])
    first = tmp_path / "prefs.jsonl"
    assert store.export_preference(first) == 4
    rows = _jsonl(first)
    assert rows[0]["chosen"] == "Blue." and rows[0]["rejected"] == "The colour blue is a colour."
    assert rows[1]["prompt"] == chat_prompt and rows[1]["chosen"] == [{"role": "assistant", "content": "4"}]

    other = LabelStore(Database(tmp_path / "other.sqlite3"))
    report = other.import_preference(first)
    assert report.imported == 4 and report.errors == []
    second = tmp_path / "prefs2.jsonl"
    other.export_preference(second)
    assert _jsonl(second) == [{k: v for k, v in r.items()} for r in _strip_ranking_ids(rows)]


def _strip_ranking_ids(rows):
    # A pair that came from a ranking is exported as a plain pair; after import it is one.
    out = []
    for r in rows:
        r = json.loads(json.dumps(r))
        r.get("hearth", {}).pop("from_ranking", None)
        out.append(r)
    return out


def test_plain_trl_file_round_trips_with_unknown_keys(store, tmp_path):
    src = tmp_path / "trl.jsonl"
    rows = [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away.", "id": 7, "margin": 0.5},
            {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hey"}],
             "rejected": [{"role": "assistant", "content": "..."}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store.import_preference(src)
    out = tmp_path / "out.jsonl"
    store.export_preference(out)
    assert _jsonl(out) == rows


def test_unpaired_round_trip_and_pairs_as_unpaired(store, tmp_path):
    src = tmp_path / "kto.jsonl"
    rows = [{"prompt": "Hi", "completion": "Hello!", "label": True},
            {"prompt": "Hi", "completion": "Whatever.", "label": False, "source": "chat"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store.import_unpaired(src)
    out = tmp_path / "out.jsonl"
    assert store.export_unpaired(out) == 2
    assert _jsonl(out) == rows
    pid, (a, b) = _prompt_with_replies(store, ["good", "bad"])
    store.judge(a, b, "a")
    assert store.export_unpaired(out, include_pairs=True) == 4
    assert _jsonl(out)[2:] == [{"prompt": "Say hi.", "completion": "good", "label": True},
                               {"prompt": "Say hi.", "completion": "bad", "label": False}]


def test_ranking_export_is_openassistant_style_and_round_trips(store, tmp_path):
    pid, (a, b, c) = _prompt_with_replies(store, ["one", "two", "three"], models=["m1", "m2", "m3"])
    store.rank([[b, c], a])
    out = tmp_path / "ranks.jsonl"
    assert store.export_rankings(out) == 1
    tree = _jsonl(out)[0]["prompt"]
    assert tree["role"] == "prompter" and tree["text"] == "Say hi."
    assert [(r["text"], r["rank"], r["model"]) for r in tree["replies"]] == [("two", 0, "m2"), ("three", 0, "m3"), ("one", 1, "m1")]

    other = LabelStore(Database(tmp_path / "other.sqlite3"))
    other.import_rankings(out)
    again = tmp_path / "ranks2.jsonl"
    other.export_rankings(again)
    assert _jsonl(again) == _jsonl(out)
    assert other.elo().keys() == store.elo().keys()


def test_malformed_lines_are_reported_by_number(store, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(textwrap.dedent("""\
        {"prompt": "ok", "chosen": "a", "rejected": "b"}
        {"prompt": "broken", "chosen": "a"
        [1, 2]

        {"prompt": "no rejected", "chosen": "a"}
        {"prompt": "ok2", "chosen": "a", "rejected": "b"}
        """))
    with pytest.raises(RequestError, match=r"bad.jsonl line 2 is not valid JSON"):
        store.import_preference(src)
    report = store.import_preference(src, on_error="skip")
    assert report.imported == 2
    assert [e.line for e in report.errors] == [2, 3, 5]
    assert "has no 'rejected'" in str(report.errors[2])
    assert "3 lines skipped" in report.describe()


def test_prompt_sets_starter_csv_and_history(store, tmp_path):
    starter = store.load_starter_set()
    assert store.load_starter_set() == starter  # added once
    prompts = store.prompts(starter)
    assert 45 <= len(prompts) <= 60
    assert len({p.meta["category"] for p in prompts}) >= 8

    csv_file = tmp_path / "p.csv"
    csv_file.write_text('id,prompt\n1,"Hello, world?"\n2,Second\n')
    report = store.import_prompts(csv_file)
    assert [p.prompt for p in store.prompts(report.set_id)] == ["Hello, world?", "Second"]

    from engines.store.conversations import ConversationStore
    conv = ConversationStore(store.db)
    cid = conv.create().id
    conv.add_message(cid, "user", "What is tea?")
    conv.add_message(cid, "assistant", "A drink.")
    hist = store.prompts_from_history()
    assert [p.prompt for p in store.prompts(hist)] == ["What is tea?"]


def test_read_jsonl_missing_file_names_it(tmp_path):
    with pytest.raises(RequestError, match="does not exist"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_acknowledged_labels_survive_kill_9(tmp_path):
    """A labeler killed with SIGKILL right after its labels were acknowledged loses none of them."""
    db_path = tmp_path / "kill.sqlite3"
    code = textwrap.dedent(f"""
        import os, signal, sys
        from engines.store.storage import Database
        from engines.store.labels import LabelStore
        store = LabelStore(Database({str(db_path)!r}))
        pid = store.add_prompts(store.create_prompt_set("s"), ["q"])[0]
        a, b = store.add_candidate(pid, "x"), store.add_candidate(pid, "y")
        for i in range(20):
            store.judge(a, b, "a" if i % 2 else "b")
        print("ACK", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    from tests.helpers import ROOT
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "ACK" in proc.stdout and proc.returncode == -9
    store = LabelStore(Database(db_path))
    assert len(store.labels()) == 20


def test_label_store_exports_feed_the_training_jobs(store, tmp_path):
    from engines.tune.datasets import read_dataset

    pid, (a, b, c) = _prompt_with_replies(store, ["short", "a much longer reply", "medium reply"])
    store.rank([a, c, b])
    store.thumb(a, up=True)
    prefs, unpaired = tmp_path / "prefs.jsonl", tmp_path / "unpaired.jsonl"
    store.export_preference(prefs)
    store.export_unpaired(unpaired)
    rows, errors = read_dataset(prefs, "dpo")
    assert errors == [] and rows[0] == {"prompt": "Say hi.", "chosen": "short", "rejected": "medium reply"}
    assert len(read_dataset(prefs, "reward")[0]) == 3
    assert read_dataset(unpaired, "kto")[0] == [{"prompt": "Say hi.", "completion": "short", "label": True}]
    assert len(read_dataset(prefs, "kto")[0]) == 6  # pairs become one desirable + one undesirable row each
    assert read_dataset(prefs, "rl")[0] == [{"prompt": "Say hi."}]  # distinct prompts
    assert read_dataset(prefs, "sft")[0][0] == {"prompt": "Say hi.", "completion": "short"}  # the chosen reply
    store.thumb(b, up=False)
    store.export_unpaired(unpaired)
    assert read_dataset(unpaired, "sft")[0] == [{"prompt": "Say hi.", "completion": "short"}]  # thumbs-down left out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "answer": "y"}\n')
    with pytest.raises(RequestError, match="line 1 lacks the columns sft needs"):
        read_dataset(bad, "sft")


def test_chat_reply_thumbs_replace_each_other_and_export_unpaired(store):
    prompt = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a fruit."}]
    first = store.thumb_chat_reply(41, True, prompt, "A pear.", model="default")
    assert store.chat_thumbs([41, 42]) == {41: True}
    store.thumb_chat_reply(41, False, prompt, "A pear.", model="default")  # changed mind: one label, not two
    store.thumb_chat_reply(42, True, "Say hi.", "Hi!", model="default")
    assert store.chat_thumbs([41, 42]) == {41: False, 42: True}
    assert (store.counts()["thumbs_up"], store.counts()["thumbs_down"]) == (1, 1)
    assert [r["label"] for r in store.unpaired_records()] == [False, True]
    assert store.unpaired_records()[0]["prompt"] == prompt
    assert store.thumb_chat_reply(42, None, "Say hi.", "Hi!") is None and store.chat_thumbs([42]) == {}
    sets = [s for s in store.prompt_sets() if s["source"] == "chat:thumbs"]
    assert len(sets) == 1 and sets[0]["prompts"] == 2
    assert store.labels(include_undone=True)[0].id == first and store.labels(include_undone=True)[0].undone
