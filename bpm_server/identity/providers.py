"""The single sign-on providers this deployment has configured (config.py), by name."""
from __future__ import annotations

from bpm_server.config import Config
from bpm_server.identity.oidc import OidcProvider
from bpm_server.identity.sso import SsoProvider, check_mapping
from bpm_server.identity.workplace_apps import workplace_app


def configured_providers(config: Config) -> dict[str, SsoProvider]:
    """In the order their buttons appear on the login page; empty: no single sign-on."""
    check_mapping(config.sso_mapping)
    found: dict[str, SsoProvider] = {}
    if config.oidc is not None:
        found["oidc"] = OidcProvider(config.oidc)
    for settings in config.workplace_apps:
        found[settings.kind] = workplace_app(settings)
    return found
