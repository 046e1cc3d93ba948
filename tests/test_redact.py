# ruff: noqa: E501  (the corpus keeps one secret per line)
"""Redaction: every secret shape in the corpus is stored as ``[redacted:KIND]``, every
look-alike (hashes, UUIDs, SHAs, base64 data, ordinary prose and code) is kept."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lifecycle import codec, redact
from lifecycle.records import Checkpoint, ErrorContext, WorkState

A40 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HEX64 = hashlib.sha256(b"x").hexdigest()
B36 = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
B64_USERPASS = base64.b64encode(b"deploy:hunter2-prod").decode()
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq9\nq83hd72Hd\n"
    "-----END RSA PRIVATE KEY-----"
)

#: (text with a secret in it, the secret)
SECRETS: list[tuple[str, str]] = [
    ("aws key AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"),
    ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (f"export AWS_SECRET_ACCESS_KEY={A40} && rm -rf build", A40),
    (f"aws_secret_access_key = {A40}", A40),
    (f'{{"aws_secret_access_key": "{A40}"}}', A40),
    (
        "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ",
        "IQoJb3JpZ2luX2VjEJr",
    ),
    ("key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("curl -H 'x: ya29.a0AfH6SMBx3kq9LQWm2N4rT7yZ_p0' api", "ya29.a0AfH6SMBx3kq9LQWm2N4rT7yZ_p0"),
    (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + "Zm9v" * 22 + "==;",
        "Zm9v" * 22,
    ),
    (
        "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=AbCdEf0123456789GhIjKlMnOp%2BqR",
        "AbCdEf0123456789GhIjKlMnOp",
    ),
    ("AZURE_CLIENT_SECRET=abc8Q~" + "x" * 34, "abc8Q~" + "x" * 34),
    (
        "client secret is Xy78Q~AbcdefghijklmnopqrstuvwxyzABCDE",
        "Xy78Q~AbcdefghijklmnopqrstuvwxyzABCDE",
    ),
    ("git clone https://ghp_" + B36 + "@github.com/o/r", "ghp_" + B36),
    ("token gho_" + B36, "gho_" + B36),
    ("GH ghs_" + B36, "ghs_" + B36),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
        "github_pat_11ABCDEFG0123456789",
    ),
    ("glpat-xYz12345678901234567", "glpat-xYz12345678901234567"),
    ("CI uses glrt-AbCdEfGhIjKlMnOpQrStUv", "glrt-AbCdEfGhIjKlMnOpQrStUv"),
    (
        "slack xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
    ),
    ("xoxp-11111111111-22222222222-AbCd", "xoxp-11111111111-22222222222-AbCd"),
    (
        "post to https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "T0000000/B0000000/XXXXXXXX",
    ),
    (
        "OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ),
    ("openai sk-AbCdEfGhIjKlMnOpQrStT3BlbkFJAbCdEfGhIjKlMnOp", "sk-AbCdEfGhIjKlMnOpQrStT3BlbkFJ"),
    (
        "ANTHROPIC_API_KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789_abc",
        "sk-ant-api03-AbCdEfGhIjKlMnOp",
    ),
    (
        "claude uses sk-ant-admin01-ZyXwVuTsRqPoNmLkJiHgFeDcBa987654",
        "sk-ant-admin01-ZyXwVuTsRqPoNmLkJiHg",
    ),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("rk_test_51H8a9bC0dE1fG2hI3jK4lM5", "rk_test_51H8a9bC0dE1fG2hI3jK4lM5"),
    ("whsec_AbCdEfGhIjKlMnOpQrStUvWx", "whsec_AbCdEfGhIjKlMnOpQrStUvWx"),
    ("//registry.npmjs.org/:_authToken=npm_" + B36, "npm_" + B36),
    (
        "pypi-AgEIcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMAACKlsz",
        "pypi-AgEIcHlwaS5vcmcCJDAwMDAwMDAw",
    ),
    ("HF_TOKEN hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"),
    (
        "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",
        "SG.ngeVfQFYQlKU0ufo8x5d1A",
    ),
    ("dop_v1_" + HEX64, "dop_v1_" + HEX64),
    ("shpat_" + HEX64[:32], "shpat_" + HEX64[:32]),
    ("TWILIO_AUTH_TOKEN=" + HEX64[:32], HEX64[:32]),
    (f"session={JWT}", JWT),
    (f"Authorization: Bearer {JWT}", JWT),
    (
        "curl -H 'Authorization: Bearer abcdef0123456789abcdef' https://api",
        "abcdef0123456789abcdef",
    ),
    ("authorization: bearer 7f8e9d0c1b2a3f4e5d6c7b8a", "7f8e9d0c1b2a3f4e5d6c7b8a"),
    (f"Authorization: Basic {B64_USERPASS}", B64_USERPASS),
    ("postgresql://admin:s3cr3t-Pa55@db.internal:5432/app", "s3cr3t-Pa55"),
    ("https://user:hunter2hunter2@example.com/repo.git", "hunter2hunter2"),
    ("redis://:redispass123@cache:6379/0", "redispass123"),
    ("password=hunter2", "hunter2"),
    ("DB_PASSWORD='correct-horse-battery'", "correct-horse-battery"),
    ('{"password": "p@ssw0rd!"}', "p@ssw0rd!"),
    ("secret: AbC123xyz789", "AbC123xyz789"),
    ("client_secret=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("export GITHUB_TOKEN=abcdef123456 && make", "abcdef123456"),
    ("api_key=1a2b3c4d5e6f", "1a2b3c4d5e6f"),
    ("apiKey: 'Zz9Yy8Xx7Ww6'", "Zz9Yy8Xx7Ww6"),
    ("mysql -u root --password=Sup3rS3cret db", "Sup3rS3cret"),
    ("tool --token abcd1234efgh5678", "abcd1234efgh5678"),
    (PEM, "MIIEpAIBAAKCAQEA7bq9"),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
    ),
    (
        "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC (truncated",
        "MIIEvgIBADANBgkqhkiG9w0BAQEFAASC",
    ),
]

#: Text that looks random or secret-adjacent and must be kept as it is.
LOOKALIKES: list[str] = [
    HEX64,
    hashlib.sha1(b"x").hexdigest(),
    hashlib.md5(b"x").hexdigest(),
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "git checkout 8d45cb6",
    str(uuid.UUID(int=12345678901234567890)),
    "session-20261201T224535.743889Z",
    "cp-20261201T224538.471618Z",
    "checkpoints/risk-deletion-20261201T224538.471618Z",
    "checkpoints/task-7-20250131T143000.000000Z",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    base64.b64encode(bytes(range(48))).decode(),
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "integrity sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUR",
    "max_tokens=4096",
    "token_count: 12",
    '{"tokens": [1, 2, 3]}',
    "password=$DB_PASSWORD",
    "password: ${PASSWORD}",
    "api_key=<your-api-key>",
    "PASSWORD=",
    "secret: true",
    "Use the --token flag to pass a token",
    "the password is stored in the keychain",
    "Basic usage: run make",
    "Basic authentication is disabled",
    "Bearer tokens expire after an hour",
    "https://example.com/path?query=1",
    "https://github.com/anthropics/claude-code",
    "git@github.com:org/repo.git",
    "ssh://git@host/repo",
    "mailto:someone@example.com",
    "user@example.com wrote",
    "ls no-such-dir",
    "rm -rf build/",
    "pytest -q tests/test_x.py",
    "risk-check: sk-learn style names like task-list",
    "the task-runner tasks are done",
    "AKIA is the prefix of AWS access key ids",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    "def get_token(self): return self._token",
    "token = tokenizer.next()",
    "secret_santa.py",
    "KEY_LENGTH = 32",
    "primary_key=True",
    "monkey_patch(x)",
    "0x7fffffffffffffff",
    "3.14159265358979323846264338327950288419716939937510",
    "ghp_ alone is only a prefix",
    "xoxo hugs",
    "SKU12345",
    "eyJ is how base64 JSON starts",
]


def test_the_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 50
    assert len(LOOKALIKES) >= 50


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_every_secret_shape_is_redacted(text: str, secret: str) -> None:
    out = redact.redact(text)
    assert secret not in out
    assert "[redacted:" in out


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_in_stored_json_are_redacted_and_the_json_stays_valid(
    text: str, secret: str
) -> None:
    raw = json.dumps({"command": text, "nested": [text]}).encode()
    out = redact.redact_json(raw)
    assert secret not in out.decode()
    assert json.loads(out)["command"].count("[redacted:") >= 1


@pytest.mark.parametrize("text", LOOKALIKES)
def test_look_alikes_are_kept(text: str) -> None:
    assert redact.redact(text) == text
    raw = json.dumps({"value": text}).encode()
    assert redact.redact_json(raw) == raw


def test_the_kind_is_named() -> None:
    assert redact.redact("AKIAIOSFODNN7EXAMPLE") == "[redacted:aws-access-key]"
    assert redact.redact("password=hunter2") == "password=[redacted:secret-assignment]"
    assert redact.redact("https://u:pw1234@h/") == "https://u:[redacted:url-credentials]@h/"


def test_a_record_is_stored_without_the_secret_whoever_wrote_it() -> None:
    # codec.encode is the one way a record reaches a store (hook, CLI, MCP, library)
    cp = Checkpoint(
        id="cp-1",
        timestamp="2026-01-01T00:00:00Z",
        operation=f"export AWS_SECRET_ACCESS_KEY={A40} && rm -rf build",
        state=WorkState(
            errors=(ErrorContext(error=f"curl -H 'Authorization: Bearer {JWT}' failed"),)
        ),
    )
    body = codec.encode(cp).decode()
    assert A40 not in body and JWT not in body
    back = codec.decode(Checkpoint, body.encode())
    assert (
        back.operation
        == "export AWS_SECRET_ACCESS_KEY=[redacted:secret-assignment] && rm -rf build"
    )


def test_extra_patterns_are_configurable() -> None:
    before = len(redact.PATTERNS)
    try:
        redact.add_pattern("internal-ticket-token", r"\bTKT-[0-9]{8}\b", ["TKT-"])
        assert redact.redact("see TKT-12345678") == "see [redacted:internal-ticket-token]"
    finally:
        del redact.PATTERNS[before:]


def test_env_like_files_are_secret_as_a_whole() -> None:
    for path in (
        ".env",
        "app/.env.local",
        "prod.env",
        ".envrc",
        "/home/u/.netrc",
        "config/secrets.yaml",
    ):
        assert redact.is_secret_file(path), path
    for path in ("environment.py", "src/env.ts", "README.md", ".envoy/config"):
        assert not redact.is_secret_file(path), path


ANCHORS = sorted({a for p in redact.PATTERNS for a in p.encoded})


@given(
    st.lists(
        st.one_of(
            st.sampled_from(ANCHORS).flatmap(lambda a: st.integers(1, len(a)).map(lambda n: a[:n])),
            st.binary(max_size=8),
        ),
        max_size=12,
    ).map(b"".join)
)
def test_the_anchor_scan_finds_exactly_the_anchors(text: bytes) -> None:
    # one regex scan (a trie of the anchors) stands for a substring search of each
    assert redact._anchored(text) == any(a in text for a in ANCHORS)


_FIELD_TEXT = st.sampled_from(
    ["parser", "fix the tokenizer", f"password={B36}", "api_key", B36, "{", ",", "ghp_", ""]
)
_RECORD = st.dictionaries(st.sampled_from(["id", "note", "api_key", "x,y", "a{"]), _FIELD_TEXT)


@given(st.lists(st.lists(_RECORD, max_size=4), min_size=1, max_size=5))
@example([[{"id": "parser"}], [{"id": "parser"}, {"note": f"password={B36}"}]])
@example([[{"id": "a{"}], [{"id": "a{", "note": B36}], [{"api_key": B36}]])
def test_what_is_remembered_never_changes_what_is_redacted(
    docs: list[list[dict[str, str]]],
) -> None:
    # successive documents share records; whatever pieces are remembered from the ones
    # before, each is redacted exactly as the patterns redact its whole text (a secret
    # cut across a piece boundary included)
    redact._clean.clear()
    for doc in docs:
        raw = json.dumps({"tasks": doc, "context": {"k": doc[:1]}}).encode()
        assert redact.redact_json(raw) == redact.redact(raw.decode()).encode()


@pytest.mark.parametrize(
    "name",
    ["privatekey", "private-key", "authkey", "auth-key", "auth_key", "apikey", "accesskey"],
)
def test_every_name_the_assignment_pattern_knows_is_redacted_on_its_own(name: str) -> None:
    # each match holds an anchor of its pattern: no name is found only when another
    # anchor happens to be in the same text
    assert redact.redact(f"{name}=Zq81mN0pLw2") == f"{name}=[redacted:secret-assignment]"


# -- keys: stored as they are, so never a secret in one -----------------------------------

GHP = "ghp_" + B36


@pytest.mark.parametrize(("text", "secret"), SECRETS[:12])
def test_secret_kind_names_what_redact_replaces(text: str, secret: str) -> None:
    assert redact.secret_kind(text) is not None
    assert redact.secret_kind(redact.redact(text)) is None


@pytest.mark.parametrize(
    "text", ["T1", "rm -rf build", "token-refresh", HEX64, str(uuid.UUID(int=7))]
)
def test_secret_kind_is_none_for_text_without_a_secret(text: str) -> None:
    assert redact.secret_kind(text) is None


def test_a_task_or_operation_holding_a_secret_names_its_checkpoint_redacted(tmp_path) -> None:
    """The checkpoint key is built from the task id (or the risky command): built from
    the redacted text, no file name holds the token, and the pointer names the key."""
    from lifecycle import SessionManager

    m = SessionManager(store=f"file://{tmp_path / 's'}", snapshot="never")
    m.start_session(restore=False)
    m.complete_task(GHP, "push the release", priority="high")
    task_cp = m.last_checkpoint
    assert task_cp is not None
    m.before_operation(f"git push https://x:{GHP}@github.com/o/r --force")
    risk_cp = m.last_checkpoint
    assert risk_cp is not None and risk_cp.id != task_cp.id
    names = [p.name for p in (tmp_path / "s").rglob("*")]
    assert not [n for n in names if B36 in n]
    assert any(n.startswith("task-redacted-github-token-") for n in names)
    assert not [
        p for p in (tmp_path / "s").rglob("*") if p.is_file() and B36.encode() in p.read_bytes()
    ]
    assert m.read_checkpoint().id == risk_cp.id  # the pointer names a key that exists


def test_a_learning_named_by_a_secret_is_refused_and_nothing_is_written() -> None:
    from lifecycle import SessionManager, open_store
    from lifecycle.errors import InvalidKey

    store = open_store("memory://")
    m = SessionManager(store=store)
    m.start_session(restore=False)
    before = store.list_keys("")
    with pytest.raises(InvalidKey) as caught:
        m.capture_learning(type="pattern", key=GHP, content="how we push")
    assert B36 not in str(caught.value)
    assert "[redacted:github-token]" in str(caught.value)
    assert store.list_keys("") == before
    # a name with an anchor word but no secret is kept as it is
    assert m.capture_learning(type="pattern", key="token-refresh", content="c").success


def test_a_key_holding_a_secret_from_before_can_still_be_read_and_deleted() -> None:
    """Only writes are refused: an older store's key stays readable and removable."""
    from lifecycle.stores import ProjectStore, open_store

    raw = open_store("memory://")
    raw.put(f"p/learning/patterns/{GHP}", b'{"x": 1}')
    project = ProjectStore(raw, "p")
    entry = project.get(f"learning/patterns/{GHP}")
    assert entry is not None and entry.value == b'{"x": 1}'
    assert project.delete(f"learning/patterns/{GHP}")
    assert raw.list_keys("") == []


def test_a_piece_remembered_clean_stands_only_for_pieces_that_fold_the_same() -> None:
    # what is remembered is folded (lower case, digits as 0): a field that differs from a
    # clean one in its digits alone is clean too, and no anchor with digits is lost
    redact._clean.clear()
    for i in range(3):
        raw = json.dumps({"id": f"cp-2026010{i}-00000{i}", "n": i}).encode()
        assert redact.redact_json(raw) is raw
    token = "ya29." + "a1B2c3D4e5F6g7H8i9J0k"
    for text in ("ya11.short", token, "dop_v1_" + "ab12" * 16):
        raw = json.dumps({"id": "cp-20260101-000001", "note": text}).encode()
        assert redact.redact_json(raw) == redact.redact(raw.decode()).encode()
    assert "redacted" in redact.redact_json(json.dumps({"note": token}).encode()).decode()
