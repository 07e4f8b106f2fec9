# ruff: noqa: RUF001
# (Multilingual text is the point of these tests; letters that look like Latin ones are
# meant.)
"""Lexicon post-processing: what is replaced, and that everything else stays as it was."""

from __future__ import annotations

import re
import unicodedata

import pytest

from steno.common.lexicons import LexiconEntry, Replacement, fold
from steno.transcriber.rewriting import (
    _SCANNED,
    _UNSPACED,
    Rewrite,
    Rewriter,
    _tables,
    apply_lexicon,
    vocabulary,
)


def entry(phrase: str, *sounds_like: str) -> LexiconEntry:
    return LexiconEntry(phrase=phrase, sounds_like=sounds_like)


KUBERNETES = entry("Kubernetes", "cooper netties", "kuber netes")
RABBITMQ = entry("RabbitMQ", "rabbit mq", "rabbit")


def rewritten(text: str, *entries: LexiconEntry) -> str:
    return apply_lexicon(text, entries).text


def assert_offsets(text: str, result: Rewrite) -> None:
    """Each replacement points at its original in the input, and replaying them on the
    input gives the output."""
    rebuilt, done = [], 0
    for r in result.replacements:
        assert text[r.offset : r.offset + len(r.original)] == r.original
        rebuilt += [text[done : r.offset], r.replacement]
        done = r.offset + len(r.original)
    assert "".join([*rebuilt, text[done:]]) == result.text


# -- Identity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [entry("", "kubernetes"), entry("   ", "rabbit")],  # no display phrase to put in
    ],
)
def test_without_usable_entries_the_text_is_returned_as_is(entries: list[LexiconEntry]) -> None:
    text = "  some  text\twith kubernetes \n and rabbit  "
    assert apply_lexicon(text, entries) == Rewrite(text, ())


def test_blank_variants_are_ignored() -> None:
    text = "  kubernetes \t\n "
    result = apply_lexicon(text, [entry("Kubernetes", "", "  \t ")])
    assert result.text == "  Kubernetes \t\n "


def test_the_phrase_as_written_is_not_a_replacement() -> None:
    assert apply_lexicon("Kubernetes runs here", [KUBERNETES]) == Rewrite(
        "Kubernetes runs here", ()
    )


def test_a_phrase_spaced_differently_is_replaced() -> None:
    result = apply_lexicon("on Rabbit  MQ", [entry("Rabbit MQ")])
    assert result == Rewrite("on Rabbit MQ", (Replacement("Rabbit  MQ", "Rabbit MQ", 3),))


# -- Variants and case ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("we deploy on cooper netties", "we deploy on Kubernetes"),
        ("Cooper Netties and KUBER NETES", "Kubernetes and Kubernetes"),
        ("KUBERNETES, kubernetes, KuBeRnEtEs", "Kubernetes, Kubernetes, Kubernetes"),
    ],
)
def test_variants_and_the_phrase_in_any_case_become_the_phrase(text: str, expected: str) -> None:
    assert rewritten(text, KUBERNETES) == expected


def test_replacements_record_the_original_as_written() -> None:
    result = apply_lexicon("KUBERNETES on Cooper Netties", [KUBERNETES])
    assert result.replacements == (
        Replacement("KUBERNETES", "Kubernetes", 0),
        Replacement("Cooper Netties", "Kubernetes", 14),
    )


@pytest.mark.parametrize(
    ("lexicon", "text", "expected"),
    [
        # Greek capital, small and final sigma are one letter.
        (entry("Σωκράτης"), "ΣΩΚΡΆΤΗΣ και σωκράτησ", "Σωκράτης και Σωκράτης"),
        (entry("Москва"), "МОСКВА и москва", "Москва и Москва"),
        # The capital sharp s is the capital of ß, but "ss" is a spelling, not a case
        # (that "STRASSE" is a near miss is another rule, left out here).
        (entry("Straße"), "STRAẞE, STRASSE", "Straße, STRASSE"),
        # The Kelvin sign is a capital K.
        (entry("kubectl"), "\u212aUBECTL", "kubectl"),
    ],
)
def test_case_folding_is_unicode_aware(lexicon: LexiconEntry, text: str, expected: str) -> None:
    assert Rewriter([lexicon], near_misses=False).apply(text).text == expected


