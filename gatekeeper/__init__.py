"""Dualkey gatekeeper: the customer's half of every report-data transaction.

Framework-free on purpose. See docs/protocol.md and docs/threat-model.md.
"""

VERSION = "1.2.0"  # 1.2.0: the customer's IdP (X-Identity-Token), protocol 3's "identity" feature
PROTOCOL = 3
