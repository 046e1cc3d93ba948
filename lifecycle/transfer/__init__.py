"""Moving a project's records between stores: export, import, migrate.

- :func:`export_store` writes a project (or every project) as the JSON Lines format of
  :mod:`lifecycle.transfer.format` (docs/export-format.md), one record at a time;
- :func:`import_file` reads one back: the whole file is checked first (every checksum,
  the trailer, the versions), so a bad file changes nothing; then the rules of
  :mod:`lifecycle.transfer.copy` write what is new or newer;
- :func:`lifecycle.transfer.copy.migrate` copies a whole store into another,
  resumably, and verifies it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from lifecycle.transfer.copy import CopyResult, Progress, copy_into, migrate, store_items
from lifecycle.transfer.format import Item, read_export, verify, write_export

__all__ = ["export_store", "import_file", "migrate"]


def export_store(store: Any, out: IO[bytes], project: str | None = None) -> int:
    """Write ``project`` (every project when None) of the raw ``store`` to ``out``;
    return the number of records."""
    from lifecycle import __version__

    return write_export(out, store_items(store, project), project, __version__)


def import_file(
    store: Any,
    source: IO[bytes],
    *,
    project: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    checked: tuple[int, set[str]] | None = None,
) -> CopyResult:
    """Import an export into the raw ``store``; ``project`` renames a one-project file's
    project. ``source`` must be seekable: it is read twice (checked, then written);
    ``checked`` is what :func:`~lifecycle.transfer.format.verify` returned for it, if
    the caller checked it already."""
    from lifecycle import keys
    from lifecycle.errors import InvalidExport

    count, projects = verify(source) if checked is None else checked
    if project is not None:
        keys.validate_project(project)
        if len(projects) > 1:
            raise InvalidExport(
                f"the export holds {len(projects)} projects ({', '.join(sorted(projects))}); "
                "--project renames only a one-project export"
            )
    source.seek(0)

    def items() -> Iterator[Item]:
        for item in read_export(source):
            yield item if project is None else Item(project, item.key, item.value)

    return copy_into(store, items(), force=force, progress=progress, total=count)
