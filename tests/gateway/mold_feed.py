#!/usr/bin/env python3
"""A MoldUDP64 1.00 test feed written from the specification, sharing no code with seqcast's gateway.

It sends --count deterministic messages (random.Random(--seed), ITCH-5.0-like sizes: a type byte
A/E/X/P followed by random bytes to 36/31/23/44 bytes) to a multicast group, paced smoothly at
--rate messages/s, packed into downstream packets of at most --packet-bytes, with heartbeats when
nothing was sent for --heartbeat-ms (also before the first message, during --start-delay). It can
hold back (--reorder-percent) or send twice (--duplicate-percent) some data packets.

In the same select loop it serves re-requests on its own UDP socket: a valid Request (session,
sequence number, count; exactly 20 bytes) gets ONE downstream packet, unicast to the requester,
starting at the requested number, holding as many consecutive messages as fit in --packet-bytes,
at most the requested count (clamped to --max-request) and never past the multicast head. Requests
that are not 20 bytes or ask for sequence number 0 (malformed), of another session
(foreign_session), for count 0 (zero_count) or at/after the head (beyond_head) get no answer.

Once every message is sent it sends end-of-session packets every --heartbeat-ms and keeps serving
requests until SIGTERM/SIGINT or --timeout, then writes a JSON summary: what was sent (packets
counts every data datagram on the multicast, duplicate copies included), requests and answers,
and the SHA-256 over each message in sequence order as 2-byte big-endian length + bytes (the form
mold_consumer.py uses). Exit status 1 only when --timeout came before all messages were sent.
"""
import argparse
import hashlib
import json
import random
import select
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct(">10sQH")  # session, sequence number, message count
REQUEST = struct.Struct(">10sQH")  # the same fields, and nothing after them: 20 bytes
END_OF_SESSION = 0xFFFF
MAX_COUNT = 0xFFFE  # most messages one downstream packet can announce
TYPES = ((b"A", 36), (b"E", 31), (b"X", 23), (b"P", 44))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--group", required=True, help="downstream multicast group:port")
    ap.add_argument("--interface", default="127.0.0.1", help="IP_MULTICAST_IF address")
    ap.add_argument("--requests", required=True, help="re-request server binds this host:port (UDP)")
    ap.add_argument("--session", required=True)
    ap.add_argument("--count", type=int, required=True, help="messages to send")
    ap.add_argument("--rate", type=float, default=10000.0, help="messages/s (0: unpaced)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--packet-bytes", type=int, default=1400, help="largest UDP payload")
    ap.add_argument("--heartbeat-ms", type=float, default=200.0)
    ap.add_argument("--json", required=True)
    ap.add_argument("--ready", help="create this file once the request server is bound")
    ap.add_argument("--timeout", type=float, default=300.0, help="hard stop, seconds")
    ap.add_argument("--start-delay", type=float, default=0.0, help="heartbeats only for this long first")
    ap.add_argument("--reorder-percent", type=float, default=0.0,
                    help="%% of data packets held back and sent after the next one")
    ap.add_argument("--duplicate-percent", type=float, default=0.0, help="%% of data packets sent twice")
    ap.add_argument("--max-request", type=int, default=1000, help="largest count answered (larger are clamped)")
    a = ap.parse_args()

    session = a.session.encode().ljust(10, b" ")
    if len(session) != 10:
        ap.error("--session must be at most 10 bytes")
    if a.packet_bytes < HEADER.size + 2 + max(n for _, n in TYPES):
        ap.error("--packet-bytes too small for one message")
    if a.count < 0 or a.max_request < 1:
        ap.error("--count must be >= 0 and --max-request >= 1")

    ghost, gport = a.group.rsplit(":", 1)
    group = (ghost, int(gport))
    rhost, rport = a.requests.rsplit(":", 1)

    # The messages, decided up front from the seed alone; impairments draw from their own generator.
    rng = random.Random(a.seed)
    history = []
    for _ in range(a.count):
        t, n = rng.choice(TYPES)
        history.append(t + rng.randbytes(n - 1))
    impair = random.Random(a.seed * 1000003 + 17)

    mc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mc.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    mc.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a.interface))
    mc.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    mc.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    rq = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rq.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rq.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rq.bind((rhost, int(rport)))
    rq.setblocking(False)
    if a.ready:
        open(a.ready, "w").close()

    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    st = dict(sent=0, packets=0, heartbeats=0, end_of_session=0, requests=0, answered=0,
              resent_messages=0, malformed=0, foreign_session=0, zero_count=0, beyond_head=0,
              reordered=0, duplicated=0)
    hb = a.heartbeat_ms / 1000.0
    start = time.monotonic()
    first_at = start + a.start_delay   # when message 1 falls due
    deadline = start + a.timeout
    packaged = 0        # messages put into data packets (sent or held back)
    head = 1            # one past the highest sequence number sent on the multicast
    held = None         # (seq, count, datagram) held back to go after the next data packet
    last_send = -1e9    # when anything last went out on the multicast
    next_progress = start + 5.0
    timed_out = False
    behind = False      # the last turn stopped at BURST packets with messages still due
    BURST = 32          # most data packets per loop turn, so requests are served while catching up

    def send_mc(dgram):
        nonlocal last_send
        try:
            mc.sendto(dgram, group)
        except OSError as e:
            print(f"mold_feed: multicast send: {e}", file=sys.stderr)
        last_send = time.monotonic()

    def transmit(seq, count, dgram):
        nonlocal head
        send_mc(dgram)
        st["packets"] += 1
        head = max(head, seq + count)
        if impair.random() * 100.0 < a.duplicate_percent:
            send_mc(dgram)
            st["packets"] += 1
            st["duplicated"] += 1

    def build(seq, limit):
        """A downstream packet from `seq`, consecutive messages below `limit` that fit."""
        body, q, size = [], seq, HEADER.size
        while q < limit and len(body) < MAX_COUNT:
            m = history[q - 1]
            if body and size + 2 + len(m) > a.packet_bytes:
                break
            body.append(struct.pack(">H", len(m)) + m)
            size += 2 + len(m)
            q += 1
        return q - seq, HEADER.pack(session, seq, q - seq) + b"".join(body)

    def serve(data, src):
        st["requests"] += 1
        if len(data) != REQUEST.size:
            st["malformed"] += 1
            return
        sess, seq, count = REQUEST.unpack(data)
        if sess != session:
            st["foreign_session"] += 1
            return
        if count == 0:
            st["zero_count"] += 1
            return
        if seq == 0:
            st["malformed"] += 1
            return
        if seq >= head:
            st["beyond_head"] += 1
            return
        n, dgram = build(seq, min(head, seq + min(count, a.max_request)))
        try:
            rq.sendto(dgram, src)
        except OSError as e:
            print(f"mold_feed: answer to {src}: {e}", file=sys.stderr)
            return
        st["answered"] += 1
        st["resent_messages"] += n

    while not stop:
        now = time.monotonic()
        if now >= deadline:
            timed_out = packaged < a.count or held is not None
            break

        # Data: the messages now due, in packets of at most --packet-bytes.
        if now >= first_at and packaged < a.count:
            due = a.count if a.rate <= 0 else min(a.count, int((now - first_at) * a.rate) + 1)
            burst = 0
            while packaged < due and burst < BURST:
                seq = packaged + 1
                n, dgram = build(seq, due + 1)
                packaged += n
                burst += 1
                if held is None and packaged < a.count and impair.random() * 100.0 < a.reorder_percent:
                    held = (seq, n, dgram)
                    st["reordered"] += 1
                    continue
                transmit(seq, n, dgram)
                if held is not None and held[0] != seq:
                    transmit(*held)
                    held = None
            behind = packaged < due
        if held is not None and (packaged >= a.count or now - last_send >= hb):
            transmit(*held)   # nothing came after it in time: let it go rather than stall the head
            held = None

        # Heartbeats while idle; end of session every --heartbeat-ms once everything is out.
        now = time.monotonic()
        if now - last_send >= hb:
            done = packaged >= a.count and held is None
            send_mc(HEADER.pack(session, packaged + 1, END_OF_SESSION if done else 0))
            st["end_of_session" if done else "heartbeats"] += 1

        if now >= next_progress:
            print(f"mold_feed: {packaged}/{a.count} sent, {st['requests']} requests", file=sys.stderr)
            next_progress += 5.0

        # Sleep until the next message falls due (2 to 5 ms), serving requests meanwhile.
        wait = max(0.0, min(0.005, last_send + hb - now, deadline - now))
        if behind:
            wait = 0.0  # catch up at once, still in whole packets
        elif packaged < a.count and now >= first_at and a.rate > 0:
            wait = min(wait, max(0.002, first_at + packaged / a.rate - now))
        elif packaged < a.count and now < first_at:
            wait = min(wait, first_at - now)
        try:
            r, _, _ = select.select([rq], [], [], wait)
        except InterruptedError:
            continue
        if r:
            for _ in range(256):
                try:
                    data, src = rq.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                serve(data, src)

    digest = hashlib.sha256()
    for m in history[:head - 1]:
        digest.update(struct.pack(">H", len(m)) + m)
    st["sent"] = head - 1
    st.update(digest=digest.hexdigest(), seconds=round(time.monotonic() - start, 3))
    with open(a.json, "w") as f:
        json.dump(st, f, separators=(",", ":"))
    print(json.dumps(st))
    return 1 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
