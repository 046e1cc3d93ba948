"""The MCP tool ``rewind``: ``lifecycle rewind`` for MCP clients.

Restores the work tree's files from a checkpoint's git snapshot (see
:mod:`lifecycle.rewind`) in the git work tree the server runs in. It is its own
module so that the server (:mod:`lifecycle.integrations.mcp_server`) adds it with
one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


class RewindOut(BaseModel):
    source: str = Field(description="the checkpoint id, or 'undo'")
    commit: str = Field(description="the snapshot commit restored")
    work_tree: str
    dry_run: bool
    restored: list[str] = Field(description="deleted since the snapshot: written back")
    modified: list[str] = Field(description="changed since the snapshot: written back")
    created: list[str] = Field(description="created since: kept unless delete_new")
    created_deleted: bool
    undone: list[str] = Field(description="brought back by the rewind undone: deleted")
    blocked: list[str] = Field(description="not written: something created since is in the way")
    skipped: list[str] = Field(description="submodules: not restored")
    undo_ref: str | None
    complete: bool


def register(server: MCPServer, store: Any, project: str) -> None:
    """Add the ``rewind`` tool to ``server`` (on the project's open ``store``)."""
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    @server.tool(
        annotations=ToolAnnotations(
            title="Restore files from a checkpoint's snapshot",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=False,
        )
    )
    def rewind(
        checkpoint_id: Annotated[
            str | None, Field(description="the risk checkpoint to restore files from")
        ] = None,
        undo: Annotated[bool, Field(description="restore what the last rewind replaced")] = False,
        dry_run: Annotated[
            bool, Field(description="list what would change; change nothing")
        ] = False,
        paths: Annotated[
            list[str] | None,
            Field(description="only these files or folders (relative to the work tree)"),
        ] = None,
        delete_new: Annotated[
            bool, Field(description="also delete files created since the snapshot")
        ] = False,
    ) -> RewindOut:
        """Restore the work tree's files from the git snapshot a risk checkpoint took
        (before `rm -rf`, `git reset --hard`, ...). Never moves HEAD or touches the index;
        the state it replaces is kept (undo=true brings it back). Try dry_run=true first."""
        from lifecycle import rewind as rewinding
        from lifecycle.errors import LifecycleError
        from lifecycle.stores import ProjectStore

        try:
            result = rewinding.rewind(
                ProjectStore(store, project),
                project,
                checkpoint_id,
                undo=undo,
                paths=paths or (),
                delete_new=delete_new,
                dry_run=dry_run,
            )
        except LifecycleError as exc:
            raise ToolError(str(exc)) from None
        return RewindOut(**result.as_dict())
