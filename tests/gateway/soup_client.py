#!/usr/bin/env python3
"""A SoupBinTCP 3.00 client written from the specification, sharing no code with seqcast's soup-server.

Framing (spec 1.1): every logical packet is a 2-byte big-endian length (counting the type byte and
the payload, not itself), a 1-byte ASCII packet type, then the payload. Packets may be split or
merged by TCP in any way; this client reassembles them from a byte buffer.

Packets, with the field padding this client implements:
  client -> server
    'L' Login Request, 46-byte payload:
        username          6  alphanumeric, left-justified, padded on the RIGHT with spaces
        password         10  alphanumeric, left-justified, padded on the RIGHT with spaces
        requested session 10 alphanumeric, right-justified, padded on the LEFT with spaces;
                             all blanks = the currently active session
        requested seq    20  numeric ASCII, right-justified, padded on the LEFT with spaces;
                             1 = the first message of the session, 0 = only messages generated
                             from now on (the most recent one)
    'R' Client Heartbeat, 'O' Logout Request: no payload.  ('U' Unsequenced Data is never sent.)
  server -> client
    'A' Login Accepted, 30-byte payload: session (10, right-justified, left-padded with spaces) |
        sequence number (20, numeric, left-padded with spaces) = the number of the next Sequenced
        Data packet; each 'S' after it carries that number, then +1 each (numbers are implicit).
    'J' Login Rejected, 1 byte: 'A' not authorized, 'S' session not available.
    'S' Sequenced Data (the message), 'H' Server Heartbeat, 'Z' End of Session, '+' Debug (ignored).
The padding directions follow the NASDAQ document's field descriptions and agree with the
widely used Nassau implementation (username/password put left-justified; session and sequence
numbers put right-justified). Wireshark's soupbintcp dissector shows the session verbatim and
reads the numbers with atoi(), so it accepts either. When reading Login Accepted this client is
lenient (spaces stripped on both sides) but reports the raw fields and whether they were padded
exactly as above (accept_padding_ok).

Heartbeats: the client sends 'R' after --heartbeat-ms with nothing sent (unless --no-heartbeat);
the server is expected to send 'H' when idle; --link-timeout seconds (default 15) without any
packet from the server is a dead link.

A run: connect, send Login Request (or the --raw-login bytes, whole packet including its length),
wait for 'A' or 'J', then count Sequenced Data until --count messages (then send Logout 'O', half-
close, and drain until the server closes) or, with --count 0, until End of Session. A zero packet
length breaks the framing: recorded as malformed and a protocol error, and the connection is
dropped. An unknown packet type, or a packet that does not fit where or how it arrived, is counted
as malformed and skipped. --never-read logs in, then never reads again (small SO_RCVBUF), holding
the connection for --hold seconds (default: until --timeout) or until the server is seen to drop it
(a heartbeat send fails, or the kernel's TCP state leaves ESTABLISHED); then it reports
closed_by_server, checking a pending socket error, a 1-byte non-blocking peek, the TCP state and,
last, draining for up to 2 s to look for the end of the stream (a FIN queued behind data cannot
pass our zero window) - closed_detected_by names the check that saw it.

Writes a JSON summary (also printed) with the SHA-256 over each Sequenced Data message as 2-byte
big-endian length + bytes, in order. Exit 0: --count reached, or (--count 0) End of Session
seen; with --expect-reject: a Login Rejected arrived; with --never-read: login was accepted (the
verdict is closed_by_server). Otherwise 1.
"""
import argparse
import hashlib
import json
import select
import socket
import struct
import sys
import time

LEN = struct.Struct(">H")
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def packet(ptype, payload=b""):
    return LEN.pack(len(payload) + 1) + ptype + payload


def login_request(username, password, session, sequence):
    return packet(b"L", username.encode("ascii").ljust(6, b" ")
                  + password.encode("ascii").ljust(10, b" ")
                  + session.encode("ascii").rjust(10, b" ")
                  + str(sequence).encode("ascii").rjust(20, b" "))


