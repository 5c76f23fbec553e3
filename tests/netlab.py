"""A small network lab of Linux network namespaces, for shaped-link tests and benchmarks/network.py.

    root namespace (Daphne, media worker)          agent namespace
         <prefix>-srv 10.77.7.1 ──┐           ┌── eth0 10.77.7.3
                                  hub namespace: bridge br0
                                              └── imp namespace ── customer namespace
                                                  (forwarder)        eth0 10.77.7.2

Every address is in 10.77.7.0/24, assigned here to interfaces of namespaces made here: the
namespaces have no default route, so nothing they send can leave for another network.
The customer's link goes through the "imp" namespace, where a userspace forwarder
(`python -m tests.netlab forward`) moves Ethernet frames between two veths with AF_PACKET
sockets and adds delay and random loss (this machine's kernel has `tbf` but no `netem`), and
`tc tbf` on the customer-facing veth shapes the customer's downlink rate.

Needs root, `ip`, `tc` (Debian's iproute2) and `ethtool`; `make test` installs them when missing.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SUBNET = "10.77.7"  # benchmarks/network.py; the shaped-link test takes one of its own
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc", "ethtool"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian's iproute2 / ethtool; `make test` installs them)"
    probe = f"rbprobe{os.getpid()}"
    result = _run("ip", "netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"`ip netns add` failed: {result.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class Link:
    """The customer's downlink: rate (kbit/s, None = unshaped), one-way delay, random loss."""

    rate_kbit: int | None = None
    delay_ms: float = 0.0
    loss: float = 0.0


