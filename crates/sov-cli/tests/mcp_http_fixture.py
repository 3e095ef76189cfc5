"""A remote MCP server (streamable HTTP) that misbehaves on request, for crates/sov-cli/tests/mcp.rs.

Standard library only. `python3 mcp_http_fixture.py PORT_FILE [TOKEN]` listens on a free port
of 127.0.0.1, writes the port to PORT_FILE, and answers MCP over POST /mcp: the handshake and
a tool list, then per tool:

  echo     {"text": ...}: answers with the text (a JSON answer)
  hang     never answers
  flood    an event stream whose one event never ends
  garbage  a JSON answer that is not JSON
  big      a JSON answer of 2 MiB

With TOKEN, every request without `Authorization: Bearer TOKEN` gets 401. GET (the server's
own event stream) is 405, DELETE 200.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = [
    {
        "name": name,
        "description": f"the fixture's {name}",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    for name in ["echo", "hang", "flood", "garbage", "big"]
]

TOKEN = sys.argv[2] if len(sys.argv) > 2 else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, kind, body, session=True):
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        if session:
            self.send_header("Mcp-Session-Id", "fixture-session")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorised(self):
        if TOKEN is None or self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self.answer(401, "text/plain", b"who are you?", session=False)
        return False

    def do_GET(self):
        if self.authorised():
            self.answer(405, "text/plain", b"no stream here")

    def do_DELETE(self):
        if self.authorised():
            self.answer(200, "text/plain", b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        message = json.loads(self.rfile.read(length) or b"{}")
        if not self.authorised():
            return
        method = message.get("method")
        if "id" not in message:
            self.answer(202, None, b"")
            return
        reply = lambda result: json.dumps(
            {"jsonrpc": "2.0", "id": message["id"], "result": result}
        ).encode()
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "http-fixture", "version": "1.0"},
            }
            self.answer(200, "application/json", reply(result))
        elif method == "tools/list":
            self.answer(200, "application/json", reply({"tools": TOOLS}))
        elif method == "tools/call":
            self.call(message["params"]["name"], message["params"].get("arguments") or {}, reply)
        else:
            self.answer(200, "application/json", reply({}))

    def call(self, name, args, reply):
        if name == "echo":
            text = args.get("text", "")
            self.answer(200, "application/json", reply({"content": [{"type": "text", "text": text}]}))
        elif name == "hang":
            time.sleep(3600)
        elif name == "flood":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b"event: message\ndata: ")
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass
        elif name == "garbage":
            self.answer(200, "application/json", b"this is not JSON-RPC {")
        elif name == "big":
            text = "y" * (2 << 20)
            self.answer(200, "application/json", reply({"content": [{"type": "text", "text": text}]}))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Ends with its parent's test (stdin closes).
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
