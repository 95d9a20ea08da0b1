"""All-pairs test rows under constraints, and rows for the forbidden combinations.

    allpairs(params, valid) -> Pairwise

`params` maps each parameter to its values (None may stand for "option absent"); `valid(row)`
says whether a complete row is allowed (the conformance matrix passes the oracle). A pair is
*valid* when some valid row contains it, *forbidden* otherwise. The result covers every valid
pair by at least one valid row, and gives one row per forbidden pair (a valid row with the two
values put in), which is invalid by construction.

Construction: when the full product is small (the memory options: a few thousand rows) every
valid row is a candidate and a greedy set cover (AETG-like: repeatedly take the candidate that
covers most uncovered pairs, first one on ties, so the result is deterministic) picks the rows.
Larger products use a deterministic pseudo-random sample of candidates (valid pairs are then
those seen in the sample).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Callable, Hashable

Row = dict[str, Hashable]
Pair = tuple[tuple[str, Hashable], tuple[str, Hashable]]

EXHAUSTIVE_LIMIT = 200_000
SAMPLE = 20_000


@dataclass
class Pairwise:
    params: dict[str, list]
    rows: list[Row]                   # valid rows covering every valid pair
    forbidden_rows: list[Row]         # one invalid row per forbidden pair (deduplicated)
    valid_pairs: set[Pair] = field(default_factory=set)
    forbidden_pairs: set[Pair] = field(default_factory=set)

    def coverage(self, rows: list[Row] | None = None) -> dict:
        """Values and valid pairs that `rows` (default: self.rows) cover."""
        rows = self.rows if rows is None else rows
        vals = {(p, v) for p, vs in self.params.items() for v in vs}
        cov_vals = {(p, r[p]) for r in rows for p in self.params if (p, r.get(p)) in vals}
        cov_pairs = set().union(*(pairs_of(r, self.params) for r in rows)) if rows else set()
        cov_pairs &= self.valid_pairs
        return {"rows": len(rows),
                "values_covered": len(cov_vals), "values_total": len(vals),
                "pairs_covered": len(cov_pairs), "pairs_valid": len(self.valid_pairs),
                "pairs_total": len(self.valid_pairs) + len(self.forbidden_pairs),
                "pairs_forbidden": len(self.forbidden_pairs),
                "forbidden_rows": len(self.forbidden_rows)}


def pairs_of(row: Row, params: dict[str, list]) -> set[Pair]:
    """The pairs of a (possibly partial) row, over parameters in `params` order."""
    names = [p for p in params if p in row]
    return {((a, row[a]), (b, row[b])) for a, b in itertools.combinations(names, 2)}


def _candidates(params: dict[str, list], valid: Callable[[Row], bool], seed: int) -> list[Row]:
    names = list(params)
    total = 1
    for vs in params.values():
        total *= len(vs)
    if total <= EXHAUSTIVE_LIMIT:
        rows = (dict(zip(names, combo)) for combo in itertools.product(*params.values()))
    else:
        rng = random.Random(seed)
        rows = ({p: rng.choice(vs) for p, vs in params.items()} for _ in range(SAMPLE))
    return [r for r in rows if valid(r)]


def allpairs(params: dict[str, list], valid: Callable[[Row], bool], seed: int = 0) -> Pairwise:
    names = list(params)
    every: set[Pair] = set()
    for a, b in itertools.combinations(names, 2):
        every |= {((a, x), (b, y)) for x in params[a] for y in params[b]}
    cands = _candidates(params, valid, seed)
    cand_pairs = [pairs_of(r, params) for r in cands]
    valid_pairs: set[Pair] = set().union(*cand_pairs) if cands else set()
    uncovered = set(valid_pairs)
    rows: list[Row] = []
    while uncovered:
        best, best_n = -1, 0
        for i, ps in enumerate(cand_pairs):
            n = len(ps & uncovered)
            if n > best_n:
                best, best_n = i, n
        rows.append(cands[best])
        uncovered -= cand_pairs[best]
    forbidden = every - valid_pairs
    base = cands[0] if cands else {p: vs[0] for p, vs in params.items()}
    frows: list[Row] = []
    for (a, x), (b, y) in sorted(forbidden, key=lambda p: (names.index(p[0][0]),
                                                            names.index(p[1][0]), repr(p))):
        # Start from a valid row that already has one of the two values when there is one,
        # so that the row differs from a valid configuration in as little as possible.
        start = next((r for r in cands if r[a] == x or r[b] == y), base)
        row = {**start, a: x, b: y}
        if row not in frows:
            frows.append(row)
    return Pairwise(dict(params), rows, frows, valid_pairs, forbidden)
