"""The ranking service."""

from shared.service import ServiceBase


class RankingService(ServiceBase):
    name = "ranking"
