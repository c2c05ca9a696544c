"""Tenants, their people and roles, signing keys and agent tokens, and the
tenant-scoped access functions every view goes through (tenants/access.py)."""
