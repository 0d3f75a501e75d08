"""Behaviour tests of the vector stores, the same for every backend."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from timber_core.errors import ConfigurationError, VectorSearchError
from timber_core.vectors.store import Hit, Point, VectorStore, qdrant_id

BACKENDS = ["sqlite", "edge", "server-memory", "server-path"]
REOPENABLE = ["sqlite", "edge", "server-path"]

Opener = Callable[[], VectorStore]


def unit(*xs: float) -> list[float]:
    n = math.sqrt(sum(x * x for x in xs))
    return [x / n for x in xs]


E1, E2, E3, E4 = unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1)

POINTS = [
    Point("1", unit(1, 0.1, 0, 0), {"app": "grove", "user_id": "u1", "model": "ResearchSession", "n": 1}),
    Point("2", unit(1, 0.3, 0, 0), {"app": "grove", "user_id": "u2", "model": "ResearchSession", "n": 2}),
    Point("3", unit(1, 0.0, 0, 0), {"app": "canopy", "user_id": "u1", "model": "Order", "n": 3}),
    Point("8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60", unit(0, 1, 0, 0), {"app": "grove", "user_id": "u1", "model": "ResearchSession", "n": 4}),
]
FIELDS = ["app", "user_id", "model"]


def filled(open_store: Opener) -> VectorStore:
    store = open_store()
    store.ensure_collection("notes", 4, FIELDS)
    store.upsert("notes", POINTS)
    return store


def ids(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


@pytest.mark.parametrize("open_store", BACKENDS, indirect=True)
class TestBehaviour:
    def test_search_returns_original_ids_payloads_and_cosine_scores(self, open_store: Opener) -> None:
        store = filled(open_store)
        hits = store.search("notes", E1, limit=10)
        assert ids(hits) == ["3", "1", "2", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"]
        assert hits[0].payload == {"app": "canopy", "user_id": "u1", "model": "Order", "n": 3}
        assert [round(h.score, 4) for h in hits] == [1.0, round(1 / math.sqrt(1.01), 4), round(1 / math.sqrt(1.09), 4), 0.0]
        assert ids(store.search("notes", E1, limit=2)) == ["3", "1"]

    def test_count_all_and_filtered(self, open_store: Opener) -> None:
        store = filled(open_store)
        assert store.count("notes") == 4
        assert store.count("notes", must={"app": "grove"}) == 3
        assert store.count("notes", must={"app": "grove", "user_id": "u1"}) == 2
        assert store.count("notes", must={"user_id": ["u1", "u2"]}) == 4
        assert store.count("notes", must={"app": "nobody"}) == 0

    def test_upsert_same_id_replaces_vector_and_payload(self, open_store: Opener) -> None:
        store = filled(open_store)
        store.upsert("notes", [Point("1", E3, {"app": "grove", "user_id": "u9", "model": "ResearchSession"})])
        assert store.count("notes") == 4
        hits = store.search("notes", E3, limit=1)
        assert ids(hits) == ["1"]
        assert hits[0].payload == {"app": "grove", "user_id": "u9", "model": "ResearchSession"}
        assert store.count("notes", must={"user_id": "u1"}) == 2

    def test_delete_removes_points_and_ignores_unknown_ids(self, open_store: Opener) -> None:
        store = filled(open_store)
        store.delete("notes", ["3", "does-not-exist"])
        assert store.count("notes") == 3
        assert ids(store.search("notes", E1, limit=10)) == ["1", "2", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"]
        store.delete("notes", [])
        assert store.count("notes") == 3

    def test_app_and_user_filters_isolate(self, open_store: Opener) -> None:
        store = filled(open_store)
        # "3" (canopy) is the closest point to E1, but a grove search never sees it.
        assert ids(store.search("notes", E1, must={"app": "grove"})) == ["1", "2", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"]
        assert ids(store.search("notes", E1, must={"app": "grove", "user_id": "u2"})) == ["2"]
        assert ids(store.search("notes", E1, must={"app": "canopy", "user_id": "u2"})) == []
        assert ids(store.search("notes", E1, must={"app": ["canopy", "grove"], "user_id": "u1"})) == [
            "3", "1", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"]
        assert ids(store.search("notes", E1, must={"model": "Order"})) == ["3"]

    def test_filter_on_field_not_indexed_names_field_and_indexed_ones(self, open_store: Opener) -> None:
        store = filled(open_store)
        expected = ("cannot filter vector collection 'notes' on field 'n': it is not indexed;"
                    " indexed fields: app, model, user_id")
        with pytest.raises(VectorSearchError) as search_err:
            store.search("notes", E1, must={"n": 1})
        assert str(search_err.value) == expected
        with pytest.raises(VectorSearchError) as count_err:
            store.count("notes", must={"n": 1})
        assert str(count_err.value) == expected

    def test_unknown_collection_names_it_and_lists_known(self, open_store: Opener) -> None:
        store = filled(open_store)
        store.ensure_collection("orders", 4, ["app"])
        for call in (lambda: store.search("research", E1), lambda: store.count("research"),
                     lambda: store.upsert("research", POINTS), lambda: store.delete("research", ["1"]),
                     lambda: store.drop_collection("research")):
            with pytest.raises(VectorSearchError) as err:
                call()
            assert str(err.value) == "unknown vector collection 'research'; known collections: notes, orders"

    def test_collections_and_drop(self, open_store: Opener) -> None:
        store = filled(open_store)
        store.ensure_collection("orders", 4, ["app"])
        assert store.collections() == ["notes", "orders"]
        store.drop_collection("notes")
        assert store.collections() == ["orders"]
        with pytest.raises(VectorSearchError) as err:
            store.count("notes")
        assert str(err.value) == "unknown vector collection 'notes'; known collections: orders"

    def test_ensure_collection_is_idempotent_adds_fields_and_rejects_other_dim(self, open_store: Opener) -> None:
        store = filled(open_store)
        store.ensure_collection("notes", 4, FIELDS)
        assert store.count("notes") == 4
        store.ensure_collection("notes", 4, ["n"])  # one more indexed field
        assert ids(store.search("notes", E1, must={"n": 2})) == ["2"]
        with pytest.raises(VectorSearchError) as err:
            store.ensure_collection("notes", 384, FIELDS)
        assert str(err.value) == ("vector collection 'notes' has vectors of size 4, not 384;"
                                  " drop and reindex it to change the embedding model")

    def test_wrong_vector_size_and_bad_filters(self, open_store: Opener) -> None:
        store = filled(open_store)
        with pytest.raises(VectorSearchError) as size_err:
            store.search("notes", [1.0, 0.0])
        assert str(size_err.value) == "vector of size 2 does not fit vector collection 'notes', whose vectors have size 4"
        with pytest.raises(VectorSearchError) as upsert_err:
            store.upsert("notes", [Point("9", [1.0] * 5, {})])
        assert str(upsert_err.value) == "vector of size 5 does not fit vector collection 'notes', whose vectors have size 4"
        with pytest.raises(VectorSearchError) as empty_err:
            store.search("notes", E1, must={"app": []})
        assert str(empty_err.value) == ("filter on field 'app' of vector collection 'notes' has an empty list of"
                                        " values; give at least one")
        with pytest.raises(VectorSearchError) as reserved:
            store.upsert("notes", [Point("9", E1, {"_id": "x"})])
        assert str(reserved.value) == "payload key '_id' is reserved for the point id (point '9')"

    def test_search_over_several_users_returns_the_best_limit_overall(self, open_store: Opener) -> None:
        store = filled(open_store)
        assert ids(store.search("notes", E1, must={"user_id": ["u1", "u2"]}, limit=2)) == ["3", "1"]

    def test_retrieve_returns_stored_payloads_of_existing_ids_only(self, open_store: Opener) -> None:
        store = filled(open_store)
        got = store.retrieve("notes", ["1", "3", "missing"])
        assert got == {"1": POINTS[0].payload, "3": POINTS[2].payload}

    def test_scan_yields_every_point_once(self, open_store: Opener) -> None:
        store = filled(open_store)
        store.delete("notes", ["2"])
        assert sorted(store.scan("notes")) == sorted((p.id, p.payload) for p in POINTS if p.id != "2")

    def test_limit_must_be_positive(self, open_store: Opener) -> None:
        store = filled(open_store)
        for bad in (0, -1, "3"):
            with pytest.raises(VectorSearchError) as err:
                store.search("notes", E1, limit=bad)  # type: ignore[arg-type]
            assert str(err.value) == f"search limit must be a positive integer, not {bad!r}"

    def test_invalid_collection_name(self, open_store: Opener) -> None:
        store = open_store()
        with pytest.raises(ConfigurationError) as err:
            store.ensure_collection("../etc", 4, [])
        assert str(err.value) == ("invalid vector collection name '../etc': use letters, digits, '_', '-' or '.'"
                                  " (not first), at most 128 characters")


@pytest.mark.parametrize("open_store", REOPENABLE, indirect=True)
def test_reopen_after_close_keeps_points_and_indexes(open_store: Opener) -> None:
    store = filled(open_store)
    store.delete("notes", ["2"])
    store.close()
    store.close()  # idempotent
    again = open_store()
    assert again.collections() == ["notes"]
    assert again.count("notes") == 3
    assert ids(again.search("notes", E1, must={"app": "grove", "user_id": "u1"})) == [
        "1", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"]
    with pytest.raises(VectorSearchError) as err:
        again.search("notes", E1, must={"n": 1})
    assert "indexed fields: app, model, user_id" in str(err.value)


def test_point_ids_map_deterministically() -> None:
    assert qdrant_id("42") == qdrant_id("42")
    assert qdrant_id("42") != qdrant_id("43")
    assert qdrant_id("42") == "2219197d-a63f-58a5-8ce7-e5d38968f7a0"  # fixed forever: stored ids depend on it


def test_edge_store_locked_by_another_process_says_one_process_and_qdrant_url(tmp_path: Path) -> None:
    from timber_core.vectors.edge import EdgeStore

    store = EdgeStore(tmp_path / "vectors")
    store.ensure_collection("notes", 4, ["app"])
    child = textwrap.dedent(f"""
        from timber_core.vectors.edge import EdgeStore
        from timber_core.errors import VectorSearchError
        try:
            EdgeStore({str(tmp_path / 'vectors')!r}).count("notes")
        except VectorSearchError as exc:
            print(exc)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60,
                             env=_env_with_src())
    finally:
        store.close()
    assert out.stdout.strip() == (
        f"the embedded vector store {tmp_path / 'vectors'} is already open (owned by process {os.getpid()}, in this"
        " or another process). The Edge store (TIMBER_VECTOR_STORE=edge) belongs to one process and one"
        " EdgeStore; to share vectors between several processes (app servers, workers), use the default"
        " embedded store (TIMBER_VECTOR_STORE=sqlite) or run a Qdrant server and set QDRANT_URL"), out.stderr


