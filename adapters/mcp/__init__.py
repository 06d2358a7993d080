"""MCP adapter: spacescribe's tools for agents (stdio and streamable HTTP)."""