# -- Whole words ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lexicon", "text"),
    [
        (entry("SQL", "sequel"), "we use postgresql and mssql"),
        (entry("Cat", "cat"), "the catalog, a bobcat, cats, cat2, my_cat"),
        (entry("Kubernetes", "kubernetes"), "kubernetesy"),
        (entry("C++"), "c++11"),
        (entry(".NET"), "asp.net"),
    ],
)
def test_a_variant_inside_a_longer_word_is_not_replaced(lexicon: LexiconEntry, text: str) -> None:
    assert apply_lexicon(text, [lexicon]) == Rewrite(text, ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(rabbit mq), kubernetes.", "(RabbitMQ), Kubernetes."),
        ("«cooper netties»: kubernetes!", "«Kubernetes»: Kubernetes!"),
        ('"kubernetes"-based, kubernetes\'s', '"Kubernetes"-based, Kubernetes\'s'),
        ("rabbit/kubernetes", "RabbitMQ/Kubernetes"),
    ],
)
def test_punctuation_next_to_a_match_is_kept(text: str, expected: str) -> None:
    assert rewritten(text, KUBERNETES, RABBITMQ) == expected


@pytest.mark.parametrize("gap", ["  ", "\n", "\t ", "\u00a0", " \r\n  "])
def test_words_of_a_variant_match_across_any_whitespace(gap: str) -> None:
    text = f"on cooper{gap}netties today"
    assert apply_lexicon(text, [KUBERNETES]) == Rewrite(
        "on Kubernetes today", (Replacement(f"cooper{gap}netties", "Kubernetes", 3),)
    )


def test_hyphens_are_matched_as_written() -> None:
    exact = Rewriter([KUBERNETES, entry("RabbitMQ", "rabbit-mq")], near_misses=False)
    assert exact.apply("cooper-netties").text == "cooper-netties"
    assert exact.apply("rabbit-mq, rabbit mq").text == "RabbitMQ, rabbit mq"
    # The one exception: the same letters, spaced or hyphenated otherwise, are a near miss.
    assert rewritten("cooper-netties", KUBERNETES) == "Kubernetes"


# -- Overlaps ---------------------------------------------------------------------------


def test_the_longest_variant_wins_whatever_the_order() -> None:
    lexicon = [entry("Rabbit", "rabbit"), entry("RabbitMQ", "rabbit mq")]
    result = apply_lexicon("rabbit mq and rabbit", lexicon)
    assert result.text == "RabbitMQ and Rabbit"
    assert [r.original for r in result.replacements] == ["rabbit mq", "rabbit"]


def test_a_shorter_variant_matches_where_the_longer_one_stops_short() -> None:
    # "rabbit mq" is followed by a letter, so only "rabbit" is a whole-word match.
    assert rewritten("rabbit mqx", RABBITMQ) == "RabbitMQ mqx"


def test_text_inside_a_match_is_not_matched_again() -> None:
    lexicon = [entry("New York", "new york"), entry("York City", "york city")]
    assert rewritten("new york city", *lexicon) == "New York city"
    assert rewritten("york city", *lexicon) == "York City"


def test_the_first_entry_claiming_a_variant_wins() -> None:
    lexicon = [entry("Kubernetes", "k8s"), entry("K8s", "kates")]
    # "K8s", the second entry's own phrase, is the first entry's variant.
    assert rewritten("K8s and kates", *lexicon) == "Kubernetes and K8s"


# -- Offsets ----------------------------------------------------------------------------


def test_offsets_point_into_the_input_after_replacements_changed_lengths() -> None:
    text = "rabbit mq, then  cooper\nnetties; kuber netes and rabbit, КУБЕР on kubernetes"
    result = apply_lexicon(text, [KUBERNETES, RABBITMQ, entry("Кубер")])
    assert [(r.original, r.offset) for r in result.replacements] == [
        ("rabbit mq", 0),
        ("cooper\nnetties", 17),
        ("kuber netes", 33),
        ("rabbit", 49),
        ("КУБЕР", 57),
        ("kubernetes", 66),
    ]
    assert_offsets(text, result)


