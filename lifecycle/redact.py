"""Secrets out before anything is stored.

Every record goes through :func:`lifecycle.codec.encode` on its way to a store, and
``encode`` passes the JSON through :func:`redact_json`: so whichever front end
recorded the text (the Claude Code hook, the command line, the MCP server, an
application calling the library), a secret in it is stored as ``[redacted:KIND]``.

What is a secret: cloud keys (AWS, GCP, Azure), service tokens (GitHub, GitLab,
Slack, OpenAI, Anthropic, Stripe, npm, PyPI, Hugging Face, ...), JWTs, bearer and
basic ``Authorization`` values, ``password=`` / ``secret=`` / ``token=`` /
``api_key=`` assignments (environment exports and ``--password`` flags among them),
private key blocks, and the password of a URL with credentials. Hashes, UUIDs, git
SHAs and base64 data are not: each pattern is anchored on the shape the issuer
gives its secrets, not on how random a string looks.

Most text holds no secret, so each pattern has literal anchors (``AKIA``, ``ghp_``,
``password``, ...) and only the patterns whose anchor occurs are run: a 10 KB
checkpoint without one costs a few substring searches.

More patterns: :func:`add_pattern`, or ``$LIFECYCLE_REDACT_PATTERNS`` as a JSON
object ``{"kind": "regex", ...}`` (read once, at the first redaction).
"""

from __future__ import annotations

import _thread  # threading is more than one lock needs, on every hook
import json
import os
import re

TYPE_CHECKING = False  # no typing or collections.abc at run time: every hook imports this
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

#: What a secret becomes.
MARK = "[redacted:{kind}]"
#: Words whose assigned value is a secret (``DB_PASSWORD=...``, ``"api_key": "..."``):
#: the anchors of the assignment pattern, and its keyword.
_ASSIGNED_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "accesskey",
    "private_key",
    "private-key",
    "privatekey",
    "auth_key",
    "auth-key",
    "authkey",
    "credential",
    "pwd",
)
_NAME_RE = (
    r"(?:password|passwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key"
    r"|private[_\-]?key|auth[_\-]?key|credentials?|pwd)[A-Za-z0-9_\-]*"
)
#: A value in text or in JSON: stops at quotes, backslashes (JSON escapes), spaces and
#: the separators of a shell command or a query string.
_VALUE = r"[^\s\"'\\&;,|<>(){}\[\]`]"
#: Values of a secret-named assignment that are not secrets.
_NOT_A_VALUE = re.compile(
    r"(?i)(?:\d+|true|false|null|none|nil|undefined|required|optional|redacted|\*+|x+|\.\.\.)"
    r"|[$%]\{?[A-Za-z_][A-Za-z0-9_]*\}?.*|<[^>]*>?|\[redacted:.*"
)


class Pattern:
    """One kind of secret: a regex, the literal anchors one of which it needs, and how
    a match is replaced (the group to redact, or a function)."""

    def __init__(
        self,
        kind: str,
        regex: str,
        anchors: Iterable[str],
        *,
        group: int = 0,
        check: Callable[[re.Match[str]], bool] | None = None,
        flags: int = 0,
    ) -> None:
        self.kind = kind
        self.source = regex
        self.flags = flags
        self._regex: re.Pattern[str] | None = None
        self.anchors = tuple(a.lower() for a in anchors)
        self.encoded = tuple(a.encode() for a in self.anchors)
        self.group = group
        self.check = check

    @property
    def regex(self) -> re.Pattern[str]:
        """Compiled at first use: most runs of the hook need none of them."""
        if self._regex is None:
            self._regex = re.compile(self.source, self.flags)
        return self._regex

    def sub(self, text: str) -> str:
        mark = MARK.format(kind=self.kind)

        def replace(m: re.Match[str]) -> str:
            if self.check is not None and not self.check(m):
                return m.group(0)
            if self.group == 0:
                return mark
            whole, start = m.group(0), m.start(0)
            a, b = m.start(self.group) - start, m.end(self.group) - start
            return whole[:a] + mark + whole[b:]

        return self.regex.sub(replace, text)


