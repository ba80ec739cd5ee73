"""How typed text is compared: answers, choice labels and keywords alike."""

from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    """NFKC folds full-width digits and letters (３５ → 35), common in Japanese input; then
    trimmed. `check` compares keywords the same way the engine compares what a friend types."""
    return unicodedata.normalize("NFKC", text).strip()
