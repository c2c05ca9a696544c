"""Dualkey gatekeeper: the customer's half of every report-data transaction.

Framework-free on purpose. See docs/protocol.md and docs/threat-model.md.
"""

VERSION = "1.3.0"  # 1.3.0: audit search by address range (client_net); 1.2.0: the customer's IdP (protocol 3)
PROTOCOL = 3
