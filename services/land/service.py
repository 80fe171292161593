"""The land service."""

from shared.service import ServiceBase


class LandService(ServiceBase):
    name = "land"
