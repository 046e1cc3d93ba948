"""The risk trigger: checkpoint before a high-risk operation.

SuperClaude's Session Lifecycle Pattern names major refactoring (more than 50
files), deletion, architecture changes and security-sensitive changes. An
:class:`Operation` is high-risk when any of these holds:

- its shell ``command`` matches a :class:`CommandPattern` (``rm -rf``,
  ``git push --force``, ``DROP TABLE``, ``terraform destroy``, ...);
- it says ``deletes=True``;
- it touches more than ``max_files`` files (category ``bulk``);
- one of its ``paths`` matches a :class:`PathPattern` (auth code, secrets, CI
  configuration, migrations, build manifests, ...);
- its ``kind`` is one the settings map to a category (``"security"``, ...).

Decisions about false positives (a false positive costs one cheap checkpoint;
a false negative lets a risky operation run without one, so doubt goes to risk):

- Any ``rm`` of a file is a deletion, not only
  ``rm -r``; ``rm -r``/``-rf`` has its own, more specific pattern.
- Text that is only printed or searched is not run: a simple command whose
  program is in ``inert_programs`` (``echo``, ``printf``, ``grep``, ``rg``,
  ``git commit``, ``git log``, ...) is skipped, quotes and all, unless its
  output is piped into another command or it holds a command substitution
  (``$(...)``, backticks). So ``echo "rm -rf /"`` and
  ``git commit -m "drop table x"`` are safe, but ``echo "rm -rf /" | sh`` is not.
- Quoted text of any other command is scanned: ``bash -c "rm -rf x"``,
  ``psql -c "DROP TABLE x"`` and ``python -c "os.system('rm -rf x')"`` are
  risky. Comments (``# rm -rf``) are not run and are skipped.
- Not risky by default: ``git rm`` (refuses to drop uncommitted changes and
  the file stays in history), ``rmdir`` (empty directories only), ``docker
  rm``/``npm rm``, ``git push`` without force, ``git reset --soft``,
  ``git clean -n``, ``git restore --staged``, ``git branch -d``,
  ``kubectl apply``, ``terraform plan``, ``manage.py makemigrations``.
- ``__init__.py`` is an architecture change only at a package root that a
  path can show: ``src/<package>/__init__.py``. Every subpackage has one, and
  an absolute path does not say where a flat-layout project starts.

Path globs match the end of a path at a directory boundary and ignore case,
so ``.github/workflows/**`` matches ``/home/me/repo/.github/workflows/ci.yml``
and a pattern without ``/`` (``Dockerfile``) matches that name in any folder.
Glob syntax: ``**`` any folders, ``*`` and ``?`` within one name,
``[abc]``, and ``{a,b}`` alternatives.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import attrs

from lifecycle.errors import InvalidSettings
from lifecycle.keys import CheckpointKind, slug
from lifecycle.records import _strs
from lifecycle.spec import Event
from lifecycle.triggers.base import Activity, CheckpointCall, Operation, SessionFacts


class RiskCategory(StrEnum):
    DELETION = "deletion"
    ARCHITECTURE = "architecture"
    SECURITY = "security"
    CI = "ci"
    BULK = "bulk"


def _check_slug(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or slug(value) != value:
        raise InvalidSettings(
            f"a risk pattern's {attribute.name} must be a key-safe name such as 'rm-rf', "
            f"got {value!r} (nearest: {slug(str(value))!r})"
        )


def _category(value: Any) -> RiskCategory:
    try:
        return RiskCategory(value)
    except ValueError:
        known = ", ".join(c.value for c in RiskCategory)
        raise InvalidSettings(f"unknown risk category {value!r}; known: {known}") from None


def _compile(regex: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(regex, flags)
    except (re.error, TypeError) as err:
        raise InvalidSettings(f"risk pattern {regex!r} is not a valid regex: {err}") from None


@attrs.frozen
class CommandPattern:
    """A regex over the part of a shell command that will run (see the module notes)."""

    slug: str = attrs.field(validator=_check_slug)
    name: str
    category: RiskCategory = attrs.field(converter=_category)
    regex: str
    _compiled: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    @_compiled.default
    def _compile_regex(self) -> re.Pattern[str]:
        return _compile(self.regex)

    def search(self, command: str) -> re.Match[str] | None:
        return self._compiled.search(command)


#: One piece of a glob: a wildcard, a ``[...]`` class (its first character may be ``]``),
#: a ``{a,b}`` group (up to the first ``}``), or any other single character.
_GLOB_PART = re.compile(
    r"\*\*/|/\*\*\Z|\*\*|\*|\?|\[(?P<chars>.[^\]]*)\]|\{(?P<choices>[^}]*)\}|.", re.DOTALL
)
_GLOB_WILDCARDS = {"**/": "(?:[^/]*/)*", "/**": "(?:/.*)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def glob_regex(glob: str) -> str:
    """A glob as a regex body: ``**`` any folders, ``*``/``?`` within a name, ``{a,b}``."""
    out: list[str] = []
    for part in _GLOB_PART.finditer(glob):
        chars, choices = part.group("chars", "choices")
        if chars is not None:
            chars = chars.replace("\\", "\\\\")
            out.append("[" + ("^" + chars[1:] if chars.startswith("!") else chars) + "]")
        elif choices is not None:
            out.append("(?:" + "|".join(glob_regex(c) for c in choices.split(",")) + ")")
        else:
            out.append(_GLOB_WILDCARDS.get(part.group()) or re.escape(part.group()))
    return "".join(out)


def normalize_path(path: str) -> str:
    path = path.replace("\\", "/").rstrip("/")
    while path.startswith("./"):
        path = path[2:]
    return path


@attrs.frozen
class PathPattern:
    """Globs over the paths an operation touches; ``exclude`` globs veto a match."""

    slug: str = attrs.field(validator=_check_slug)
    name: str
    category: RiskCategory = attrs.field(converter=_category)
    globs: tuple[str, ...] = attrs.field(converter=_strs)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    #: Each glob and its compiled regex.
    _matchers: tuple[tuple[str, re.Pattern[str]], ...] = attrs.field(
        init=False, repr=False, eq=False
    )
    _excluders: tuple[re.Pattern[str], ...] = attrs.field(init=False, repr=False, eq=False)

    @_matchers.default
    def _compile_globs(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        if not self.globs:
            raise InvalidSettings(f"path pattern {self.slug!r} has no globs; give at least one")
        return tuple((g, _glob(g)) for g in self.globs)

    @_excluders.default
    def _compile_excludes(self) -> tuple[re.Pattern[str], ...]:
        return tuple(_glob(g) for g in self.exclude)

    def match(self, path: str) -> str | None:
        """The first glob that matches ``path`` (and no exclude does), else None."""
        path = normalize_path(path)
        if any(x.search(path) for x in self._excluders):
            return None
        return next((glob for glob, matcher in self._matchers if matcher.search(path)), None)


def _glob(glob: str) -> re.Pattern[str]:
    if not glob:  # a string: PathPattern's converter made every glob one
        raise InvalidSettings(f"a path glob must be a non-empty string, got {glob!r}")
    return _compile(f"(?:^|/){glob_regex(normalize_path(glob))}$", re.IGNORECASE)


@attrs.frozen
class RiskMatch:
    """One reason an operation is high-risk."""

    category: RiskCategory
    slug: str  # names the checkpoint key: checkpoints/risk-{slug}-{ts}
    name: str  # the pattern's human name
    pattern: str  # the regex, glob or rule that matched
    subject: str  # what it matched: command text, a path, a count, a kind

    @property
    def reason(self) -> str:
        return f"{self.name} [{self.category.value}]: {self.subject}"


# -- default command patterns -----------------------------------------------------------

_W = r"(?<![\w.-])"  # a word starts here (not inside a name, a path segment or a flag)
_END = r"(?=[\s;&|)\"'`]|$)"  # the word ends here
# Bounded repeats keep a pathological command (thousands of `rm a rm a ...`) linear.
_ARGS = r"(?:\s+[^\s;&|\"'`()]+){0,64}?"  # more plain words of the same simple command
_ANY = r"[^;&|\n]{0,500}"  # the rest of the same simple command, quotes included
_GIT = _W + r"git(?:\s+-[Cc]\s+\S+|\s+--?[\w.-]+(?:=\S*)?){0,16}\s+"  # git and its global options
# Tools that have an `rm` subcommand which is not a file deletion.
_NOT_SUBCOMMAND = (
    "".join(rf"(?<!{tool}\s)" for tool in ("git", "docker", "podman", "npm", "pnpm", "yarn", "bun"))
    + r"(?<!brew\s)(?<!conda\s)"
)
_D, _A, _S, _C, _B = (
    RiskCategory.DELETION,
    RiskCategory.ARCHITECTURE,
    RiskCategory.SECURITY,
    RiskCategory.CI,
    RiskCategory.BULK,
)

DEFAULT_COMMAND_PATTERNS: tuple[CommandPattern, ...] = (
    # deletion ------------------------------------------------------------------------
    CommandPattern(
        "rm-rf", "recursive delete (rm -r, rm -rf)", _D,
        _W + _NOT_SUBCOMMAND + r"rm" + _ARGS + r"\s+(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)"
        + _END,
    ),
    CommandPattern(
        "rm", "file delete (rm, unlink, shred)", _D,
        _W + _NOT_SUBCOMMAND + r"(?:rm|unlink|shred)(?=\s+[^\s;&|])"
        r"|(?<![\w.-])xargs\s+(?:-\S+\s+){0,16}(?:rm|unlink|shred)" + _END,
    ),
    CommandPattern(
        "find-delete", "find -delete", _D, _W + r"find\b" + _ANY + r"\s-delete" + _END,
    ),
    CommandPattern(
        "windows-delete", "recursive delete (rd /s, del /s, Remove-Item -Recurse)", _D,
        r"(?i)(?<![\w.-])(?:(?:rd|rmdir)\s+(?:\S+\s+){0,16}?/s\b|(?:del|erase)\s+(?:\S+\s+){0,16}?/[sq]\b"
        r"|remove-item\b[^;&|\n]{0,1000}\s-recurse\b)",
    ),
    CommandPattern(
        "git-reset-hard", "git reset --hard", _D, _GIT + r"reset\b" + _ANY + r"\s--hard\b",
    ),
    CommandPattern(
        "git-clean", "git clean (deletes untracked files)", _D,
        _GIT + r"clean\b(?!" + _ANY + r"\s(?:--dry-run|-[a-zA-Z]*n[a-zA-Z]*)(?=\s|$))",
    ),
    CommandPattern(
        "git-discard", "discard working-tree changes (git checkout --, git restore)", _D,
        _GIT + r"(?:checkout\b" + _ANY + r"(?:\s--\s+\S|\s\.(?=[\s;&|]|$)|\s(?:-f|--force)\b)"
        r"|switch\b" + _ANY + r"\s(?:--discard-changes|-f|--force)\b"
        r"|restore\b(?!" + _ANY + r"\s(?:--staged|-S)\b)"
        r"|restore\b(?=" + _ANY + r"\s(?:--worktree|-W)\b))",
    ),
    CommandPattern(
        "git-stash-drop", "drop stashed work (git stash drop, git stash clear)", _D,
        _GIT + r"stash\s+(?:drop|clear)\b",
    ),
    CommandPattern(
        "git-branch-delete", "force-delete a branch (git branch -D)", _D,
        _GIT + r"branch\b(?:" + _ANY + r"\s-[a-zA-Z]*D"
        r"|(?=" + _ANY + r"\s(?:-[a-zA-Z]*d[a-zA-Z]*|--delete)\b)(?=" + _ANY
        + r"\s(?:-[a-zA-Z]*f[a-zA-Z]*|--force)\b))",
    ),
    CommandPattern(
        "git-push-force", "force push (git push --force, -f, --force-with-lease, +ref)", _D,
        _GIT + r"push\b" + _ANY
        + r"\s(?:--force(?:-with-lease|-if-includes)?(?:=\S*)?|-[a-zA-Z]*f[a-zA-Z]*|\+[^\s;&|]+)"
        + _END,
    ),
    CommandPattern(
        "git-push-delete", "delete a remote branch (git push --delete, :branch)", _D,
        _GIT + r"push\b" + _ANY + r"\s(?:--delete|-d|:[^\s;&|]+)" + _END,
    ),
    CommandPattern(
        "git-rebase", "history rewrite (git rebase)", _D,
        _GIT + r"rebase\b(?!\s+--(?:abort|quit|show-current-patch|edit-todo)\b)",
    ),
    CommandPattern(
        "git-filter", "history rewrite (git filter-branch, git filter-repo)", _D,
        _GIT + r"filter-(?:branch|repo)\b",
    ),
    CommandPattern(
        "sql-drop", "SQL DROP TABLE / DATABASE / SCHEMA (dropdb)", _D,
        r"(?i)\bdrop\s+(?:table|database|schema|collection)\b|(?<![\w.-])dropdb\s",
    ),
    CommandPattern(
        "sql-truncate", "SQL TRUNCATE", _D,
        r"\b(?i:truncate\s+table)\b|\bTRUNCATE\s+(?:ONLY\s+)?[\w\"`]",
    ),
    CommandPattern(
        "sql-delete-all", "SQL DELETE FROM without WHERE", _D,
        r"(?i)\bdelete\s+from\s+[\w\"`.\[\]]+(?![^;\n\"']{0,1000}\bwhere\b)",
    ),
    CommandPattern(
        "sql-update-all", "SQL UPDATE ... SET without WHERE", _D,
        r"(?i)\bupdate\s+[\w\"`.\[\]]+\s+set\b(?![^;\n\"']{0,1000}\bwhere\b)",
    ),
    CommandPattern(
        "redis-flush", "Redis FLUSHALL / FLUSHDB", _D, r"(?i)\bflush(?:all|db)\b",
    ),
    CommandPattern(
        "truncate", "truncate a file (truncate -s)", _D, _W + r"truncate\s+-",
    ),
    CommandPattern(
        "dd", "raw write (dd of=)", _D, _W + r"dd\s" + _ANY + r"(?<![\w.-])of=",
    ),
    CommandPattern(
        "mkfs", "format a filesystem (mkfs, wipefs)", _D,
        _W + r"(?:mkfs(?:\.\w+)?|mke2fs|wipefs)" + _END,
    ),
    CommandPattern(
        "docker-prune", "delete containers' data (docker prune, volume rm, compose down -v)", _D,
        _W + r"(?:docker|podman)\s+(?:(?:(?:system|volume|image|container|network|builder)\s+)?"
        r"prune\b|volume\s+rm\b|compose\b" + _ANY + r"\sdown\b" + _ANY
        + r"\s(?:-v|--volumes)\b)",
    ),
    CommandPattern(
        "kubectl-delete", "kubectl delete", _D, _W + r"kubectl" + _ARGS + r"\s+delete" + _END,
    ),
    CommandPattern(
        "helm-uninstall", "helm uninstall", _D,
        _W + r"helm" + _ARGS + r"\s+(?:uninstall|delete)" + _END,
    ),
    CommandPattern(
        "infra-destroy", "destroy infrastructure (terraform/tofu/pulumi/cdk destroy)", _D,
        _W + r"(?:(?:terraform|tofu)(?:\s+-\S+){0,16}\s+(?:destroy|apply\b" + _ANY + r"\s-destroy)"
        r"|(?:pulumi|cdk)\s+(?:-\S+\s+){0,16}destroy)" + _END,
    ),
    # architecture --------------------------------------------------------------------
    CommandPattern(
        "infra-apply", "apply infrastructure changes (terraform apply, pulumi up, cdk deploy)", _A,
        _W + r"(?:(?:terraform|tofu)(?:\s+-\S+){0,16}\s+apply|pulumi\s+(?:-\S+\s+){0,16}up"
        r"|cdk\s+(?:-\S+\s+){0,16}deploy)" + _END,
    ),
    CommandPattern(
        "alembic-migrate", "schema migration (alembic upgrade/downgrade/stamp)", _A,
        _W + r"alembic" + _ARGS + r"\s+(?:upgrade|downgrade|stamp)" + _END,
    ),
    CommandPattern(
        "django-migrate", "schema migration (manage.py migrate)", _A,
        r"(?:manage\.py|django-admin)\s+(?:-\S+\s+){0,16}migrate" + _END,
    ),
    CommandPattern(
        "prisma-migrate", "schema migration (prisma migrate dev/deploy/reset, db push)", _A,
        _W + r"prisma\s+(?:migrate\s+(?:dev|deploy|reset|resolve)|db\s+(?:push|execute))" + _END,
    ),
    CommandPattern(
        "rails-migrate", "schema migration (rails/rake db:migrate, rollback, drop, reset)", _A,
        _W + r"(?:rails|rake)\s+(?:\S+\s+){0,16}?db:(?:migrate(?!:status)|rollback|drop|reset"
        r"|schema:load|setup|purge)\b",
    ),
    CommandPattern(
        "flyway", "schema migration (flyway migrate/clean/undo/repair/baseline)", _A,
        _W + r"flyway" + _ARGS + r"\s+(?:migrate|clean|undo|repair|baseline)" + _END,
    ),
    CommandPattern(
        "liquibase", "schema migration (liquibase update/rollback/drop-all)", _A,
        _W + r"liquibase" + _ARGS
        + r"\s+(?i:update|update-?to-?tag|update-?count|rollback[\w-]*|drop-?all)" + _END,
    ),
    CommandPattern(
        "js-migrate", "schema migration (knex, sequelize, typeorm)", _A,
        _W + r"(?:knex|sequelize(?:-cli)?|typeorm)" + _ARGS
        + r"\s+(?:migrate:(?:latest|up|down|rollback)|db:migrate(?::undo(?::all)?)?"
        r"|migration:(?:run|revert))" + _END,
    ),
    CommandPattern(
        "db-migrate", "schema migration (diesel, sqlx, goose, dbmate, atlas)", _A,
        _W + r"(?:diesel\s+migration\s+(?:run|revert|redo)|sqlx\s+migrate\s+(?:run|revert)"
        r"|goose\b" + _ANY + r"\s(?:up|down|reset|redo)|dbmate\s+(?:up|down|rollback|migrate|drop)"
        r"|atlas\s+(?:migrate|schema)\s+apply)" + _END,
    ),
    # security ------------------------------------------------------------------------
    CommandPattern(
        "chmod-recursive", "recursive permission change (chmod -R, chown -R, chgrp -R)", _S,
        _W + r"(?:chmod|chown|chgrp)" + _ARGS + r"\s+(?:-[a-zA-Z]*R[a-zA-Z]*|--recursive)"
        + _END,
    ),
    CommandPattern(
        "chmod-world", "world-writable permissions (chmod 777, o+w)", _S,
        _W + r"chmod" + _ARGS
        + r"\s+(?:0?[0-7]?(?:777|666)|[ugoa]*[oa][ugoa]*\+[rwxXst]*w[rwxXst]*)" + _END,
    ),
    CommandPattern(
        "pipe-to-shell", "run a downloaded script (curl | sh)", _S,
        _W + r"(?:(?:curl|wget)\b[^;&\n]{0,1000}\|\s*(?:sudo\s+(?:-\S+\s+){0,16})?(?:ba|z|da|k)?sh"
        r"|(?:ba|z)?sh\s+<\(\s*(?:curl|wget)\b)" + _END,
    ),
    # bulk ----------------------------------------------------------------------------
    CommandPattern(
        "mass-edit", "in-place edit across many files (xargs/find -exec sed -i, codemods)", _B,
        r"(?:(?<![\w.-])xargs\b|\s-exec(?:dir)?\b)" + _ANY
        + r"(?<![\w.-])(?:sed|perl|ruby)\s+(?:\S+\s+){0,16}?(?:-[a-zA-Z]*i|--in-place)"
        r"|(?<![\w.-])sed\s+(?:\S+\s+){0,16}?(?:-[a-zA-Z]*i|--in-place)\S*\s" + _ANY
        + r"(?:\$\(|\*\*|`)"
        r"|(?<![\w.-])(?:jscodeshift|codemod)" + _END,
    ),
)  # fmt: skip

_CODE = "{py,pyi,js,jsx,mjs,ts,tsx,go,rb,java,kt,rs,php,cs,swift,scala}"

DEFAULT_PATH_PATTERNS: tuple[PathPattern, ...] = (
    # security ------------------------------------------------------------------------
    PathPattern(
        "auth-change", "authentication code", _S,
        ("**/{auth,authn,authz}/**", "**/authentication/**", f"**/*auth*.{_CODE}",
         f"**/*{{jwt,saml,oidc,password}}*.{_CODE}"),
        exclude=("**/*author{,s,ed,ship}{.,_,-}*",),
    ),
    PathPattern(
        "security-change", "security and crypto code", _S,
        ("**/security/**", "**/crypto/**", f"**/*crypt*.{_CODE}"),
    ),
    PathPattern(
        "key-material", "keys and certificates", _S,
        ("**/*.pem", "**/*.key", "**/*.p12", "**/*.pfx", "**/*.jks", "**/*.keystore",
         "**/id_rsa*", "**/id_ed25519*", "**/id_ecdsa*", "**/.ssh/**"),
    ),
    PathPattern(
        "secrets-change", "secrets and credentials", _S,
        ("**/.env*", "**/secrets/**", "**/*secret*", "**/*credential*", "**/.npmrc",
         "**/.pypirc", "**/.netrc", "**/.htpasswd", "**/*.tfvars"),
    ),
    PathPattern(
        "permissions-change", "permissions, IAM and code owners", _S,
        ("**/{iam,rbac,permissions,policies,acl}/**",
         "**/*{permission,rbac,iam-policy,iam_policy}*",
         "**/*.rego", "**/sudoers*", "**/CODEOWNERS"),
    ),
    # ci ------------------------------------------------------------------------------
    PathPattern(
        "ci-change", "CI configuration", _C,
        (".github/workflows/**", ".github/actions/**", ".gitlab-ci.yml", ".gitlab-ci/**",
         ".circleci/**", "Jenkinsfile*", "azure-pipelines*.{yml,yaml}", ".travis.yml",
         "bitbucket-pipelines.yml", ".buildkite/**", ".drone.yml"),
    ),
    # architecture --------------------------------------------------------------------
    PathPattern(
        "migration-change", "database migrations", _A,
        ("**/migrations/**", "**/db/migrate/**", "**/alembic/versions/**", "**/alembic.ini"),
    ),
    PathPattern(
        "schema-change", "schema definitions", _A, ("**/schema.*", "**/*.prisma"),
    ),
    PathPattern(
        "api-change", "API contracts (protobuf, thrift, avro, OpenAPI)", _A,
        ("**/*.proto", "**/*.thrift", "**/*.avsc", "**/openapi*.{json,yaml,yml}",
         "**/swagger*.{json,yaml,yml}"),
    ),
    PathPattern(
        "manifest-change", "build and dependency manifests", _A,
        ("pyproject.toml", "setup.py", "setup.cfg", "requirements*.txt", "Pipfile",
         "package.json", "Cargo.toml", "go.mod", "Gemfile", "pom.xml", "build.gradle{,.kts}",
         "settings.gradle{,.kts}", "CMakeLists.txt", "*.csproj", "composer.json"),
    ),
    PathPattern(
        "infra-change", "containers and infrastructure", _A,
        ("Dockerfile*", "*.dockerfile", "docker-compose*.{yml,yaml}", "compose.{yml,yaml}",
         "**/*.tf", "**/{k8s,kubernetes,helm}/**", "Chart.yaml"),
    ),
    PathPattern(
        "package-api-change", "package root __init__ (src layout)", _A,
        ("**/src/*/__init__.py",),
    ),
)  # fmt: skip

#: Operation kinds a caller may declare, and the risk category each means.
DEFAULT_KINDS: Mapping[str, RiskCategory] = {
    "deletion": _D,
    "delete": _D,
    "destructive": _D,
    "architecture": _A,
    "architectural": _A,
    "schema": _A,
    "migration": _A,
    "infrastructure": _A,
    "security": _S,
    "security-sensitive": _S,
    "auth": _S,
    "secrets": _S,
    "permissions": _S,
    "ci": _C,
    "bulk": _B,
    "mass-edit": _B,
    "major-refactor": _B,
    "major-refactoring": _B,
}

#: Programs (or "program subcommand") whose arguments are text to print or search, not run.
DEFAULT_INERT_PROGRAMS: frozenset[str] = frozenset(
    {
        "echo", "printf", "grep", "egrep", "fgrep", "rg", "ag", "ack", "man", "help", "which",
        "type", "whatis", "apropos", "tldr", "info", ":", "true", "false",
        "git commit", "git log", "git grep", "git show", "git diff", "git status", "git blame",
        "gh pr", "gh issue",
    }
)  # fmt: skip

_KIND_SLUG = {
    _D: "delete",
    _A: "architecture-change",
    _S: "security-change",
    _C: "ci-change",
    _B: "bulk-change",
}


_T = TypeVar("_T")


def _kind_key(kind: str) -> str:
    return re.sub(r"[\s_]+", "-", kind.strip().lower())


def _kinds(
    value: Mapping[str, Any] | Iterable[tuple[str, Any]],
) -> tuple[tuple[str, RiskCategory], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((_kind_key(str(k)), _category(c)) for k, c in pairs))


def _command_patterns(value: Iterable[CommandPattern]) -> tuple[CommandPattern, ...]:
    return _all_of(CommandPattern, value)


def _path_patterns(value: Iterable[PathPattern]) -> tuple[PathPattern, ...]:
    return _all_of(PathPattern, value)


def _all_of(kind: type[_T], value: Iterable[_T]) -> tuple[_T, ...]:
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise InvalidSettings(f"expected {kind.__name__} items, got {item!r}")
    return items


def _non_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSettings(f"{attribute.name} must be an integer >= 0, got {value!r}")


@attrs.frozen
class RiskSettings:
    """What counts as high-risk. Extend the defaults rather than replace them, e.g.
    ``RiskSettings(commands=(*DEFAULT_COMMAND_PATTERNS, CommandPattern(...)))``."""

    #: An operation touching more than this many files is a bulk change.
    max_files: int = attrs.field(default=50, validator=_non_negative)
    commands: tuple[CommandPattern, ...] = attrs.field(
        default=DEFAULT_COMMAND_PATTERNS, converter=_command_patterns
    )
    paths: tuple[PathPattern, ...] = attrs.field(
        default=DEFAULT_PATH_PATTERNS, converter=_path_patterns
    )
    kinds: tuple[tuple[str, RiskCategory], ...] = attrs.field(
        default=DEFAULT_KINDS, converter=_kinds
    )
    inert_programs: frozenset[str] = attrs.field(
        default=DEFAULT_INERT_PROGRAMS, converter=frozenset
    )

    def kind_category(self, kind: str | None) -> RiskCategory | None:
        if not kind:
            return None
        key = _kind_key(kind)
        return next((c for k, c in self.kinds if k == key), None)


# -- reading a shell command ------------------------------------------------------------


#: One piece of a shell command, first match wins: a quoted string (to the end of the
#: command if it is not closed; in double quotes a backslash escapes the next character);
#: a backslash and the character it escapes; a comment, from a ``#`` that starts a word
#: (after a space, a separator or nothing) to the end of its line; a separator (an ``&``
#: right after ``<`` or ``>`` or right before ``>`` is a redirection, not a separator);
#: any other single character.
_SHELL_PART = re.compile(
    r"""(?:"(?:\\.|\\\Z|[^"\\])*"?|'[^']*'?)"""
    r"|\\."
    r"|(?P<comment>(?<![^\s;&|])(?<!\\[;&|])(?<![<>]&)#[^\n]*)"
    r"|(?P<separator>\|\||\|&|\||;|\n|(?<![<>])&(?:&|(?!>)))"
    r"|.",
    re.DOTALL,
)


