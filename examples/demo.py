"""Run Canopy's and Grove's flows once on the configured database (embedded SQLite by default).

    python examples/demo.py

Canopy opens a trading session, places and fills an order, and notifies the
user; Grove opens a research session, publishes a report, and notifies the
user; the user's notification list shows both, each with its app.
"""

from __future__ import annotations

import logging
import uuid

import timber_core
from timber_core.services.persistence import notification_service, session_service, user_service


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("timber").setLevel(logging.INFO)  # say which database is used, nothing more
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


if __name__ == "__main__":
    main()
