"""HTTP and WebSocket handlers, one module per resource. Thin: parse, call a service, return."""
