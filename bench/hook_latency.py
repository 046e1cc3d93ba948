"""What a Claude Code hook costs, as Claude Code runs it: whole processes, against the floors.

    .venv/bin/python bench/hook_latency.py [--n 40] [--tree PATH] [--burst 200] [--quick]

Every hook is a new ``python -m lifecycle hook claude`` process reading one event on
stdin. Each round runs, interleaved (so the machine's load drifts over all of them
alike): the floors ``python -c pass``, ``python -c "import json"`` and ``python -c
"import transitions"``; SessionStart (``resume``, the context answered); PostToolUse of
Edit, Write and Bash; UserPromptSubmit; a PreToolUse of a command that is not risky
and one that is (``rm -rf build/``: its checkpoint is durable before the hook
answers); SessionEnd. One durable write of a 10 KB record (temp file, fsync, rename,
folder fsync) is timed in the same rounds: the risky PreToolUse's budget is twice the
``import json`` floor plus that write.

Then the same hooks on projects with history, interleaved: 10 against 10,000
checkpoints in the store, and day 1 against day 365 of sessions (one a day, each
restoring the last, pruned daily with the default ages; ``bench/year.py``'s work).
Then a burst of ``--burst`` PostToolUse processes, 4 at a time, each editing its own
file: afterwards the session must hold every one of them (lost) and no hook may have
failed (errors).

Hooks that need the engine (SessionStart, the risky PreToolUse, SessionEnd) are answered
by the project's resident process (``lifecycle.integrations.resident``), which the first
such hook starts: the benchmark waits for it once, after the warm-up round, and adds its
CPU per event (read from ``/proc``) to the hook's in the CPU column. The same
SessionStart and risky PreToolUse with ``LIFECYCLE_RESIDENT=0`` (in process: what the
first hook after the server went idle pays) are timed afterwards in rounds of their own
(with the ``import json`` floor again), on a second project.

Bytecode is present: the children run without ``PYTHONDONTWRITEBYTECODE`` and the
first round is a warm-up. ``--tree`` measures another checkout (e.g. one made with
``git archive``) with this interpreter and its packages: the "before" column of
docs/performance.md. The project is not a git work tree (no snapshot is taken at a
risk checkpoint: that cost is git's, ``bench/snapshot.py``). Scratch data lives in
``bench/results/tmp-hook-*``. A measurement, not a test: budgets are reported.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PY = sys.executable


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


class Hooks:
    """One project folder, and how to run a hook (or a floor) in it as a process."""

    def __init__(self, tree: Path, project: Path, name: str, *, resident: bool = True) -> None:
        self.tree = tree
        self.project = project
        self.name = name
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LIFECYCLE_", "CLAUDE_")) and k != "PYTHONDONTWRITEBYTECODE"
        }
        self.env["PYTHONPATH"] = str(tree)
        self.env["CLAUDE_PROJECT_DIR"] = str(project)  # what Claude Code sets
        self.env["LIFECYCLE_PROJECT"] = name
        # the scratch folder sits inside this repository: not a git work tree of its own
        self.env["GIT_CEILING_DIRECTORIES"] = str(project.parent)
        self.resident = resident
        if not resident:
            self.env["LIFECYCLE_RESIDENT"] = "0"
        self.errors: list[str] = []
        #: CPU seconds (user + system) of the last process run, when run one at a time,
        #: and of the resident process while it answered
        self.cpu = 0.0
        self.pid: int | None = None

    def event(self, name: str, **fields: Any) -> str:
        common = {"session_id": "bench", "transcript_path": "/dev/null", "cwd": str(self.project)}
        return json.dumps(
            {**common, "permission_mode": "default", "hook_event_name": name, **fields}
        )

    def wait_for_server(self, timeout: float = 30.0) -> None:
        """Until this project's resident process answers (it warms up first); its pid
        goes to ``self.pid``. A tree without one (``--tree`` of an older checkout): none."""
        if not self.resident or not (self.tree / "lifecycle/integrations/resident.py").exists():
            return
        from lifecycle.integrations.resident import status

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = status(str(self.project), self.env)
            if found is not None:
                self.pid = int(str(found["pid"]))
                return
            time.sleep(0.05)
        self.errors.append("the resident process did not start")

    def run(self, argv: list[str], stdin: str = "") -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before = server_ticks(self.pid)
        t0 = time.perf_counter()
        done = subprocess.run(
            argv,
            input=stdin,
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        self.cpu += max(0.0, server_ticks(self.pid) - server_before)
        if done.returncode != 0 or "could not record" in done.stdout or done.stderr.strip():
            self.errors.append(f"{argv[-1][:40]}: rc={done.returncode} {done.stdout} {done.stderr}")
        return elapsed

    def hook(self, stdin: str) -> Callable[[], float]:
        return lambda: self.run([PY, "-m", "lifecycle", "hook", "claude"], stdin)

    def cases(self) -> dict[str, Callable[[], float]]:
        p = str(self.project)
        return {
            "SessionStart (resume, with the context)": self.hook(
                self.event("SessionStart", source="resume")
            ),
            "PostToolUse Edit": self.hook(
                self.event(
                    "PostToolUse",
                    tool_name="Edit",
                    tool_input={
                        "file_path": f"{p}/src/app.py",
                        "old_string": "a",
                        "new_string": "b",
                    },
                    tool_response={"filePath": f"{p}/src/app.py"},
                )
            ),
            "PostToolUse Write": self.hook(
                self.event(
                    "PostToolUse",
                    tool_name="Write",
                    tool_input={"file_path": f"{p}/src/new.py", "content": "x = 1\n"},
                    tool_response={"type": "create", "filePath": f"{p}/src/new.py"},
                )
            ),
            "PostToolUse Bash": self.hook(
                self.event(
                    "PostToolUse",
                    tool_name="Bash",
                    tool_input={"command": "pytest -q tests/test_app.py"},
                    tool_response={"stdout": "3 passed", "stderr": "", "interrupted": False},
                )
            ),
            "UserPromptSubmit": self.hook(
                self.event("UserPromptSubmit", prompt="make the parser accept empty lines")
            ),
            "PreToolUse Bash, not risky": self.hook(
                self.event("PreToolUse", tool_name="Bash", tool_input={"command": "ls -la src"})
            ),
            "PreToolUse Bash, risky (rm -rf build/)": self.hook(
                self.event("PreToolUse", tool_name="Bash", tool_input={"command": "rm -rf build/"})
            ),
            "SessionEnd": self.hook(self.event("SessionEnd", reason="other")),
        }

    def first_session(self) -> None:
        """A session with some work, ended: every SessionStart has a checkpoint to restore."""
        self.hook(self.event("SessionStart", source="startup"))()
        for i in range(5):
            write = {"file_path": f"{self.project}/src/m{i}.py", "content": "x"}
            self.hook(self.event("PostToolUse", tool_name="Write", tool_input=write))()
        self.hook(self.event("SessionEnd", reason="other"))()


TICK = os.sysconf("SC_CLK_TCK")


def server_ticks(pid: int | None) -> float:
    """CPU seconds the resident process ``pid`` has used (0 when there is none)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def durable_write(folder: Path) -> Callable[[], float]:
    data = os.urandom(10_240)

    def action() -> float:
        t0 = time.perf_counter()
        tmp = folder / ".rec.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, folder / "rec")
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        return time.perf_counter() - t0

    return action


