"""Adapters to external systems (ERP, notification channels), one module per system."""
