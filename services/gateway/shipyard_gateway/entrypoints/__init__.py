"""The gateway's entry points: the public gRPC API, the HTTP/JSON API and the console."""