def test_edge_store_refuses_foreign_directory(tmp_path: Path) -> None:
    from timber_core.vectors.edge import EdgeStore

    (tmp_path / "vectors" / "notes").mkdir(parents=True)
    (tmp_path / "vectors" / "notes" / "stray.txt").write_text("x")
    with EdgeStore(tmp_path / "vectors") as store:
        with pytest.raises(VectorSearchError) as err:
            store.ensure_collection("notes", 4, [])
        assert str(err.value) == (f"cannot create vector collection 'notes': {tmp_path / 'vectors' / 'notes'} exists"
                                  " and is not a Timber collection (no timber-collection.json); move it away")
        assert store.collections() == []


def test_edge_store_closed_raises(tmp_path: Path) -> None:
    from timber_core.vectors.edge import EdgeStore

    store = EdgeStore(tmp_path / "v")
    store.ensure_collection("notes", 4, [])
    store.close()
    with pytest.raises(VectorSearchError) as err:
        store.count("notes")
    assert str(err.value) == f"the embedded vector store at {tmp_path / 'v'} is closed"


def test_server_store_unreachable_url_names_it() -> None:
    from timber_core.vectors.server import QdrantServerStore

    store = QdrantServerStore("http://127.0.0.1:9", timeout=2)
    with pytest.raises(VectorSearchError) as err:
        store.collections()
    assert str(err.value).startswith("cannot reach the Qdrant server at http://127.0.0.1:9 while trying to list collections: ")
    assert str(err.value).endswith(". Check that the server is running and QDRANT_URL is right")


