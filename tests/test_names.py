"""The naming rules of spec section 2, case by case, and the messages that explain a refusal."""

import itertools
import re

import pytest
from django.core.exceptions import ValidationError

from swr import names

from .helpers import assert_swr_error

# (name, expected problem fragment or None when valid)
REPOSITORY_CASES = [
    ("a", None),
    ("0", None),
    ("busybox", None),
    ("9lives", None),
    ("nginx/web", None),
    ("a/b/c/d", None),
    ("a.b", None),
    ("a-b", None),
    ("a_b", None),
    ("a__b", None),
    ("a.b-c_d__e/f", None),
    ("x" * 128, None),
    ("a/" * 63 + "ab", None),  # 128 characters
    ("", "must not be empty"),
    ("x" * 129, "is 129 characters long; at most 128"),
    ("a___b", "separators '___' at position 2"),
    ("a..b", "separators '..' at position 2"),
    ("a--b", "separators '--'"),
    ("a//b", "separators '//'"),
    ("a./b", "separators './'"),
    ("a-.b", "separators '-.'"),
    ("a_-b", "separators '_-'"),
    ("a/_b", "separators '/_'"),
    ("a__-b", "separators '__-'"),
    ("-a", "must start with a lower-case letter or digit, not '-'"),
    (".a", "must start with a lower-case letter or digit, not '.'"),
    ("_a", "must start with a lower-case letter or digit, not '_'"),
    ("/a", "must start with a lower-case letter or digit, not '/'"),
    ("__a", "must start with"),
    ("a-", "must end with a lower-case letter or digit, not '-'"),
    ("a.", "must end with a lower-case letter or digit, not '.'"),
    ("a_", "must end with"),
    ("a/", "must end with"),
    ("a__", "must end with"),
    ("Busybox", "upper-case letter 'B' at position 1"),
    ("busyBox", "upper-case letter 'B' at position 5"),
    ("café", "character 'é' at position 4 is not allowed"),
    ("ａb", "character 'ａ' at position 1"),  # full-width a
    ("a b", "white space ' ' at position 2 is not allowed"),
    (" a", "white space"),
    ("a ", "white space"),
    ("a\tb", "white space '\\t'"),
    ("a\n", "white space '\\n'"),
    ("a:b", "character ':' at position 2 is not allowed"),
    ("a@b", "character '@'"),
    ("a$b", "character '$'"),
    ("a\\b", "character '\\\\'"),
    ("a\x00b", "character '\\x00'"),
    # Several problems: each is reported, in one message.
    ("Bad--Name", "'N' at position 6 are not allowed (use lower case); separators '--' at position 4 may not"),
    ("-a--b-", "must start with a lower-case letter or digit, not '-'; must end with"),
    ("A" * 129, "is 129 characters long; at most 128 are allowed; upper-case letters"),
]

NAMESPACE_CASES = [
    ("a", None),
    ("group", None),
    ("a1", None),
    ("a.b", None),
    ("a-b", None),
    ("a_b", None),
    ("a__b", None),
    ("a.b-c_d__e", None),
    ("a" * 64, None),
    ("a" + "-b" * 31 + "c", None),  # 64 characters
    ("", "must not be empty"),
    ("a" * 65, "is 65 characters long; at most 64"),
    ("1abc", "must start with a lower-case letter, not '1'"),
    ("-abc", "must start with a lower-case letter, not '-'"),
    ("_abc", "must start with a lower-case letter"),
    (".abc", "must start with a lower-case letter"),
    ("abc-", "must end with a lower-case letter or digit, not '-'"),
    ("abc_", "must end with"),
    ("abc.", "must end with"),
    ("a___b", "separators '___'"),
    ("a..b", "separators '..'"),
    ("a-_b", "separators '-_'"),
    ("a._b", "separators '._'"),
    ("a/b", "character '/' at position 2 is not allowed"),
    ("Group", "upper-case letter 'G' at position 1"),
    ("grüne", "character 'ü' at position 3"),
    ("my group", "white space ' ' at position 3"),
    ("group\n", "white space '\\n'"),
    ("a$b", "character '$'"),
    ("1Bad--Name", "must start with a lower-case letter, not '1'; upper-case letters 'B' at position 2 and 'N'"),
]