def _assigned(m: re.Match[str]) -> bool:
    value = m.group("value")
    if len(value) < 4 or _NOT_A_VALUE.fullmatch(value):
        return False
    return m.string[m.end() : m.end() + 1] != "("  # code: ``token = tokenizer.next()``


def _flag(m: re.Match[str]) -> bool:
    """``--token VALUE``: a value of letters only is a word (``--token flag``)."""
    return _assigned(m) and not m.group("value").isalpha()


def _basic(m: re.Match[str]) -> bool:
    """``Basic xxx`` is a credential when it decodes to ``user:password``."""
    import base64  # here: most texts have no ``Basic`` value, and every hook imports this
    import binascii

    raw = m.group("b64")
    try:
        decoded = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and all(32 <= c < 127 for c in decoded)


PATTERNS: list[Pattern] = [
    Pattern(
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[^\"]*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$|(?=\"))",
        ["PRIVATE KEY"],
    ),
    Pattern(
        "aws-access-key",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
        ["AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA"],
    ),
    Pattern("gcp-api-key", r"\bAIza[0-9A-Za-z_\-]{35}", ["AIza"]),
    Pattern("gcp-oauth-token", r"\bya29\.[0-9A-Za-z_\-]{20,}", ["ya29."]),
    Pattern("azure-storage-key", r"(?i)(?<=AccountKey=)[A-Za-z0-9+/]{40,}={0,2}", ["AccountKey="]),
    Pattern("azure-sas-signature", r"(?<=[?&]sig=)[A-Za-z0-9%+/]{20,}={0,2}", ["sig="]),
    Pattern("azure-client-secret", r"\b[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}", ["Q~"]),
    Pattern(
        "github-token",
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}",
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
    ),
    Pattern("github-token", r"\bgithub_pat_[A-Za-z0-9_]{22,}", ["github_pat_"]),
    Pattern(
        "gitlab-token",
        r"\bgl(?:pat|dt|rt|ptt|ft|soat|cbt)-[A-Za-z0-9_\-]{20,}",
        ["glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-", "glcbt-"],
    ),
    Pattern("slack-token", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}", ["xox"]),
    Pattern(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}",
        ["hooks.slack.com/"],
    ),
    Pattern("anthropic-key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", ["sk-ant-"]),
    Pattern("openai-key", r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}", ["sk-"]),
    Pattern("stripe-key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}", ["_live_", "_test_"]),
    Pattern("stripe-webhook-secret", r"\bwhsec_[A-Za-z0-9]{20,}", ["whsec_"]),
    Pattern("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", ["npm_"]),
    Pattern("pypi-token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}", ["pypi-AgEI"]),
    Pattern("huggingface-token", r"\bhf_[A-Za-z]{34,}\b", ["hf_"]),
    Pattern("sendgrid-key", r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}", ["SG."]),
    Pattern("digitalocean-token", r"\bdo[por]_v1_[a-f0-9]{64}\b", ["_v1_"]),
    Pattern(
        "shopify-token",
        r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
        ["shpat_", "shpca_", "shppa_", "shpss_"],
    ),
    Pattern("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", ["eyJ"]),
    Pattern(
        "url-credentials",
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"'\\]*:(?P<pw>[^\s@/\"'\\]+)@",
        ["://"],
        group=1,
    ),
    Pattern(
        "bearer-token", r"(?i)\bbearer\s+(?P<t>[A-Za-z0-9._~+/\-]{12,}=*)", ["bearer"], group=1
    ),
    Pattern(
        "basic-auth",
        r"(?i)\bbasic\s+(?P<b64>[A-Za-z0-9+/]{8,}={0,2})",
        ["basic"],
        group=1,
        check=_basic,
    ),
    Pattern(
        "secret-flag",
        r"(?i)(?<![A-Za-z0-9])--?(?:password|passwd|token|secret|api-key|apikey|client-secret)(?:=|\s+)"
        rf"(?P<value>{_VALUE}+)",
        ["password", "passwd", "token", "secret", "api-key", "apikey"],
        group=1,
        check=_flag,
    ),
    Pattern(
        "secret-assignment",
        rf"(?i)(?:{_NAME_RE})(?:\\?[\"'])?\s*(?:=|:)\s*(?:\\?[\"'])?(?P<value>{_VALUE}+)",
        _ASSIGNED_WORDS,
        group=1,
        check=_assigned,
    ),
]
#: File names whose whole content is secret (``.env``, ``.env.local``, ``prod.env``, ...).
ENV_FILE = re.compile(
    r"(?:^|/)(?:\.env(?:\.[\w.\-]+)?|[\w.\-]+\.env|\.envrc|\.netrc|\.pgpass|\.npmrc|\.pypirc"
    r"|credentials(?:\.json)?|secrets?\.(?:json|ya?ml|toml))$"
)