def test_server_store_closed_client_raises() -> None:
    from timber_core.vectors.server import QdrantServerStore

    store = QdrantServerStore(location=":memory:")
    store.ensure_collection("notes", 4, ["app"])
    store.close()
    with pytest.raises(VectorSearchError) as err:
        store.upsert("notes", POINTS)
    assert str(err.value) == "local Qdrant :memory: is closed; cannot upsert into collection 'notes'"


def test_server_path_locked_by_same_or_other_instance(tmp_path: Path) -> None:
    from timber_core.vectors.server import QdrantServerStore

    first = QdrantServerStore(path=str(tmp_path / "q"))
    try:
        with pytest.raises(VectorSearchError) as err:
            QdrantServerStore(path=str(tmp_path / "q"))
        assert str(err.value).startswith(f"cannot open local Qdrant {tmp_path / 'q'}: ")
        assert str(err.value).endswith("Local Qdrant storage belongs to one process; several processes need a"
                                       " Qdrant server (QDRANT_URL)")
    finally:
        first.close()


def test_server_store_needs_exactly_one_target() -> None:
    from timber_core.vectors.server import QdrantServerStore

    with pytest.raises(ConfigurationError) as err:
        QdrantServerStore()
    assert str(err.value) == "QdrantServerStore needs exactly one of url, client, location, path; got none"
    with pytest.raises(ConfigurationError) as both:
        QdrantServerStore("http://x:6333", location=":memory:")
    assert str(both.value) == "QdrantServerStore needs exactly one of url, client, location, path; got url, location"


