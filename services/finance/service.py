"""The finance service."""

from shared.service import ServiceBase


class FinanceService(ServiceBase):
    name = "finance"
