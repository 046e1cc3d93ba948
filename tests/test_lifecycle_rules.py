"""design.md lifecycle rules 1-6 on random event sequences, with random store faults."""

from __future__ import annotations

from hypothesis import settings

from lifecycle.testing import LifecycleRules


class RulesWithFaults(LifecycleRules):
    fault_rate = 0.15


class RulesWithoutFaults(LifecycleRules):
    fault_rate = 0.0


TestRulesWithFaults = RulesWithFaults.TestCase
TestRulesWithFaults.settings = settings(TestRulesWithFaults.settings, stateful_step_count=30)
TestRulesWithoutFaults = RulesWithoutFaults.TestCase
TestRulesWithoutFaults.settings = settings(TestRulesWithoutFaults.settings, stateful_step_count=30)