def test_offsets_count_code_points_not_bytes_or_utf16_units() -> None:
    # Emoji are outside the BMP (two UTF-16 units, four UTF-8 bytes); é is two bytes.
    text = "🚀🚀 é cooper netties 👍"
    result = apply_lexicon(text, [KUBERNETES])
    assert result.replacements == (Replacement("cooper netties", "Kubernetes", 5),)
    assert result.text == "🚀🚀 é Kubernetes 👍"
    assert_offsets(text, result)


# -- Literal variants -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "found_in", "not_found_in"),
    [
        ("c++", "I like c++.", "I like cpp and c+"),
        ("node.js", "on node.js today", "on nodexjs today"),
        ("a.b", "see a.b", "see axb"),
        ("(x)", "f (x) here", "f x here"),
        ("[y]", "see [y]", "see y"),
        ("a|b", "a|b", "a"),
        ("x*", "x* y", "xxx y"),
        ("$5", "pay $5 now", "pay 5 now"),
        ("back\\slash", "a back\\slash", "a backslash"),
        ("c#", "c# code", "c code"),
    ],
)
def test_regex_metacharacters_are_literal(variant: str, found_in: str, not_found_in: str) -> None:
    lexicon = entry("<X>", variant)
    assert rewritten(found_in, lexicon) == found_in.replace(variant, "<X>")
    assert rewritten(not_found_in, lexicon) == not_found_in


# -- Scripts ----------------------------------------------------------------------------


def test_cyrillic() -> None:
    lexicon = [entry("Kubernetes", "кубернетис"), entry("Яндекс")]
    text = "Мы запускаем Кубернетис в ЯНДЕКС-облаке, а не кубернетисы.\n"
    assert rewritten(text, *lexicon) == (
        "Мы запускаем Kubernetes в Яндекс-облаке, а не кубернетисы.\n"
    )


def test_greek() -> None:
    lexicon = [entry("Kubernetes", "κουμπερνέτης")]
    text = "Τρέχουμε ΚΟΥΜΠΕΡΝΈΤΗΣ· όχι «κουμπερνέτηςς» — μόνο κουμπερνέτης;"
    assert rewritten(text, *lexicon) == (
        "Τρέχουμε Kubernetes· όχι «κουμπερνέτηςς» — μόνο Kubernetes;"
    )


def test_devanagari() -> None:
    lexicon = [entry("Kubernetes", "कुबेरनेटीस")]
    text = "हम कुबेरनेटीस चलाते हैं। कुबेरनेटीसों"
    assert rewritten(text, *lexicon) == "हम Kubernetes चलाते हैं। कुबेरनेटीसों"


def test_devanagari_words_are_not_split_at_vowel_signs_or_viramas() -> None:
    # Python's \w does not cover combining marks: a plain \b would split "नमस्ते" after
    # "नमस", before the virama.
    assert re.match(r"\w", "\u094d") is None
    assert re.match(r"\w", "\u093f") is None
    text = "नमस्ते दुनिया, किताब"
    # Before a virama, before a vowel sign, after a virama.
    for variant in ("नमस", "नमस्त", "ते", "कि", "दुनि"):
        assert apply_lexicon(text, [entry("X", variant)]) == Rewrite(text, ())
    # A variant that ends with a vowel sign is a whole word before the danda.
    assert rewritten("वे हैं।", entry("HAIN", "हैं")) == "वे HAIN।"


def test_chinese_and_japanese_match_without_spaces() -> None:
    lexicon = [entry("Kubernetes", "库伯内特斯", "クバネティス")]
    text = "我们用库伯内特斯部署，也用kubernetes。クバネティスを使う「KUBERNETES」"
    assert rewritten(text, *lexicon) == (
        "我们用Kubernetes部署，也用Kubernetes。Kubernetesを使う「Kubernetes」"
    )


def test_thai_matches_without_spaces_but_never_before_a_mark() -> None:
    lexicon = [entry("Kubernetes", "คูเบอร์เนทีส")]
    assert rewritten("เราใช้คูเบอร์เนทีสทุกวัน", *lexicon) == "เราใช้Kubernetesทุกวัน"
    # ก followed by the vowel sign ี is the syllable กี, not ก.
    assert rewritten("กีฬา", entry("X", "ก")) == "กีฬา"