def _split_commands(command: str) -> list[tuple[str, str]]:
    """Simple commands and the separator after each (``;``, ``&&``, ``|``, ...); comments
    dropped; quotes and backslash escapes respected."""
    parts: list[tuple[str, str]] = []
    buf: list[str] = []
    for part in _SHELL_PART.finditer(command):
        separator = part.group("separator")
        if separator is not None:
            parts.append(("".join(buf), separator))
            buf = []
        elif part.group("comment") is None:
            buf.append(part.group())
    parts.append(("".join(buf), ""))
    return parts


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SUBSTITUTION = ("$(", "`", "<(", ">(")


def _words(segment: str) -> list[str]:
    """The words of a simple command after its variable assignments (``A=1 cmd ...``)."""
    try:
        words = shlex.split(segment)  # POSIX rules; ``#`` inside a word is not a comment
    except ValueError:  # unbalanced quotes: read it as plain words
        words = segment.split()
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    return words


def executed_text(command: str, inert_programs: frozenset[str] = DEFAULT_INERT_PROGRAMS) -> str:
    """``command`` with the parts that only print or search text blanked out (see module notes)."""
    out: list[str] = []
    for segment, sep in _split_commands(command):
        words = _words(segment)
        inert = (
            # the program ("echo") or the program and its subcommand ("git commit")
            any(" ".join(words[:n]) in inert_programs for n in (1, 2))
            and sep not in ("|", "|&")
            and not any(s in segment for s in _SUBSTITUTION)
        )
        out.append(("" if inert else segment) + sep)
    return "".join(out)


