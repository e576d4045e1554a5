"""Win rate of a tuned model against its base from reward-model scores (stdlib only).

Shared by the Compare engine (its summary) and the Tune room (which recounts it from the replies
it has stored, so a stopped comparison still shows what it got through).
"""
from __future__ import annotations

from typing import Iterable


def reward_win_rate(scores: Iterable[tuple[float, float]], tie_margin: float = 1e-6) -> dict:
    """``scores`` holds ``(base_score, tuned_score)`` per prompt.

    Returns ``{"pairs", "wins", "losses", "ties", "win_rate", "mean_base", "mean_tuned"}``: a win is a
    prompt where the tuned reply scored higher; ``win_rate`` counts a tie as half a win (None without pairs).
    """
    pairs = [(float(b), float(t)) for b, t in scores]
    wins = sum(1 for b, t in pairs if t - b > tie_margin)
    losses = sum(1 for b, t in pairs if b - t > tie_margin)
    ties = len(pairs) - wins - losses
    n = len(pairs)
    return {
        "pairs": n, "wins": wins, "losses": losses, "ties": ties,
        "win_rate": (wins + 0.5 * ties) / n if n else None,
        "mean_base": sum(b for b, _ in pairs) / n if n else None,
        "mean_tuned": sum(t for _, t in pairs) / n if n else None,
    }
