"""A webhook receiver in its own process, for the latency and delivery benchmarks.

    python -m bench.receiver [--delay-secs S]

It prints `listening <port>`, then one JSON line per request as it arrives:
{"at": wall time, "id": webhook-id, "resource": the event's resource id, "verified": the
Standard Webhooks signature checked (by the e2e tests' own verifier, which does not use
pvewatch's signing)}. HTTP/1.1 with keep-alive, as a real receiver would answer;
`--delay-secs` makes it a slow receiver (each answer waits that long).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.e2e.receiver import SECRET, verify_standard_webhook


def serve(delay_secs: float) -> None:
    out_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            at = time.time()
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = json.loads(body)["data"]  # format: native
                resource = (event.get("resource") or {}).get("id")
            except (ValueError, KeyError, TypeError, AttributeError):
                resource = None
            line = json.dumps(
                {
                    "at": at,
                    "id": headers.get("webhook-id"),
                    "resource": resource,
                    "verified": verify_standard_webhook(SECRET, headers, body, at),
                }
            )
            with out_lock:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            if delay_secs:
                time.sleep(delay_secs)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-secs", type=float, default=0.0)
    serve(parser.parse_args().delay_secs)


if __name__ == "__main__":
    main()
