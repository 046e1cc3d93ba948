"""``lifecycle report --html FILE``: one self-contained HTML page about a project.

Sections: a timeline of the sessions with their checkpoints coloured by type, the
checkpoint tree with its branches, the open work, the learnings (with a filter box),
and the state diagram with the transitions the project's own history went through.
Everything is inline (CSS, SVG, a few lines of script): the page loads nothing, so it
can be mailed, archived or opened offline. It reads records only.

The transitions come from replaying, through the table, the events the stored records
show (session records and their checkpoints: a restored start, recorded work, the
event behind each checkpoint's type, the final checkpoint at the end), at the level of
the overview diagram's edges (a pair of states); a journaled history is not replayed
event by event.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import CorruptRecord, InvalidRecord
from lifecycle.history import History, Node, build_history, sorted_nodes
from lifecycle.records import Checkpoint, Learning, SessionRecord
from lifecycle.spec import TABLE, Event, Guard, SessionState
from lifecycle.stores.base import ProjectStore

#: Checkpoint type -> colour (also the legend).
COLOURS = {
    "manual": "#3366cc",
    "automatic": "#2e9d5b",
    "risk": "#d03838",
    "recovery": "#e08a1e",
}
MAX_SESSIONS = 80  # timeline rows
MAX_TREE = 400  # checkpoint tree lines
MAX_LEARNINGS = 500
BRANCH = ' class="branch"'

S = SessionState


@attrs.frozen
class ReportData:
    project: str
    sessions: tuple[SessionRecord, ...]
    history: History
    latest: Checkpoint | None
    learnings: tuple[Learning, ...]
    generated: datetime


def gather(store: ProjectStore, now: datetime) -> ReportData:
    sessions: list[SessionRecord] = []
    for prefix in (keys.SESSION_HISTORY_PREFIX, keys.SESSION_PREFIX):
        for key in store.list_keys(prefix):
            if key.count("/") != prefix.count("/") or key.endswith(keys.SESSION_FIXED):
                continue
            record = _read(store, key, SessionRecord)
            if record is not None:
                sessions.append(record)
    sessions.sort(key=lambda r: r.start_time)
    history = build_history(store)
    latest = None
    if history.latest_id is not None:
        node = history.nodes.get(history.latest_id)
        latest = None if node is None else _read(store, node.key, Checkpoint)
    learnings = [
        found
        for key in store.list_keys(keys.LEARNING_PREFIX)[:MAX_LEARNINGS]
        if (found := _read(store, key, Learning)) is not None
    ]
    return ReportData(store.project, tuple(sessions), history, latest, tuple(learnings), now)


def _read(store: ProjectStore, key: str, cls: type[Any]) -> Any:
    try:
        entry = store.get(key)
        return None if entry is None else codec.decode(cls, entry.value, key=key)
    except (CorruptRecord, InvalidRecord):
        return None


# -- transitions the history went through --------------------------------------------------


def exercised(data: ReportData) -> dict[tuple[S, S], int]:
    """How often each pair of states was passed: each session's events, as its records
    show them, replayed through the table (which decides every destination)."""
    counts: dict[tuple[S, S], int] = {}
    by_session: dict[str, list[Node]] = {}
    for node in data.history.nodes.values():
        by_session.setdefault(node.session_id, []).append(node)
    for record in data.sessions:
        replay = _Replay(counts)
        replay.fire(Event.LOAD, restore_available=record.restored_from is not None)
        replay.saved_is_restored = record.restored_from is not None
        work = record.work
        if work.tasks_completed or work.files_modified or work.decisions_made:
            replay.fire(Event.RECORD, has_unsaved=True)  # work no checkpoint followed at once
        cps = sorted_nodes(by_session.get(record.id, []))
        final = [n for n in cps if n.trigger == "session-end"]
        for node in cps:
            if node.trigger == "session-end":
                continue
            if node.type == "risk":
                replay.fire(Event.BEFORE_OPERATION, checkpoint_due=True, risk_due=True)
            else:
                if not replay.unsaved:
                    replay.fire(Event.RECORD, has_unsaved=True)  # the work it saved
                replay.fire(_CHECKPOINT_EVENTS.get(node.type, Event.SAVE), has_unsaved=True)
            replay.saved_is_restored = False
        if record.end_time is not None:
            if final and not replay.unsaved:
                replay.fire(Event.RECORD, has_unsaved=True)
            replay.fire(Event.COMPLETE, has_unsaved=bool(final))
    return counts


#: The event that writes each type of checkpoint (a trigger's, or the user's).
_CHECKPOINT_EVENTS = {
    "manual": Event.SAVE,
    "automatic": Event.TICK,
    "recovery": Event.ERROR_RECOVERED,
}


class _Replay:
    """One session's state, moved only by the table's rows."""

    def __init__(self, counts: dict[tuple[S, S], int]) -> None:
        self.counts = counts
        self.state = TABLE.initial
        self.saved_is_restored = False
        self.unsaved = False

    def fire(self, event: Event, **facts: bool) -> None:
        outcome = {guard: False for guard in Guard}
        outcome[Guard.SAVED_IS_RESTORED] = self.saved_is_restored
        outcome[Guard.CHECKPOINT_DUE] = facts.get("checkpoint_due", event is not Event.RECORD)
        for name, value in facts.items():
            outcome[Guard(name)] = value
        row = TABLE.resolve(event, self.state, outcome)
        if row is None or row.dest is None:
            return
        key = (self.state, row.dest)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.state = row.dest
        self.unsaved = not row.writes and outcome[Guard.HAS_UNSAVED]


# -- SVG pieces ----------------------------------------------------------------------------


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


#: Where each state's box is drawn (by name: only the table decides between states).
_PLACES = {
    "INITIALIZING": (120, 70),
    "RESUMED": (480, 70),
    "ACTIVE": (120, 250),
    "CHECKPOINTED": (480, 250),
    "COMPLETED": (300, 410),
}
POSITIONS = {S(name): place for name, place in _PLACES.items()}


def state_diagram(counts: dict[tuple[S, S], int]) -> str:
    from lifecycle.diagrams import pairs

    parts = [
        '<svg class="diagram" viewBox="-10 0 640 470" width="640" height="470" '
        'role="img" aria-label="state diagram">',
        "<defs>"
        '<marker id="arr-on" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#2e9d5b"/>'
        "</marker>"
        '<marker id="arr-off" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#aaa"/>'
        "</marker></defs>",
    ]
    every = pairs()
    for pair in every:
        a, b = pair.source, pair.dest
        n = counts.get((a, b), 0)
        cls, marker = ("on", "arr-on") if n else ("off", "arr-off")
        title = f"{a.value} -> {b.value}: {', '.join(ev.value for ev in pair.events)}"
        title += f" ({n} times in this project's history)" if n else " (never in this history)"
        (x1, y1), (x2, y2) = POSITIONS[a], POSITIONS[b]
        if a == b:  # a loop on the box's outer side, away from the other edges
            side = -1 if x1 < 300 else 1
            bx = x1 + side * 62
            path = (
                f"M{bx},{y1 - 12} C{bx + side * 70},{y1 - 60} "
                f"{bx + side * 70},{y1 + 60} {bx},{y1 + 12}"
            )
            lx, ly = float(bx + side * 62), float(y1 + 4)
        else:
            # Shorten to the boxes' edges, and bend so that two-way pairs do not overlap.
            dx, dy = x2 - x1, y2 - y1
            length = math.hypot(dx, dy)
            ux, uy = dx / length, dy / length
            sx, sy = x1 + ux * 62, y1 + uy * 26
            ex, ey = x2 - ux * 62, y2 - uy * 26
            bend = 26
            cx, cy = (sx + ex) / 2 - uy * bend, (sy + ey) / 2 + ux * bend
            path = f"M{sx:.0f},{sy:.0f} Q{cx:.0f},{cy:.0f} {ex:.0f},{ey:.0f}"
            lx, ly = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4
        parts.append(
            f'<g class="edge {cls}"><title>{e(title)}</title>'
            f'<path d="{path}" marker-end="url(#{marker})"/>'
            + (f'<text x="{lx:.0f}" y="{ly:.0f}">{n}</text>' if n else "")
            + "</g>"
        )
    for state, (x, y) in POSITIONS.items():
        final = " final" if state in TABLE.final else ""
        parts.append(
            f'<g class="state{final}"><rect x="{x - 62}" y="{y - 24}" width="124" height="48" '
            f'rx="10"/><text x="{x}" y="{y + 5}">{e(state.value)}</text></g>'
        )
    parts.append("</svg>")
    done = sum(1 for p in every if counts.get((p.source, p.dest)))
    caption = (
        f"<p>{done} of {len(every)} transitions (pairs of states) were gone through in this "
        "project's history (its sessions' events replayed through the table); green edges "
        "carry how often, grey dashed ones never happened. Hover an edge for its events.</p>"
    )
    return "".join(parts) + caption


def timeline(data: ReportData) -> str:
    sessions = list(data.sessions[-MAX_SESSIONS:])
    if not sessions:
        return "<p>No sessions recorded yet.</p>"
    by_session: dict[str, list[Node]] = {}
    for node in data.history.nodes.values():
        by_session.setdefault(node.session_id, []).append(node)

    def end_of(r: SessionRecord) -> datetime:
        times = [n.timestamp for n in by_session.get(r.id, [])]
        return r.end_time or max([r.start_time, *times])

    start = min(r.start_time for r in sessions)
    end = max(end_of(r) for r in sessions)
    span = max((end - start).total_seconds(), 1.0)
    width, left, row = 960, 290, 22
    height = 40 + row * len(sessions)

    def x(moment: datetime) -> float:
        return left + (width - left - 20) * (moment - start).total_seconds() / span

    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="sessions over time">',
        f'<text class="axis" x="{left}" y="16">{e(start.strftime("%Y-%m-%d %H:%M"))}</text>',
        f'<text class="axis end" x="{width - 20}" y="16">'
        f"{e(end.strftime('%Y-%m-%d %H:%M'))}</text>",
    ]
    for i, record in enumerate(sessions):
        y = 30 + i * row
        x1, x2 = x(record.start_time), x(end_of(record))
        state = "ok" if record.success else "open" if record.end_time is None else "failed"
        label = f"{record.start_time:%Y-%m-%d %H:%M} {record.phase or record.command}"
        parts.append(
            f'<text class="label" x="{left - 8}" y="{y + 13}">{e(label[:44])}</text>'
            f'<rect class="session {state}" x="{x1:.1f}" y="{y + 3}" '
            f'width="{max(x2 - x1, 3):.1f}" height="14" rx="3"><title>'
            f"{e(record.id)}: {e(record.command)} {e(record.phase)} ({state})</title></rect>"
        )
        for node in sorted_nodes(by_session.get(record.id, [])):
            colour = COLOURS.get(node.type, "#666")
            parts.append(
                f'<circle cx="{x(node.timestamp):.1f}" cy="{y + 10}" r="5" fill="{colour}">'
                f"<title>{e(node.id)} {e(node.type)}/{e(node.trigger)} {e(node.phase)}</title>"
                "</circle>"
            )
    parts.append("</svg>")
    legend = " ".join(
        f'<span class="swatch" style="background:{c}"></span>{e(t)}' for t, c in COLOURS.items()
    )
    more = len(data.sessions) - len(sessions)
    note = f" ({more} older sessions not drawn)" if more > 0 else ""
    return "".join(parts) + f'<p class="legend">Checkpoints: {legend}{e(note)}</p>'


def tree(data: ReportData) -> str:
    history = data.history
    if not history.nodes:
        return "<p>No checkpoints.</p>"
    rows: list[str] = []
    stack: list[tuple[Node, int, bool]] = [
        (r, 0, True) for r in reversed(sorted_nodes(history.roots))
    ]
    while stack and len(rows) < MAX_TREE:
        node, depth, first = stack.pop()
        branch = first and depth > 0
        colour = COLOURS.get(node.type, "#666")
        latest = ' <strong class="latest">latest</strong>' if node.id == history.latest_id else ""
        rows.append(
            f'<li style="margin-left:{depth * 1.6}em"{BRANCH if branch else ""}>'
            f'<span class="dot" style="background:{colour}"></span>'
            f"<code>{e(node.id)}</code> {e(node.type)}/{e(node.trigger)} "
            f'<span class="muted">{e(node.phase)}</span>{latest}</li>'
        )
        kids = sorted_nodes(node.children)
        if kids:
            stack.append((kids[-1], depth, False))
            stack.extend((kid, depth + 1, True) for kid in reversed(kids[:-1]))
    more = len(history.nodes) - len(rows)
    tail = f"<p>{more} more checkpoints not listed.</p>" if more > 0 else ""
    return (
        "<p>A branch (indented, marked ↳) starts where a session resumed from an older "
        f'checkpoint.</p><ul class="tree">{"".join(rows)}</ul>{tail}'
    )


def open_work(data: ReportData) -> str:
    cp = data.latest
    if cp is None:
        return "<p>No checkpoint yet.</p>"
    s = cp.state
    tasks = "".join(
        f"<li><code>{e(t.id)}</code> {e(t.description)} "
        f'<span class="muted">{e(t.status.value)}, {e(t.priority.value)}'
        f"{', ' + e(t.progress) if t.progress else ''}</span></li>"
        for t in s.active_tasks
    )
    parts = [
        f"<p>As of <code>{e(cp.id)}</code> ({e(cp.timestamp.strftime('%Y-%m-%d %H:%M'))}), "
        f"phase <strong>{e(cp.phase or '-')}</strong>.</p>",
        f"<h3>Open tasks ({len(s.active_tasks)})</h3><ul>{tasks or '<li>none</li>'}</ul>",
        _list("Open questions", s.open_questions),
        _list("Blockers", s.blockers),
    ]
    return "".join(parts)


def _list(title: str, items: Iterable[str]) -> str:
    got = list(items)
    body = "".join(f"<li>{e(i)}</li>" for i in got) or "<li>none</li>"
    return f"<h3>{e(title)} ({len(got)})</h3><ul>{body}</ul>"


def learnings(data: ReportData) -> str:
    if not data.learnings:
        return "<p>No learnings captured yet.</p>"
    rows = "".join(
        f"<tr><td><code>{e(item.key)}</code></td><td>{e(item.type.value)}</td>"
        f"<td>{e(item.content[:400])}</td><td>{e(', '.join(item.tags))}</td>"
        f"<td>{e(item.timestamp.strftime('%Y-%m-%d'))}</td></tr>"
        for item in data.learnings
    )
    return (
        '<p><label>Filter: <input id="learning-filter" type="search" '
        'placeholder="words in a learning"></label> '
        '<span id="learning-count"></span></p>'
        '<table id="learnings"><thead><tr><th>key</th><th>type</th><th>content</th>'
        f"<th>tags</th><th>when</th></tr></thead><tbody>{rows}</tbody></table>"
    )


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:24px auto;
max-width:1000px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:12px 0 4px}.muted,.legend,.axis{color:#666}
code{font-size:12px}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
.swatch,.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin:0 4px 0 10px}
.tree{list-style:none;padding:0}.tree li{padding:1px 0}.tree li.branch::before{content:"↳ "}
.latest{color:#3366cc;margin-left:6px}
svg text{font:12px system-ui,"DejaVu Sans",sans-serif}
.timeline .label{text-anchor:end;fill:#444}.timeline .axis.end{text-anchor:end}
.session.ok{fill:#cfe8d8}.session.failed{fill:#f3d0d0}.session.open{fill:#e4e4f7}
.state rect{fill:#fff;stroke:#333;stroke-width:1.5}.state.final rect{fill:#e6e6e6}
.state text{text-anchor:middle;font-weight:600}
.edge path{fill:none;stroke-width:2}.edge.on path{stroke:#2e9d5b}
.edge.off path{stroke:#aaa;stroke-dasharray:5 4}.edge text{fill:#2e9d5b;font-weight:600}
"""

