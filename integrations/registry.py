"""Which external systems and channels this deployment has, built from its configuration.

Channels file (``BPM_CHANNELS_FILE``), JSON::

    {"channels": {
        "mail":    {"type": "smtp", "host": "smtp.corp.example", "port": 587, "starttls": true,
                    "sender": "bpm@corp.example", "address_template": "{username}@corp.example",
                    "addresses": {"li.na": "li.na@other.example"}, "username": "...", "password": "..."},
        "sales":   {"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."},
        "finance": {"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=...",
                    "secret": "SEC..."},
        "it":      {"type": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/...", "secret": "..."},
        "ops":     {"type": "webhook", "url": "https://ops.example/bpm", "secret": "..."}},
     "routes": {"users": {"li.na": ["mail"]}, "departments": {"sales": ["sales"]}, "default": ["mail"]}}

A person gets the in-app notification always, plus every channel routed to
their username, their department and ``default`` (each channel once).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.base import Channel, ServiceAdapter
from integrations.connectors import ConnectorConfigError, HttpConnector, load_connectors
from integrations.dingtalk import DingTalkRobot
from integrations.erp import ErpAdapter
from integrations.feishu import FeishuRobot
from integrations.smtp import SmtpMail
from integrations.webhook import JsonWebhook
from integrations.wecom import WeComRobot

log = logging.getLogger(__name__)


class ChannelConfigError(ValueError):
    """The channels file is unreadable or names something that does not exist."""


@dataclass
class Registry:
    services: dict[str, ServiceAdapter] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    routes: Mapping[str, Any] = field(default_factory=dict)

    def service(self, system: str) -> ServiceAdapter | None:
        return self.services.get(system)

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def channels_for(self, username: str, department: str | None) -> list[str]:
        names: list[str] = []
        for group in ((self.routes.get("users") or {}).get(username, []),
                      (self.routes.get("departments") or {}).get(department or "", []),
                      self.routes.get("default") or []):
            names.extend(n for n in group if n not in names)
        return names

    @classmethod
    def from_config(cls, config: Any) -> Registry:
        services: dict[str, ServiceAdapter] = {}
        if config.erp_base_url:
            services["erp"] = ErpAdapter(config.erp_base_url, config.erp_outbound_secret, config.erp_timeout_seconds)
        try:
            services.update(declared_connectors(config))
        except ConnectorConfigError as exc:
            # Their calls then fail into incidents naming the system; uploads say why.
            log.error("connector systems disabled: %s", exc)
        channels, routes = load_channels(config.channels_file) if config.channels_file else ({}, {})
        return cls(services=services, channels=channels, routes=routes)


def connectors_path(config: Any) -> Path | None:
    """The connectors file: the configured one, else ``connectors.json`` beside the models."""
    if config.connectors_file:
        return Path(config.connectors_file)
    default = Path(config.models_dir) / "connectors.json"
    return default if default.is_file() else None


def declared_connectors(config: Any) -> dict[str, HttpConnector]:
    """The systems of the connectors file (none without one); raises ``ConnectorConfigError``."""
    path = connectors_path(config)
    return load_connectors(path, config.connector_secrets) if path else {}


def load_channels(path: Path) -> tuple[dict[str, Channel], dict[str, Any]]:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelConfigError(f"{path}: cannot read the channels file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("channels", {}), dict):
        raise ChannelConfigError(f"{path}: expected an object with a 'channels' object")
    channels = {name: _channel(path, name, spec) for name, spec in document.get("channels", {}).items()}
    routes = document.get("routes") or {}
    if not isinstance(routes, dict):
        raise ChannelConfigError(f"{path}: 'routes' must be an object")
    named = [n for group in ((routes.get("users") or {}).values(), (routes.get("departments") or {}).values())
             for names in group for n in names] + list(routes.get("default") or [])
    unknown = sorted({n for n in named if n not in channels})
    if unknown:
        raise ChannelConfigError(f"{path}: routes name unknown channels: {', '.join(unknown)}")
    return channels, routes


def _channel(path: Path, name: str, spec: Any) -> Channel:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ChannelConfigError(f"{path}: channel {name!r} needs a 'type'")
    options = {k: v for k, v in spec.items() if k != "type"}
    kind = spec["type"]
    makers = {"smtp": SmtpMail, "wecom": WeComRobot, "dingtalk": DingTalkRobot, "feishu": FeishuRobot,
              "webhook": JsonWebhook}
    if kind not in makers:
        raise ChannelConfigError(f"{path}: channel {name!r} has unknown type {kind!r} "
                                 f"(known: {', '.join(sorted(makers))})")
    try:
        return makers[kind](name, **options)
    except TypeError as exc:
        raise ChannelConfigError(f"{path}: channel {name!r} ({kind}): {exc}") from None
