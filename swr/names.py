"""The naming grammar of namespaces (organizations) and image repositories.

This module is the only copy of the rules of spec section 2. The model
fields validate with :meth:`NameRule.validate`, the database CHECK constraints
are built from :attr:`NameRule.pattern` and :attr:`NameRule.max_length`, and
the API reports the messages produced here.
"""

import re
from dataclasses import dataclass
from functools import cached_property

from django.core.exceptions import ValidationError

# \A and \Z anchor at the very start and end of the string in Python's re and
# in PostgreSQL's regular expressions alike ($ would accept a trailing newline
# in Python).
NAMESPACE_PATTERN = r"\A[a-z][a-z0-9]*(?:(?:[.-]|__?)[a-z0-9]+)*\Z"
REPOSITORY_PATTERN = r"\A[a-z0-9]+(?:(?:[./-]|__?)[a-z0-9]+)*\Z"
NAMESPACE_MAX_LENGTH = 64
REPOSITORY_MAX_LENGTH = 128


@dataclass(frozen=True)
class NameRule:
    """One naming rule: its pattern, its limits, and messages that say what is wrong."""

    kind: str  # how messages name the thing: "organization name", "image name"
    code: str  # ValidationError code, mapped to an SWR error code by the API
    pattern: str
    max_length: int
    separators: str
    first_chars: str
    first_description: str

    @cached_property
    def _match(self):
        return re.compile(self.pattern).match

    def problem(self, value: object) -> str | None:
        """Say which part of the rule ``value`` breaks, or None when it is valid."""
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if len(value) <= self.max_length and self._match(value):
            return None  # valid: the pattern says so at once; the checks below say what is wrong
        if value == "":
            return "must not be empty"
        if len(value) > self.max_length:
            return f"is {len(value)} characters long; at most {self.max_length} are allowed"
        for position, char in enumerate(value, start=1):
            if "a" <= char <= "z" or "0" <= char <= "9" or char in self.separators:
                continue
            if "A" <= char <= "Z":
                return f"upper-case letter {char!r} at position {position} is not allowed; use lower case"
            if char.isspace():
                return f"white space ({char!r}) at position {position} is not allowed"
            allowed = " ".join(repr(s) for s in self.separators)
            return (
                f"character {char!r} at position {position} is not allowed; "
                f"use lower-case letters, digits and the separators {allowed}"
            )
        if value[0] not in self.first_chars:
            return f"must start with {self.first_description}, not {value[0]!r}"
        if value[-1] in self.separators:
            return f"must end with a lower-case letter or digit, not {value[-1]!r}"
        for match in re.finditer(f"[{re.escape(self.separators)}]{{2,}}", value):
            if match.group() != "__":
                return (
                    f"separators {match.group()!r} at position {match.start() + 1} may not stand "
                    "together (only two underscores '__' may)"
                )
        return "does not match the naming rule"  # pragma: no cover - the checks above are complete

    def is_valid(self, value: object) -> bool:
        return self.problem(value) is None

    def validate(self, value: object) -> None:
        """Django validator: raise ValidationError with the first problem found."""
        problem = self.problem(value)
        if problem is not None:
            raise ValidationError(f"Invalid {self.kind}: {problem}", code=self.code)

    __call__ = validate


_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"

NAMESPACE = NameRule(
    kind="organization name",
    code="invalid_namespace_name",
    pattern=NAMESPACE_PATTERN,
    max_length=NAMESPACE_MAX_LENGTH,
    separators="._-",
    first_chars=_LOWER,
    first_description="a lower-case letter",
)

REPOSITORY = NameRule(
    kind="image name",
    code="invalid_repository_name",
    pattern=REPOSITORY_PATTERN,
    max_length=REPOSITORY_MAX_LENGTH,
    separators="./_-",
    first_chars=_LOWER + _DIGITS,
    first_description="a lower-case letter or digit",
)

validate_namespace_name = NAMESPACE.validate
validate_repository_name = REPOSITORY.validate