def test_korean_particles_are_part_of_the_word() -> None:
    lexicon = [entry("Kubernetes", "쿠버네티스")]
    assert (
        rewritten("쿠버네티스 좋아요, 쿠버네티스를", *lexicon) == "Kubernetes 좋아요, 쿠버네티스를"
    )


# -- Nothing outside a match changes ---------------------------------------------------


def test_decomposed_text_is_not_normalised() -> None:
    # NFD throughout: "un café, une crème brûlée" with combining accents.
    text = "un cafe\u0301, une cre\u0300me bru\u0302le\u0301e, cafe\u0301s"
    result = apply_lexicon(text, [entry("Café"), entry("CAFE", "cafe")])
    # The NFC phrase "Café" finds the decomposed "café"; "cafe" does not, as the accent
    # that follows belongs to its last letter.
    assert result.text == "un Café, une cre\u0300me bru\u0302le\u0301e, cafe\u0301s"
    assert result.replacements == (Replacement("cafe\u0301", "Café", 3),)


def test_composed_variants_find_decomposed_text_and_back() -> None:
    assert rewritten("cre\u0300me", entry("Crème")) == "Crème"
    assert rewritten("crème", entry("Cre\u0300me")) == "Cre\u0300me"


def test_compatibility_characters_are_not_normalised() -> None:
    # Full-width letters, ligatures, circled digits: NFKC would change all of them.
    text = "ｋｕｂｅｒｎｅｔｅｓ ﬁle ① ㍻ kubernetes"
    assert rewritten(text, KUBERNETES, entry("File")) == "ｋｕｂｅｒｎｅｔｅｓ ﬁle ① ㍻ Kubernetes"


def test_everything_outside_matches_is_kept_exactly() -> None:
    text = (
        "\ufeff  Привет,\u00a0мир!\r\n\tΓειά σου κόσμε  —  नमस्ते दुनिया\u200d\n"
        "你好，世界！ cooper netties\u3000こんにちは  \u2028 e\u0301\u0301 \U0001f600  "
    )
    result = apply_lexicon(text, [KUBERNETES])
    assert result.text == text.replace("cooper netties", "Kubernetes")
    assert_offsets(text, result)


# -- Reuse and vocabulary ---------------------------------------------------------------


def test_a_rewriter_is_built_once_and_applied_to_many_texts() -> None:
    rewriter = Rewriter([KUBERNETES, RABBITMQ])
    texts = ["cooper netties", "rabbit mq", "nothing here", ""]
    assert [rewriter.apply(t) for t in texts] == [
        apply_lexicon(t, [KUBERNETES, RABBITMQ]) for t in texts
    ]
    assert rewriter.apply("") == Rewrite("", ())


def test_vocabulary_is_the_display_phrases_once_in_order() -> None:
    lexicon = [KUBERNETES, RABBITMQ, entry("Kubernetes", "k8s"), entry("  "), entry("Кубер")]
    assert vocabulary(lexicon) == ["Kubernetes", "RabbitMQ", "Кубер"]
    assert vocabulary([]) == []


# -- The Unicode tables ---------------------------------------------------------------


def test_the_scanned_planes_hold_every_mark_and_every_cased_character() -> None:
    scanned = {code for plane in _SCANNED for code in plane}
    missed = [
        hex(code)
        for code in range(0x110000)
        if code not in scanned
        and (unicodedata.category(chr(code)).startswith("M") or fold(chr(code)) != chr(code))
    ]
    assert missed == []
    assert len(_tables().folds) > 1000


def test_folding_keeps_what_the_word_boundaries_look_at() -> None:
    """Boundaries are checked on the folded text, so folding must not turn a word
    character into a non-word one, a mark into a letter, or move a character between
    scripts written with and without spaces."""

    def kind(char: str) -> tuple[bool, bool, bool, bool]:
        code = ord(char)
        return (
            re.match(r"\w", char) is not None,
            unicodedata.category(char).startswith("M"),
            any(low <= code <= high for low, high in _UNSPACED),
            char.isspace(),
        )

    changed = [chr(code) for code in _tables().folds]
    assert [c for c in changed if kind(c) != kind(fold(c)) or len(fold(c)) != 1] == []
