"""Hostile: tries to send data to a server."""

import socket


def run(inputs, params):
    with socket.create_connection(("127.0.0.1", int(params.get("port", 80))), timeout=2) as s:
        s.sendall(b"speed data")
    return {"sent": True}
