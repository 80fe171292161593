"""The commerce service."""

from shared.service import ServiceBase


class CommerceService(ServiceBase):
    name = "commerce"
