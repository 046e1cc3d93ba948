"""How the risk trigger reads a shell command and a path glob: exact splits, regexes and subjects.

The pattern tests (test_triggers_risk.py) say which operations are risky; these say how
the text around them is taken apart, one rule per test.
"""

from __future__ import annotations

import re

import attrs
import pytest

from lifecycle.errors import InvalidSettings
from lifecycle.triggers import Operation
from lifecycle.triggers.risk import (
    CommandPattern,
    PathPattern,
    RiskCategory,
    RiskSettings,
    RiskTrigger,
    _split_commands,
    _words,
    classify,
    executed_text,
    glob_regex,
    normalize_path,
)

# -- splitting a command into simple commands -------------------------------------------


@pytest.mark.parametrize(
    ("command", "parts"),
    [
        ("a; b", [("a", ";"), (" b", "")]),
        ("a\nb", [("a", "\n"), ("b", "")]),
        ("a && b", [("a ", "&&"), (" b", "")]),
        ("a & b", [("a ", "&"), (" b", "")]),
        ("a || b", [("a ", "||"), (" b", "")]),
        ("a||", [("a", "||"), ("", "")]),
        ("a | b", [("a ", "|"), (" b", "")]),
        ("a |& b", [("a ", "|&"), (" b", "")]),
    ],
)
def test_commands_split_at_each_separator_and_keep_it(
    command: str, parts: list[tuple[str, str]]
) -> None:
    assert _split_commands(command) == parts


def test_a_separator_inside_double_quotes_does_not_split() -> None:
    assert _split_commands('echo "a; b" ; rm x') == [('echo "a; b" ', ";"), (" rm x", "")]


def test_a_backslash_escapes_a_double_quote_inside_double_quotes() -> None:
    assert _split_commands('echo "a\\"; b"; rm x') == [('echo "a\\"; b"', ";"), (" rm x", "")]


def test_a_backslash_inside_single_quotes_is_a_plain_character() -> None:
    assert _split_commands("echo 'a\\'; rm x") == [("echo 'a\\'", ";"), (" rm x", "")]


def test_a_backslash_escaped_separator_does_not_split() -> None:
    assert _split_commands("echo \\; rm x") == [("echo \\; rm x", "")]


def test_a_backslash_at_the_end_is_kept_as_it_is() -> None:
    assert _split_commands("echo \\") == [("echo \\", "")]
    assert _split_commands('echo "\\') == [('echo "\\', "")]


def test_only_single_and_double_quotes_start_a_quote() -> None:
    assert _split_commands("echo X; rm x") == [("echo X", ";"), (" rm x", "")]


def test_a_comment_runs_to_the_end_of_its_line_only() -> None:
    assert _split_commands("a # c; d\nb\nrm x") == [("a ", "\n"), ("b", "\n"), ("rm x", "")]
    assert _split_commands("a\nb # c\nrm x") == [("a", "\n"), ("b ", "\n"), ("rm x", "")]


def test_a_comment_on_the_last_line_ends_the_command() -> None:
    assert _split_commands("ls # rm -rf /") == [("ls ", "")]


def test_a_hash_inside_a_word_is_not_a_comment() -> None:
    assert _split_commands("echo a#b; rm x") == [("echo a#b", ";"), (" rm x", "")]


@pytest.mark.parametrize(
    ("command", "parts"),
    [
        ("a;#x\nb", [("a", ";"), ("", "\n"), ("b", "")]),
        ("a |&#x\nb", [("a ", "|&"), ("", "\n"), ("b", "")]),
        ("a &&#x", [("a ", "&&"), ("", "")]),
        ("a&#x", [("a", "&"), ("", "")]),
        ("a\t#x", [("a\t", "")]),
    ],
)
def test_a_hash_after_a_space_or_a_separator_starts_a_comment(
    command: str, parts: list[tuple[str, str]]
) -> None:
    assert _split_commands(command) == parts


@pytest.mark.parametrize("command", ["echo \\;#x; rm y", "echo \\|#x; rm y", "ls 2>&#x; rm y"])
def test_a_hash_after_an_escaped_separator_or_a_redirection_is_text(command: str) -> None:
    assert _split_commands(command) == [(command.removesuffix("; rm y"), ";"), (" rm y", "")]


def test_an_ampersand_after_a_redirection_ampersand_separates() -> None:
    assert _split_commands("ls <&&") == [("ls <&", "&"), ("", "")]


@pytest.mark.parametrize("command", ["ls 2>&1", "ls <&3", "ls &> out", "ls &>> out"])
def test_an_ampersand_in_a_redirection_does_not_split(command: str) -> None:
    assert _split_commands(command) == [(command, "")]


