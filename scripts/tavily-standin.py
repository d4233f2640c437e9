#!/usr/bin/env python3
"""A stand-in for Tavily's search API, for recording examples without a Tavily key or internet.

    python3 scripts/tavily-standin.py [PORT]     (PORT 0 or absent: a free port)

Serves on 127.0.0.1 and prints "http://127.0.0.1:PORT" on stdout once it listens. It answers
`POST /search` with a fixed, Tavily-shaped result list (only the echoed `query` and the number
of results, `max_results`, depend on the request), requires an `Authorization: Bearer ...` header as Tavily does (401
otherwise), and answers anything else with 404. Standard library only.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESULTS = [
    {
        "title": "2022 FIFA World Cup final - Wikipedia",
        "url": "https://en.wikipedia.org/wiki/2022_FIFA_World_Cup_final",
        "content": "The 2022 FIFA World Cup final was played at Lusail Stadium on 18 December 2022. "
        "Argentina beat France 4-2 on penalties after a 3-3 draw, winning their third World Cup.",
        "score": 0.92,
        "raw_content": None,
    },
    {
        "title": "Argentina win the World Cup - FIFA",
        "url": "https://www.fifa.com/tournaments/mens/worldcup/qatar2022",
        "content": "Lionel Messi led Argentina to the title in Qatar, scoring twice in the final against France.",
        "score": 0.87,
        "raw_content": None,
    },
    {
        "title": "World Cup 2022: Argentina beat France on penalties - BBC Sport",
        "url": "https://www.bbc.com/sport/football/63932622",
        "content": "Gonzalo Montiel scored the winning penalty as Argentina beat France in a dramatic final.",
        "score": 0.81,
        "raw_content": None,
    },
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/search":
            return self._send(404, {"detail": {"error": "Not Found"}})
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            return self._send(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, {"detail": {"error": "Invalid JSON."}})
        query = request.get("query")
        if not isinstance(query, str) or not query:
            return self._send(400, {"detail": {"error": "query is required."}})
        count = request.get("max_results", 5)
        count = count if isinstance(count, int) and count > 0 else 5
        self._send(
            200,
            {
                "query": query,
                "follow_up_questions": None,
                "answer": None,
                "images": [],
                "results": RESULTS[:count],
                "response_time": 0.42,
            },
        )

    def do_GET(self):
        self._send(404, {"detail": {"error": "Not Found"}})

    def log_message(self, format, *args):
        sys.stderr.write("tavily-standin: " + (format % args) + "\n")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
