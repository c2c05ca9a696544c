"""A customer's help-desk receiver, as its own process: verifies every request's
Dualkey-Signature the way docs/webhooks.md tells a customer to (no portal code),
answers 500 to the first FAILURES attempts of each delivery and 204 after, and
appends one JSON line per request to LOG.

    python tests/webhook_receiver.py PORT SECRET LOG FAILURES
"""

import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE = 300


def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    # docs/webhooks.md, "Verifying a request"
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


def main():
    port, secret, log, failures = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    seen: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            verified = verify(secret, self.headers.get("Dualkey-Signature", ""), body, time.time())
            delivery = self.headers.get("Dualkey-Delivery", "")
            seen[delivery] = seen.get(delivery, 0) + 1
            status = 401 if not verified else 500 if seen[delivery] <= failures else 204
            with open(log, "a") as out:
                out.write(json.dumps({"delivery": delivery, "event": self.headers.get("Dualkey-Event"),
                                      "verified": verified, "answered": status, "attempt": seen[delivery],
                                      "body": json.loads(body or b"null")}) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # readiness
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
