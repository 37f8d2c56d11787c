"""Request body parsers: DRF's JSON parser with a limit on nesting (spec section 1).

Python's JSON decoder recurses once per level: a body nested a few thousand
levels deep raises RecursionError, which DRF does not turn into a parse error.
Bodies nested deeper than :data:`MAX_DEPTH` levels are refused with a 400.
Form bodies are flat by construction and need no such limit.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deepest nesting of arrays and objects accepted in a JSON body; the deepest body of the API has 6 levels.
MAX_DEPTH = 32

TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels."


def depth_exceeds(value, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests arrays and objects more than ``limit`` levels deep.

    Walks with a stack of its own, not by recursion; a scalar has depth 0, ``[]`` and ``{}`` depth 1.
    """
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    """``application/json``: DRF's parser; 400 for a body nested more than MAX_DEPTH levels."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Deeper than the interpreter's stack allows: far beyond MAX_DEPTH.
            raise ParseError(TOO_DEEP) from None
        if depth_exceeds(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data


LOOKS_LIKE_JSON = (
    "The body looks like JSON, but its Content-Type is application/x-www-form-urlencoded (what curl -d sends "
    "unless told otherwise): send it with the header 'Content-Type: application/json'."
)


class FormParser(parsers.FormParser):
    """``application/x-www-form-urlencoded``: DRF's parser; a JSON body sent under this type is a 400 that says so.

    ``curl -d '{"namespace": "x"}'`` without a Content-Type header sends JSON as a form, whose one field is
    then named after the whole text: without this check the answer would be "namespace is required".
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        first = next(iter(data), "")
        if first.lstrip().startswith(("{", "[")):
            raise ParseError(LOOKS_LIKE_JSON)
        return data
