"""Whisper's language names, and the language codes Steno reports for them.

The OpenAI transcription API answers ``verbose_json`` with the language's English *name*
("english"), as Whisper's tokenizer spells it; a job reports a BCP-47 code ("en"). The names
below are Whisper's ``LANGUAGES`` table, with the aliases its ``TO_LANGUAGE_CODE`` also accepts.
"""

from __future__ import annotations

# Whisper's codes are ISO 639-1 where one exists; Javanese is the exception (Whisper says "jw",
# ISO and BCP-47 say "jv"), and Hawaiian and Cantonese only have three-letter codes.
WHISPER_LANGUAGES: dict[str, str] = {
    "english": "en",
    "chinese": "zh",
    "german": "de",
    "spanish": "es",
    "russian": "ru",
    "korean": "ko",
    "french": "fr",
    "japanese": "ja",
    "portuguese": "pt",
    "turkish": "tr",
    "polish": "pl",
    "catalan": "ca",
    "dutch": "nl",
    "arabic": "ar",
    "swedish": "sv",
    "italian": "it",
    "indonesian": "id",
    "hindi": "hi",
    "finnish": "fi",
    "vietnamese": "vi",
    "hebrew": "he",
    "ukrainian": "uk",
    "greek": "el",
    "malay": "ms",
    "czech": "cs",
    "romanian": "ro",
    "danish": "da",
    "hungarian": "hu",
    "tamil": "ta",
    "norwegian": "no",
    "thai": "th",
    "urdu": "ur",
    "croatian": "hr",
    "bulgarian": "bg",
    "lithuanian": "lt",
    "latin": "la",
    "maori": "mi",
    "malayalam": "ml",
    "welsh": "cy",
    "slovak": "sk",
    "telugu": "te",
    "persian": "fa",
    "latvian": "lv",
    "bengali": "bn",
    "serbian": "sr",
    "azerbaijani": "az",
    "slovenian": "sl",
    "kannada": "kn",
    "estonian": "et",
    "macedonian": "mk",
    "breton": "br",
    "basque": "eu",
    "icelandic": "is",
    "armenian": "hy",
    "nepali": "ne",
    "mongolian": "mn",
    "bosnian": "bs",
    "kazakh": "kk",
    "albanian": "sq",
    "swahili": "sw",
    "galician": "gl",
    "marathi": "mr",
    "punjabi": "pa",
    "sinhala": "si",
    "khmer": "km",
    "shona": "sn",
    "yoruba": "yo",
    "somali": "so",
    "afrikaans": "af",
    "occitan": "oc",
    "georgian": "ka",
    "belarusian": "be",
    "tajik": "tg",
    "sindhi": "sd",
    "gujarati": "gu",
    "amharic": "am",
    "yiddish": "yi",
    "lao": "lo",
    "uzbek": "uz",
    "faroese": "fo",
    "haitian creole": "ht",
    "pashto": "ps",
    "turkmen": "tk",
    "nynorsk": "nn",
    "maltese": "mt",
    "sanskrit": "sa",
    "luxembourgish": "lb",
    "myanmar": "my",
    "tibetan": "bo",
    "tagalog": "tl",
    "malagasy": "mg",
    "assamese": "as",
    "tatar": "tt",
    "hawaiian": "haw",
    "lingala": "ln",
    "hausa": "ha",
    "bashkir": "ba",
    "javanese": "jv",
    "sundanese": "su",
    "cantonese": "yue",
    # Aliases.
    "burmese": "my",
    "valencian": "ca",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "pushto": "ps",
    "panjabi": "pa",
    "moldavian": "ro",
    "moldovan": "ro",
    "sinhalese": "si",
    "castilian": "es",
    "mandarin": "zh",
}

_CODES = frozenset(WHISPER_LANGUAGES.values())
_WHISPER_CODES = {"jw": "jv"}


def language_code(reported: str | None) -> str | None:
    """The code for a language as a transcription server reported it, or None if unknown.

    OpenAI reports a name; OpenAI-compatible servers often report the code itself, which is
    kept (normalised to lower case, and to ISO where Whisper differs).
    """
    if not reported:
        return None
    value = reported.strip().lower().replace("_", " ")
    if value in WHISPER_LANGUAGES:
        return WHISPER_LANGUAGES[value]
    primary = value.split("-")[0]
    primary = _WHISPER_CODES.get(primary, primary)
    return primary if primary in _CODES else None
