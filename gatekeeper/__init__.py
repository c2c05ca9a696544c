"""Dualkey gatekeeper: the customer's half of every report-data transaction.

Framework-free on purpose. See docs/protocol.md and docs/threat-model.md.
"""

VERSION = "1.1.0"  # 1.1.0: scopes with several prefixes, protocol 2's "prefixes" feature
PROTOCOL = 2
