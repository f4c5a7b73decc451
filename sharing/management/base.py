"""Sharing's management commands: the common command base, with ServiceError as bad input."""

from __future__ import annotations

from indicators.management.base import MdxCommand as _MdxCommand
from sharing.services import ServiceError


class MdxCommand(_MdxCommand):
    user_errors = (ServiceError,)
