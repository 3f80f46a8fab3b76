#!/usr/bin/env python3
"""Byte-counting TCP proxy for the benchmarks, optionally an emulated WAN link
(python3 standard library only).

Usage:
  python3 bench/proxy.py --target-port SSHD_PORT --port-file FILE --report FILE
                         [--listen-port 0] [--idle-timeout 30]
                         [--delay-ms D] [--rate-mbit R]

Listens on 127.0.0.1 (port --listen-port; 0 = any free port, written to
--port-file once listening) and forwards every connection to
127.0.0.1:--target-port. It counts the TCP payload bytes of each connection in
both directions: "up" = client -> server, "down" = server -> client. That is
the SSH stream as it crosses the wire (encrypted packets, MACs, key exchange),
without TCP/IP headers.

Reporting: on SIGUSR1 the proxy waits until no connection is open (at most
--idle-timeout seconds, so that the last bytes of a client that just exited
are counted), then writes --report atomically (temp file + rename) and resets
every counter to zero. The report is text:

  total <up> <down> <connections> <still_open>
  conn <id> <up> <down>          (one line per connection since the last reset)

so "SIGUSR1, wait for the file, read it" both reads and resets; send one
before a measurement to start from zero. SIGTERM/SIGINT stop the proxy.

It must not be the bottleneck: reads are up to 256 KiB, every write is
drained before the next read (bounded memory), and TCP_NODELAY is set on both
sockets so that small SSH packets are not delayed by the proxy.

WAN emulation (--delay-ms and/or --rate-mbit): each direction of each
connection becomes a link of its own with that one-way delay (a round trip
is twice it) and that rate. Bytes leave the link in order, each chunk at
max(its arrival, the end of the previous chunk's serialization) + its
serialization time (size / rate) + the delay. The link buffers at most one
bandwidth-delay product plus 1 MiB; beyond that the proxy stops reading, so
TCP flow control pushes back on the sender as a full router queue would.
Reads are cut to 16 KiB in this mode so that pacing stays smooth. Accuracy
is that of the asyncio timer (about a millisecond).
"""

import argparse
import asyncio
import os
import signal
import socket
import sys
import time

CHUNK = 256 * 1024
WAN_CHUNK = 16 * 1024


class Conn:
    def __init__(self, cid):
        self.id = cid
        self.up = 0
        self.down = 0
        self.open = True


class Proxy:
    def __init__(self, args):
        self.args = args
        self.next_id = 1
        self.conns = []  # connections since the last reset
        self.dumping = False

    def nodelay(self, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        writer.transport.set_write_buffer_limits(high=4 * CHUNK)

    async def pump(self, reader, writer, conn, attr, other_writer):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                setattr(conn, attr, getattr(conn, attr) + len(data))
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except (ConnectionError, OSError):
            # One side is gone: close both so the other pump ends too.
            writer.close()
            other_writer.close()

    async def shaped_pump(self, reader, writer, conn, attr, other_writer):
        """pump() through an emulated link: delay and rate (see the docstring)."""
        rate = self.args.rate_mbit * 1e6 / 8 if self.args.rate_mbit else None
        delay = self.args.delay_ms / 1000.0
        limit = (rate or 0) * delay * 2 + (1 << 20)
        queue = asyncio.Queue()
        state = {"queued": 0, "free_at": 0.0}
        room = asyncio.Event()
        room.set()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                state["queued"] -= len(data)
                if state["queued"] <= limit:
                    room.set()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                await room.wait()
                data = await reader.read(WAN_CHUNK)
                if not data:
                    break
                setattr(conn, attr, getattr(conn, attr) + len(data))
                now = time.monotonic()
                start = max(now, state["free_at"])
                state["free_at"] = start + (len(data) / rate if rate else 0.0)
                state["queued"] += len(data)
                if state["queued"] > limit:
                    room.clear()
                queue.put_nowait((state["free_at"] + delay, data))
            queue.put_nowait((0.0, None))
            await sender
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except (ConnectionError, OSError):
            sender.cancel()
            writer.close()
            other_writer.close()

    async def handle(self, creader, cwriter):
        conn = Conn(self.next_id)
        self.next_id += 1
        self.conns.append(conn)
        try:
            try:
                sreader, swriter = await asyncio.open_connection(
                    "127.0.0.1", self.args.target_port, limit=CHUNK
                )
            except OSError as e:
                print(f"proxy: connection {conn.id}: cannot reach the server: {e}", file=sys.stderr)
                cwriter.close()
                return
            self.nodelay(cwriter)
            self.nodelay(swriter)
            shaped = self.args.delay_ms > 0 or self.args.rate_mbit > 0
            pump = self.shaped_pump if shaped else self.pump
            await asyncio.gather(
                pump(creader, swriter, conn, "up", cwriter),
                pump(sreader, cwriter, conn, "down", swriter),
            )
            for w in (swriter, cwriter):
                w.close()
            for w in (swriter, cwriter):
                try:
                    await w.wait_closed()
                except (ConnectionError, OSError):
                    pass
        finally:
            conn.open = False

    async def dump(self):
        if self.dumping:
            return
        self.dumping = True
        try:
            deadline = time.monotonic() + self.args.idle_timeout
            while any(c.open for c in self.conns) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            still_open = sum(1 for c in self.conns if c.open)
            lines = [
                "total {} {} {} {}".format(
                    sum(c.up for c in self.conns),
                    sum(c.down for c in self.conns),
                    len(self.conns),
                    still_open,
                )
            ]
            lines += [f"conn {c.id} {c.up} {c.down}" for c in self.conns]
            tmp = self.args.report + ".tmp"
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, self.args.report)
            # Reset: forget closed connections, zero the ones still open.
            self.conns = [c for c in self.conns if c.open]
            for c in self.conns:
                c.up = c.down = 0
        finally:
            self.dumping = False

    async def main(self):
        server = await asyncio.start_server(
            self.handle, "127.0.0.1", self.args.listen_port, limit=CHUNK, backlog=64
        )
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(self.dump()))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        tmp = self.args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, self.args.port_file)
        async with server:
            await stop.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--listen-port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--idle-timeout", type=float, default=30.0)
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay per direction")
    p.add_argument("--rate-mbit", type=float, default=0.0, help="link rate per direction (0: unlimited)")
    asyncio.run(Proxy(p.parse_args()).main())


if __name__ == "__main__":
    main()