def tcp_state(s):
    """The kernel's TCP state for the socket (Linux TCP_INFO), or None where unavailable."""
    try:
        return TCP_STATES.get(s.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", 11), 8)[0], "?")
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True, help="server host:port")
    ap.add_argument("--username", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--session", default="", help="requested session; blank = the current one")
    ap.add_argument("--sequence", type=int, default=1, help="requested sequence number (0 = live only)")
    ap.add_argument("--count", type=int, default=0, help="stop after this many messages; 0 = until End of Session")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--ready", help="create this file once the login is accepted")
    ap.add_argument("--heartbeat-ms", type=float, default=1000.0, help="send 'R' after this long with nothing sent")
    ap.add_argument("--no-heartbeat", action="store_true", help="never send 'R'")
    ap.add_argument("--link-timeout", type=float, default=15.0, help="seconds without a server packet = dead link")
    ap.add_argument("--never-read", action="store_true", help="after the login, never read the socket again")
    ap.add_argument("--hold", type=float, help="with --never-read: how long to hold the connection")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="with --never-read: SO_RCVBUF set before connect")
    ap.add_argument("--expect-reject", action="store_true", help="a Login Rejected is the expected outcome")
    ap.add_argument("--raw-login", help="hex bytes sent instead of the Login Request (whole packet)")
    a = ap.parse_args()

    for name, width in (("username", 6), ("password", 10), ("session", 10)):
        v = getattr(a, name)
        if len(v) > width or not v.isascii():
            ap.error(f"--{name} must be at most {width} ASCII characters")
    if a.sequence < 0 or len(str(a.sequence)) > 20:
        ap.error("--sequence must fit 20 digits")
    raw = None
    if a.raw_login is not None:
        try:
            raw = bytes.fromhex(a.raw_login)
        except ValueError:
            ap.error("--raw-login must be hex")

    t0 = time.monotonic()
    deadline = t0 + a.timeout
    hb = None if a.no_heartbeat else a.heartbeat_ms / 1000.0
    digest = hashlib.sha256()
    st = dict(accepted=False, rejected=None, session=None, first_sequence=None, next_sequence=None,
              received=0, heartbeats=0, client_heartbeats=0, end_of_session=False, debug=0, malformed=0,
              closed_by_server=False, digest=None, seconds=0.0, requested_sequence=a.sequence,
              session_field=None, sequence_field=None, accept_padding_ok=None, protocol_error=None,
              timed_out=False, link_timeout=False, logged_out=False, closed_after_logout=None,
              error=None, tcp_state=None, closed_detected_by=None)

    def finish(code):
        st["digest"] = digest.hexdigest()
        st["seconds"] = round(time.monotonic() - t0, 3)
        if st["accepted"]:
            st["next_sequence"] = st["first_sequence"] + st["received"]
        if a.json:
            with open(a.json, "w") as f:
                json.dump(st, f, separators=(",", ":"))
        print(json.dumps(st))
        return code

    # Connect (retrying a refused connection until --timeout: the server may still be starting).
    host, port = a.connect.rsplit(":", 1)
    host = host.strip("[]")
    s = None
    while s is None:
        try:
            family, stype, proto, _, addr = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
            s = socket.socket(family, stype, proto)
            if a.never_read:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.connect(addr)
        except ConnectionRefusedError as e:
            s.close()
            s = None
            if time.monotonic() + 0.1 >= deadline:
                st["error"], st["timed_out"] = f"connect: {e}", True
                return finish(1)
            time.sleep(0.1)
        except OSError as e:
            if s is not None:
                s.close()
            st["error"] = f"connect: {e}"
            st["timed_out"] = isinstance(e, socket.timeout)
            return finish(1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5.0)

    last_tx = last_rx = time.monotonic()

    def send(data):
        nonlocal last_tx
        s.sendall(data)
        last_tx = time.monotonic()

    phase = "login"     # login -> stream -> done
    reason = None       # why the stream ended: count, eos, rejected, protocol, closed, timeout, link
    buf = bytearray()

    def handle(ptype, body):
        nonlocal phase, reason
        if ptype == b"+":
            st["debug"] += 1
        elif ptype == b"A":
            if phase != "login" or len(body) != 30:
                st["malformed"] += 1
                return
            sess, seq = bytes(body[:10]).decode("latin-1"), bytes(body[10:]).decode("latin-1")
            st["session_field"], st["sequence_field"] = sess, seq
            digits = seq.strip(" ")
            if not digits.isdigit() or not digits.isascii():
                st["malformed"] += 1
                st["protocol_error"] = "Login Accepted sequence number is not numeric"
                phase, reason = "done", "protocol"
                return
            st["accepted"], st["session"], st["first_sequence"] = True, sess.strip(" "), int(digits)
            st["accept_padding_ok"] = (sess == sess.strip(" ").rjust(10) and seq == digits.rjust(20))
            phase = "stream"
            if a.ready:
                open(a.ready, "w").close()
        elif ptype == b"J":
            if phase != "login" or len(body) < 1:
                st["malformed"] += 1
                return
            if len(body) != 1:
                st["malformed"] += 1
            st["rejected"] = bytes(body[:1]).decode("latin-1")
            phase, reason = "done", "rejected"
        elif ptype == b"S":
            if phase != "stream":
                st["malformed"] += 1
                return
            digest.update(LEN.pack(len(body)) + body)
            st["received"] += 1
            if a.count and st["received"] >= a.count:
                phase, reason = "done", "count"
        elif ptype == b"H":
            st["heartbeats"] += 1
            if body:
                st["malformed"] += 1
        elif ptype == b"Z":
            st["end_of_session"] = True
            if body:
                st["malformed"] += 1
            phase, reason = "done", "eos"
        else:
            st["malformed"] += 1
            st["protocol_error"] = f"unknown packet type {bytes(ptype)!r}"

    def parse():
        nonlocal phase, reason
        while phase != "done" and len(buf) >= 2:
            (n,) = LEN.unpack_from(buf)
            if n == 0:
                st["malformed"] += 1
                st["protocol_error"] = "zero packet length"
                phase, reason = "done", "protocol"
                return
            if len(buf) < 2 + n:
                return
            ptype, body = bytes(buf[2:3]), buf[3:2 + n]
            del buf[:2 + n]
            handle(ptype, body)
            if a.never_read and phase == "stream":
                return

    try:
        send(raw if raw is not None else login_request(a.username, a.password, a.session, a.sequence))
    except OSError as e:
        st["error"], st["closed_by_server"] = f"send login: {e}", True
        s.close()
        return finish(1)

    # Read until the stream ends (or, with --never-read, until the login is answered).
    while phase != "done" and not (a.never_read and phase == "stream"):
        now = time.monotonic()
        if now >= deadline:
            st["timed_out"], reason = True, "timeout"
            break
        if now - last_rx >= a.link_timeout:
            st["link_timeout"], reason = True, "link"
            break
        due = [deadline, last_rx + a.link_timeout]
        if hb is not None and phase == "stream":
            if now - last_tx >= hb:
                try:
                    send(packet(b"R"))
                except OSError as e:
                    st["error"], st["closed_by_server"], reason = f"send heartbeat: {e}", True, "closed"
                    break
                st["client_heartbeats"] += 1
            due.append(last_tx + hb)
        r, _, _ = select.select([s], [], [], max(0.0, min(0.5, min(due) - time.monotonic())))
        if not r:
            continue
        # Before the login is answered a --never-read client takes only the bytes of whole packets,
        # leaving everything after Login Accepted unread in the kernel.
        want = 65536
        if a.never_read:
            want = 2 - len(buf) if len(buf) < 2 else max(1, 2 + LEN.unpack_from(buf)[0] - len(buf))
        try:
            data = s.recv(want)
        except (ConnectionResetError, BrokenPipeError) as e:
            st["error"], data = f"recv: {e}", b""
        except socket.timeout:
            continue
        if not data:
            st["closed_by_server"], reason = True, "closed"
            break
        last_rx = time.monotonic()
        buf += data
        parse()

    if a.never_read and phase == "stream":
        # Hold the connection without reading; heartbeats (unless --no-heartbeat) keep us alive and,
        # once the server has dropped us, draw an RST that makes a send fail.
        hold_end = deadline if a.hold is None else min(deadline, time.monotonic() + a.hold)
        closed = False
        while not closed and time.monotonic() < hold_end:
            if hb is not None and time.monotonic() - last_tx >= hb:
                try:
                    send(packet(b"R"))
                    st["client_heartbeats"] += 1
                except OSError as e:
                    st["error"], closed = f"send heartbeat: {e}", True
                    break
            stt = tcp_state(s)
            if stt is not None and stt != "ESTABLISHED":
                closed = True
                break
            nxt = hold_end if hb is None else min(hold_end, last_tx + hb)
            time.sleep(max(0.0, min(0.1, nxt - time.monotonic())))
        if closed:
            st["closed_detected_by"] = "send" if st["error"] else "state"
        # Final look: a pending socket error, EOF or reset on a 1-byte peek, or a non-established state.
        if not closed and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            closed, st["closed_detected_by"] = True, "so_error"
        s.setblocking(False)    # (a socket with a timeout would wait out MSG_DONTWAIT's EAGAIN)
        if not closed:
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    closed, st["closed_detected_by"] = True, "peek"
            except BlockingIOError:
                pass
            except OSError:
                closed, st["closed_detected_by"] = True, "peek"
        st["tcp_state"] = tcp_state(s)
        if not closed and st["tcp_state"] not in (None, "ESTABLISHED"):
            closed, st["closed_detected_by"] = True, "state"
        if not closed:
            # A server that closed while its send queue was full cannot get its FIN past our zero
            # window (and without our heartbeats nothing draws an RST): the hold is over, so drain
            # for up to 2 s and see whether the stream ends.
            end = time.monotonic() + 2.0
            try:
                while not closed and time.monotonic() < end:
                    r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
                    if r and s.recv(1 << 20) == b"":
                        closed, st["closed_detected_by"] = True, "drain"
            except OSError:
                closed, st["closed_detected_by"] = True, "drain"
        st["closed_by_server"] = closed
        s.close()
        return finish(0 if st["accepted"] else 1)

    st["tcp_state"] = tcp_state(s)
    if st["accepted"] and reason in ("count", "timeout"):
        # Log out, half-close, and wait (briefly) for the server to close its side.
        try:
            send(packet(b"O"))
            st["logged_out"] = True
            s.shutdown(socket.SHUT_WR)
            end = min(time.monotonic() + 2.0, max(deadline, time.monotonic() + 0.5))
            st["closed_after_logout"] = False
            while time.monotonic() < end:
                r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
                if r:
                    try:
                        if not s.recv(65536):
                            st["closed_after_logout"] = True
                            break
                    except OSError:
                        st["closed_after_logout"] = True
                        break
        except OSError as e:
            if not st["logged_out"]:
                st["closed_by_server"] = True
            st["error"] = f"logout: {e}"
    s.close()

    if a.expect_reject:
        ok = st["rejected"] is not None
    elif a.count:
        ok = st["accepted"] and st["received"] >= a.count
    else:
        ok = st["accepted"] and st["end_of_session"]
    return finish(0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
