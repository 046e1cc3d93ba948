"""Persistence adapters behind one protocol, opened from a URL.

``file://.lifecycle`` (the embedded default), ``sqlite:///path.db``,
``postgresql://...``, ``serena+stdio://...``, ``memory://``. The environment
variable ``LIFECYCLE_STORE`` names the default for the CLI and for
``open_store()`` called with no URL.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from lifecycle.errors import InvalidStoreURL
from lifecycle.stores.base import Delete, Entry, Op, ProjectStore, Put, Store, split_url

__all__ = ["DEFAULT_URL", "Delete", "Entry", "Op", "ProjectStore", "Put", "Store", "open_store"]

DEFAULT_URL = "file://.lifecycle"
ENV_VAR = "LIFECYCLE_STORE"

#: scheme -> "module:factory"; factories take the URL. Imported only when used,
#: so opening a file store never imports a database driver.
SCHEMES: dict[str, str] = {
    "memory": "lifecycle.stores.memory:MemoryStore",
    "file": "lifecycle.stores.file:open_file_store",
    "sqlite": "lifecycle.stores.sqlite:open_sqlite_store",
    "postgresql": "lifecycle.stores.postgres:open_postgres_store",
    "postgres": "lifecycle.stores.postgres:open_postgres_store",
    "serena+stdio": "lifecycle.stores.serena:open_serena_store",
    "fallback": "lifecycle.stores.fallback:open_fallback_store",
}


def default_url() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def open_store(url: str | None = None) -> Store:
    """Open the store a URL names (default: ``$LIFECYCLE_STORE`` or ``file://.lifecycle``)."""
    url = default_url() if url is None else url
    if not isinstance(url, str) or "://" not in url:
        raise InvalidStoreURL(str(url), "a store URL needs a scheme, like file://")
    scheme = split_url(url).scheme.lower()
    target = SCHEMES.get(scheme)
    if target is None:
        raise InvalidStoreURL(url, f"unknown scheme {scheme!r}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidStoreURL(
            url, f"the {scheme} store needs a package that is not installed ({exc.name})"
        ) from None
    factory: Callable[[str], Store] = getattr(module, attr)
    return factory(url)
