"""One kernel's vector machinery: the outbox recorder, the store, the embedders, the drains.

``kernel.vectors`` is a :class:`VectorRuntime`. Building it imports nothing heavy: the
store opens on first use (``open_store(QDRANT_URL, TIMBER_HOME/vectors)``), each
embedding model loads on its first embedding (once per process), and both are closed
or dropped by :meth:`VectorRuntime.close` (``kernel.close()``).

Settings (:class:`~timber_core.config.TimberConfig`): ``ENABLE_VECTOR_SEARCH=false``
records nothing and refuses searches; ``TIMBER_VECTOR_DRAIN=inline`` (default) drains
right after every commit that recorded work, ``off`` leaves it to ``timber vectors
sync``/``worker``. An inline drain never raises into the committing code: its failures
stay in the outbox (error, attempts, backoff) and are logged.

Drains are serialized: by a lock in the process and across processes, by a
session-level advisory lock on PostgreSQL or a file lock beside the SQLite database, so two drains never race to write one point; a drain
that waited for another sees every row committed before it started. An inline drain
waits at most :data:`INLINE_LOCK_WAIT_S`; then its work stays queued and one background
thread of the process retries it when the other drain ends (``close()`` waits for that at
most :data:`CLOSE_RETRY_WAIT_S`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import text

from .._flock import acquire, open_lock_file
from ..context import platform_context
from ..errors import ConfigurationError, NotFoundError
from .outbox import INDEXED_FIELDS, IndexedModel, Recorder, indexed_models, outbox_table

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel
    from .drain import DrainResult
    from .embeddings import Embedder
    from .store import VectorStore

__all__ = ["VectorRuntime", "ADVISORY_LOCK_KEY", "INLINE_LOCK_WAIT_S"]

log = logging.getLogger("timber.vectors")

#: How long an inline drain waits for another drain (a worker, a reindex) before leaving its
#: work in the outbox for that drain, the next commit or the worker.
INLINE_LOCK_WAIT_S: Final = 5.0
#: How long ``close()`` lets a background retry of a busy inline drain finish.
CLOSE_RETRY_WAIT_S: Final = 30.0
#: Suffix of the lock file beside a SQLite database that serializes drains across processes.
DRAIN_LOCK_SUFFIX: Final = ".vector-drain.lock"
#: Key of the PostgreSQL advisory lock that serializes drains across processes ("timbrvec").
ADVISORY_LOCK_KEY: Final = 0x74696D6272766563


class VectorRuntime:
    """The vector machinery of one kernel (see the module docstring for its contracts)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.config = kernel.config
        self.enabled: bool = bool(self.config.ENABLE_VECTOR_SEARCH)
        self.inline: bool = self.config.VECTOR_DRAIN == "inline"
        self.models: dict[str, IndexedModel] = indexed_models(kernel)
        self.table = outbox_table(kernel)
        self._store: VectorStore | None = None
        self._store_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._embedders: dict[str, Embedder] = {}
        self._ensured: set[str] = set()
        self._closed = False
        self._retry_lock = threading.Lock()
        self._retry_models: set[str] = set()
        self._retry_thread: threading.Thread | None = None
        if self.enabled and self.models:
            Recorder(kernel, self.models, self._after_commit).install(kernel.db.session_factory)

    # -- models and collections -----------------------------------------------------
    def model_for_collection(self, collection: str) -> IndexedModel:
        """Return the vector model whose collection is ``collection``; raise NotFoundError."""
        for m in self.models.values():
            if m.collection == collection:
                return m
        raise NotFoundError(f"no vector collection {collection!r}")

    def model(self, name: str) -> IndexedModel:
        """Return vector model ``name``; raise NotFoundError listing the vector models."""
        try:
            return self.models[name]
        except KeyError:
            raise NotFoundError(
                f"model {name!r} has no vector search; models with vector search: "
                f"{', '.join(sorted(self.models)) or 'none'}"
            ) from None

    # -- store and embedders ----------------------------------------------------------
    @property
    def store(self) -> VectorStore:
        """The vector store, opened on first use: a Qdrant server for QDRANT_URL, else embedded."""
        if self._store is None:
            with self._store_lock:
                if self._closed:
                    raise ConfigurationError("this kernel's vector store is closed (kernel.close() was called)")
                if self._store is None:
                    from .factory import open_store

                    self._store = open_store(self.config.QDRANT_URL, os.path.join(self.config.TIMBER_HOME, "vectors"),
                                             self.config.VECTOR_STORE)
        return self._store

    def use_store(self, store: VectorStore) -> None:
        """Make ``store`` this kernel's vector store (closing the one it had): for tests and tools."""
        with self._store_lock:
            previous, self._store = self._store, store
            self._ensured.clear()
        if previous is not None and previous is not store:
            with contextlib.suppress(Exception):
                previous.close()

    def embedder(self, model_name: str) -> Embedder:
        """The Embedder of ``model_name`` (created on first use; the model loads on its first embed)."""
        emb = self._embedders.get(model_name)
        if emb is None:
            from .embeddings import Embedder

            emb = self._embedders.setdefault(model_name, Embedder(model_name))
        return emb

    def ensure_collection(self, model: IndexedModel) -> None:
        """Create ``model``'s collection if missing, sized from its embedder, with the keyword indexes."""
        if model.collection in self._ensured:
            return
        self.store.ensure_collection(model.collection, self.embedder(model.embedding_model).dim, INDEXED_FIELDS)
        self._ensured.add(model.collection)

    def forget_collection(self, collection: str) -> None:
        """Forget that ``collection`` was ensured (after a drop)."""
        self._ensured.discard(collection)

    # -- drains ---------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self, wait: float | None = None) -> Iterator[bool]:
        """Hold the drain lock: this process's, and on PostgreSQL the advisory lock across processes.

        ``wait=None`` waits as long as it takes; a number of seconds gives up after that
        long and yields False (the caller then does nothing: an inline drain must not hold
        up the app behind a long reindex). Yields True while held.
        """
        deadline = None if wait is None else time.monotonic() + wait
        if not self._drain_lock.acquire(timeout=-1 if wait is None else wait):
            yield False
            return
        try:
            if self.kernel.db.dialect == "postgresql":
                with self._postgres_lock(deadline) as held:
                    yield held
            else:
                with self._file_lock(deadline) as held:
                    yield held
        finally:
            self._drain_lock.release()

    @contextlib.contextmanager
    def _file_lock(self, deadline: float | None) -> Iterator[bool]:
        """On SQLite: an exclusive lock on ``<database file>.vector-drain.lock`` across processes.

        The OS releases it when the holder dies, so a killed drain never blocks the next.
        An in-memory database is private to its process: the thread lock is enough.
        """
        database = self.kernel.db.url.database
        if not database or database == ":memory:":
            yield True
            return
        fd = open_lock_file(database + DRAIN_LOCK_SUFFIX)
        try:
            yield acquire(fd, deadline)
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def _postgres_lock(self, deadline: float | None) -> Iterator[bool]:
        """On PostgreSQL: the session-level advisory lock, on a connection of its own."""
        with platform_context():
            conn = self.kernel.db.engine.connect()
            try:
                if not self._advisory_lock(conn, deadline):
                    yield False
                    return
                try:
                    yield True
                finally:
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                        conn.commit()
                    except Exception:  # a connection that cannot unlock must not go back to the pool
                        conn.invalidate()
                        raise
            finally:
                conn.close()

    @staticmethod
    def _advisory_lock(conn: Any, deadline: float | None) -> bool:
        """Take the session-level advisory lock on ``conn``; poll until ``deadline`` (None: block)."""
        if deadline is None:
            # Waiting as long as it takes: lift the transaction's lock and statement timeouts first.
            conn.execute(text("SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)"))
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
            return True
        while True:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar()
            conn.commit()
            if got:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def drain(self, *, due_only: bool = True, batch_size: int = 256, models: Sequence[str] | None = None,
              wait: float | None = None) -> DrainResult:
        """Apply the outbox's work now; see :func:`timber_core.vectors.drain.drain`."""
        from .drain import drain

        return drain(self, due_only=due_only, batch_size=batch_size, models=models, wait=wait)

    def _after_commit(self, models: Sequence[str]) -> None:
        """``after_commit`` hook: drain the committed models' due work inline unless turned off.

        Only those models: their rows are the ones this process just wrote, so it can read
        them; other apps' work is left to their own processes or the worker. Never raises
        into the commit.
        """
        if not self.inline or self._closed:
            return
        try:
            result = self.drain(due_only=True, models=models, wait=INLINE_LOCK_WAIT_S)
        except Exception as exc:  # the commit succeeded; the work waits in the outbox
            log.warning("timber: the vector index drain after commit failed; the work stays in the outbox "
                        "for the next drain or `timber vectors sync`: %s: %s", type(exc).__name__, exc)
            return
        if result.busy:
            log.info("timber: another vector index drain is running; this process retries when it ends")
            self._retry_later(models)
        if result.failed:
            log.warning("timber: %d vector index update(s) failed and stay in the outbox (first error: %s); "
                        "retried with backoff, or run `timber vectors sync`", result.failed, result.errors[0])

    def _retry_later(self, models: Sequence[str]) -> None:
        """Drain ``models`` from a background thread once the other drain lets go.

        An inline drain that found another drain busy leaves its work queued; without this,
        the last commits of a process could wait for the next commit or the worker. One
        thread per runtime at most; it ends when nothing is left to retry.
        """
        with self._retry_lock:
            self._retry_models.update(models)
            if self._retry_thread is None:
                self._retry_thread = threading.Thread(target=self._retry_loop, name="timber-vector-drain-retry",
                                                      daemon=True)
                self._retry_thread.start()

    def _retry_loop(self) -> None:
        while True:
            with self._retry_lock:
                models = sorted(self._retry_models)
                self._retry_models.clear()
                if not models or self._closed:
                    self._retry_thread = None
                    return
            try:
                result = self.drain(due_only=True, models=models, wait=INLINE_LOCK_WAIT_S)
            except Exception as exc:  # the work stays in the outbox for the next drain
                log.warning("timber: retrying the vector index drain failed; the work stays in the outbox: %s: %s",
                            type(exc).__name__, exc)
                continue
            if result.busy:
                with self._retry_lock:
                    self._retry_models.update(models)

    def flush(self, timeout: float | None = CLOSE_RETRY_WAIT_S) -> bool:
        """Wait until no background retry is pending (at most ``timeout`` s); True when none is."""
        thread = self._retry_thread
        if thread is not None:
            thread.join(timeout)
        return self._retry_thread is None

    def close(self) -> None:
        """Let a pending retry drain finish (at most :data:`CLOSE_RETRY_WAIT_S`), then close the store.

        Idempotent. Work a retry could not apply stays in the outbox.
        """
        self.flush()
        with self._store_lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def __repr__(self) -> str:
        return (f"<VectorRuntime enabled={self.enabled} drain={'inline' if self.inline else 'off'} "
                f"models={sorted(self.models)} store={self._store!r}>")
