"""An MCP server (stdio, JSON-RPC 2.0, one message a line) written with the standard library
only, for crates/sov-cli/tests/mcp.rs: it answers the handshake and lists its tools like any
server, and its tools misbehave on request, or try what its sandbox must refuse.

Tools: `echo` (returns its text), `hang` (never answers), `crash` (writes to stderr and exits),
`flood` (writes a 3 MiB line with no newline, then nothing), `garbage` (writes lines that are
not JSON-RPC and answers with a malformed result), `connect` (tries a TCP connection to host and
port), `read` (tries to read a file), `env` (the names of its environment variables) and
`where` (its working directory).

`--handshake garbage` answers the handshake with text that is not JSON; `--handshake exit`
exits at once with a message on stderr.
"""

import json
import os
import socket
import sys
import time

TOOLS = [
    {"name": name, "description": text, "inputSchema": schema}
    for name, text, schema in [
        ("echo", "Returns its text", {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        ("hang", "Never answers", {"type": "object", "properties": {}}),
        ("crash", "Exits", {"type": "object", "properties": {}}),
        ("flood", "Floods its output", {"type": "object", "properties": {}}),
        ("garbage", "Answers with malformed JSON-RPC", {"type": "object", "properties": {}}),
        ("connect", "Tries a TCP connection", {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "integer"}}, "required": ["host", "port"]}),
        ("read", "Tries to read a file", {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        ("env", "Names its environment variables", {"type": "object", "properties": {}}),
        ("where", "Says its working directory", {"type": "object", "properties": {}}),
    ]
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def text(result, is_error=False):
    return {"content": [{"type": "text", "text": result}], "isError": is_error}


def attempt(action):
    try:
        return text("ok: " + str(action()))
    except OSError as e:
        return text(f"refused: {type(e).__name__}: errno {e.errno}: {e.strerror}", True)


def call(name, args):
    if name == "echo":
        return text(args.get("text", ""))
    if name == "hang":
        time.sleep(3600)
    if name == "crash":
        sys.stderr.write("the fixture crashes on purpose\n")
        sys.stderr.flush()
        os._exit(3)
    if name == "flood":
        sys.stdout.write("x" * (3 << 20))
        sys.stdout.flush()
        time.sleep(3600)
    if name == "connect":
        return attempt(lambda: socket.create_connection((args["host"], int(args["port"])), timeout=3).close())
    if name == "read":
        return attempt(lambda: len(open(args["path"], "rb").read()))
    if name == "env":
        return text(",".join(sorted(os.environ)))
    if name == "where":
        return text(os.getcwd())
    return None


def main():
    handshake = sys.argv[sys.argv.index("--handshake") + 1] if "--handshake" in sys.argv else ""
    if handshake == "exit":
        sys.stderr.write("the fixture refuses to start\n")
        sys.exit(2)
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        method, rid = msg.get("method"), msg.get("id")
        if rid is None:
            continue  # a notification
        if method == "initialize":
            if handshake == "garbage":
                sys.stdout.write("this is not JSON-RPC\n{\"jsonrpc\": \"2.0\", \"id\": \"nope\"\n")
                sys.stdout.flush()
                continue
            version = msg.get("params", {}).get("protocolVersion", "2025-06-18")
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": version if version <= "2025-06-18" else "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "misbehaving-fixture", "version": "1.0.0"},
            }})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
        elif method == "tools/call":
            params = msg.get("params", {})
            if params.get("name") == "garbage":
                sys.stdout.write("not json at all\n[1, 2, 3]\n")
                send({"jsonrpc": "2.0", "id": rid, "result": {"content": "not a list"}})
                continue
            result = call(params.get("name"), params.get("arguments") or {})
            if result is None:
                send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "unknown tool"}})
            else:
                send({"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": rid, "result": {}})
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no such method"}})


if __name__ == "__main__":
    main()
