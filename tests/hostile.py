"""Hostile inputs and the checks they must pass, shared by the tests and the fuzz runner.

Each ``check_*`` function takes one input and raises :class:`Escape` when the
package lets something out that it must not: an exception that is not one of its
typed errors, a traceback, a secret in a message, a write outside the store's root.
The strategies generate the inputs; ``tests/test_hostile_input.py`` runs them under
the hypothesis profile, ``python -m tests.fuzz_run`` runs many more and counts.
"""

from __future__ import annotations

import os
import random
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import strategies as st

from lifecycle import codec
from lifecycle.errors import LifecycleError
from lifecycle.records import RECORD_KINDS

ROOT = Path(__file__).resolve().parents[1]
SECRET = "S3cretPassw0rd-do-not-print"
CLI_TIMEOUT = 60
#: Exit codes cli.py's docstring documents (70, an internal error, is an escape).
CLI_EXIT_CODES = frozenset({0, 1, 2, 3, 4, 5, 6, 130})


class Escape(AssertionError):
    """Something got out that must not."""


# -- inputs ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)


def _samples() -> dict[str, dict[str, Any]]:
    """One valid stored record of each kind, as a dict, to mutate."""
    from datetime import UTC, datetime

    from lifecycle import SessionManager, open_store

    at = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)
    m = SessionManager(store=open_store("memory://"), project="p", clock=lambda: at)
    m.start_session(restore=False)
    m.add_task("T1", "task", status="in_progress")
    m.record_decision("d", rationale="r")
    m.record_file_change("a.py", ["edit"], changes=3)
    m.error_recovered("boom", ["retry"])
    cp = m.create_checkpoint(phase="P", progress={"n": 1}, context={"k": "v"})
    m.capture_learning(type="pattern", key="x", content="c")
    m.save_context()
    found: dict[str, dict[str, Any]] = {}
    for ended in (False, True):  # session/context exists until the session ends
        if ended:
            m.end_session()
        for entry in m.store.scan(""):
            data = orjson.loads(entry.value)
            found.setdefault(data["kind"], data)
    assert cp.key is not None
    # Kinds a plain session does not write (summaries, project state) come from the
    # schema fixtures when the tree has them; otherwise a bare header to mutate.
    fixtures = ROOT / "tests" / "fixtures" / "v1"
    for kind in RECORD_KINDS:
        if kind not in found:
            path = fixtures / f"{kind}.json"
            found[kind] = (
                orjson.loads(path.read_bytes())
                if path.exists()
                else {"kind": kind, "schema_version": 1}
            )
    return found


SAMPLES = _samples()