def test_an_ampersand_after_any_other_character_sends_to_the_background() -> None:
    assert _split_commands("echo X& rm x") == [("echo X", "&"), (" rm x", "")]


# -- the words of a simple command ------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "words"),
    [
        ("git commit -m 'a b'", ["git", "commit", "-m", "a b"]),
        ("A=1 B=2 echo hi", ["echo", "hi"]),
        ("A=1", []),
        ("", []),
        ("echo a#b c", ["echo", "a#b", "c"]),
        ("echo 'unbalanced", ["echo", "'unbalanced"]),
    ],
)
def test_words_follow_posix_quoting_after_the_assignments(segment: str, words: list[str]) -> None:
    assert _words(segment) == words


def test_a_program_and_its_subcommand_can_be_inert() -> None:
    assert executed_text("git commit -m 'rm -rf /'") == ""
    assert executed_text("git push -m 'rm -rf /'") == "git push -m 'rm -rf /'"


def test_a_single_program_name_can_be_inert() -> None:
    assert executed_text("echo rm -rf /; ls") == "; ls"


def test_only_the_first_two_words_name_an_inert_program() -> None:
    inert = frozenset({"git commit -m"})
    assert executed_text("git commit -m x", inert) == "git commit -m x"


# -- path globs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "regex"),
    [
        ("**/ab", "(?:[^/]*/)*ab"),
        ("a/**", "a(?:/.*)?"),
        ("a**b", "a.*b"),
        ("*.py", "[^/]*\\.py"),
        ("a?", "a[^/]"),
        ("[ab]c]", "[ab]c\\]"),
        ("[a]b]", "[a]b\\]"),
        ("[]ab]", "[]ab]"),
        ("]x[ab]", "\\]x[ab]"),
        ("x]y[ab]", "x\\]y[ab]"),
        ("[!ab]", "[^ab]"),
        ("[\\x]", "[\\\\x]"),
        ("a[b", "a\\[b"),
        ("{a,b}c}", "(?:a|b)c\\}"),
        ("}x{a,b}", "\\}x(?:a|b)"),
        ("a{b", "a\\{b"),
        ("{*.py,b}", "(?:[^/]*\\.py|b)"),
    ],
)
def test_a_glob_becomes_this_regex(glob: str, regex: str) -> None:
    assert glob_regex(glob) == regex


def test_path_globs_ignore_case() -> None:
    pattern = PathPattern("secrets", "secrets", "security", ("**/secrets/**",))
    assert pattern.match("App/SECRETS/prod.yml") == "**/secrets/**"
    assert pattern.match("app/secret/prod.yml") is None


def test_an_empty_glob_raises_invalid_settings() -> None:
    with pytest.raises(InvalidSettings) as raised:
        PathPattern("x", "x", "ci", ("",))
    assert str(raised.value) == "a path glob must be a non-empty string, got ''"


# -- pattern settings -------------------------------------------------------------------


def test_a_slug_that_is_not_a_string_raises_invalid_settings() -> None:
    with pytest.raises(InvalidSettings) as raised:
        CommandPattern(3, "x", "deletion", "x")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "a risk pattern's slug must be a key-safe name such as 'rm-rf', got 3 (nearest: '3')"
    )


def test_a_slug_that_is_not_key_safe_names_the_nearest_one() -> None:
    with pytest.raises(InvalidSettings) as raised:
        CommandPattern("Rm RF!", "x", "deletion", "x")
    assert str(raised.value) == (
        "a risk pattern's slug must be a key-safe name such as 'rm-rf', "
        "got 'Rm RF!' (nearest: 'Rm-RF')"
    )


def test_a_command_pattern_is_case_sensitive_unless_it_says_otherwise() -> None:
    pattern = CommandPattern("deploy", "deploy", "architecture", r"deploy")
    assert pattern.search("make deploy") is not None
    assert pattern.search("make DEPLOY") is None


# -- the subject of a command match -----------------------------------------------------


def _subjects(command: str) -> list[str]:
    return [m.subject for m in classify(Operation(command=command)) if m.slug == "rm-rf"]


@pytest.mark.parametrize(
    ("command", "subject"),
    [
        ("rm -rf build", "rm -rf build"),
        ("cd a; rm -rf x; ls", "rm -rf x"),
        ("a; b; rm -rf x", "rm -rf x"),
        ("rm -rf x; ls; pwd", "rm -rf x"),
        ("; rm -rf x", "rm -rf x"),
        ("FOO=X rm -rf X", "FOO=X rm -rf X"),
        ("ls | rm -rf x && ls", "rm -rf x"),
        ("ls\nrm -rf x\nls", "rm -rf x"),
    ],
)
def test_a_command_match_shows_the_simple_command_it_lies_in(command: str, subject: str) -> None:
    assert _subjects(command) == [subject]


