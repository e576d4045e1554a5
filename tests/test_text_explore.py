"""Explore's engine code in-process (named to sort after the GUI tests, which check the GUI process never
imported torch): tokens of the bundled model, embedding maths against a direct
computation, attention shapes and rows, few-shot prompts and scoring, the page stream, usage and cost."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from engines.core.cancel import CancelToken
from engines.core.errors import RequestError
from engines.core.events import Metric, Progress, Result, Token
from tests.explore_support import shared_cache  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service():
    from engines.text.explore_service import ExploreService

    svc = ExploreService()
    yield svc
    svc.close()


# -- tokens ---------------------------------------------------------------
def test_bundled_model_token_ids_for_known_strings(service):
    from engines.core.requests.explore import TokensRequest

    out = service.tokens(TokensRequest(text="Hello world"))
    assert [(t["id"], t["text"]) for t in out["tokens"]] == [(19556, "Hello"), (905, " world")]
    assert out["count"] == 2 and out["chars"] == 11 and out["chars_per_token"] == 5.5
    out = service.tokens(TokensRequest(text="The capital of France is Paris."))
    assert [t["id"] for t in out["tokens"]] == [504, 3575, 282, 4649, 314, 7042, 30]
    # Each token's span indexes the text it came from.
    assert "".join(out["text"][t["start"]:t["end"]] for t in out["tokens"]) == out["text"]


def test_chat_template_special_tokens_are_visible(service):
    from engines.core.requests.explore import TokensRequest

    out = service.tokens(TokensRequest(text="Hi", chat=True))
    special = [(t["id"], t["text"]) for t in out["tokens"] if t["special"]]
    assert special[:2] == [(1, "<|im_start|>"), (2, "<|im_end|>")]
    assert out["text"].endswith("<|im_start|>assistant\n") and "You are a helpful assistant." in out["text"]
    assert not any(t["special"] for t in service.tokens(TokensRequest(text="<b>Hi</b>"))["tokens"])


def test_explore_tokenizer_agrees_with_llama_cpp(service):
    """The tokens shown are the ones the chat engine feeds the model."""
    from engines.text.engine import TextEngine
    from engines.core.requests.explore import TokensRequest
    from engines.core.requests.text import LoadRequest

    engine = TextEngine()
    try:
        engine.load(LoadRequest(model="default", backend="llama", context_length=512))
        for text in ("Hello world", "naïve café, 42 + 7 = 49!", "  two  spaces\nand a newline", "emoji 🙂 ok"):
            ours = [t["id"] for t in service.tokens(TokensRequest(text=text))["tokens"]]
            assert ours == engine.tokenize("default", text), text
    finally:
        engine.close()


# -- embeddings: maths on a small random matrix ------------------------------
WORDS = ["apple", "berry", "cherry", "date", "elder", "fig", "grape", "hazel", "iris", "juniper", "kiwi", "lemon",
         "mango", "nectar", "olive", "peach", "quince", "rowan", "sloe", "tansy"]


def _toy_space(seed: int = 0, pieces: bool = False):
    """A vocabulary of WORDS (one token each) with random vectors of random lengths; with
    ``pieces``, two more tokens " pine" + "apple" that "pineapple" splits into."""
    from engines.text.explore_embeddings import EmbeddingSpace

    rng = np.random.default_rng(seed)
    rows = len(WORDS) + (2 if pieces else 0)
    matrix = rng.normal(size=(rows, 6)).astype(np.float32) * rng.uniform(0.5, 3, size=(rows, 1))
    texts = [" " + w for w in WORDS] + ([" pine", "apple"] if pieces else [])
    vocab = {t: i for i, t in enumerate(texts)}

    def encode(text: str) -> list[int]:
        if text.strip() == "pineapple":
            return [vocab[" pine"], vocab["apple"]] if text.startswith(" ") else [vocab[" pine"], vocab["apple"], vocab[" pine"]]
        return [vocab[text]] if text in vocab else [vocab[" " + text]] if " " + text in vocab else []

    return EmbeddingSpace(matrix, texts, encode), matrix


def _direct_ranking(matrix, query, exclude, top):
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    query = query / np.linalg.norm(query)
    scores = unit[: len(WORDS)] @ query
    order = [i for i in np.argsort(-scores) if WORDS[i] not in exclude]
    return [WORDS[i] for i in order[:top]], [float(scores[i]) for i in order[:top]]


def test_analogy_matches_a_direct_computation():
    space, matrix = _toy_space()
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    for a, b, c in [("apple", "berry", "cherry"), ("fig", "grape", "kiwi"), ("tansy", "olive", "date")]:
        ia, ib, ic = WORDS.index(a), WORDS.index(b), WORDS.index(c)
        words, scores = _direct_ranking(matrix, unit[ib] - unit[ia] + unit[ic], {a, b, c}, 5)
        out = space.analogy(a, b, c, top=5)
        assert [r["word"] for r in out["results"]] == words
        assert np.allclose([r["score"] for r in out["results"]], scores, atol=1e-5)
        assert not {a, b, c} & {r["word"] for r in out["results"]}


def test_neighbours_match_a_direct_computation_and_exclude_the_word():
    space, matrix = _toy_space(seed=3)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    i = WORDS.index("mango")
    words, scores = _direct_ranking(matrix, unit[i], {"mango"}, 7)
    out = space.neighbours("mango", top=7)
    assert [r["word"] for r in out["results"]] == words
    assert np.allclose([r["score"] for r in out["results"]], scores, atol=1e-5)
    assert out["word"]["multi_token"] is False


def test_multi_token_words_are_averaged_and_flagged():
    space, matrix = _toy_space(pieces=True)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    w = space.word("pineapple")
    assert w.multi_token and w.pieces == (" pine", "apple")  # the shorter of " pineapple" / "pineapple"
    expected = (unit[len(WORDS)] + unit[len(WORDS) + 1]) / 2
    assert np.allclose(w.vector, expected / np.linalg.norm(expected), atol=1e-6)
    out = space.neighbours("pineapple", top=3)
    assert out["word"]["multi_token"] and out["word"]["pieces"] == [" pine", "apple"]
    with pytest.raises(RequestError):
        space.word("   ")
    with pytest.raises(RequestError):
        space.neighbours("apple", top=0)


def test_pca_projection_matches_numpy_svd():
    from engines.text.explore_embeddings import pca_2d

    space, matrix = _toy_space()
    pairs = [["apple", "berry"], ["cherry", "date"], ["elder", "fig"]]
    out = space.projection(pairs)
    assert [p["word"] for p in out["points"]] == ["apple", "berry", "cherry", "date", "elder", "fig"]
    assert out["arrows"] == [[0, 1], [2, 3], [4, 5]]
    unit = matrix[:6] / np.linalg.norm(matrix[:6], axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    _, s, vt = np.linalg.svd(centred)
    reference = centred @ vt[:2].T
    ours = np.array([[p["x"], p["y"]] for p in out["points"]])
    for k in range(2):  # the same axes up to sign
        assert np.allclose(np.abs(ours[:, k]), np.abs(reference[:, k]), atol=1e-5)
    assert np.allclose(out["explained_variance"], (s[:2] ** 2) / (s ** 2).sum(), atol=1e-6)
    again, _ = pca_2d(unit)
    assert np.allclose(again, ours, atol=1e-6)  # deterministic signs


def test_bundled_model_king_man_woman_gives_queen(service):
    from engines.core.requests.explore import AnalogyRequest, NeighboursRequest, ProjectionRequest

    out = service.analogy(AnalogyRequest(a="man", b="king", c="woman", top=5))
    assert out["results"][0]["word"] == "queen"
    assert not {"man", "king", "woman"} & {r["word"].lower() for r in out["results"]}
    near = service.neighbours(NeighboursRequest(word="Paris", top=10))
    assert {"London", "France", "Berlin"} <= {r["word"] for r in near["results"]}
    relations = json.loads((__import__("engines.core.resources", fromlist=["x"]).assets_dir() / "explore" / "relations.json").read_text())
    for relation in relations["relations"]:
        plot = service.projection(ProjectionRequest(pairs=relation["pairs"]))
        assert len(plot["points"]) == 2 * len(relation["pairs"]) and len(plot["arrows"]) == len(relation["pairs"])


# -- attention ------------------------------------------------------------
def test_attention_rows_sum_to_one_and_shapes_are_layers_heads_t_t(service, tmp_path):
    from engines.text.explore_attention import heatmap_png
    from engines.core.requests.explore import AttentionRequest

    source, maps = service.attention_maps(AttentionRequest(text="The cat sat on the mat."))
    t = len(maps.tokens)
    assert maps.tokens == ["The", " cat", " sat", " on", " the", " mat", "."]
    assert maps.weights.shape == (30, 9, t, t)  # SmolLM2-135M: 30 layers, 9 heads
    assert np.allclose(maps.weights.sum(axis=-1), 1.0, atol=1e-4)
    assert np.allclose(np.triu(maps.weights, k=1), 0.0, atol=1e-6)  # causal: nothing attends ahead
    mean = maps.matrix(-1, None)
    assert np.allclose(mean, maps.weights[-1].mean(axis=0)) and np.allclose(mean.sum(axis=-1), 1.0, atol=1e-4)
    png = heatmap_png(mean, maps.tokens, "test")
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    wire = service.attention(AttentionRequest(text="The cat sat on the mat."))
    import base64

    decoded = np.frombuffer(base64.b64decode(wire["data"]), dtype="<f2").reshape(wire["shape"])
    assert wire["shape"] == [30, 9, t, t] and np.allclose(decoded, maps.weights, atol=2e-3)
    with pytest.raises(RequestError):
        maps.matrix(30, None)
    with pytest.raises(RequestError):
        service.attention_maps(AttentionRequest(text="word " * 80, max_tokens=16))


# -- few-shot -------------------------------------------------------------
def test_fewshot_prompt_assembly():
    from engines.text.explore_fewshot import Example, build_prompt

    assert build_prompt("Give the capital.", [], "France") == "Give the capital.\n\nInput: France\nOutput:"
    prompt = build_prompt("Give the capital.", [Example("Japan", "Tokyo"), Example(" Italy ", "Rome")], "France")
    assert prompt == ("Give the capital.\n\nInput: Japan\nOutput: Tokyo\n\nInput: Italy\nOutput: Rome\n\n"
                      "Input: France\nOutput:")
    assert build_prompt("", [Example("a", "b")], "c") == "Input: a\nOutput: b\n\nInput: c\nOutput:"


def test_fewshot_examples_scoring_and_evaluation_with_a_scripted_model():
    from engines.text.explore_fewshot import answer_of, choose_examples, evaluate, get_task, is_correct, load_tasks

    tasks = {t.id: t for t in load_tasks()}
    assert {"capitals", "sentiment", "antonyms", "french"} <= set(tasks)
    task = get_task("capitals")
    picked = choose_examples(task, 0, 4)
    assert len(picked) == 4 and task.items[0] not in picked and picked == choose_examples(task, 0, 4)
    assert answer_of(" Paris.\nInput: x") == "Paris" and is_correct(" paris", "Paris") and not is_correct("Lyon", "Paris")

    answers = {item.input: item.output for item in task.items}

    def scripted(prompt: str) -> dict:
        # Right only when it has seen at least two examples: accuracy 0, 0, 1 for K = 0, 1, 2.
        query = prompt.rsplit("Input: ", 1)[1].split("\n")[0]
        shots = prompt.count("Output:") - 1
        return {"text": " " + (answers[query] if shots >= 2 else "Nowhere"), "prompt_tokens": 10, "completion_tokens": 2}

    events = list(evaluate(task, scripted, ks=[0, 1, 2], limit=5))
    assert sum(isinstance(e, Progress) for e in events) == 15
    assert [(e.step, e.value) for e in events if isinstance(e, Metric)] == [(0, 0.0), (1, 0.0), (2, 1.0)]
    result = events[-1]
    assert isinstance(result, Result) and result.finish_reason == "stop"
    assert result.data["accuracy"] == {"0": 0.0, "1": 0.0, "2": 1.0} and result.data["prompt_tokens"] == 150

    cancel = CancelToken()
    stream = evaluate(task, scripted, cancel, ks=[0, 1], limit=5)
    next(stream)
    cancel.cancel()
    rest = list(stream)
    assert rest[-1].finish_reason == "cancelled" and len(rest) == 1
    with pytest.raises(RequestError):
        list(evaluate(task, scripted, ks=[-1]))


def test_fewshot_evaluate_on_the_bundled_model(service):
    """Real completions: with two examples the bundled model names capitals it cannot at K = 0."""
    from engines.text.engine import TextEngine
    from engines.core.requests.explore import FewShotEvalRequest
    from engines.text.explore_service import ExploreService
    from engines.core.requests.text import LoadRequest

    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model="default", backend="llama", context_length=1024))
        svc = ExploreService(engine)
        events = list(svc.fewshot_evaluate(FewShotEvalRequest(task="capitals", ks=[0, 2], limit=6), loaded.id, CancelToken()))
        accuracy = events[-1].data["accuracy"]
        assert accuracy["2"] > accuracy["0"] and accuracy["2"] >= 0.5, accuracy
    finally:
        engine.close()


# -- code -> live page ------------------------------------------------------
def test_page_stream_starts_with_the_opening_and_closes_the_page():
    from engines.text.explore_page import CLOSING, OPENING, page_prompt, page_request, stream_page

    request = page_request("a bakery page with an orange heading")
    assert request.prompt == page_prompt("a bakery page with an orange heading") and request.prompt.endswith(OPENING)
    assert request.stop == [CLOSING] and not request.messages
    events = list(stream_page(iter([Token("<head>", 0), Token("</head>", 1),
                                    Result("stop", {"text": "<head></head>", "prompt_tokens": 5, "completion_tokens": 2})])))
    assert "".join(e.text for e in events if isinstance(e, Token)) == OPENING + "<head></head>" + CLOSING
    assert events[-1].data["text"] == OPENING + "<head></head>" + CLOSING
    cut = list(stream_page(iter([Result("length", {"text": "<p>"})])))
    assert cut[-1].data["text"] == OPENING + "<p>"
    with pytest.raises(RequestError):
        page_request("   ")


# -- usage and cost ---------------------------------------------------------
def test_cost_table_arithmetic():
    from engines.store.usage import DEFAULT_PRICES, Price, email_cost

    gpt = Price("Example", 2.50, 10.00)
    assert gpt.cost(1_000_000, 0) == pytest.approx(2.50)
    assert gpt.cost(0, 1_000_000) == pytest.approx(10.00)
    assert gpt.cost(400, 200) == pytest.approx(0.001 + 0.002)  # one email: 400 in + 200 out
    assert email_cost(gpt) == pytest.approx(0.003) and email_cost(gpt, 1000) == pytest.approx(3.0)
    assert all(p.input_per_million >= 0 and p.output_per_million >= p.input_per_million for p in DEFAULT_PRICES)
    with pytest.raises(RequestError):
        Price.from_dict({"name": "x", "input_per_million": "lots", "output_per_million": 1})
    with pytest.raises(RequestError):
        Price.from_dict({"name": "x", "input_per_million": -1, "output_per_million": 1})


def test_usage_per_day_and_model_from_chat_history_and_jobs(tmp_path):
    from engines.store.conversations import ConversationStore
    from engines.store.settings import Settings
    from engines.store.storage import Database
    from engines.store.usage import DEFAULT_PRICES, Price, UsageLog, load_prices, model_label, save_prices, totals

    db = Database(tmp_path / "h.sqlite3")
    try:
        store = ConversationStore(db)
        conv = store.create("c", model="default")
        store.add_message(conv.id, "user", "hi")
        store.add_message(conv.id, "assistant", "hello", {"prompt_tokens": 30, "completion_tokens": 12, "total_s": 0.5, "model": "default"})
        store.add_message(conv.id, "assistant", "oops", {"interrupted": True})  # no counts: not usage
        log = UsageLog(db)
        day1 = time.mktime((2026, 3, 1, 12, 0, 0, 0, 0, -1))
        log.record("default", "api", 100, 50, 2.0, created=day1)
        log.record("/models/other.gguf", "explore.fewshot", 1000, 80, 9.0, created=day1 + 60)
        log.record("default", "explore.page", 200, 300, 4.0, created=day1 + 120)
        rows = log.by_day_and_model()
        bundled = model_label("default")
        assert [(r.day, r.model) for r in rows][-2:] == [("2026-03-01", "other.gguf"), ("2026-03-01", bundled)]
        by_key = {(r.day, r.model): r for r in rows}
        assert by_key[("2026-03-01", bundled)].prompt_tokens == 300 and by_key[("2026-03-01", bundled)].completion_tokens == 350
        assert by_key[("2026-03-01", bundled)].requests == 2 and by_key[("2026-03-01", "other.gguf")].seconds == 9.0
        today = [r for r in rows if r.day != "2026-03-01"]
        assert len(today) == 1 and today[0].prompt_tokens == 30 and today[0].completion_tokens == 12
        assert rows[0] is today[0]  # newest day first
        total = totals(rows)
        assert (total.prompt_tokens, total.completion_tokens, total.requests) == (1330, 442, 4)

        settings = Settings(db)
        assert load_prices(settings) == list(DEFAULT_PRICES)
        save_prices(settings, [Price("Mine", 1.0, 2.0)])
        assert load_prices(settings) == [Price("Mine", 1.0, 2.0)]
    finally:
        db.close()