def test_open_store_picks_server_for_url_sqlite_by_default_and_edge_on_request(tmp_path: Path) -> None:
    from timber_core.vectors.edge import EdgeStore
    from timber_core.vectors.factory import open_store
    from timber_core.vectors.server import QdrantServerStore
    from timber_core.vectors.sqlitevec import SqliteVecStore

    for url in (None, "", "  "):
        store = open_store(url, str(tmp_path / "v"))
        assert type(store) is SqliteVecStore and store.path == tmp_path / "v" / "index.sqlite3"
        store.close()
    edge = open_store(None, str(tmp_path / "e"), "edge")
    assert type(edge) is EdgeStore and edge.root_dir == tmp_path / "e"
    edge.close()
    server = open_store(" http://127.0.0.1:9 ", str(tmp_path / "v"))
    assert type(server) is QdrantServerStore and server.url == "http://127.0.0.1:9"
    server.close()


def _env_with_src() -> dict[str, str]:
    import os

    import timber_core.vectors

    src = str(Path(timber_core.vectors.__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_edge_auto_optimize_builds_hnsw_over_the_threshold_only(tmp_path: Path) -> None:
    from timber_core.vectors.edge import EdgeStore

    rng = __import__("random").Random(5)
    points = [Point(str(i), unit(*[rng.uniform(-1, 1) for _ in range(4)]), {"app": "grove"}) for i in range(400)]
    with EdgeStore(tmp_path / "default") as plain:
        plain.ensure_collection("notes", 4, ["app"])
        plain.upsert("notes", points)
        assert plain.stats("notes")["points"] == 400
        assert plain.stats("notes")["indexed_vectors"] == 0  # under Qdrant's threshold: exact scan
    with EdgeStore(tmp_path / "low", indexing_threshold_kb=1) as indexed:
        indexed.ensure_collection("notes", 4, ["app"])
        indexed.upsert("notes", points)
        assert indexed.stats("notes")["indexed_vectors"] == 400  # upsert ended with optimize()
        target = points[123]
        assert indexed.search("notes", target.vector, must={"app": "grove"}, limit=1)[0].id == "123"
        assert indexed.optimize("notes") is False  # nothing left to do


def test_server_store_notices_a_collection_dropped_by_another_client() -> None:
    from qdrant_client import QdrantClient

    from timber_core.vectors.server import QdrantServerStore

    client = QdrantClient(":memory:")
    store = QdrantServerStore(client=client)
    store.ensure_collection("notes", 4, ["app"])
    store.ensure_collection("orders", 4, ["app"])
    store.count("notes")  # cached
    client.delete_collection("notes")  # behind the store's back
    with pytest.raises(VectorSearchError) as err:
        store.search("notes", E1)
    assert str(err.value) == "unknown vector collection 'notes'; known collections: orders"
    store.close()


def test_second_edge_store_on_the_same_directory_in_one_process(tmp_path: Path) -> None:
    from timber_core.vectors.edge import EdgeStore

    with EdgeStore(tmp_path / "v") as first:
        first.ensure_collection("notes", 4, ["app"])
        second = EdgeStore(tmp_path / "v")
        with pytest.raises(VectorSearchError) as err:
            second.count("notes")
        assert f"is already open (owned by process {os.getpid()}, in this or another process)" in str(err.value)
        second.close()
