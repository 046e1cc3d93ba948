"""LifecycleSaver's own rules, beyond LangGraph's conformance suite: keys in the grammar
for any thread id, checksummed records with fallback, no pickle in either direction,
schema versions, prune's refusals, and a real graph run on it."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from structlog.testing import capture_logs

from lifecycle import codec, keys, open_store
from lifecycle.errors import CorruptRecord, InvalidKey, InvalidSettings, SchemaVersionError
from lifecycle.integrations.langgraph import (
    LifecycleSaver,
    PruneRefused,
    UnsafePayload,
    UnsupportedValue,
)
from lifecycle.integrations.langgraph import records as rec
from lifecycle.stores.memory import MemoryStore
from lifecycle.stores.sqlite import SqliteStore

PROJECT = "graphs"


def put(
    saver: LifecycleSaver,
    thread: str,
    ns: str = "",
    parent: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    config = cfg(thread, ns)
    if parent is not None:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    cp = generate_checkpoint(channel_values=values or {})
    return saver.put(config, cp, generate_metadata(**metadata), {})  # type: ignore[return-value]


def cfg(thread: str, ns: str | None = "") -> dict[str, Any]:
    """A config for ``thread`` (the suite's generate_config replaces an empty id)."""
    configurable = {"thread_id": thread}
    if ns is not None:
        configurable["checkpoint_ns"] = ns
    return {"configurable": configurable}


def full_key(saver: LifecycleSaver, key: str) -> str:
    return f"{saver.project}/{key}"


# -- keys -------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_every_text_encodes_to_one_key_segment_that_decodes_back_or_is_hashed(text: str) -> None:
    segment = rec.encode_segment(text)
    key = f"langgraph/{segment}/{segment}/{segment}/{segment}"
    assert keys.is_valid(key)
    decoded = rec.decode_segment(segment)
    if segment.startswith("_h"):
        assert decoded is None and len(segment) == 34
    else:
        assert decoded == text


@given(st.lists(st.from_regex(r"[0-9a-f][0-9a-f-]{0,35}", fullmatch=True), min_size=2))
def test_plain_checkpoint_ids_keep_their_order_in_keys(ids: list[str]) -> None:
    segments = [rec.encode_segment(i) for i in ids]
    assert sorted(segments) == [rec.encode_segment(i) for i in sorted(ids)]


@pytest.mark.parametrize(
    "thread",
    ["a/b", "../../etc", "", "_", "-x", ".", "thread with spaces", "ünïcode:|*", "t" * 300],
)
def test_any_thread_id_round_trips_and_stays_apart_from_the_others(thread: str) -> None:
    saver = LifecycleSaver(MemoryStore(), project=PROJECT)
    put(saver, "neighbour", values={"who": "neighbour"})
    stored = put(saver, thread, ns="child:1|x", values={"who": thread})
    got = saver.get_tuple(stored)
    assert got is not None
    assert got.config["configurable"] == stored["configurable"]
    assert got.checkpoint["channel_values"] == {"who": thread}
    listed = [t.config["configurable"] for t in saver.list(cfg(thread, ns=None))]
    assert listed == [stored["configurable"]]
    saver.delete_thread(thread)
    assert saver.get_tuple(cfg(thread, "child:1|x")) is None
    assert saver.get_tuple(generate_config("neighbour")) is not None


@given(
    st.lists(st.text(alphabet="ab_.-/Z9\u00e9 ", max_size=8) | st.text(max_size=110), max_size=6)
)
def test_the_savers_key_check_is_the_grammars_rule_for_its_keys(parts: list[str]) -> None:
    key = rec.ROOT + "/".join(parts)
    assert bool(rec.KEY.fullmatch(key)) == keys.is_valid(key)
    built = rec.writes_key(*[*parts, "", "", "", ""][:4])
    assert rec.checked_key(built) == built and keys.is_valid(built)
    if not keys.is_valid(key):
        with pytest.raises(InvalidKey):
            rec.checked_key(key)


def test_records_are_stored_under_the_project_in_the_key_grammar() -> None:
    store = MemoryStore()
    saver = LifecycleSaver(store, project=PROJECT)
    stored = put(saver, "t/1", ns="child:a")
    saver.put_writes(stored, [("ch", 1)], "task:1")
    found = store.list_keys("")
    assert len(found) == 2
    for key in found:
        project, _, rest = key.partition("/")
        assert project == PROJECT and keys.is_valid(rest)
    cid = stored["configurable"]["checkpoint_id"]
    assert set(found) == {
        f"{PROJECT}/langgraph/t_2f1/child_3aa/{cid}",
        f"{PROJECT}/langgraph/t_2f1/child_3aa/{cid}/task_3a1",
    }


def test_the_latest_checkpoint_is_found_when_an_id_extends_another() -> None:
    """ "abc-1" sorts between "abc"'s writes and "abc": the newest is still "abc-1"."""
    saver = LifecycleSaver(MemoryStore(), project=PROJECT)
    for cid in ("abc", "abc-1"):
        config = cfg("t")
        saver.put(config, generate_checkpoint(checkpoint_id=cid), generate_metadata(), {})
    saver.put_writes(
        {"configurable": {**cfg("t")["configurable"], "checkpoint_id": "abc"}}, [("ch", 1)], "task"
    )
    got = saver.get_tuple(cfg("t"))
    assert got is not None
    assert (got.checkpoint["id"], got.pending_writes) == ("abc-1", [])
    older = saver.get_tuple({"configurable": {**cfg("t")["configurable"], "checkpoint_id": "abc"}})
    assert older is not None and older.pending_writes == [("task", "ch", 1)]
    assert [t.checkpoint["id"] for t in saver.list(cfg("t"))] == ["abc-1", "abc"]


# -- records: checksums, fallback, schema versions -------------------------------------------


def tamper(store: SqliteStore, key: str) -> None:
    """Change one byte of a stored value, as a bad write or a hand edit would."""
    entry = store.get(key)
    assert entry is not None
    store.put(key, entry.value[:-1] + bytes([entry.value[-1] ^ 1]))


def reframe(raw: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """``raw`` with its JSON header changed by ``change``, under a correct checksum."""
    sizes, _, rest = raw[len(rec.MAGIC) + 9 :].partition(b" ")
    head, _, body = rest.partition(b"\n")
    parts, at = [], 0
    for size in map(int, sizes.split(b",")):
        parts.append(body[at : at + size])
        at += size
    return rec.frame(change(head), parts)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_valid_one(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    saver = LifecycleSaver(store, project=PROJECT)
    first = put(saver, "t", step=0)
    second = put(saver, "t", parent=first, step=1)
    newest = rec.checkpoint_key("t", "", second["configurable"]["checkpoint_id"])
    tamper(store, full_key(saver, newest))
    with capture_logs() as logs:
        got = saver.get_tuple(generate_config("t"))
    assert got is not None
    assert got.config["configurable"]["checkpoint_id"] == first["configurable"]["checkpoint_id"]
    events = [line["event"] for line in logs]
    assert events == ["langgraph.checkpoint.corrupt", "langgraph.checkpoint.fallback"]
    with pytest.raises(CorruptRecord, match="checksum does not match"):
        saver.get_tuple(second)
    assert [t.metadata["step"] for t in saver.list(generate_config("t"))] == [0]


def test_corrupt_pending_writes_are_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    saver = LifecycleSaver(store, project=PROJECT)
    stored = put(saver, "t")
    saver.put_writes(stored, [("ch", "v")], "task-1")
    cid = stored["configurable"]["checkpoint_id"]
    tamper(store, full_key(saver, rec.writes_key("t", "", cid, "task-1")))
    with pytest.raises(CorruptRecord, match="task-1"):
        saver.get_tuple(stored)


@pytest.mark.parametrize(
    "record",
    [
        rec.GraphCheckpoint("t", "child:1", "c-2", "c-1", "msgpack", "msgpack"),
        rec.GraphCheckpoint("t", "", "c-1", None, "msgpack", "null"),
        rec.GraphWrites(
            "t", "", "c-1", "task", "~1", (rec.WriteHead(-3, "__interrupt__", "msgpack"),)
        ),
    ],
)
def test_the_stored_header_is_the_codec_form_of_the_record(record: rec.Record) -> None:
    raw = rec.encode(record, [b"x"] * (2 if isinstance(record, rec.GraphCheckpoint) else 1))
    header = raw.split(b"\n", 1)[0].split(b" ", 3)[3]
    assert header == codec.encode(record)
    assert rec.decode(type(record), raw, "k")[0] == record == codec.decode(type(record), header)


def test_a_record_from_a_newer_schema_is_refused_not_misread() -> None:
    store = MemoryStore()
    saver = LifecycleSaver(store, project=PROJECT)
    stored = put(saver, "t")
    key = full_key(saver, rec.checkpoint_key("t", "", stored["configurable"]["checkpoint_id"]))
    entry = store.get(key)
    assert entry is not None
    store.put(
        key, reframe(entry.value, lambda h: h.replace(b'"schema_version":1', b'"schema_version":2'))
    )
    with pytest.raises(
        SchemaVersionError, match="langgraph_checkpoint record has schema_version 2"
    ):
        saver.get_tuple(stored)


# -- serde: no pickle ------------------------------------------------------------------------

UNPICKLED: list[str] = []


def _mark(what: str) -> str:
    UNPICKLED.append(what)
    return what


class Bomb:
    """Unpickling this calls _mark: it shows whether a pickle was ever loaded."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_mark, ("unpickled",))


def test_a_planted_pickle_payload_is_refused_and_never_unpickled() -> None:
    store = MemoryStore()
    saver = LifecycleSaver(store, project=PROJECT)
    stored = put(saver, "t", values={"v": 1})
    key = rec.checkpoint_key("t", "", stored["configurable"]["checkpoint_id"])
    entry = store.get(full_key(saver, key))
    assert entry is not None
    record, (_, metadata) = rec.decode(rec.GraphCheckpoint, entry.value, key)
    planted = attrs.evolve(record, checkpoint_type="pickle")
    # A valid record with a valid checksum: only the payload's type is bad.
    store.put(full_key(saver, key), rec.encode(planted, [pickle.dumps(Bomb()), metadata]))
    with pytest.raises(UnsafePayload) as caught:
        saver.get_tuple(stored)
    assert str(caught.value) == (
        f"refusing to deserialize a 'pickle' payload in {key!r}: lifecycle reads only "
        "LangGraph's JSON-plus payloads (bytearray, bytes, json, msgpack, null) and never "
        "unpickles stored data"
    )
    assert UNPICKLED == []
    with pytest.raises(UnsafePayload):
        saver.serde.loads_typed(("pickle", pickle.dumps(Bomb())))
    assert UNPICKLED == []


def test_a_value_json_plus_cannot_encode_is_refused_and_nothing_is_stored() -> None:
    store = MemoryStore()
    saver = LifecycleSaver(store, project=PROJECT)
    config = generate_config("t")
    cp = generate_checkpoint(channel_values={"fn": lambda: None})
    with pytest.raises(UnsupportedValue, match="never pickles") as caught:
        saver.put(config, cp, generate_metadata(), {})
    assert "Type is not msgpack serializable" in str(caught.value)
    assert store.list_keys("") == []


def test_a_serializer_with_pickle_fallback_is_refused() -> None:
    with pytest.raises(InvalidSettings, match="pickle_fallback=True"):
        LifecycleSaver(MemoryStore(), serde=JsonPlusSerializer(pickle_fallback=True))


# -- writes, prune, copy ------------------------------------------------------------------


def test_pending_writes_come_back_in_langgraphs_sort_order() -> None:
    saver = LifecycleSaver(MemoryStore(), project=PROJECT)
    stored = put(saver, "t")
    saver.put_writes(stored, [("b", 2), ("a", 1)], "task-z", task_path="~1")
    saver.put_writes(stored, [("c", 3)], "task-a", task_path="~2")
    saver.put_writes(stored, [("__error__", "boom")], "task-z", task_path="~1")
    got = saver.get_tuple(stored)
    assert got is not None
    assert got.pending_writes == [
        ("task-z", "__error__", "boom"),
        ("task-z", "b", 2),
        ("task-z", "a", 1),
        ("task-a", "c", 3),
    ]


def test_prune_refuses_threads_with_a_delta_channel_and_prunes_nothing() -> None:
    saver = LifecycleSaver(MemoryStore(), project=PROJECT)
    plain = put(saver, "plain")
    put(saver, "plain", parent=plain)
    delta = put(saver, "delta")
    put(saver, "delta", parent=delta, counters_since_delta_snapshot={"ch": [1, 1]})
    with pytest.raises(PruneRefused, match="DeltaChannel.*: delta; nothing was pruned"):
        saver.prune(["plain", "delta"])
    assert len(list(saver.list(generate_config("plain")))) == 2
    saver.prune(["delta"], strategy="delete")
    assert list(saver.list(generate_config("delta"))) == []


def test_prune_names_a_bad_strategy_and_a_lone_string() -> None:
    saver = LifecycleSaver(MemoryStore(), project=PROJECT)
    with pytest.raises(InvalidSettings, match="unknown prune strategy 'oldest'; use one of"):
        saver.prune(["t"], strategy="oldest")
    with pytest.raises(InvalidSettings, match="not the string 'thread-1'"):
        saver.prune("thread-1")


def test_from_url_opens_the_store_and_close_closes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    with LifecycleSaver.from_url(url, project=PROJECT) as saver:
        stored = put(saver, "t", values={"x": 1})
    with LifecycleSaver(open_store(url), project=PROJECT) as again:
        got = again.get_tuple(stored)
        assert got is not None and got.checkpoint["channel_values"] == {"x": 1}
        again.store.close()


# -- a real graph --------------------------------------------------------------------------


class Count(TypedDict):
    n: int
    log: list[str]


def test_a_langgraph_graph_interrupts_resumes_and_forks_on_the_saver(tmp_path: Path) -> None:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    def ask(state: Count) -> dict[str, Any]:
        answer = interrupt({"question": "how many?"})
        return {"n": state["n"] + int(answer), "log": [*state["log"], f"ask:{answer}"]}

    def double(state: Count) -> dict[str, Any]:
        return {"n": state["n"] * 2, "log": [*state["log"], "double"]}

    builder = StateGraph(Count)
    builder.add_node("ask", ask)
    builder.add_node("double", double)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "double")
    builder.add_edge("double", END)
    url = f"sqlite:///{tmp_path}/g.db"
    config = {"configurable": {"thread_id": "run/1"}}
    with LifecycleSaver.from_url(url, project=PROJECT) as saver:
        graph = builder.compile(checkpointer=saver)
        first = graph.invoke({"n": 1, "log": []}, config)
        assert first["__interrupt__"][0].value == {"question": "how many?"}
    # Another process (a new saver on the same store) resumes the interrupted run.
    with LifecycleSaver.from_url(url, project=PROJECT) as saver:
        graph = builder.compile(checkpointer=saver)
        assert graph.get_state(config).next == ("ask",)
        done = graph.invoke(Command(resume="3"), config)
        assert done == {"n": 8, "log": ["ask:3", "double"]}
        history = list(graph.get_state_history(config))
        assert [s.metadata["step"] for s in history] == [2, 1, 0, -1]
        saver.copy_thread("run/1", "run/2")
        copied = graph.get_state({"configurable": {"thread_id": "run/2"}})
        assert copied.values == done
        saver.prune(["run/1"])
        assert len(list(graph.get_state_history(config))) == 1
        assert graph.get_state(config).values == done
