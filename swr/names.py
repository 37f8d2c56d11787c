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
    reserved: frozenset[str] = frozenset()  # names that match the pattern but are taken by the service itself
    reserved_reason: str = ""

    @cached_property
    def _match(self):
        return re.compile(self.pattern).match

    def problem(self, value: object) -> str | None:
        """Say every part of the rule ``value`` breaks, in one text; None when it is valid."""
        problems = self.problems(value)
        return "; ".join(problems) if problems else None

    def problems(self, value: object) -> list[str]:
        """Each part of the rule that ``value`` breaks, in the order of spec section 2: length, first
        character, last character, characters not allowed (which, where), separators together (where).
        Empty when the value is valid."""
        if not isinstance(value, str):
            return [f"must be a string, got {type(value).__name__}"]
        if len(value) <= self.max_length and self._match(value):
            if value in self.reserved:
                return [f"{value!r} is reserved: {self.reserved_reason}"]
            return []  # valid: the pattern says so at once; the checks below say what is wrong
        if value == "":
            return ["must not be empty"]
        problems = []
        if len(value) > self.max_length:
            problems.append(f"is {len(value)} characters long; at most {self.max_length} are allowed")
        if len(value) > _DIAGNOSED_LENGTH:
            return problems  # far too long to be a typo: not worth reading character by character
        # A first or last character that is not allowed anywhere is reported with the characters below.
        if value[0] not in self.first_chars and self._allowed(value[0]):
            problems.append(f"must start with {self.first_description}, not {value[0]!r}")
        if len(value) > 1 and value[-1] in self.separators:
            problems.append(f"must end with a lower-case letter or digit, not {value[-1]!r}")
        upper, space, other = [], [], []
        for position, char in enumerate(value, start=1):
            if self._allowed(char):
                continue
            kind = upper if "A" <= char <= "Z" else space if char.isspace() else other
            kind.append(f"{char!r} at position {position}")
        if upper:
            problems.append(f"{_plural(upper, 'upper-case letter', 'upper-case letters')} (use lower case)")
        if space:
            problems.append(_plural(space, "white space", "white space", are="is"))
        if other:
            allowed = " ".join(repr(s) for s in self.separators)
            problems.append(
                f"{_plural(other, 'character', 'characters')} "
                f"(use lower-case letters, digits and the separators {allowed})"
            )
        together = [
            f"{match.group()!r} at position {match.start() + 1}"
            for match in re.finditer(f"[{re.escape(self.separators)}]{{2,}}", value)
            if match.group() != "__"
        ]
        if together:
            problems.append(f"separators {_listing(together)} may not stand together (only two underscores '__' may)")
        return problems or ["does not match the naming rule"]  # pragma: no cover - the checks above are complete

    def _allowed(self, char: str) -> bool:
        return "a" <= char <= "z" or "0" <= char <= "9" or char in self.separators

    def is_valid(self, value: object) -> bool:
        return self.problem(value) is None

    def validate(self, value: object) -> None:
        """Django validator: raise ValidationError with every problem found, in one message."""
        problem = self.problem(value)
        if problem is not None:
            raise ValidationError(f"Invalid {self.kind}: {problem}", code=self.code)

    __call__ = validate


# A name longer than this is only told its length: a body of 1 MiB would otherwise be read character by
# character, and every problem in it listed.
_DIAGNOSED_LENGTH = 1024

# At most this many places are listed for one kind of problem; the rest are counted.
_LISTED = 5


def _listing(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c' …; past _LISTED items, the rest as 'and N more'."""
    if len(items) > _LISTED:
        return f"{', '.join(items[:_LISTED])} and {len(items) - _LISTED} more"
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(items: list[str], one: str, many: str, *, are: str = "are") -> str:
    """'<one> <item> is not allowed' or '<many> <items> are not allowed'."""
    if len(items) == 1:
        return f"{one} {items[0]} is not allowed"
    return f"{many} {_listing(items)} {are} not allowed"


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
    # Spec section 2: the registry's paths of an organization 'manage' would be the management API's.
    reserved=frozenset({"manage"}),
    reserved_reason="its registry paths would collide with the management API under /v2/manage/",
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
