"""The session: the façade users call and the collaborators behind it.

- :mod:`~lifecycle.session.manager`: :class:`SessionManager`, the façade; each public
  method is one table event;
- :mod:`~lifecycle.session.driver`: the session's live state and the step that moves
  it (legal, facts, dispatch, adopt);
- :mod:`~lifecycle.session.continuity`: ``session/context`` written and attached (one
  session continued across processes);
- :mod:`~lifecycle.session.step`: one event decided (its facts, the guards' values)
  and done (the effect of the row that fired);
- :mod:`~lifecycle.session.effects`: what the effects do to the store;
- :mod:`~lifecycle.session.checkpoints`: the latest valid checkpoint, by id, the
  writer (CAS, re-key, merge, size limits, retry);
- :mod:`~lifecycle.session.finish`: the session record, summary and cleanup;
- :mod:`~lifecycle.session.learnings`: captured learnings and the retry queue;
- :mod:`~lifecycle.session.work`: pure work-state transforms;
- :mod:`~lifecycle.session.results`: what events return.
"""

from lifecycle.session.checkpoints import LATEST, MAX_BYTES, WARN_BYTES
from lifecycle.session.effects import CURRENT
from lifecycle.session.finish import CONTEXT, SESSION_WARN_BYTES
from lifecycle.session.hooks import LifecycleHooks
from lifecycle.session.manager import Clock, SessionManager, system_clock
from lifecycle.session.results import (
    CheckpointResult,
    CheckpointStatus,
    Clearance,
    ConflictPolicy,
    EndResult,
    LearningResult,
    Outcome,
    SessionSnapshot,
    StartResult,
)

#: The conflict policies' names (``SessionManager(conflict=...)``).
CONFLICT_POLICIES = tuple(p.value for p in ConflictPolicy)

__all__ = [
    "CONFLICT_POLICIES",
    "CONTEXT",
    "CURRENT",
    "LATEST",
    "MAX_BYTES",
    "SESSION_WARN_BYTES",
    "WARN_BYTES",
    "CheckpointResult",
    "CheckpointStatus",
    "Clearance",
    "Clock",
    "ConflictPolicy",
    "EndResult",
    "LearningResult",
    "LifecycleHooks",
    "Outcome",
    "SessionManager",
    "SessionSnapshot",
    "StartResult",
    "system_clock",
]
