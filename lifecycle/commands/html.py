"""``lifecycle report --html FILE`` (the ``report`` command's option, kept in its own module)."""

from __future__ import annotations

import argparse


def write_html_report(args: argparse.Namespace) -> int:
    import os
    import sys
    import tempfile
    from datetime import UTC, datetime

    from lifecycle.commands.base import emit, project_name
    from lifecycle.errors import LifecycleError
    from lifecycle.html_report import build
    from lifecycle.stores import ProjectStore, open_store

    store = ProjectStore(open_store(args.store), project_name(args))
    try:
        page = build(store, datetime.now(UTC))
    finally:
        store.close()
    target = os.path.abspath(args.html)
    try:
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".report-", suffix=".tmp")
    except OSError as exc:
        raise LifecycleError(f"cannot write {args.html!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        os.unlink(temp)
        raise
    sys.stderr.write(f"lifecycle: wrote the HTML report to {args.html}\n")
    emit(args, {"html": target, "bytes": len(page.encode())}, f"{target}")
    return 0
