"""The API's only parser: DRF's JSON parser, bounded.

DRF's own reads the whole body whatever its size (Django's
DATA_UPLOAD_MAX_MEMORY_SIZE guards `request.body` and forms, not the stream DRF
reads); hands nesting to Python's json module, whose RecursionError on a body
such as `[[[[…` is not the ValueError DRF turns into a 400 (it was a 500); and
lets through `"\ud800"`, a lone surrogate: not Unicode text, so the database and
the response encoder (an error message quoting it) fail on it (a 500 too).

Here a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, and one nested deeper than
MAX_DEPTH or holding a lone surrogate a 400, each with a reason. Every API body is
a small object (a manifest is three levels deep), so no limit is near anything real.
"""

from __future__ import annotations

import re

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.utils import json

MAX_DEPTH = 32


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


_SURROGATE = re.compile("[\ud800-\udfff]")


def problem_with(value) -> str | None:
    """What is wrong with parsed JSON that json.loads accepts: too deep, or a lone
    surrogate in a string or a key. Iterative, so any depth is safe to ask about."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text."
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:  # UnicodeDecodeError is one too
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.") from None
        problem = problem_with(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
