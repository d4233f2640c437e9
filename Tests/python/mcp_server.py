"""A real MCP server from the official `mcp` SDK, for test_mcp.py: the SDK's high-level server
(`MCPServer` in mcp 2.x, `FastMCP` before) with two deterministic tools, served over streamable
HTTP on 127.0.0.1 (endpoint `/mcp`).

    python mcp_server.py PORT
"""
from __future__ import annotations

import sys

NAME = "api-recorder-test"
HOST = "127.0.0.1"
PATH = "/mcp"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def weather(city: str) -> str:
    """The (fixed) weather in a city."""
    return f"The weather in {city} is sunny, 21 degrees."


def main(port: int) -> None:
    try:
        from mcp.server.mcpserver import MCPServer  # mcp >= 2
    except ImportError:
        from mcp.server.fastmcp import FastMCP  # mcp 1.x: host, port and path are settings

        server = FastMCP(NAME, host=HOST, port=port, streamable_http_path=PATH, log_level="WARNING")
        server.tool()(add)
        server.tool()(weather)
        server.run("streamable-http")
        return
    server = MCPServer(NAME, log_level="WARNING")
    server.tool()(add)
    server.tool()(weather)
    server.run("streamable-http", host=HOST, port=port, streamable_http_path=PATH)


if __name__ == "__main__":
    main(int(sys.argv[1]))
