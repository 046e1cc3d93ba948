"""Mutation testing (mutmut 3.x) of a part of the package, against the tests chosen for it.

Run through ``bash bench/mutation.sh`` (see docs/testing.md)::

    bash bench/mutation.sh                          [tool.mutmut] as configured
    bash bench/mutation.sh triggers                 a part of [tool.lifecycle.mutation]
    bash bench/mutation.sh lifecycle/triggers/risk.py   one file, with its part's tests
    bash bench/mutation.sh triggers --survivors     re-check only the mutants that survived
    bash bench/mutation.sh triggers --tests tests/test_triggers_risk.py
    bash bench/mutation.sh triggers --fresh --jobs 2   a finished run from scratch

``[tool.mutmut]`` in pyproject.toml is the base configuration. A part names the files to
mutate and the tests to run against them; each run with parts works in its own copy of the
tree, ``build/mutation/<parts>/``, whose ``[tool.mutmut]`` is the base with ``only_mutate``
and the test selection replaced, so that mutmut's cache (``mutants/`` there) belongs to
one selection. The score is printed per file: killed (timeouts count as killed) over all.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# mutmut's exit codes (mutmut.stats.status_by_exit_code); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
STATUS |= {36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
STATUS |= {37: "caught by type check", None: "not checked", 2: "interrupted"}
KILLED = {"killed", "timeout", "caught by type check"}


def toml_value(value: object) -> str:
    """A TOML literal for the strings, numbers, booleans and lists in [tool.mutmut]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[\n" + "".join(f"    {toml_value(v)},\n" for v in value) + "]"
    raise TypeError(f"cannot write {value!r} into [tool.mutmut]")


def with_mutmut_section(text: str, section: dict[str, object]) -> str:
    """pyproject.toml ``text`` with its [tool.mutmut] table replaced by ``section``."""
    body = "".join(f"{key} = {toml_value(value)}\n" for key, value in section.items())
    pattern = re.compile(r"^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", re.MULTILINE | re.DOTALL)
    new, count = pattern.subn(lambda _: f"[tool.mutmut]\n{body}\n", text)
    if count != 1:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table")
    return new


def resolve(
    parts: list[str], config: dict[str, dict[str, Any]], base_tests: list[str]
) -> tuple[list[str], list[str], dict[str, object]]:
    """The globs to mutate, the tests, and other [tool.mutmut] settings for ``parts``
    (part names or file paths)."""
    mutate: list[str] = []
    tests: list[str] = []
    settings: dict[str, object] = {}
    for part in parts:
        if part in config:
            chosen = config[part]
            globs = chosen["mutate"]
        elif part.endswith(".py") and (ROOT / part).is_file():
            owners = [
                c for c in config.values() if any(fnmatch.fnmatch(part, g) for g in c["mutate"])
            ]
            chosen = owners[0] if owners else {}
            globs = [part]
        else:
            known = ", ".join(config) or "none"
            raise SystemExit(f"unknown part {part!r}: a file lifecycle/....py or one of {known}")
        own = chosen.get("tests")
        settings |= {k: v for k, v in chosen.items() if k not in ("mutate", "tests")}
        mutate += [g for g in globs if g not in mutate]
        tests += [t for t in (own or base_tests) if t not in tests]
    return mutate, tests, settings


def workspace(label: str, section: dict[str, object], pyproject: str) -> Path:
    """A copy of the tree for one selection; mutmut's mutants/ inside it is kept."""
    work = ROOT / "build" / "mutation" / label
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    copied = [*section.get("source_paths", ["lifecycle"]), *section.get("also_copy", []), "tests"]  # type: ignore[misc]
    for name in dict.fromkeys(str(n) for n in copied):
        source, target = ROOT / name, work / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, target)
    (work / "pyproject.toml").write_text(with_mutmut_section(pyproject, section))
    return work


def outcomes(work: Path) -> dict[str, dict[str, str]]:
    """Each mutated file's mutants and their status, from mutmut's meta files."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        name = str(meta.relative_to(work / "mutants")).removesuffix(".meta")
        codes = data.get("exit_code_by_key", {})
        found[name] = {k: STATUS.get(v, "suspicious") for k, v in codes.items()}
    return found


def report(found: dict[str, dict[str, str]], mutate: list[str]) -> None:
    total_killed = total = 0
    for name, mutants in found.items():
        if not any(fnmatch.fnmatch(name, g) for g in mutate) or not mutants:
            continue
        counts = Counter(mutants.values())
        killed = sum(n for status, n in counts.items() if status in KILLED)
        total_killed, total = total_killed + killed, total + len(mutants)
        rest = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        print(
            f"{name:36} {killed:5d}/{len(mutants):<5d} {100 * killed / len(mutants):6.1f}%  {rest}"
        )
    if total:
        print(f"{'all':36} {total_killed:5d}/{total:<5d} {100 * total_killed / total:6.1f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("parts", nargs="*", help="parts of [tool.lifecycle.mutation] or files")
    parser.add_argument("--tests", nargs="+", help="these tests instead of the parts' own")
    parser.add_argument("--mutants", nargs="+", help="(re-)check only these mutants")
    parser.add_argument("--survivors", action="store_true", help="re-check the survivors only")
    parser.add_argument("--fresh", action="store_true", help="forget mutmut's cached results first")
    parser.add_argument("--report", action="store_true", help="print the last scores; run nothing")
    parser.add_argument(
        "--jobs", type=int, default=int(os.environ.get("JOBS", os.cpu_count() or 1))
    )
    args = parser.parse_args()

    pyproject = (ROOT / "pyproject.toml").read_text()
    tool = tomllib.loads(pyproject)["tool"]
    section: dict[str, object] = dict(tool["mutmut"])
    base_tests = list(section.get("pytest_add_cli_args_test_selection", []))  # type: ignore[call-overload]
    if args.parts:
        parts = tool.get("lifecycle", {}).get("mutation", {})
        mutate, tests, settings = resolve(args.parts, parts, base_tests)
        section |= settings
        section["only_mutate"] = mutate
        label = "+".join(
            p.removeprefix("lifecycle/").removesuffix(".py").replace("/", ".") for p in args.parts
        )
    else:
        mutate, tests, label = list(section["only_mutate"]), base_tests, "all"  # type: ignore[call-overload]
    section["pytest_add_cli_args_test_selection"] = args.tests or tests
    work = ROOT / "build" / "mutation" / label
    if args.report:
        report(outcomes(work), mutate)
        return 0
    work = workspace(label, section, pyproject)
    if args.fresh:
        shutil.rmtree(work / "mutants", ignore_errors=True)
    names = list(args.mutants or [])
    if args.survivors:
        found = outcomes(work)
        names += [k for mutants in found.values() for k, s in mutants.items() if s not in KILLED]
        if not names:
            print("no surviving mutants to re-check")
    mutmut = Path(sys.executable).parent / "mutmut"
    if names or not args.survivors:
        print(f"mutmut in {work.relative_to(ROOT)}: {' '.join(mutate)}", flush=True)
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(args.jobs), *names], cwd=work, check=False
        )
    report(outcomes(work), mutate)
    print(f"a survivor: (cd {work.relative_to(ROOT)} && {mutmut} show <name>)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
