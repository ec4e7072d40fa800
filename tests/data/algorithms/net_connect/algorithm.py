"""Hostile: tries to reach the network (a listener on the host's loopback, an outside address, DNS)."""

import socket


def _attempt(family, kind, address):
    sock = socket.socket(family, kind)
    sock.settimeout(3)
    try:
        if kind == socket.SOCK_DGRAM:
            sock.sendto(b"leak", address)
        else:
            sock.connect(address)
            sock.sendall(b"leak")
        return "connected"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()


def run(inputs, params):
    results = {
        "loopback": _attempt(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", params["port"])),
        "outside": _attempt(socket.AF_INET, socket.SOCK_STREAM, (params["outside_ip"], 443)),
        "outside_udp": _attempt(socket.AF_INET, socket.SOCK_DGRAM, (params["outside_ip"], 53)),
    }
    try:
        socket.getaddrinfo("example.com", 443)
        results["dns"] = "resolved"
    except OSError as exc:
        results["dns"] = f"{type(exc).__name__}: {exc}"
    return results
