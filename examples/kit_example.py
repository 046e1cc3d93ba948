"""The lifecycle rules on your own store, with an invariant of your own.

Run it with pytest (``pytest examples/kit_example.py``); the test suite runs it too.
"""

from __future__ import annotations

import tempfile

from hypothesis import settings
from hypothesis.stateful import invariant

from lifecycle import open_store
from lifecycle.stores.base import Store
from lifecycle.testing import LifecycleRules


class SQLiteRules(LifecycleRules):
    """The eight lifecycle rules on a SQLite file, with about one write in ten failing,
    plus a rule of our own: the database holds exactly the checkpoints written."""

    fault_rate = 0.1

    def make_store(self) -> Store:
        # A new, empty database for every example, in a folder removed at teardown.
        self.folder = tempfile.TemporaryDirectory()
        return open_store(f"sqlite:///{self.folder.name}/lifecycle.db")

    @invariant()
    def the_database_holds_exactly_the_checkpoints_written(self) -> None:
        prefix = f"{self.project}/checkpoints/"
        stored = set(self.real.list_keys(prefix)) - {prefix + "latest"}
        assert stored == {f"{self.project}/{cp.key}" for cp in self.written}

    def teardown(self) -> None:
        super().teardown()
        self.folder.cleanup()


TestSQLiteRules = SQLiteRules.TestCase
TestSQLiteRules.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