def short_id(name: str) -> str:
    return repr(name) if len(name) < 20 else f"{name[:8]!r}...({len(name)})"


# (rule, its validator, the message prefix and code the API reports, name, expected problem fragment or None)
RULE_CASES = [
    (names.REPOSITORY, names.validate_repository_name, "Invalid image name: ", "invalid_repository_name", *case)
    for case in REPOSITORY_CASES
] + [
    (names.NAMESPACE, names.validate_namespace_name, "Invalid organization name: ", "invalid_namespace_name", *case)
    for case in NAMESPACE_CASES
]


@pytest.mark.parametrize(
    ("rule", "validate", "prefix", "code", "value", "fragment"),
    RULE_CASES,
    ids=[f"{case[0].kind} {short_id(case[4])}" for case in RULE_CASES],
)
def test_rule(rule, validate, prefix, code, value, fragment):
    problem = rule.problem(value)
    if fragment is None:
        assert problem is None
        validate(value)
    else:
        assert problem is not None
        assert fragment in problem, problem
        with pytest.raises(ValidationError) as info:
            validate(value)
        assert info.value.messages == [prefix + problem]
        assert info.value.code == code


# The spec states each rule twice: in words and as a regular expression with a
# length limit. The two statements must accept exactly the same names.
SPEC_REGEX = {
    "namespace": (r"^[a-z][a-z0-9]*(?:(?:[.-]|__?)[a-z0-9]+)*$", 64, names.NAMESPACE),
    "repository": (r"^[a-z0-9]+(?:(?:[./-]|__?)[a-z0-9]+)*$", 128, names.REPOSITORY),
}


@pytest.mark.parametrize("kind", SPEC_REGEX)
def test_rule_agrees_with_the_spec_regex_on_every_short_name(kind):
    """Every string of up to 4 characters over an alphabet that covers each class of the rule."""
    regex, limit, rule = SPEC_REGEX[kind]
    alphabet = "a0._-/A "
    checked = 0
    for length in range(0, 5):
        for chars in itertools.product(alphabet, repeat=length):
            value = "".join(chars)
            expected = re.fullmatch(regex.strip("^$"), value) is not None and len(value) <= limit
            assert rule.is_valid(value) == expected, value
            checked += 1
    assert checked == sum(len(alphabet) ** n for n in range(5))


def test_patterns_do_not_accept_a_trailing_newline():
    """Python's $ matches before a final newline; the stored patterns must not."""
    assert re.search(names.REPOSITORY_PATTERN, "abc\n") is None
    assert re.search(names.NAMESPACE_PATTERN, "abc\n") is None
    assert re.search(names.REPOSITORY_PATTERN, "abc") is not None


def test_non_string_is_refused():
    assert names.REPOSITORY.problem(123) == "must be a string, got int"


# Every broken part of the rule, in the order of spec section 2: length, first and last character,
# characters not allowed (which, where), separators together (where). (rule, name, the problems)
SEVERAL_PROBLEMS = [
    (
        names.REPOSITORY,
        "Bad--Name",
        [
            "upper-case letters 'B' at position 1 and 'N' at position 6 are not allowed (use lower case)",
            "separators '--' at position 4 may not stand together (only two underscores '__' may)",
        ],
    ),
    (
        names.NAMESPACE,
        "Bad--Name",
        [
            "upper-case letters 'B' at position 1 and 'N' at position 6 are not allowed (use lower case)",
            "separators '--' at position 4 may not stand together (only two underscores '__' may)",
        ],
    ),
    (
        names.REPOSITORY,
        "-My Web..app/",
        [
            "must start with a lower-case letter or digit, not '-'",
            "must end with a lower-case letter or digit, not '/'",
            "upper-case letters 'M' at position 2 and 'W' at position 5 are not allowed (use lower case)",
            "white space ' ' at position 4 is not allowed",
            "separators '..' at position 8 may not stand together (only two underscores '__' may)",
        ],
    ),
    (
        names.NAMESPACE,
        "9a/b:c-",
        [
            "must start with a lower-case letter, not '9'",
            "must end with a lower-case letter or digit, not '-'",
            "characters '/' at position 3 and ':' at position 5 are not allowed "
            "(use lower-case letters, digits and the separators '.' '_' '-')",
        ],
    ),
    (
        names.REPOSITORY,
        "a" * 120 + "--B--C--D",
        [
            "is 129 characters long; at most 128 are allowed",
            "upper-case letters 'B' at position 123, 'C' at position 126 and 'D' at position 129 are not allowed "
            "(use lower case)",
            "separators '--' at position 121, '--' at position 124 and '--' at position 127 may not stand together "
            "(only two underscores '__' may)",
        ],
    ),
    (
        names.NAMESPACE,
        "ABCDEFG",
        [
            "upper-case letters 'A' at position 1, 'B' at position 2, 'C' at position 3, 'D' at position 4, "
            "'E' at position 5 and 2 more are not allowed (use lower case)"
        ],
    ),
]


