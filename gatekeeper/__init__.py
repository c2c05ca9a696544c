"""Dualkey gatekeeper: the customer's half of every report-data transaction.

Framework-free on purpose. See docs/protocol.md and docs/threat-model.md.
"""

VERSION = "1.1.0"  # protocol 1.1: scopes with several prefixes (docs/protocol.md)
PROTOCOL = 1