class NetLab:
    """Namespaces, veths, the bridge and the customer's impaired link; `down()` removes all."""

    def __init__(self, prefix: str = "rbn", subnet: str = SUBNET) -> None:
        self.prefix = prefix
        self.subnet = subnet
        self.server_ip = f"{subnet}.1"
        self.customer_ip = f"{subnet}.2"
        self.agent_ip = f"{subnet}.3"
        self.hub = f"{prefix}-hub"
        self.customer = f"{prefix}-cust"
        self.agent = f"{prefix}-agent"
        self.imp = f"{prefix}-imp"
        self.server_if = f"{prefix}-srv"
        self.forwarder: subprocess.Popen[bytes] | None = None
        self.link = Link()

    # -- set-up --------------------------------------------------------------------------------

    def up(self, link: Link | None = None) -> NetLab:
        self.down()
        try:
            self._build(link)
        except BaseException:
            self.down()
            raise
        return self

    def _build(self, link: Link | None) -> None:
        for ns in (self.hub, self.customer, self.agent, self.imp):
            _run("ip", "netns", "add", ns)
            self._ns(ns, "ip", "link", "set", "lo", "up")
            self._ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self._ns(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        self._ns(self.hub, "ip", "link", "add", "br0", "type", "bridge")
        self._ns(self.hub, "ip", "link", "set", "br0", "up")
        # server leg: the root namespace's side carries the server address
        _run(
            "ip",
            "link",
            "add",
            self.server_if,
            "type",
            "veth",
            "peer",
            "name",
            "s0",
            "netns",
            self.hub,
        )
        _run("sysctl", "-qw", f"net.ipv6.conf.{self.server_if}.disable_ipv6=1", check=False)
        _run("ip", "addr", "add", f"{self.server_ip}/24", "dev", self.server_if)
        _run("ip", "link", "set", self.server_if, "up")
        self._bridge_port("s0")
        # agent leg
        self._veth(self.agent, "eth0", self.hub, "a1")
        self._ns(self.agent, "ip", "addr", "add", f"{self.agent_ip}/24", "dev", "eth0")
        self._ns(self.agent, "ip", "link", "set", "eth0", "up")
        self._bridge_port("a1")
        # customer leg, through the impairment namespace
        self._veth(self.customer, "eth0", self.imp, "ic")
        self._veth(self.imp, "ih", self.hub, "c1")
        self._ns(self.customer, "ip", "addr", "add", f"{self.customer_ip}/24", "dev", "eth0")
        self._ns(self.customer, "ip", "link", "set", "eth0", "up")
        for name in ("ic", "ih"):
            self._ns(self.imp, "ip", "link", "set", name, "promisc", "on", "up")
            self._ns(self.imp, "ethtool", "-K", name, "gro", "off", "gso", "off", "tso", "off")
        # The forwarder copies frames as they are: the stacks that send them must fill in
        # their checksums (a veth leaves them to a NIC that is not there) and not hand over
        # 64 KiB TCP segments.
        offloads = ("tx", "off", "tso", "off", "gso", "off")
        _run("ethtool", "-K", self.server_if, *offloads)
        self._ns(self.agent, "ethtool", "-K", "eth0", *offloads)
        self._ns(self.customer, "ethtool", "-K", "eth0", *offloads)
        self._bridge_port("c1")
        self.set_link(link or Link())

    def _ns(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("ip", "netns", "exec", ns, *argv, check=check)

    def _veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        _run(
            "ip",
            "link",
            "add",
            name_a,
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            name_b,
            "netns",
            ns_b,
        )

    def _bridge_port(self, name: str) -> None:
        self._ns(self.hub, "ip", "link", "set", name, "master", "br0")
        self._ns(self.hub, "ip", "link", "set", name, "up")

    def down(self) -> None:
        self._stop_forwarder()
        for ns in (self.hub, self.customer, self.agent, self.imp):
            _run("ip", "netns", "del", ns, check=False)
        _run("ip", "link", "del", self.server_if, check=False)

    def __enter__(self) -> NetLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- the customer's link -------------------------------------------------------------------

    def set_link(self, link: Link) -> None:
        """Shape the customer's downlink now (rate changes take effect at once)."""
        if link.rate_kbit is None:
            self._ns(self.imp, "tc", "qdisc", "del", "dev", "ic", "root", check=False)
        else:
            # A phone link's queue: ~150 ms at the rate, a bucket of a few packets.
            burst = max(4500, link.rate_kbit * 1000 // 8 // 100)
            self._ns(
                self.imp, "tc", "qdisc", "replace", "dev", "ic", "root", "tbf",
                "rate", f"{link.rate_kbit}kbit", "burst", str(burst), "latency", "150ms",
            )  # fmt: skip
        if (link.delay_ms, link.loss) != (self.link.delay_ms, self.link.loss) or not self.forwarder:
            self._start_forwarder(link)
        self.link = link

    def cut(self) -> None:
        """The customer's network drops everything both ways (a tunnel, a dead zone): no
        interface changes, packets just stop."""
        self._stop_forwarder()

    def restore(self) -> None:
        """The network is back, with the link it had."""
        self._start_forwarder(self.link)

    def _start_forwarder(self, link: Link) -> None:
        self._stop_forwarder()
        root = Path(__file__).resolve().parent.parent
        self.forwarder = subprocess.Popen(
            [
                "ip", "netns", "exec", self.imp, sys.executable, "-m", "tests.netlab", "forward",
                "--customer", "ic", "--network", "ih",
                "--delay-ms", str(link.delay_ms), "--loss", str(link.loss),
            ],
            cwd=root,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if not self.reachable(self.customer):
            raise RuntimeError("the customer's link does not pass traffic")

    def _stop_forwarder(self) -> None:
        if self.forwarder is not None and self.forwarder.poll() is None:
            self.forwarder.terminate()
            try:
                self.forwarder.wait(5)
            except subprocess.TimeoutExpired:
                self.forwarder.kill()
                self.forwarder.wait(5)
        self.forwarder = None

    def reachable(self, ns: str, timeout: float = 5.0) -> bool:
        """Whether namespace `ns` can open a TCP connection to the server address."""
        with socket.socket() as listener:
            listener.bind((self.server_ip, 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            code = (
                "import socket,sys,time\n"
                f"end=time.monotonic()+{timeout}\n"
                "while True:\n"
                "    try:\n"
                f"        socket.create_connection(('{self.server_ip}',{port}),1).close(); break\n"
                "    except OSError:\n"
                "        if time.monotonic()>end: sys.exit(1)\n"
                "        time.sleep(0.1)\n"
            )
            result = self._ns(ns, sys.executable, "-c", code, check=False)
            return result.returncode == 0

    def wrapper(self, ns: str, program: str, directory: Path) -> Path:
        """An executable that runs `program` inside namespace `ns` (for Playwright's launch)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{ns}-{Path(program).name}"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {program} "$@"\n')
        path.chmod(0o755)
        return path


# ------------------------------------------------------------------------------------------------
# The forwarder (runs inside the imp namespace)


def forward(customer: str, network: str, delay_ms: float, loss: float, seed: int = 1) -> None:
    """Move frames between the customer's veth and the network's; the customer's downlink
    (network -> customer) gets `delay_ms` and random `loss`. Runs until terminated."""
    rng = random.Random(seed)
    sockets = {}
    for name in (customer, network):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((name, 0))
        sock.setblocking(False)
        sockets[name] = sock
    by_fd = {sock.fileno(): name for name, sock in sockets.items()}
    downlink_to = sockets[customer]
    uplink_to = sockets[network]
    pending: list[tuple[float, int, bytes]] = []  # (due, order, frame) towards the customer
    order = 0
    poller = select.poll()
    for sock in sockets.values():
        poller.register(sock.fileno(), select.POLLIN)
    while True:
        timeout = None
        if pending:
            timeout = max(0, int((pending[0][0] - time.monotonic()) * 1000))
        for fd, _ in poller.poll(timeout):
            name = by_fd[fd]
            while True:
                try:
                    frame, address = sockets[name].recvfrom(65535)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING:
                    continue  # our own transmission, seen again
                if name == customer:
                    _send(uplink_to, frame)
                elif loss and rng.random() < loss:
                    continue
                elif delay_ms:
                    order += 1
                    heapq.heappush(pending, (time.monotonic() + delay_ms / 1000, order, frame))
                else:
                    _send(downlink_to, frame)
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _send(downlink_to, heapq.heappop(pending)[2])


def _send(sock: socket.socket, frame: bytes) -> None:
    try:
        sock.send(frame)
    except OSError:  # ENOBUFS: the shaped queue behind it is full, the frame is dropped there
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fwd = sub.add_parser("forward", help="run the impairment forwarder (inside the imp netns)")
    fwd.add_argument("--customer", required=True)
    fwd.add_argument("--network", required=True)
    fwd.add_argument("--delay-ms", type=float, default=0.0)
    fwd.add_argument("--loss", type=float, default=0.0)
    args = parser.parse_args()
    if args.command == "forward":
        try:
            forward(args.customer, args.network, args.delay_ms, args.loss)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