SCRIPT = """
(function () {
  var input = document.getElementById("learning-filter");
  var table = document.getElementById("learnings");
  var count = document.getElementById("learning-count");
  if (!input || !table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  function apply() {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length;
  }
  input.addEventListener("input", apply);
  apply();
})();
"""


def render(data: ReportData) -> str:
    counts = exercised(data)
    n_cp = len(data.history.nodes)
    summary = (
        f"sessions: {len(data.sessions)}, checkpoints: {n_cp}, "
        f"learnings: {len(data.learnings)}; "
        f"generated {data.generated.strftime('%Y-%m-%d %H:%M UTC')}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>lifecycle report: {e(data.project)}</title><style>{STYLE}</style></head><body>"
        f'<h1>Project {e(data.project)}</h1><p class="muted">{e(summary)}</p>'
        f'<h2 id="timeline">Sessions over time</h2>{timeline(data)}'
        f'<h2 id="tree">Checkpoint tree</h2>{tree(data)}'
        f'<h2 id="open">Open work</h2>{open_work(data)}'
        f'<h2 id="learnings-section">Learnings</h2>{learnings(data)}'
        f'<h2 id="states">State diagram and this project\'s transitions</h2>'
        f"{state_diagram(counts)}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def build(store: ProjectStore, now: datetime) -> str:
    """The report of ``store``'s project as one HTML document."""
    return render(gather(store, now))