_lock = _thread.allocate_lock()
_env_loaded = False
#: Pieces of JSON known to hold no secret, bounded in bytes (cleared past this).
CLEAN_CACHE_BYTES = 8 << 20
_clean: set[bytes] = set()
_clean_bytes = 0


def add_pattern(kind: str, regex: str, anchors: Iterable[str] = ()) -> None:
    """Redact what ``regex`` matches as ``[redacted:KIND]`` from now on (no anchors:
    the pattern runs on every text)."""
    global _clean_bytes
    PATTERNS.append(Pattern(kind, regex, anchors))
    _clean.clear()
    _clean_bytes = 0


#: How many patterns are built in (the rest were added).
BUILT_IN = len(PATTERNS)


def piecewise() -> bool:
    """Is redacting each JSON object of a document on its own, and the rest with each in
    place as ``0``, the same as redacting the document? True for the built-in patterns:
    no match of theirs takes in a ``{`` or ``}`` outside a string (the values they
    redact stop at quotes and braces), and each match holds one of its pattern's
    anchors, so where a pattern runs does not change what it finds. Added patterns
    promise neither, so with any, documents are redacted whole."""
    if not _env_loaded:
        _load_env()
    return len(PATTERNS) == BUILT_IN


def _load_env() -> None:
    global _env_loaded
    with _lock:
        if _env_loaded:
            return
        _env_loaded = True
        raw = os.environ.get("LIFECYCLE_REDACT_PATTERNS")
        if not raw:
            return
        from lifecycle.errors import InvalidSettings

        try:
            extra = json.loads(raw)
            if not isinstance(extra, dict):
                raise ValueError("not an object")
            for kind, regex in extra.items():
                add_pattern(str(kind), str(regex))
        except (ValueError, re.error) as exc:
            raise InvalidSettings(
                f'LIFECYCLE_REDACT_PATTERNS must be a JSON object {{"kind": "regex"}}: {exc}'
            ) from None


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``[redacted:KIND]``."""
    if not _env_loaded:
        _load_env()
    lowered = text.lower()
    if not _anchored(lowered.encode("utf-8", "surrogatepass")):
        return text  # no pattern's anchor in it: nothing to replace
    for pattern in PATTERNS:
        if not pattern.anchors or any(a in lowered for a in pattern.anchors):
            text = pattern.sub(text)
            lowered = text.lower()
    return text


def secret_kind(text: str) -> str | None:
    """The kind of the first secret :func:`redact` would replace in ``text``, else None."""
    if not _env_loaded:
        _load_env()
    lowered = text.lower()
    if not _anchored(lowered.encode("utf-8", "surrogatepass")):
        return None
    for pattern in PATTERNS:
        if (not pattern.anchors or any(a in lowered for a in pattern.anchors)) and (
            pattern.sub(text) != text
        ):
            return pattern.kind
    return None


class _Scan:
    """What the patterns imply for scanning JSON, derived once per set of patterns:
    ``anchors``, one regex for every anchor of every pattern, written as a trie so that
    each position tries one branch per next byte instead of every anchor (None: a
    pattern with no anchor runs on every text); ``outer`` and ``inner``, where JSON is
    cut into pieces and new pieces into fields (``{`` and ``,``, or quotes and no second
    cut when an added pattern's anchor holds either, so that no anchor is cut in two)."""

    def __init__(self) -> None:
        self.count = len(PATTERNS)
        words = {a for p in PATTERNS for a in p.encoded}
        always = any(not p.anchors for p in PATTERNS)
        self.anchors = None if always else re.compile(_trie(words))
        folded = {a.translate(_FOLD) for a in words}
        self.folded = None if always else re.compile(_trie(folded))
        held = any(c in a for a in words for c in (b"{", b","))
        self.outer, self.inner = (b'"', b"") if held else (b"{", b",")


#: Lower case, and every digit as ``0``: what :func:`redact_json` searches and remembers.
#: Text holding an anchor holds the anchor folded, so text whose folded form holds no
#: folded anchor holds no anchor; and a piece whose folded form was found clean stands
#: for every piece that folds the same (a checkpoint's new id, timestamps and key differ
#: from the last one's in their digits alone).
_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", b"abcdefghijklmnopqrstuvwxyz0000000000"
)

_scan: _Scan | None = None


def _scanning() -> _Scan:
    global _scan
    if _scan is None or _scan.count != len(PATTERNS):
        _scan = _Scan()
    return _scan


def _anchored(lowered: bytes) -> bool:
    """Could any pattern match in this (lower-cased) text?"""
    found = _scanning().anchors
    return found is None or found.search(lowered) is not None


def _trie(words: Iterable[bytes]) -> bytes:
    """A regex matching exactly the ``words``, with their common prefixes factored."""
    root: dict[int, Any] = {}
    for word in words:
        node = root
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}  # a word ends here

    def emit(node: dict[int, Any]) -> bytes:
        branches = [re.escape(bytes([b])) + emit(node[b]) for b in sorted(node) if b >= 0]
        if not branches:
            return b""
        if len(branches) == 1 and -1 not in node:
            return branches[0]
        body = b"(?:" + b"|".join(branches) + b")"
        return body + b"?" if -1 in node else body

    return emit(root)


