"""The vendor's half of Dualkey signing: grant minting, a gatekeeper client, uploads.

Django-free, so the agent command-line tool and the tests can use it on their own.
"""
