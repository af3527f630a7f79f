"""Checks a generated caption must pass, each returning a reason code when it fails.

* ``empty``: nothing but whitespace or punctuation;
* ``too_long``: more than `max_words` words (the challenge's prompts are under 100);
* ``instruction_like``: reads as a request ("Generate a ...", "Please create ...") rather than
  a description, which is what text-to-music prompts look like;
* ``repetitive``: a word or bigram repeated over and over (a degenerate decode);
* ``not_english``: too few ASCII letters among the letters (the prompts are English);
* ``garbled``: control characters, Unicode replacement characters (a decode of broken bytes)
  or mostly symbols — what a degenerate model or a wrong tokenizer produces.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

INSTRUCTION = re.compile(
    r"^\s*(please\s+)?(generate|create|compose|write|make|produce|give me|i want|can you|could you|imagine)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def caption_problems(text: str | None, max_words: int = 100, min_words: int = 3) -> list[str]:
    """Reason codes for every check `text` fails (empty list: it passes)."""
    if text is None or not WORD.search(text):
        return ["empty"]
    problems = []
    words = WORD.findall(text)
    if len(words) > max_words:
        problems.append("too_long")
    if len(words) < min_words:
        problems.append("too_short")
    if INSTRUCTION.match(text):
        problems.append("instruction_like")
    lowered = [w.lower() for w in words]
    if len(lowered) >= 6:
        top_word = Counter(lowered).most_common(1)[0][1]
        bigrams = Counter(zip(lowered, lowered[1:]))
        top_bigram = bigrams.most_common(1)[0][1] if bigrams else 0
        if top_word > max(4, 0.3 * len(lowered)) or top_bigram > max(3, 0.2 * len(lowered)):
            problems.append("repetitive")
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isascii() for c in letters) / len(letters) < 0.9:
        problems.append("not_english")
    controls = any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text)
    prose = sum(c.isalnum() or c.isspace() or c in ".,;:!?'\"()-/&%" for c in text) / len(text)
    if controls or "\ufffd" in text or prose < 0.9:
        problems.append("garbled")
    return problems


def clean(text: str) -> str:
    """Strip chat artefacts: surrounding quotes, a leading 'Caption:' label, extra whitespace."""
    text = text.strip().strip('"“”').strip()
    text = re.sub(r"^(caption|description)\s*:\s*", "", text, flags=re.IGNORECASE)
    return " ".join(text.split())
