"""Lexicon post-processing time against lexicon size: does a big lexicon stay cheap?

Run with ``make bench`` (or ``python -m bench.lexicon_rewrite``). Rewrites a transcript the
length of an hour of speech (about 60,000 characters, with a variant every few sentences)
with lexicons of growing size, and reports the best of several runs for building the
matcher and for applying it, as a ratio to the smallest (baseline) lexicon. A matcher that
tried every variant at every position would take longer to apply with every entry; apply
ratios near 1 while the lexicon grows 500x mean it does not. Building grows with the
lexicon, once per job, off the event loop.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable

from steno.common.lexicons import LexiconEntry
from steno.transcriber.rewriting import Rewriter

SIZES = (10, 500, 5000)
RUNS = 5
WORDS = ("the", "team", "deployed", "a", "new", "release", "to", "cluster", "after", "lunch")


def lexicon(size: int, rng: random.Random) -> list[LexiconEntry]:
    """``size`` entries with two made-up variants each, like a large team glossary."""

    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))

    return [LexiconEntry(f"Term{i}", (f"{word()} {word()}", word())) for i in range(size)]


def transcript(entries: list[LexiconEntry], rng: random.Random, chars: int = 60_000) -> str:
    parts: list[str] = []
    length = 0
    while length < chars:
        sentence = rng.choices(WORDS, k=12)
        sentence.insert(rng.randrange(12), rng.choice(rng.choice(entries).sounds_like))
        parts.append(" ".join(sentence).capitalize() + ".")
        length += len(parts[-1]) + 1
    return " ".join(parts)


def best(action: Callable[[], object]) -> float:
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    rng = random.Random(7)
    rows = []
    for size in SIZES:
        entries = lexicon(size, rng)
        text = transcript(entries, rng)
        rewriter = Rewriter(entries)
        build = best(functools.partial(Rewriter, entries))
        apply = best(functools.partial(rewriter.apply, text))
        rows.append((size, build, apply, len(rewriter.apply(text).replacements), len(text)))
    _, build_base, apply_base, _, _ = rows[0]
    print("entries  build ms  ratio  apply ms  ratio  replaced / chars")
    for size, build, apply, replaced, chars in rows:
        print(
            f"{size:>7} {build * 1e3:>9.1f} {build / build_base:>5.1f}x "
            f"{apply * 1e3:>9.1f} {apply / apply_base:>5.1f}x  {replaced} / {chars}"
        )


if __name__ == "__main__":
    main()
