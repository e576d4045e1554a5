"""The engine host: Hearth's engines behind an HTTP server on loopback (see API.md)."""
