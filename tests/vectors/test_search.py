"""Search by meaning through the apps' own flows: Grove's research notes, Canopy's order notes.

Each behaviour runs on both store backends: the embedded default (qdrant-edge under
TIMBER_HOME) and the server code path (qdrant-client, in-process ``:memory:``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import timber_core
from timber_core.errors import ConfigurationError, IsolationError, NotFoundError, SchemaError, ValidationError
from timber_core.services.persistence import user_service
from timber_core.services.vector import vector_service

from .conftest import start

APPLE = "Apple's quarterly results beat analyst estimates on strong iPhone and services revenue"
UNRELATED = [
    "Planted tomatoes and basil in the back garden this weekend",
    "Slow-cooked lentil soup with cumin and smoked paprika",
    "Booked train tickets to Lisbon for the conference in May",
]
ORDER_NOTE = "Buying Apple shares ahead of the earnings call"
QUERY = "AAPL earnings beat expectations"
STORES = ["edge", "server-memory"]


@pytest.fixture(params=STORES)
def kernel(request: pytest.FixtureRequest, model_env: str, tmp_path: Path) -> Iterator[Any]:
    """Timber initialized as Grove on SQLite, on the store backend of the param."""
    k = start(f"sqlite:///{tmp_path}/timber.db")
    if request.param == "server-memory":
        from qdrant_client import QdrantClient

        from timber_core.vectors.server import QdrantServerStore

        k.vectors.use_store(QdrantServerStore(client=QdrantClient(":memory:")))
    yield k
    k.close()


def research(kernel: Any, user: str, symbol: str, notes: str | None) -> str:
    return str(kernel.services["reports"].start_research(user, symbol, notes))


def order(kernel: Any, user: str, notes: str | None) -> str:
    with timber_core.app_context("canopy"):
        return str(kernel.services["orders"].create_order(user, "AAPL", "limit", 10, 187.5, notes=notes))


def test_the_apple_note_is_found_by_meaning_through_search_and_unified_search(kernel: Any, alice: str) -> None:
    apple = research(kernel, alice, "AAPL", APPLE)
    others = [research(kernel, alice, s, n) for s, n in zip(["GRDN", "SOUP", "TRIP"], UNRELATED)]
    order_id = order(kernel, alice, ORDER_NOTE)

    hits = vector_service.search(QUERY, "research_sessions", limit=10)
    assert [h["id"] for h in hits][0] == apple
    assert sorted(h["id"] for h in hits[1:]) == sorted(others)
    assert hits[0]["score"] > hits[1]["score"]
    assert {k: hits[0][k] for k in ("id", "app", "model", "collection")} == {
        "id": apple, "app": "grove", "model": "ResearchSession", "collection": "research_sessions"}
    assert hits[0]["payload"] == {"app": "grove", "model": "ResearchSession", "row_id": apple, "user_id": alice,
                                  "content": APPLE, "content_field": "notes"}

    with timber_core.platform_context():
        unified = vector_service.unified_search(alice, QUERY, limit=20)
    assert {h["id"]: (h["app"], h["model"]) for h in unified} == {
        apple: ("grove", "ResearchSession"), order_id: ("canopy", "Order"),
        **{o: ("grove", "ResearchSession") for o in others},
    }
    scores = [h["score"] for h in unified]
    assert scores == sorted(scores, reverse=True)
    ranked = [h["id"] for h in unified]
    assert max(ranked.index(apple), ranked.index(order_id)) < min(ranked.index(o) for o in others)


def test_an_app_searches_only_its_own_points_and_the_users_filter_is_applied(kernel: Any, alice: str, bob: str) -> None:
    mine = research(kernel, alice, "AAPL", APPLE)
    theirs = research(kernel, bob, "AAPL", "Apple's results beat estimates again this quarter")
    order(kernel, alice, ORDER_NOTE)
    assert [h["id"] for h in vector_service.search(QUERY, "research_sessions", {"user_id": alice})] == [mine]
    assert sorted(h["id"] for h in vector_service.search(QUERY, "research_sessions")) == sorted([mine, theirs])
    with timber_core.user_context(bob):
        assert [h["id"] for h in vector_service.search(QUERY, "research_sessions")] == [theirs]
        with pytest.raises(IsolationError) as err:
            vector_service.search(QUERY, "research_sessions", {"user_id": alice})
        assert str(err.value) == (
            f"search: the block acts for user {bob!r} (user_context) but filter_dict['user_id'] is {alice!r}; pass "
            f"filter_dict['user_id']={bob!r}, or enter user_context({alice!r}) around the call to act for that user")
    with timber_core.app_context("canopy"):
        assert [h["app"] for h in vector_service.search(QUERY, "orders")] == ["canopy"]
        with pytest.raises(IsolationError) as err:
            vector_service.search(QUERY, "research_sessions")
        assert str(err.value) == (
            "search: app 'canopy' may not search collection 'research_sessions': it holds model ResearchSession "
            "of app 'grove'. Search your own collections (orders), or run cross-app search in "
            "timber_core.platform_context() (unified_search)")
    with pytest.raises(IsolationError) as err:
        vector_service.search(QUERY, "research_sessions", {"app": "canopy"})
    assert str(err.value) == ("search: app 'grove' may not search app 'canopy''s points; leave 'app' out, Timber "
                              "filters by the calling app")
    with pytest.raises(IsolationError) as err:
        vector_service.unified_search(alice, QUERY)
    assert str(err.value) == ("unified_search: app 'grove' may not search other apps' data; call it inside "
                              "timber_core.platform_context(), or use search() on your own collections")
    with timber_core.platform_context():
        assert {h["app"] for h in vector_service.unified_search(bob, QUERY)} == {"grove"}
        assert [h["id"] for h in vector_service.unified_search(bob, QUERY)] == [theirs]


def test_a_changed_note_is_reindexed_and_a_deleted_or_emptied_row_leaves_the_index(kernel: Any, alice: str) -> None:
    apple = research(kernel, alice, "AAPL", APPLE)
    garden = research(kernel, alice, "GRDN", UNRELATED[0])
    soup = research(kernel, alice, "SOUP", UNRELATED[1])
    Research = kernel.models["ResearchSession"]
    with kernel.db.session_scope() as s:
        s.get(Research, garden).notes = "Apple posted record earnings, well above what analysts expected"
    hits = vector_service.search(QUERY, "research_sessions")
    assert [h["payload"]["content"] for h in hits if h["id"] == garden] == [
        "Apple posted record earnings, well above what analysts expected"]
    assert hits[-1]["id"] == soup
    with kernel.db.session_scope() as s:
        s.delete(s.get(Research, apple))
        s.get(Research, soup).notes = "   "
    assert [h["id"] for h in vector_service.search(QUERY, "research_sessions")] == [garden]
    assert kernel.vectors.store.count("research_sessions") == 1


def test_a_note_without_text_is_not_indexed_and_an_empty_collection_answers_nothing(kernel: Any, alice: str) -> None:
    research(kernel, alice, "AAPL", None)
    assert vector_service.search(QUERY, "research_sessions") == []
    with timber_core.platform_context():
        assert vector_service.unified_search(alice, QUERY) == []


def test_bad_input_gets_clear_errors(kernel: Any, alice: str) -> None:
    research(kernel, alice, "AAPL", APPLE)
    for query in ("", "   ", None):
        with pytest.raises(ValidationError) as err:
            vector_service.search(query, "research_sessions")  # type: ignore[arg-type]
        assert str(err.value) == f"search: query must be non-empty text to search for, not {query!r}"
    with pytest.raises(NotFoundError) as nf:
        vector_service.search(QUERY, "research_notes")
    assert str(nf.value) == "search: no vector collection 'research_notes'; app 'grove' may search: research_reports, research_sessions"
    with pytest.raises(ValidationError) as err:
        vector_service.search(QUERY, "research_sessions", {"symbol": "AAPL"})
    assert str(err.value) == ("search: cannot filter on 'symbol': it is not an indexed field; indexed fields: "
                              "app, model, user_id")
    with pytest.raises(ValidationError) as err:
        vector_service.search(QUERY, "research_sessions", limit=0)
    assert str(err.value) == "search: limit must be a whole number from 1 to 1000, not 0"
    with pytest.raises(ValidationError) as err:
        vector_service.search(QUERY, "research_sessions", {"user_id": 7})
    assert str(err.value) == "search: filter_dict['user_id'] must be a string or a non-empty list of strings, not 7"


@pytest.mark.parametrize("case, line, field, message", [
    ("vector_field_missing", 7, "Thing.vector_search.content_field", "names no column of Thing; columns: id, title"),
    ("vector_field_not_text", 7, "Thing.vector_search.content_field",
     "column 'pages' is Integer; vector search needs a Text or String column"),
])
def test_a_model_whose_content_field_is_missing_or_not_text_fails_at_load(
    tmp_path: Path, case: str, line: int, field: str, message: str
) -> None:
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "yaml" / "bad" / case
    with pytest.raises(SchemaError) as err:
        timber_core.initialize_timber("thingy", model_config_dirs=[str(folder)],
                                      database_url=f"sqlite:///{tmp_path}/t.db", session_types=["thing"])
    assert str(err.value) == f"{folder / 'things.yaml'}:{line}: app 'thingy', field '{field}': {message}"


def test_vector_search_turned_off_records_nothing_and_refuses_to_search(
    model_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENABLE_VECTOR_SEARCH", "false")
    k = start(f"sqlite:///{tmp_path}/timber.db")
    try:
        alice = user_service.create_user("alice@example.com", "alice")
        research(k, alice, "AAPL", APPLE)
        with timber_core.platform_context(), k.db.connection() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM timber_vector_outbox").scalar() == 0
        with pytest.raises(ConfigurationError) as err:
            vector_service.search(QUERY, "research_sessions")
        assert str(err.value) == ("vector search is disabled (ENABLE_VECTOR_SEARCH=false): nothing is indexed; set "
                                  "ENABLE_VECTOR_SEARCH=true and run `timber vectors reindex`")
        assert k.vectors._store is None
    finally:
        k.close()


def test_the_vectors_service_is_reachable_by_name(kernel: Any) -> None:
    assert kernel.services["vectors"].collections() == ["research_reports", "research_sessions"]
    with timber_core.platform_context():
        assert vector_service.collections() == ["orders", "research_reports", "research_sessions"]