@pytest.mark.parametrize(
    ("rule", "value", "expected"), SEVERAL_PROBLEMS, ids=[f"{c[0].kind} {short_id(c[1])}" for c in SEVERAL_PROBLEMS]
)
def test_every_problem_is_reported_at_once(rule, value, expected):
    """Spec section 2: a name error says which parts of the rule were broken; all of them, not the first."""
    assert rule.problems(value) == expected
    with pytest.raises(ValidationError) as info:
        rule.validate(value)
    assert info.value.messages == [f"Invalid {rule.kind}: " + "; ".join(expected)]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["namespace", "repository"])
def test_the_api_reports_every_problem_in_one_message_and_in_details(api, namespace, field):
    """`Bad--Name` took two tries: the answer now names both problems (the error codes are unchanged)."""
    if field == "namespace":
        url, body = "/v2/manage/namespaces", {"namespace": "Bad--Name"}
        code, kind = "SVCSTG.SWR.4001028", "organization name"
    else:
        url, body = "/v2/manage/namespaces/group/repos", {"repository": "Bad--Name", "is_public": True}
        code, kind = "SVCSTG.SWR.4001029", "image name"
    response = api.post(url, data=body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["error_code"] == code
    assert answer["error_msg"] == (
        f"Invalid {kind}: upper-case letters 'B' at position 1 and 'N' at position 6 are not allowed "
        "(use lower case); separators '--' at position 4 may not stand together (only two underscores '__' may)"
    )
    assert answer["details"] == [{"field": field, "error_msg": answer["error_msg"]}]


class TestReservedNamespaceName:
    """Spec section 2: the organization name `manage` is reserved (its registry paths would be /v2/manage/...)."""

    def test_the_rule_refuses_manage_and_says_why(self):
        assert names.NAMESPACE.problems("manage") == [
            "'manage' is reserved: its registry paths would collide with the management API under /v2/manage/"
        ]

    @pytest.mark.parametrize("name", ["manage-x", "managed", "my.manage", "manage__x"])
    def test_names_that_only_contain_it_are_fine(self, name):
        assert names.NAMESPACE.is_valid(name)

    def test_repositories_may_be_named_manage(self):
        assert names.REPOSITORY.is_valid("manage")

    @pytest.mark.django_db
    def test_the_api_refuses_it(self, api):
        response = api.post("/v2/manage/namespaces", {"namespace": "manage"}, format="json")
        body = assert_swr_error(response, 400, "SVCSTG.SWR.4001028")
        assert "reserved" in body["error_msg"]

    @pytest.mark.django_db
    def test_the_database_refuses_it(self, tenant):
        from django.db import IntegrityError, transaction

        from swr.models import Namespace

        with pytest.raises(IntegrityError), transaction.atomic():
            Namespace.objects.bulk_create([Namespace(name="manage", tenant=tenant)])


@pytest.mark.django_db
def test_a_name_of_a_megabyte_is_told_its_length_only(api):
    """A 1 MB name was read character by character: 0.4-0.8 s of CPU and a 3 MB error body."""
    response = api.post("/v2/manage/namespaces", {"namespace": "a" + "-." * 300_000}, format="json")
    body = assert_swr_error(response, 400, "SVCSTG.SWR.4001028")
    assert "600001 characters long; at most 64 are allowed" in body["error_msg"]
    assert len(response.content) < 2000
