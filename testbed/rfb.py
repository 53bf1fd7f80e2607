"""Read a VNC server's RFB protocol greeting (``RFB 003.008\\n``).

    python -m testbed.rfb 10.0.0.101 [5900]        # run inside a host namespace
    python -m testbed.rfb --hold 10.0.0.101 [5900]

``--hold`` keeps one TCP connection open across an event (a live
migration): it prints ``GREETING ...`` once connected, waits for a line on
stdin, then continues the RFB handshake on the *same* connection (sends its
protocol version, reads the security types) and prints ``SECURITY ...``.
"""
from __future__ import annotations

import socket
import sys


def greeting(host: str, port: int = 5900, timeout: float = 5.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        data = b""
        while len(data) < 12:
            chunk = s.recv(12 - len(data))
            if not chunk:
                break
            data += chunk
    return data.decode("ascii", "replace")


def is_rfb(text: str) -> bool:
    return text.startswith("RFB 003.") and len(text) == 12


def hold(host: str, port: int, timeout: float = 15.0) -> int:
    with socket.create_connection((host, port), timeout=timeout) as s:
        f = s.makefile("rwb", buffering=0)
        greet = f.read(12).decode("ascii", "replace")
        print(f"GREETING {greet.strip()}", flush=True)
        if not is_rfb(greet):
            return 1
        sys.stdin.readline()
        f.write(greet.encode())           # echo the server's version back
        n = f.read(1)
        if not n:
            print("CLOSED", flush=True)
            return 1
        types = list(f.read(n[0])) if n[0] else []
        print(f"SECURITY {types}", flush=True)
        return 0 if types else 1


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--hold":
        try:
            return hold(argv[1], int(argv[2]) if len(argv) > 2 else 5900)
        except OSError as exc:
            print(f"ERROR {exc}", flush=True)
            return 1
    host, port = argv[0], int(argv[1]) if len(argv) > 1 else 5900
    try:
        text = greeting(host, port, timeout=3.0)
    except OSError as exc:
        print(f"no VNC server at {host}:{port}: {exc}", file=sys.stderr)
        return 1
    print(text.strip())
    return 0 if is_rfb(text) else 1


if __name__ == "__main__":
    sys.exit(main())
