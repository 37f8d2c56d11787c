"""Content digests (OCI image-spec, descriptor.md "Digests"): ``<algorithm>:<encoded>``.

Registered algorithms accepted here: sha256 (64 lower-case hex digits) and sha512
(128). The database holds the same rule as a CHECK constraint (swr/models.py
``DIGEST_PATTERN``); a digest of any other form is refused (DIGEST_INVALID).
"""

import hashlib
import re

from swr.distribution.errors import DigestInvalid, Unsupported

ALGORITHMS = {"sha256": 64, "sha512": 128}
# The database's rule (CHECK constraints) and the URL's: the whole digest, in its canonical form.
# \A and \Z, not ^ and $: "$" also matches before a final newline (as swr/names.py does).
PATTERN = r"\A(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z"
MAX_LENGTH = len("sha512:") + 128
# What a digest looks like in general (OCI image-spec grammar), to tell "malformed" from "unsupported algorithm".
_GRAMMAR = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_VALID = re.compile(PATTERN)


def parse(digest: str) -> str:
    """``digest`` if it is a valid sha256 or sha512 digest; DIGEST_INVALID (400) otherwise."""
    if _VALID.match(digest):
        return digest
    if _GRAMMAR.fullmatch(digest):
        algorithm = digest.split(":", 1)[0]
        if algorithm not in ALGORITHMS:
            raise Unsupported(
                f"Digest algorithm {algorithm!r} is not supported: use sha256 or sha512.", status_code=400
            )
    raise DigestInvalid(
        f"Invalid digest {digest[:200]!r}: expected sha256:<64 hex digits> or sha512:<128 hex digits>, lower case."
    )


def is_valid(digest: str) -> bool:
    return bool(_VALID.match(digest))


def algorithm(digest: str) -> str:
    return digest.split(":", 1)[0]


def hasher(algorithm_name: str):
    """A new hash object of a registered algorithm."""
    return hashlib.new(algorithm_name)


def of(data: bytes, algorithm_name: str = "sha256") -> str:
    """The digest of ``data``."""
    return f"{algorithm_name}:{hashlib.new(algorithm_name, data).hexdigest()}"
