"""Tenants, their people and roles, signing keys and agent tokens, and the
tenant-scoped access functions every view goes through (tenants/access.py;
tickets have theirs beside them, in portal/tickets/access.py). Nothing here
imports portal/: the dependency points portal -> tenants."""
