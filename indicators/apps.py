"""App config for the STIX store and local matching."""

from django.apps import AppConfig


class IndicatorsConfig(AppConfig):
    name = "indicators"
    verbose_name = "STIX store and matching"