def test_a_match_spanning_a_pipe_shows_both_sides() -> None:
    [match] = [
        m for m in classify(Operation(command="cd /; curl x | sh; ls")) if m.slug == "pipe-to-shell"
    ]
    assert match.subject == "curl x | sh"


# -- the trigger's classify -------------------------------------------------------------


def test_the_trigger_classifies_with_its_own_settings() -> None:
    trigger = RiskTrigger(RiskSettings(max_files=1))
    assert [m.slug for m in trigger.classify(Operation(paths=("a.txt", "b.txt")))] == [
        "bulk-2-files"
    ]


def test_regexes_in_settings_are_compiled_once_per_pattern() -> None:
    pattern = CommandPattern("x", "x", "deletion", r"x+")
    assert pattern.search("axxb") is not None
    assert isinstance(pattern._compiled, re.Pattern)


# -- paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("a\\b\\c.py", "a/b/c.py"),
        ("a/b/", "a/b"),
        ("a/b//", "a/b"),
        ("./a", "a"),
        ("././a", "a"),
        ("a/./b", "a/./b"),
        (".env", ".env"),
        ("../a", "../a"),
        ("src/X", "src/X"),
    ],
)
def test_a_path_is_read_with_forward_slashes_and_without_leading_dot_folders(
    path: str, normal: str
) -> None:
    assert normalize_path(path) == normal


def test_an_excluded_path_does_not_match_even_when_a_glob_does() -> None:
    pattern = PathPattern("a", "a", "security", ("**/*auth*",), exclude=("**/author*",))
    assert pattern.match("src/authors.txt") is None
    assert pattern.match("src/oauth.txt") == "**/*auth*"


def test_a_path_matches_the_first_glob_that_matches_it() -> None:
    pattern = PathPattern("a", "a", "ci", ("*.yml", "ci.*", "*"))
    assert pattern.match("ci.yml") == "*.yml"
    assert pattern.match("ci.txt") == "ci.*"
    assert pattern.match("x") == "*"


# -- how an operation is described ------------------------------------------------------


def _described(operation: Operation) -> str:
    (match,) = [m for m in classify(operation) if m.slug == "delete"]
    return match.subject


@pytest.mark.parametrize(
    ("operation", "description"),
    [
        (Operation(name="n", command="rmdir x", paths=("a",)), "rmdir x"),
        (Operation(name="drop the cache", paths=("a",), files_count=9), "drop the cache"),
        (Operation(paths=("a", "b", "c")), "change a, b, c"),
        (Operation(paths=("a", "b", "c", "d")), "change a, b, c and 1 more"),
        (Operation(paths=("a", "b", "c", "d", "e")), "change a, b, c and 2 more"),
        (Operation(files_count=7), "change 7 files"),
        (Operation(files_count=0), "change 0 files"),
        (Operation(kind="cleanup"), "cleanup"),
        (Operation(), "operation"),
    ],
)
def test_an_operation_is_described_by_its_command_name_paths_count_or_kind(
    operation: Operation, description: str
) -> None:
    assert _described(attrs.evolve(operation, deletes=True)) == description


@pytest.mark.parametrize(("length", "clipped"), [(199, False), (200, False), (201, True)])
def test_a_subject_of_up_to_200_characters_is_kept_whole(length: int, clipped: bool) -> None:
    name = "n" * length
    subject = _described(Operation(name=name, deletes=True))
    assert subject == (name[:197] + "..." if clipped else name)


def test_a_subject_is_one_line() -> None:
    assert _described(Operation(name="drop\n  the\tcache", deletes=True)) == "drop the cache"


# -- declared kinds ---------------------------------------------------------------------


def test_declared_kinds_are_read_trimmed_lowercase_and_hyphenated() -> None:
    settings = RiskSettings(kinds=[(" Big_Refactor  Now ", "bulk")])
    assert settings.kinds == (("big-refactor-now", RiskCategory.BULK),)
    assert settings.kind_category("  BIG refactor_now") is RiskCategory.BULK
    assert settings.kind_category("big refactor") is None


def test_declared_kinds_are_kept_sorted() -> None:
    settings = RiskSettings(kinds={"b": "ci", "a": "bulk"})
    assert settings.kinds == (("a", RiskCategory.BULK), ("b", RiskCategory.CI))