@st.composite
def mutated_records(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid record of some kind with a few fields (at any depth) replaced, dropped or added."""
    kind = draw(st.sampled_from(sorted(SAMPLES)))
    data: Any = orjson.loads(orjson.dumps(SAMPLES[kind]))
    for _ in range(draw(st.integers(1, 4))):
        node = data
        # walk down a random path
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            child_key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            child = node[child_key]
            if not isinstance(child, dict | list) or not child:
                break
            node = child
        if isinstance(node, dict) and node:
            field = draw(st.sampled_from(sorted(node)))
            action = draw(st.sampled_from(["replace", "drop", "add"]))
            if action == "replace":
                node[field] = draw(json_values)
            elif action == "drop":
                del node[field]
            else:
                node[draw(st.text(max_size=8))] = draw(json_values)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
    return kind, orjson.dumps(data)


def raw_records() -> st.SearchStrategy[tuple[str, bytes]]:
    """Record bytes of every sort: mutated records, any JSON, arbitrary bytes."""
    kinds = st.sampled_from(sorted(RECORD_KINDS))
    return (
        mutated_records()
        | st.tuples(kinds, json_values.map(orjson.dumps))
        | st.tuples(kinds, st.binary(max_size=200))
    )


keys_text = (
    st.text(max_size=80)
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._-~\\\x00 ", max_size=60)
    | st.from_regex(
        r"(session|checkpoints|learning|memories|\.\.|)(/[a-z0-9.~_-]{0,12}){0,5}", fullmatch=True
    )
    | st.from_regex(r"checkpoints/(auto-|recovery-)?\d{8}T\d{6}\.\d{6}Z", fullmatch=True)
)

_SAFE = "abcdefghijklmnopqrstuvwxyz0123456789._-=&?#:@+ %"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CLOSED_PORT = _closed_port()


@st.composite
def store_urls(draw: st.DrawFn) -> str:
    """Store URLs; relative locations only (a URL is configuration: an absolute path or
    ``~`` is where the user asked to write). PostgreSQL ones carry :data:`SECRET`."""
    tail = draw(st.text(alphabet=_SAFE, max_size=30).filter(lambda t: ".." not in t))
    scheme = draw(
        st.sampled_from(
            ["file", "sqlite", "memory", "postgresql", "postgres", "fallback", "nope", "FILE", ""]
        )
    )
    if scheme in ("postgresql", "postgres"):
        user = draw(st.text(alphabet=_SAFE.replace("@", "").replace(":", ""), max_size=8))
        port = draw(st.sampled_from([str(CLOSED_PORT), "", "0", "99999", "x"]))
        return f"{scheme}://{user}:{SECRET}@127.0.0.1:{port}/{tail}"
    if scheme == "sqlite":
        return f"sqlite:///{tail}" if draw(st.booleans()) else f"sqlite://{tail}"
    if scheme == "fallback":
        shape = draw(st.integers(0, 2))
        if shape == 2:  # a primary with a password, percent-encoded (once or twice)
            primary = quote(f"postgresql://u:{SECRET}@127.0.0.1:{CLOSED_PORT}/db", safe="")
            primary = quote(primary, safe="") if draw(st.booleans()) else primary
            return f"fallback://?primary={primary}&local={tail}&{draw(_odd)}"
        return (
            f"fallback://?primary=memory%3A%2F%2F&local={tail}" if shape else f"fallback://{tail}"
        )
    url = f"{scheme}://{tail}" if scheme else tail
    return url + draw(_odd) if draw(st.booleans()) else url


#: What the audit put into URLs: NUL (raw and %00), unbalanced brackets, a user and
#: password where none belongs, a surrogate (a path that is not UTF-8), bad escapes.
_odd = st.sampled_from(
    ["", "%00", "\x00", "[", "]", "[x", "u:pw@", "%ff", "\udcff", "%", "%zz", ":99999", "#x", "?x"]
)


#: Argument vocabulary for the command line: subcommands, options, values.
CLI_WORDS = (
    *("demo", "diagram", "verify", "session", "start", "end", "checkpoint", "save", "learn"),
    *("status", "report", "history", "prune", "hook", "claude", "install", "mcp"),
    *("--store", "--project", "--format", "--depth", "--output", "-o", "--check", "--write"),
    *("--dir", "--help", "--version", "json", "yaml", "text", "mermaid", "dot", "svg", "png"),
    *("-1", "0", "3", "65", "99999999999999999999", "--", "-", "=", "file://st", "memory://"),
    *(f"postgresql://u:{SECRET}@127.0.0.1:{CLOSED_PORT}/db", "sqlite:///s.db", "nope://x"),
)


def cli_args() -> st.SearchStrategy[list[str]]:
    word = st.sampled_from(CLI_WORDS) | st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00/~"), max_size=12
    ).filter(lambda t: ".." not in t)
    return st.lists(word, max_size=7)


# -- checks ---------------------------------------------------------------------------


def check_decode(kind: str, raw: bytes) -> None:
    """codec.decode of any bytes: a record, or one of the package's typed errors."""
    try:
        codec.decode(RECORD_KINDS[kind], raw, key="k")
    except LifecycleError:
        return
    except Exception as exc:
        raise Escape(f"decode({kind}, {raw[:200]!r}) raised {type(exc).__name__}: {exc}") from exc


def check_key(key: str, store: Any) -> None:
    """A key through the grammar and a real store: a typed error or a write inside the root."""
    from lifecycle import keys
    from lifecycle.stores.base import ProjectStore

    try:
        keys.validate(key)
        keys.parse_checkpoint_key(key)
        keys.suggest(key)
        project = ProjectStore(store, "p")
        project.put(key, b"v")
        assert project.get(key) is not None
        project.list_keys(key.rsplit("/", 1)[0] + "/" if "/" in key else "")
        project.delete(key)
    except LifecycleError:
        pass
    except Exception as exc:
        raise Escape(f"key {key!r} raised {type(exc).__name__}: {exc}") from exc
    try:
        store.put(key, b"v")
        store.get(key)
        store.delete(key)
    except LifecycleError:
        pass
    except Exception as exc:
        raise Escape(f"raw key {key!r} raised {type(exc).__name__}: {exc}") from exc


def check_url(url: str) -> None:
    """open_store(url): a store, or a typed error that does not show the password."""
    from lifecycle import open_store

    try:
        store = open_store(url)
    except LifecycleError as exc:
        if SECRET in str(exc):
            raise Escape(f"open_store({url!r}) error shows the password: {exc}") from exc
        return
    except Exception as exc:
        raise Escape(f"open_store({url!r}) raised {type(exc).__name__}: {exc}") from exc
    try:
        if SECRET in store.url or SECRET in repr(store):
            raise Escape(f"store {url!r} shows the password in url/repr")
    finally:
        store.close()


def snapshot(folder: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` (but ``skip``) with its size and mtime."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        if skip is not None and Path(dirpath) == skip:
            dirnames.clear()
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path == skip:
                continue
            info = path.lstat()
            found[str(path)] = (info.st_size, info.st_mtime_ns)
    return found


def run_cli(args: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(cwd),
        "LIFECYCLE_STORE": "file://.lifecycle",
    }
    env.pop("LIFECYCLE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def check_cli(args: list[str], cwd: Path, stdin: bytes = b"") -> None:
    """``python -m lifecycle ARGS``: a documented exit code, no traceback, no secret."""
    result = run_cli(args, cwd, stdin)
    err = result.stderr.decode(errors="replace")
    out = result.stdout.decode(errors="replace")
    if result.returncode not in CLI_EXIT_CODES:
        raise Escape(f"lifecycle {args!r} exited {result.returncode}: {err[-1500:]}")
    if "Traceback" in err:
        raise Escape(f"lifecycle {args!r} printed a traceback: {err[-1500:]}")
    # argparse's usage errors echo the argument the user typed where it does not belong
    # ("unrecognized arguments: ..."); anything else must never show the password.
    usage_echo = result.returncode == 2 and err.rstrip().endswith("--help)")
    if (SECRET in err and not usage_echo) or SECRET in out:
        raise Escape(f"lifecycle {args!r} printed the password: {err[-500:]}")


# -- front ends that arrive from another branch (hook, MCP) ------------------------------


def agent_commands() -> set[str]:
    """Subcommands ``lifecycle.commands.agents`` registers (``hook``, ``mcp``) on this tree."""
    import argparse

    from lifecycle.commands import agents

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    agents.register(sub, lambda p: None)
    return set(sub.choices)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: odd numbers, odd strings (paths, huge, control characters)."""
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, -(2**63), 2**64 - 1, rng.randint(-(10**6), 10**6)])
    if kind == 3:
        return rng.choice([0.0, -0.0, 1e308, -1e-308, rng.uniform(-1e6, 1e6)])
    if kind == 4:
        return rng.choice(
            [
                "",
                "../../etc/passwd",
                "/etc/passwd",
                "learning/patterns/x",
                "checkpoints/latest",
                "x" * rng.choice([1, 200, 100_000]),
                "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(20))),
                "\x00\n\r\t",
                SECRET,
            ]
        )
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        "".join(rng.choice("abcxyz_") for _ in range(rng.randrange(1, 6))): random_json(
            rng, depth + 1
        )
        for _ in range(rng.randrange(4))
    }


def tool_arguments(rng: random.Random, schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a tool: its own parameter names (mostly) with random values."""
    names = list(schema.get("properties", {}))
    args = {name: random_json(rng) for name in names if rng.random() < 0.8}
    if rng.random() < 0.3:
        args[rng.choice(["extra", "__class__", "key", ""])] = random_json(rng)
    return args


async def fuzz_mcp(store_url: str, cwd: Path, calls: int, seed: int) -> tuple[int, list[str]]:
    """Call every tool of ``lifecycle mcp`` ``calls`` times with random arguments.

    Returns (calls made, escapes): a result showing a traceback, or a call that fails
    at the protocol level (the server died), is an escape. A tool error is an answer."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    rng = random.Random(seed)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "lifecycle", "mcp", "--store", store_url],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(cwd)},
        cwd=str(cwd),
    )
    tried, escapes = 0, []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        if not tools:
            return 0, ["lifecycle mcp exposes no tools"]
        for _ in range(calls):
            for tool in tools:
                schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None)
                args = tool_arguments(rng, dict(schema or {}))
                tried += 1
                try:
                    result = await session.call_tool(tool.name, args)
                except Exception as exc:
                    escapes.append(f"{tool.name}({args!r:.200}): {type(exc).__name__}: {exc}")
                    return tried, escapes  # the session is unusable after this
                text = " ".join(getattr(c, "text", "") for c in result.content)
                if "Traceback" in text:
                    escapes.append(f"{tool.name}({args!r:.200}): {text[:300]}")
        await session.list_tools()  # still answering
    return tried, escapes


# -- hostile store folders: what another process (or user) may leave where a record is --

#: What the audit planted in a file store: a FIFO, a device (``/dev/zero``'s: reads never
#: end), a folder, a symbolic link (to a file and to a folder outside the store), a sparse
#: file far larger than its header, a truncated file, a flipped bit, a record from a newer
#: lifecycle, an empty file, garbage.
SHAPES = (
    *("fifo", "device", "folder", "link-file", "link-folder", "sparse", "truncated"),
    *("flip", "future", "empty", "garbage"),
)
#: Every step of one planted-store check must end within this many seconds (a hang is
#: an escape).
PLANTED_TIMEOUT = 20


def planted_cases() -> st.SearchStrategy[tuple[int, str, int]]:
    """(which record file, which shape, which bit to flip or where to cut)."""
    return st.tuples(st.integers(0, 10_000), st.sampled_from(SHAPES), st.integers(0, 1 << 20))


def planted_template(folder: Path) -> Path:
    """A file store holding what a session writes: a context, pointers, checkpoints, a
    learning, summaries (the first session ended, the second is open)."""
    from datetime import UTC, datetime, timedelta

    from lifecycle import SessionManager
    from lifecycle.stores.file import FileStore

    root = folder / "template"
    at = [datetime(2026, 1, 25, 12, 0, tzinfo=UTC)]

    def clock() -> datetime:
        at[0] += timedelta(seconds=1)
        return at[0]

    store = FileStore(root)
    m = SessionManager(store=store, project="p", clock=clock)
    m.start_session(restore=False)
    m.add_task("T1", "task")
    m.create_checkpoint(phase="Phase 1", progress={"n": 1})
    m.capture_learning(type="pattern", key="x", content="c")
    m.end_session()
    m = SessionManager(store=store, project="p", clock=clock)
    m.start_session(restore=True)
    m.add_task("T2", "task")
    m.create_checkpoint(phase="Phase 2", progress={"n": 2})
    m.save_context()
    return root


def _plant(path: Path, shape: str, n: int, outside: Path) -> None:
    data = path.read_bytes()
    if shape in ("fifo", "device", "folder", "link-file", "link-folder"):
        path.unlink()
        if shape == "fifo":
            os.mkfifo(path, 0o600)
        elif shape == "device":
            try:  # /dev/zero's numbers; making a device node needs root (CAP_MKNOD)
                os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
            except PermissionError:
                path.symlink_to("/dev/zero")
        elif shape == "folder":
            path.mkdir()
        elif shape == "link-file":
            path.symlink_to(outside / "bystander.txt")
        else:
            path.symlink_to(outside)
    elif shape == "sparse":
        with path.open("r+b") as f:
            f.truncate(2 * 1024**3)
    elif shape == "truncated":
        path.write_bytes(data[: n % max(1, len(data))])
    elif shape == "flip":
        flipped = bytearray(data)
        bit = n % (8 * len(data))
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
    elif shape == "future":
        from lifecycle.stores.file import decode_record, encode_record

        version, value = decode_record("k", data)
        record = orjson.loads(value)
        record["schema_version"] = 999
        path.write_bytes(encode_record(version, orjson.dumps(record)))
    elif shape == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(random.Random(n).randbytes(n % 4096))


class _Hang(Exception):
    pass


def check_planted(case: tuple[int, str, int], template: Path, work: Path, outside: Path) -> None:
    """Every front-end step on a store with ``case`` planted: typed errors only, bounded in
    time, nothing outside the store changed (``outside`` holds a bystander and a
    ``.x.rec.tmp`` that a sweep through a link would delete)."""
    import shutil
    import signal

    from lifecycle import SessionManager
    from lifecycle.integrations.live import end_open_session, live_session
    from lifecycle.stores.file import FileStore

    which, shape, n = case
    root = work / "planted"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root, symlinks=True)
    files = sorted(p for p in root.rglob("*.rec"))
    target = files[which % len(files)]
    _plant(target, shape, n, outside)
    if shape == "link-folder" and n % 2:  # and a crash marker pointing the sweep at it
        (root / ".lock").write_text(os.path.relpath(target.parent, root) + "\n")

    def alarm(_signum: int, _frame: Any) -> None:
        raise _Hang

    steps = (
        ("attach", lambda m: m.attach()),
        ("start", lambda m: m.start_session(restore=True)),
        ("checkpoint", lambda m: m.create_checkpoint(phase="P")),
        ("read", lambda m: m.read_checkpoint()),
        ("list", lambda m: m.list_checkpoints()),
        ("end", lambda m: m.end_session()),
    )
    old = signal.signal(signal.SIGALRM, alarm)
    try:
        for name, step in steps:
            signal.setitimer(signal.ITIMER_REAL, PLANTED_TIMEOUT)
            try:
                step(SessionManager(store=FileStore(root), project="p"))
                with live_session(FileStore(root), "p", lock_timeout=1) as live:
                    if live.attached:
                        end_open_session(live, success=True)
            except LifecycleError:
                pass
            except _Hang:
                raise Escape(f"{shape} at {target.relative_to(root)}: {name} hung") from None
            except Exception as exc:
                raise Escape(
                    f"{shape} at {target.relative_to(root)}: {name} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
    if not (outside / ".x.rec.tmp").exists() or (outside / "bystander.txt").read_text() != "b":
        raise Escape(f"{shape} at {target.relative_to(root)}: a file outside the store changed")


def planted_sandbox(folder: Path) -> tuple[Path, Path]:
    """(template store, outside folder) for :func:`check_planted`."""
    outside = folder / "outside"
    outside.mkdir()
    (outside / "bystander.txt").write_text("b")
    (outside / ".x.rec.tmp").write_text("not the store's")
    return planted_template(folder), outside


# -- what the command line's JSON flags and learning names must refuse ---------------------

json_flag_texts = st.one_of(
    st.builds(lambda v: orjson.dumps(v).decode(), json_values),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 30]).map(
        lambda v: '{"a": ' + v + "}"
    ),
    st.dictionaries(st.sampled_from("ab"), json_scalars, min_size=1).map(
        lambda d: "{" + ", ".join(f'"a": {orjson.dumps(v).decode()}' for v in d.values()) + "}"
    ),
    st.text(max_size=40),
)


def check_json_flag(text: str) -> None:
    """``--progress TEXT``'s parser and the checkpoint it feeds: a typed error or a value
    that JSON holds exactly (no NaN, no duplicate key kept silently)."""
    import json
    import math

    from lifecycle import SessionManager
    from lifecycle.commands.sessions import json_object

    try:
        value = json_object(text, "--progress", "{}")
    except LifecycleError:
        return
    except Exception as exc:
        raise Escape(f"--progress {text[:80]!r} raised {type(exc).__name__}: {exc}") from exc
    assert value is not None
    pairs: list[list[str]] = []

    def keys_of(items: list[tuple[str, Any]]) -> dict[str, Any]:
        pairs.append([k for k, _ in items])
        return dict(items)

    json.loads(text, object_pairs_hook=keys_of)
    if any(len(set(p)) != len(p) for p in pairs):
        raise Escape(f"--progress {text[:80]!r}: a duplicate key was accepted")
    if "NaN" in text or "Infinity" in text:
        floats = [v for v in _leaves(value) if isinstance(v, float) and not math.isfinite(v)]
        if floats:
            raise Escape(f"--progress {text[:80]!r}: {floats[0]} was accepted")
    m = SessionManager(store="memory://", project="p")
    try:
        m.start_session(restore=False)
        m.create_checkpoint(progress=value)
    except LifecycleError:
        return
    except Exception as exc:
        raise Escape(f"checkpoint of {text[:80]!r} raised {type(exc).__name__}: {exc}") from exc


def _leaves(value: Any) -> list[Any]:
    found, todo = [], [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        else:
            found.append(item)
    return found


learning_names = st.lists(
    st.text(max_size=110) | st.sampled_from(["a:b", "a b", "a\\b", "a-b", "été", "x" * 101]),
    min_size=2,
    max_size=4,
)


def check_learning_names(names: list[str]) -> None:
    """Learnings under ``names``: each refused, or stored under exactly its own name, and
    never two names under one key (the second would overwrite the first)."""
    from lifecycle import SessionManager

    m = SessionManager(store="memory://", project="p")
    owner: dict[str, str] = {}
    for name in names:
        try:
            result = m.capture_learning(type="pattern", key=name, content=name)
        except LifecycleError:
            continue
        except Exception as exc:
            raise Escape(f"learning {name!r} raised {type(exc).__name__}: {exc}") from exc
        key = result.learning_key
        if key.rsplit("/", 1)[-1] != name.rsplit("/", 1)[-1]:
            raise Escape(f"learning {name!r} was stored as {key!r}")
        if owner.get(key, name) != name:
            raise Escape(f"learnings {owner[key]!r} and {name!r} share the key {key!r}")
        owner[key] = name