def redact_json(raw: bytes) -> bytes:
    """JSON bytes with the secrets in their strings redacted (the replacement holds no
    quote or backslash, so the JSON stays valid).

    Successive records repeat most of their content (a checkpoint holds the one before
    it and a little more), so the pieces found clean are remembered and only new ones
    are searched. The pieces are what lies between two ``{`` (about one per record in a
    list: a task, a decision, a file), and a new one is cut again at ``,`` (about one
    field each), so what is searched is the fields that changed: a checkpoint costs a
    split and a set lookup per record and a search of its new fields. What is searched
    and remembered is the text folded (``_FOLD``: lower case, digits as ``0``), so a
    field that differs from one seen before in its digits alone is not new. No anchor holds
    a ``{`` or a ``,`` (else the pieces are the strings, cut at quotes), so no anchor
    is ever cut in two, and a piece with an anchor in it is never remembered: the
    patterns run on the whole text whenever any part of it has one, exactly as if
    nothing were remembered."""
    global _clean_bytes
    if not _env_loaded:
        _load_env()
    scan = _scanning()
    outer, inner = scan.outer, scan.inner
    fresh = set(raw.translate(_FOLD).split(outer)).difference(_clean)
    if not fresh:
        return raw
    fields = set(inner.join(fresh).split(inner)).difference(_clean) if inner else fresh
    found = scan.folded
    if found is not None and found.search(outer.join(fields)) is None:
        size = sum(map(len, fresh)) + sum(map(len, fields))
        if _clean_bytes + size > CLEAN_CACHE_BYTES:
            _clean.clear()
            _clean_bytes = 0
        _clean.update(fresh)
        _clean.update(fields)
        _clean_bytes += size
        return raw
    text = raw.decode("utf-8")
    out = redact(text)
    return raw if out == text else out.encode("utf-8")


def is_secret_file(path: str) -> bool:
    """A file whose content is secret as a whole (``.env`` and its kin)."""
    return ENV_FILE.search(path.replace("\\", "/")) is not None
