#!/usr/bin/env bash
# Mutation testing (mutmut 3.x) of the transition table, the machine, the step and the
# trigger evaluators. Base configuration: [tool.mutmut] in pyproject.toml; parts (files to mutate
# and the tests to run against them): [tool.lifecycle.mutation]. Needs:
# pip install -e '.[mutation]'. See docs/testing.md and bench/mutation.py.
#   bash bench/mutation.sh                         [tool.mutmut] as configured
#   bash bench/mutation.sh triggers --jobs 2       lifecycle/triggers/*, the trigger tests
#   bash bench/mutation.sh step --fresh --jobs 2   lifecycle/session/step.py, the step tests
#   bash bench/mutation.sh lifecycle/triggers/risk.py --fresh   one file, from scratch
#   bash bench/mutation.sh triggers --survivors    re-check only the surviving mutants
#   bash bench/mutation.sh triggers --report       the last scores, per file
# Each selection works in its own copy of the tree, build/mutation/<parts>/ (git-ignored),
# where mutmut keeps its cache in mutants/; delete it (or pass --fresh) to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" bench/mutation.py "$@"
