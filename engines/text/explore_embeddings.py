"""Word geometry in a model's input-embedding matrix: nearest neighbours, analogies, 2-D maps.

Every vector is normalised to unit length, so scores are cosine similarities. A word is looked
up as it appears mid-sentence (" king"), or bare ("king") when that takes fewer tokens; a word
that still splits into several tokens is the mean of their unit vectors, and is flagged so the
view can say so. Plain numpy: the maths is tested on small random matrices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from engines.core.errors import RequestError

MAX_TOP = 200


@dataclass(frozen=True)
class WordVector:
    word: str
    token_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    vector: np.ndarray  # unit length

    @property
    def multi_token(self) -> bool:
        return len(self.token_ids) > 1

    def to_dict(self) -> dict:
        return {"word": self.word, "token_ids": list(self.token_ids), "pieces": list(self.pieces),
                "multi_token": self.multi_token}


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # unused rows stay zero and score 0 with everything
    return matrix / norms


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def is_word_like(text: str) -> bool:
    """A token that reads as a whole word (or word start): letters only, at least two of them."""
    stripped = text.strip()
    return len(stripped) >= 2 and stripped.isalpha()


class EmbeddingSpace:
    """``matrix``: one row per token id; ``texts``: each token's text; ``encode``: text -> ids."""

    def __init__(self, matrix: np.ndarray, texts: Sequence[str], encode: Callable[[str], list[int]],
                 special_ids: Iterable[int] = ()) -> None:
        self.unit = normalise_rows(matrix)
        rows = self.unit.shape[0]
        self.texts = list(texts)[:rows] + [""] * max(0, rows - len(texts))
        self.encode = encode
        special = set(special_ids)
        # Candidates for answers: word-like tokens that are not special. Tokenizers often have
        # more ids than the matrix has rows (or the reverse): only rows with a text count.
        self.candidates = np.array([i not in special and is_word_like(t) for i, t in enumerate(self.texts)], dtype=bool)

    # -- lookup ---------------------------------------------------------
    def word(self, word: str) -> WordVector:
        word = word.strip()
        if not word:
            raise RequestError("A word is empty.", hint="Type a word, for example 'king'.")
        best: list[int] | None = None
        for form in (" " + word, word):
            ids = [i for i in self.encode(form) if 0 <= i < self.unit.shape[0] and self.texts[i].strip()]
            if ids and (best is None or len(ids) < len(best)):
                best = ids
        if not best:
            raise RequestError(f"'{word}' has no tokens in this model's vocabulary.", hint="Try another word.")
        vector = _unit(self.unit[best].mean(axis=0))
        return WordVector(word, tuple(best), tuple(self.texts[i] for i in best), vector)

    # -- queries --------------------------------------------------------
    def rank(self, query: np.ndarray, top: int, exclude_words: Iterable[WordVector] = ()) -> list[dict]:
        """The ``top`` candidate words most similar to ``query`` (cosine), best first.

        The excluded words' own tokens never appear, nor any candidate that reads the same as one
        of them ("King" when "king" was asked); candidates that read alike after stripping the
        leading space (" queen" and "queen") count once, with the better score.
        """
        if not isinstance(top, int) or not 1 <= top <= MAX_TOP:
            raise RequestError(f"'top' is {top!r}.", hint=f"Ask for 1 to {MAX_TOP} results.")
        query = _unit(np.asarray(query, dtype=np.float32))
        scores = self.unit @ query
        allowed = self.candidates.copy()
        banned_text = set()
        for w in exclude_words:
            allowed[list(w.token_ids)] = False
            banned_text.add(w.word.lower())
        order = np.argsort(-np.where(allowed, scores, -np.inf), kind="stable")
        out: list[dict] = []
        seen: set[str] = set()
        for i in order:
            if not allowed[i]:
                break
            text = self.texts[i].strip()
            if text.lower() in banned_text or text in seen:
                continue
            seen.add(text)
            out.append({"word": text, "token": self.texts[i], "id": int(i), "score": float(scores[i])})
            if len(out) == top:
                break
        return out

    def neighbours(self, word: str, top: int = 10) -> dict:
        w = self.word(word)
        return {"word": w.to_dict(), "results": self.rank(w.vector, top, [w])}

    def analogy(self, a: str, b: str, c: str, top: int = 10) -> dict:
        """a : b :: c : ?  -- the words nearest to b - a + c, the three inputs excluded."""
        wa, wb, wc = self.word(a), self.word(b), self.word(c)
        query = wb.vector - wa.vector + wc.vector
        return {"inputs": [wa.to_dict(), wb.to_dict(), wc.to_dict()], "results": self.rank(query, top, [wa, wb, wc])}

    def projection(self, pairs: Sequence[Sequence[str]]) -> dict:
        """PCA of the words in ``pairs`` to 2-D; each pair becomes an arrow from its first word to its second.

        A "pair" of one word is a lone point (for plain word lists).
        """
        words: list[str] = []
        arrows: list[list[int]] = []
        index: dict[str, int] = {}
        for pair in pairs:
            ids = []
            for word in pair:
                word = word.strip()
                if not word:
                    continue
                if word not in index:
                    index[word] = len(words)
                    words.append(word)
                ids.append(index[word])
            if len(ids) == 2 and ids[0] != ids[1]:
                arrows.append(ids)
        if len(words) < 3:
            raise RequestError("A 2-D map needs at least three different words.", hint="Add more word pairs.")
        vectors = [self.word(w) for w in words]
        points, explained = pca_2d(np.stack([v.vector for v in vectors]))
        return {
            "points": [{**v.to_dict(), "x": float(x), "y": float(y)} for v, (x, y) in zip(vectors, points)],
            "arrows": arrows,
            "explained_variance": [float(e) for e in explained],
        }


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto their first two principal components; returns (points, explained variance ratio).

    Signs are fixed (each component's largest loading positive) so the same words always give
    the same picture.
    """
    x = np.asarray(vectors, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    for k in range(components.shape[0]):
        if components[k, np.argmax(np.abs(components[k]))] < 0:
            components[k] = -components[k]
    points = centred @ components.T
    if points.shape[1] < 2:  # fewer dimensions than two: pad so callers always get x and y
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    variance = s ** 2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return points, np.pad(explained, (0, 2 - len(explained)))
