"""The trusteeship service."""

from shared.service import ServiceBase


class TrusteeshipService(ServiceBase):
    name = "trusteeship"