# -- classification ---------------------------------------------------------------------

_SUBJECT_LIMIT = 200


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SUBJECT_LIMIT else flat[: _SUBJECT_LIMIT - 3] + "..."


def classify(operation: Operation, settings: RiskSettings | None = None) -> list[RiskMatch]:
    """Every reason ``operation`` is high-risk, most specific first; empty if it is not."""
    settings = settings or DEFAULT_SETTINGS
    found: list[RiskMatch] = []
    if operation.command:
        text = executed_text(operation.command, settings.inert_programs)
        for pattern in settings.commands:
            m = pattern.search(text)
            if m is not None:
                subject = _clip(_enclosing_command(text, m)) or _clip(operation.command)
                found.append(
                    RiskMatch(pattern.category, pattern.slug, pattern.name, pattern.regex, subject)
                )
    if operation.deletes:
        found.append(
            RiskMatch(_D, "delete", "operation deletes files", "deletes=True", _describe(operation))
        )
    touched = operation.touched
    if touched > settings.max_files:
        found.append(
            RiskMatch(
                _B,
                f"bulk-{touched}-files",
                f"more than {settings.max_files} files",
                f"touched > {settings.max_files}",
                f"{touched} files",
            )
        )
    for path_pattern in settings.paths:
        hits = [(p, g) for p in operation.paths if (g := path_pattern.match(p)) is not None]
        if hits:
            path, glob = hits[0]
            more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
            found.append(
                RiskMatch(
                    path_pattern.category,
                    path_pattern.slug,
                    path_pattern.name,
                    glob,
                    _clip(path) + more,
                )
            )
    category = settings.kind_category(operation.kind)
    if category is not None:
        found.append(
            RiskMatch(
                category,
                _KIND_SLUG[category],
                f"declared {category.value} operation",
                f"kind={operation.kind}",
                str(operation.kind),
            )
        )
    return found