CPU: dict[str, list[float]] = {}


def rounds(
    actions: dict[str, Callable[[], float]], n: int, hooks: list[Hooks] | None = None
) -> dict[str, list[float]]:
    """``n`` interleaved rounds (one warm-up round first, not kept, after which each
    project's resident process is waited for); the CPU time of each process goes to
    :data:`CPU` (read from ``hooks``' last run)."""
    out: dict[str, list[float]] = {name: [] for name in actions}
    for i in range(n + 1):
        if i == 1:
            for h in hooks or ():
                h.wait_for_server()
        for name, action in actions.items():
            for h in hooks or ():
                h.cpu = -1.0
            t = action()
            if i:
                out[name].append(t)
                cpu = max([h.cpu for h in hooks or ()] + [-1.0])
                if cpu >= 0:
                    CPU.setdefault(name, []).append(cpu)
    return out


def line(
    name: str, xs: list[float], versus: float | None = None, budget: str = "", key: str = ""
) -> str:
    med = statistics.median(xs)
    ratio = f"{med / versus:6.2f}x" if versus else "       "
    cpu = CPU.get(key or name)
    cpu_text = f"{statistics.median(cpu) * 1000:7.1f} ms" if cpu else "          "
    return (
        f"{name:<52} {med * 1000:8.1f} ms {p99(xs) * 1000:8.1f} ms {len(xs):5d} {ratio}"
        f" {cpu_text}  {budget}"
    )


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def write_checkpoints(tree: Path, hooks: Hooks, count: int) -> None:
    """``count`` small checkpoints in the project's store, written straight to it."""
    script = f"""
import sys
from datetime import UTC, datetime, timedelta
from lifecycle import codec, keys
from lifecycle.records import Checkpoint
from lifecycle.stores.base import Put
from lifecycle.stores.file import FileStore
store = FileStore({str(hooks.project / ".lifecycle")!r})
name = {hooks.name!r}
base = datetime(2024, 1, 1, tzinfo=UTC)
chunk = []
for i in range({count}):
    at = base + timedelta(seconds=i)
    key = keys.checkpoint_key("manual", at)
    cp = Checkpoint(id=f"cp-{{keys.format_ts(at)}}", timestamp=at, phase="history",
                    progress={{"step": i}}, session_id="session-history", project=name, key=key)
    chunk.append(Put(name + "/" + key, codec.encode(cp), sync=False))
    if len(chunk) == 2000:
        store.batch(chunk); chunk = []
if chunk:
    store.batch(chunk)
store.close()
"""
    subprocess.run([PY, "-c", script], env=hooks.env, cwd=hooks.project, check=True, timeout=600)


