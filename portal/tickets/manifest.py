"""The rules for a ticket's file manifest, in one place: the API serializers and
the docs both take them from here."""

import re

MiB = 1024 * 1024
MAX_FILES = 100
MAX_FILE_SIZE = 100 * MiB
# \A...\Z, not ^...$: `$` also matches before a trailing newline.
FILE_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")
SHA256_RE = re.compile(r"\A[0-9a-fA-F]{64}\Z")
CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "application/json",
    "text/plain",
    "text/csv",
    "application/octet-stream",
)

