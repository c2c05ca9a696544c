"""Object keys, taken literally.

A key is never URL-decoded a second time, never normalised: what the grant's
prefix covers is decided on the exact bytes the caller sent. Anything that could
be read two ways (dot segments, empty segments, backslashes, control characters)
is refused rather than interpreted.
"""

from __future__ import annotations

from .errors import BadRequest, Forbidden

MAX_KEY_BYTES = 1024


def _refuse(what: str, reason: str) -> BadRequest:
    return BadRequest(f"{what} refused: {reason}", code="bad_key")


def check_path(text: object, what: str = "key", *, trailing_slash: bool = False) -> str:
    """Validate the shape of a key (or, with trailing_slash, a prefix)."""
    if not isinstance(text, str) or not text:
        raise _refuse(what, "must be a non-empty string")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _refuse(what, "not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise _refuse(what, f"over {MAX_KEY_BYTES} bytes")
    if text.startswith("/"):
        raise _refuse(what, "leading '/'")
    if "\\" in text:
        raise _refuse(what, "backslash")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text):
        raise _refuse(what, "control character")
    segments = text.split("/")
    if trailing_slash:
        if segments[-1] != "":
            raise _refuse(what, "a prefix ends with '/'")
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _refuse(what, "empty, '.' or '..' segment")
    return text


def check_in_scope(text: str, prefix: str, what: str = "key") -> None:
    """The grant's prefix covers the key: a plain byte-wise prefix test (the prefix
    itself ends with '/', so 'tickets/4/' never covers 'tickets/42/')."""
    if not text.startswith(prefix):
        raise Forbidden(f"{what} is outside the grant's prefix", code="out_of_scope")
