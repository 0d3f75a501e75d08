<%
    import re

    # Import only what the revision uses: sa, op and tops are not needed by every revision.
    body = "\n".join(part for part in (upgrades, downgrades) if part)

    def uses(name):
        return re.search(r"\b%s\." % name, body) is not None
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from __future__ import annotations

from collections.abc import Sequence

% if uses("sa"):
import sqlalchemy as sa
% endif
% if uses("op"):
from alembic import op
% endif
% if imports:
${imports}
% endif
% if uses("tops"):

from timber_core.migrations import ops as tops
% endif

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

#: What this app's roles, grants and policies are once this revision is applied;
#: ``timber create-migration`` diffs the registry against it (see timber_core.migrations.security).
timber_security = ${timber_security}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
