"""Typed clients of the services, one per owning service, for the services that call it.

Each client signs its calls with the caller's assertion, addressed to the service it calls, and
turns the service's status back into the domain error it stands for (``kit.grpcio.error_of``).
"""
