"""The alliance service."""

from shared.service import ServiceBase


class AllianceService(ServiceBase):
    name = "alliance"
