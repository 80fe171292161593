"""delivery bookkeeping: relay checkpoints, consumer inbox, catch-up checkpoints, stream order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_checkpoints",
        sa.Column("relay", sa.String(100), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "consumer_checkpoints",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stream_positions",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("stream_positions", "consumer_checkpoints", "inbox", "relay_checkpoints"):
        op.drop_table(table)