_SEPARATOR = re.compile(r"[;&|\n]")


def _enclosing_command(text: str, m: re.Match[str]) -> str:
    """The simple command(s) a match lies in, for showing to a person: the match and the
    text around it up to the nearest command separator on either side."""
    before = _SEPARATOR.split(text[: m.start()])[-1]
    after = _SEPARATOR.split(text[m.end() :])[0]
    return before + m.group() + after


def _describe(operation: Operation) -> str:
    if operation.command:
        return _clip(operation.command)
    if operation.name:
        return _clip(operation.name)
    if operation.paths:
        shown = ", ".join(operation.paths[:3])
        more = f" and {len(operation.paths) - 3} more" if len(operation.paths) > 3 else ""
        return _clip(f"change {shown}{more}")
    if operation.files_count is not None:
        return f"change {operation.files_count} files"
    return operation.kind or "operation"


_REASONS_SHOWN = 3


@attrs.frozen
class RiskTrigger:
    """Checkpoint before an operation that :func:`classify` finds high-risk."""

    settings: RiskSettings = attrs.field(factory=RiskSettings)
    name = "risk"
    events = frozenset({Event.BEFORE_OPERATION})

    def classify(self, operation: Operation) -> list[RiskMatch]:
        return classify(operation, self.settings)

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None:
        operation = activity.operation
        if activity.event is not Event.BEFORE_OPERATION or operation is None:
            return None
        matches = classify(operation, self.settings)
        if not matches:
            return None
        first = matches[0]
        description = _describe(operation)
        reason = f"before {description}: " + "; ".join(m.reason for m in matches[:_REASONS_SHOWN])
        if len(matches) > _REASONS_SHOWN:
            reason += f"; and {len(matches) - _REASONS_SHOWN} more"
        return CheckpointCall.of(
            CheckpointKind.RISK,
            now,
            trigger=f"risk:{first.category.value}",
            reason=reason,
            key_name=first.slug,
            operation=description,
        )


DEFAULT_SETTINGS = RiskSettings()
