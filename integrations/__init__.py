"""Adapters to external systems, one module per system.

``erp`` (the ERP's invoice API), ``smtp`` (e-mail), ``wecom``, ``dingtalk`` and
``feishu`` (group-chat robots) and ``webhook`` (a generic JSON endpoint). Each
turns one call into a ``CallResult`` and never raises for a failure of the
other side, so the server can log it and retry. Which ones a deployment uses
is configuration (``registry.Registry.from_config``); tests put fakes of the
other side on loopback, never fakes of these modules.
"""
