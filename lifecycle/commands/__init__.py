"""Subcommands of ``lifecycle``, one module per area.

Each module in :data:`MODULES` defines ``register(subparsers, add_common)``,
which adds its subparsers with ``set_defaults(handler=...)``. Modules import
only the standard library at the top, so building the parser stays cheap.
"""

MODULES: tuple[str, ...] = (
    "lifecycle.commands.sessions",  # session start|end, checkpoint save, learn, status, report
    "lifecycle.commands.agents",  # hook claude|install|uninstall, mcp
    "lifecycle.commands.history",  # history, prune
    "lifecycle.commands.coverage",  # coverage (transition coverage of a recorded run)
    "lifecycle.commands.rewind",  # rewind (restore files from a checkpoint's snapshot)
)
