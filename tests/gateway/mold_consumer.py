#!/usr/bin/env python3
"""A MoldUDP64 1.00 consumer written from the specification, sharing no code with seqcast's gateway.

It joins the downstream multicast group, delivers messages in sequence-number order exactly once,
and on a gap (a packet or heartbeat whose sequence number runs past the next one expected) sends
Request packets (session, sequence number, count) to the re-request server from the same socket;
the server's unicast responses arrive on that socket too, as the spec intends.

Stops once sequence numbers FIRST .. FIRST + COUNT - 1 are delivered (or at --timeout), and writes
a JSON summary: what was delivered, the SHA-256 over each message as 2-byte big-endian length +
bytes, duplicates ignored, requests sent, packets that broke the framing.
"""
import argparse
import hashlib
import json
import random
import select
import socket
import struct
import sys
import time

HEADER = struct.Struct(">10sQH")  # session, sequence number, message count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--group", required=True, help="downstream multicast group:port")
    ap.add_argument("--interface", default="127.0.0.1")
    ap.add_argument("--requests", required=True, help="re-request server host:port")
    ap.add_argument("--session", required=True)
    ap.add_argument("--first", type=int, default=1, help="the first sequence number wanted")
    ap.add_argument("--count", type=int, required=True, help="how many messages from --first")
    ap.add_argument("--max-request", type=int, default=1000, help="most messages asked for in one request")
    ap.add_argument("--retry-ms", type=float, default=30.0, help="ask again for a gap still open after this long")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", required=True)
    ap.add_argument("--ready", help="create this file once joined")
    ap.add_argument("--wait-eos", action="store_true", help="after the last message, wait for an end-of-session packet")
    a = ap.parse_args()

    ghost, gport = a.group.rsplit(":", 1)
    rhost, rport = a.requests.rsplit(":", 1)
    server = (rhost, int(rport))
    session = a.session.encode().ljust(10, b" ")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("0.0.0.0", int(gport)))  # multicast and the unicast responses to our requests
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(ghost), socket.inet_aton(a.interface)))
    if a.ready:
        open(a.ready, "w").close()

    expected = a.first
    last = a.first + a.count - 1
    ahead = {}          # sequence number -> message, held past a gap
    head = 0            # one past the highest sequence number the feed has shown
    digest = hashlib.sha256()
    st = dict(delivered=0, duplicates=0, requests=0, packets=0, heartbeats=0, end_of_session=0,
              foreign_session=0, malformed=0, max_ahead=0, unicast_packets=0)
    last_request = 0.0
    asked_at = 0        # `expected` when the last request went out
    deadline = time.monotonic() + a.timeout

    def deliver(msg):
        nonlocal expected
        digest.update(struct.pack(">H", len(msg)) + msg)
        st["delivered"] += 1
        expected += 1

    while (expected <= last or (a.wait_eos and st["end_of_session"] == 0)) and time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.01)
        if r:
            data, src = s.recvfrom(65536)
            st["packets"] += 1
            if src[0] == rhost and src[1] == int(rport):
                st["unicast_packets"] += 1
            if len(data) < HEADER.size:
                st["malformed"] += 1
                continue
            sess, seq, count = HEADER.unpack_from(data)
            if sess != session:
                st["foreign_session"] += 1
                continue
            if count == 0xFFFF:
                st["end_of_session"] += 1
                head = max(head, seq)
            elif count == 0:
                st["heartbeats"] += 1
                head = max(head, seq)
            else:
                pos, msgs = HEADER.size, []
                for _ in range(count):
                    if pos + 2 > len(data):
                        break
                    (n,) = struct.unpack_from(">H", data, pos)
                    if pos + 2 + n > len(data):
                        break
                    msgs.append(data[pos + 2:pos + 2 + n])
                    pos += 2 + n
                if len(msgs) != count or pos != len(data):
                    st["malformed"] += 1
                    continue
                head = max(head, seq + count)
                for i, m in enumerate(msgs):
                    q = seq + i
                    if q < expected or q in ahead:
                        st["duplicates"] += 1
                    elif q == expected:
                        if q <= last:
                            deliver(m)
                        else:
                            expected += 1
                        while expected in ahead:
                            m2 = ahead.pop(expected)
                            if expected <= last:
                                deliver(m2)
                            else:
                                expected += 1
                    elif q <= last:
                        ahead[q] = m
                st["max_ahead"] = max(st["max_ahead"], len(ahead))
        # A gap: ask for the missing numbers (again after --retry-ms), from the same socket.
        now = time.monotonic()
        # An answer that moved `expected` lets the next request go at once.
        if head > expected and expected <= last and (expected != asked_at or now - last_request >= a.retry_ms / 1000.0):
            n = min(head - expected, a.max_request, 0xFFFE)
            s.sendto(session + struct.pack(">QH", expected, n), server)
            st["requests"] += 1
            asked_at = expected
            last_request = now + random.uniform(0, a.retry_ms / 4000.0)

    st.update(first=a.first, wanted=a.count, next_expected=expected, head=head,
              complete=expected > last, digest=digest.hexdigest())
    with open(a.json, "w") as f:
        json.dump(st, f, separators=(",", ":"))
    print(json.dumps(st))
    return 0 if expected > last and (not a.wait_eos or st["end_of_session"] > 0) else 1


if __name__ == "__main__":
    sys.exit(main())
