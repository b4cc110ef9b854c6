# Types of the compiled extension built from _native.c (see setup.py).
from typing import Any

class NgramScorer:
    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: Any,
        coef: Any,
        min_n: int,
        max_n: int,
        sublinear: bool,
        char_wb: bool,
    ) -> None: ...
    def add_scores(self, units: list[str], scores: Any) -> int: ...
    def lookup(self, ngram: str) -> int | None: ...

def mean_rows(table: Any, ids: list[int], out: Any) -> None: ...
def softmax_top(scores: Any, temperature: float, k: int) -> list[tuple[int, float]]: ...
def embedding_scores(
    table: Any, ids: list[int], weight: float, coef: Any, dense: Any, scores: Any
) -> None: ...