def live_a_year(tree: Path, hooks: Hooks, days: int) -> None:
    """``days`` days of one session a day (bench/year.py's work), pruned daily."""
    script = f"""
import sys
from lifecycle import SessionManager  # the tree's, before bench/year.py puts this one first
sys.path.insert(0, {str(ROOT / "bench")!r})
from datetime import timedelta
from year import Clock, work
from lifecycle.retention import Policy, prune
from lifecycle.stores import ProjectStore
from lifecycle.stores.file import FileStore
raw = FileStore({str(hooks.project / ".lifecycle")!r})
ps = ProjectStore(raw, {hooks.name!r})
clock = Clock()
for n in range(1, {days} + 1):
    m = SessionManager(store=raw, project={hooks.name!r}, clock=clock)
    m.start_session(command="work")
    work(m, clock, n)
    m.end_session()
    prune(ps, clock(), Policy())
    clock.now = clock.now.replace(hour=8) + timedelta(days=1)
raw.close()
"""
    subprocess.run([PY, "-c", script], env=hooks.env, cwd=hooks.project, check=True, timeout=1800)


def burst(hooks: Hooks, count: int, parallel: int) -> tuple[list[float], int, int]:
    """``count`` PostToolUse Edit processes, ``parallel`` at a time; (times, lost, errors)."""
    hooks.hook(hooks.event("SessionStart", source="startup"))()
    before = len(hooks.errors)
    p = str(hooks.project)

    def one(i: int) -> float:
        edit = {"file_path": f"{p}/src/burst_{i}.py", "old_string": "a", "new_string": "b"}
        return hooks.hook(hooks.event("PostToolUse", tool_name="Edit", tool_input=edit))()

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        times = list(pool.map(one, range(count)))
    errors = len(hooks.errors) - before
    probe = (
        "import json\n"
        "from lifecycle.integrations.live import live_session\n"
        f"with live_session('file://{p}/.lifecycle', {hooks.name!r}) as live:\n"
        "    print(json.dumps([f.path for f in live.manager.work.files_modified]))\n"
    )
    done = subprocess.run(
        [PY, "-c", probe],
        env=hooks.env,
        cwd=hooks.project,  # not this checkout: -c puts the current folder first on the path
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    held = set(json.loads(done.stdout))
    lost = sum(1 for i in range(count) if f"src/burst_{i}.py" not in held)
    hooks.hook(hooks.event("SessionEnd", reason="other"))()
    return times, lost, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="rounds (default 40)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure")
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--checkpoints", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="10 rounds, 60 days, 40-hook burst")
    ap.add_argument("--skip-history", action="store_true")
    ap.add_argument("--out", default="hook_latency.txt", help="file in bench/results/")
    args = ap.parse_args()
    if args.quick:
        args.n, args.days, args.burst = 10, 60, 40
    tree = args.tree.resolve()
    RESULTS.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tmp-hook-", dir=RESULTS))
    out: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        out.append(text)

    try:
        load = os.getloadavg()
        say(f"tree {tree}  python {sys.version.split()[0]}  nproc {os.cpu_count()}")
        say(f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        main_hooks = Hooks(tree, scratch / "project", "bench")
        main_hooks.project.mkdir()
        main_hooks.first_session()
        alone = Hooks(tree, scratch / "project-alone", "bench", resident=False)
        alone.project.mkdir()
        alone.first_session()
        floor_dir = scratch / "floor"
        floor_dir.mkdir()
        run = main_hooks.run
        actions: dict[str, Callable[[], float]] = {
            "python -c pass": lambda: run([PY, "-c", "pass"]),
            'python -c "import json"': lambda: run([PY, "-c", "import json"]),
            'python -c "import transitions"': lambda: run([PY, "-c", "import transitions"]),
            "one durable write (10 KB, in process)": durable_write(floor_dir),
            **main_hooks.cases(),
        }
        got = rounds(actions, args.n, [main_hooks])
        json_floor = statistics.median(got['python -c "import json"'])
        tr_floor = statistics.median(got['python -c "import transitions"'])
        write = statistics.median(got["one durable write (10 KB, in process)"])
        say("")
        say(
            f"{'measurement':<52} {'median':>11} {'p99':>11} {'n':>5} {'ratio':>7}"
            f" {'CPU':>10}  budget"
        )
        for name, xs in got.items():
            med = statistics.median(xs)
            if name.startswith(("PostToolUse", "UserPrompt", "PreToolUse Bash, not")):
                budget = f"<= 2.0x import json  {verdict(med <= 2.0 * json_floor)}"
                say(line(name, xs, json_floor, budget))
            elif "risky (" in name:
                limit = 2.0 * json_floor + write
                budget = f"<= 2.0x import json + 1 write ({limit * 1000:.1f} ms)  "
                if name.endswith("in process"):
                    budget = "(no resident process)"
                else:
                    budget += verdict(med <= limit)
                say(line(name, xs, json_floor, budget))
            elif name.startswith("SessionStart"):
                budget = f"<= 2.5x import transitions ({tr_floor / json_floor:.2f}x json)  "
                if name.endswith("in process"):
                    budget = "(no resident process)"
                else:
                    budget += verdict(med <= 2.5 * tr_floor)
                say(line(name, xs, json_floor, budget))
            elif name == "SessionEnd":
                say(line(name, xs, json_floor, f"< 1.5 s  {verdict(p99(xs) < 1.5)}"))
            else:
                say(line(name, xs, json_floor))
        say('  (ratios against python -c "import json"; CPU: the hook\'s, plus the resident')
        say("   process's while it answered)")
        # Without the resident process (what the first such hook after it went idle
        # pays), in rounds of their own: each of these processes leaves a few hundred
        # milliseconds of CPU and unflushed writes behind, which the rounds above would
        # otherwise pay for in their fsyncs.
        alone_actions = {
            'python -c "import json" (again)': lambda: alone.run([PY, "-c", "import json"]),
            **{
                f"{case} in process": action
                for case, action in alone.cases().items()
                if case.startswith("SessionStart") or "risky (" in case
            },
        }
        got_alone = rounds(alone_actions, max(args.n // 2, 10), [alone])
        alone_floor = statistics.median(got_alone['python -c "import json" (again)'])
        say("")
        for name, xs in got_alone.items():
            note = "(no resident process)" if "in process" in name else ""
            say(line(name, xs, alone_floor, note))
        if not args.skip_history:
            say("")
            history: dict[str, Hooks] = {}
            for label, count in (
                ("10 checkpoints", 10),
                (f"{args.checkpoints:,} checkpoints", args.checkpoints),
            ):
                h = Hooks(tree, scratch / label.replace(" ", "-").replace(",", ""), "bench")
                h.project.mkdir()
                write_checkpoints(tree, h, count)
                h.first_session()
                history[label] = h
            t0 = time.perf_counter()
            for label, days in (("day 1", 1), (f"day {args.days}", args.days)):
                h = Hooks(tree, scratch / label.replace(" ", "-"), "demo")
                h.project.mkdir()
                live_a_year(tree, h, days)
                history[label] = h
            say(f"history written in {time.perf_counter() - t0:.0f} s")
            picked = ("SessionStart (resume, with the context)", "PostToolUse Edit",
                      "PreToolUse Bash, risky (rm -rf build/)", "SessionEnd")  # fmt: skip
            actions = {
                f"{label}: {case}": h.cases()[case]
                for label, h in history.items()
                for case in picked
            }
            got_h = rounds(actions, max(args.n // 2, 10), list(history.values()))
            labels = list(history)
            for small, big in ((labels[0], labels[1]), (labels[2], labels[3])):
                for case in picked:
                    a, b = got_h[f"{small}: {case}"], got_h[f"{big}: {case}"]
                    ratio = statistics.median(b) / statistics.median(a)
                    budget = f"<= 1.2x  {verdict(ratio <= 1.2)}"
                    say(line(f"{small}: {case}"[:48], a, key=f"{small}: {case}"))
                    say(line(f"{big}: {case}"[:48], b, statistics.median(a), budget,
                             key=f"{big}: {case}"))  # fmt: skip
            for h in history.values():
                main_hooks.errors += h.errors
        say("")
        bh = Hooks(tree, scratch / "burst", "bench")
        bh.project.mkdir()
        t0 = time.perf_counter()
        times, lost, errors = burst(bh, args.burst, 4)
        took = time.perf_counter() - t0
        med = statistics.median(times)
        say(
            line(f"burst: {args.burst} PostToolUse, 4 at a time", times)
            + f"  p99/median {p99(times) / med:.2f}x (<= 3x {verdict(p99(times) <= 3 * med)})"
        )
        say(
            f"  lost {lost}, errors {errors}, {took:.1f} s in all"
            f"  ({verdict(lost == 0 and errors == 0)})"
        )
        load = os.getloadavg()
        say(f"load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        main_hooks.errors += alone.errors
        if main_hooks.errors or bh.errors:
            say(f"hook errors: {len(main_hooks.errors) + len(bh.errors)}")
            for e in (main_hooks.errors + bh.errors)[:5]:
                say("  " + e[:300])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (RESULTS / args.out).write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
