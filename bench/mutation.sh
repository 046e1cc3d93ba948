#!/usr/bin/env bash
# Mutation testing of the transition table, the machine and the trigger evaluators.
# Configuration: [tool.mutmut] in pyproject.toml. Needs: pip install -e '.[mutation]'.
#   bash bench/mutation.sh                 everything in [tool.mutmut] only_mutate
#   bash bench/mutation.sh spec machine    only lifecycle/spec.py and lifecycle/machine.py
# mutmut works in ./mutants (git-ignored) and caches results there; delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
mutmut=$(dirname "$py")/mutmut
args=()
only="lifecycle\\."
for name in "$@"; do
    case "$name" in
        spec | machine | triggers) args+=("lifecycle.${name}.*"); only="$only|lifecycle\\.${name}\\." ;;
        *) echo "unknown part: $name (spec, machine, triggers)" >&2; exit 2 ;;
    esac
done
"$mutmut" run --max-children "${JOBS:-$(nproc)}" "${args[@]}" || true
# The score: killed (and timed out) mutants over all that were checked.
[ "$#" -gt 0 ] && only=${only#lifecycle\\.|}
"$mutmut" results --all true | grep -E "^ *($only)" | awk -F': ' '
    { n[$2]++; total++ }
    END {
        killed = n["killed"] + n["timeout"]
        for (s in n) printf "%-12s %d\n", s, n[s]
        printf "score: %d of %d mutants killed (%.1f%%)\n", killed, total, 100 * killed / total
    }'
echo "surviving mutants: $mutmut results; one of them: $mutmut show <name>"
