"""Smooth weighted round robin (the nginx scheme) for algorithms 9 and 11.

Kamailio fills a 100-slot table per set, which skews with many targets or few calls
(kamailio/kamailio#2698, #3531, #4158). Here every pick adds each candidate's weight to its
running score, takes the highest score and lowers it by the total: over any window of
``sum(weights)`` picks each target gets exactly its share, spread out rather than in runs.
"""
from __future__ import annotations

from collections.abc import Sequence


class SmoothWeighted:
    __slots__ = ("_scores", "_candidates")

    def __init__(self) -> None:
        self._scores: dict[int, int] = {}
        self._candidates: tuple[int, ...] = ()

    def pick(self, candidates: Sequence[tuple[int, int]]) -> int | None:
        """Choose among ``(index, weight)`` pairs with weight > 0; None when there are none.

        When the candidate set changes (a target went down or came back) the scores restart,
        so a returning target does not get a burst of picks for the time it was away.
        """
        members = tuple(index for index, weight in candidates if weight > 0)
        if not members:
            return None
        if members != self._candidates:
            self._candidates = members
            self._scores = dict.fromkeys(members, 0)
        scores = self._scores
        total = 0
        best = -1
        best_score = 0
        for index, weight in candidates:
            if weight <= 0:
                continue
            score = scores[index] + weight
            scores[index] = score
            total += weight
            if best < 0 or score > best_score:
                best, best_score = index, score
        scores[best] -= total
        return best
