"""Text a store column can hold as it is (store/, and the texts other layers hand it).

PostgreSQL's ``text`` cannot hold a NUL character, and neither backend can encode a lone
surrogate (``"\\ud800"``, which JSON can carry and UTF-8 cannot). Given such text, a call
failed as a database error: a 503 "The store failed" on PostgreSQL for what was a
caller's mistake, and a 500 on SQLite. Both backends now answer the same: a lookup by such
text finds nothing, and text written as it is (not as JSON) is checked before.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def storable(text: str) -> bool:
    """Whether ``text`` can be stored as it is, on every backend."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def all_storable(*texts: str | None) -> bool:
    """Whether every text given (None: a filter not set) can be stored as it is; a lookup
    by one that cannot finds nothing."""
    return all(storable(text) for text in texts if text is not None)


def storable_form(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD (for records that
    must be kept whatever a caller sent, such as the audit trail)."""
    if storable(text):
        return text
    return "".join(REPLACEMENT if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)
