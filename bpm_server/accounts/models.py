"""Customer accounts (the ERP's accounts), with their tier and owner."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import Model, UTCDateTime

TIERS = ("strategic", "key", "standard")


class Account(Model):
    __tablename__ = "account"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the ERP's account id
    name: Mapped[str] = mapped_column(String(300))
    tier: Mapped[str] = mapped_column(String(20), default="standard")
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # username of the account manager
    executive_sponsor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
