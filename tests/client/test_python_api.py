"""The Python binding against real processes: a sequencer that drops 2 % of what it sends, an
archiver, the C++ subscriber (`seqcast sub --verify`) and the Python publisher and subscriber.
The Python subscriber must deliver the 100,000 messages with the C++ subscriber's digest, repairs
included, and a replay from the archiver (a list, and a NumPy array) must carry the same digest.

Environment (set by tests/client/python_api.sh): SEQCAST_BIN, SEQCAST_LIBRARY, PYTHONPATH."""

import json
import itertools
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

import seqcast

N = int(os.environ.get("SEQCAST_IT_MESSAGES", "100000"))
SEQCAST = os.environ["SEQCAST_BIN"]


def free_port_pair():
    for _ in range(50):
        port = 20000 + random.randrange(20000) * 2
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digest_update(state, m):
    meta = struct.pack("<QIQI", m.offset, m.publisher, m.pub_seq, len(m.payload))
    return seqcast.crc32c(m.payload, seqcast.crc32c(meta, state))


def digest_of(messages):
    state = 0xFFFFFFFF
    for m in messages:
        state = digest_update(state, m)
    return "%08x" % (~state & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def stream():
    tmp = tempfile.mkdtemp(prefix="seqcast-py-")
    port = free_port_pair()
    control = f"127.0.0.1:{port}"
    group = f"239.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}:{port + 1}"
    archiver = f"127.0.0.1:{free_port()}"
    procs = []

    def start(name, *args):
        log = open(os.path.join(tmp, name + ".log"), "w")
        p = subprocess.Popen(["timeout", "-s", "KILL", "600", SEQCAST, *args], stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    start("seq", "sequencer", "--control", control, "--group", group, "--state", os.path.join(tmp, "seq.state"),
          "--loss", "0.02", "--fault-on", "tx", "--fault-seed", str(random.randrange(1 << 31)))
    start("arch", "archiver", "--group", group, "--control", archiver, "--log", os.path.join(tmp, "arch.seqlog"),
          "--size", "256M")
    sub = start("sub", "sub", "--group", group, "--verify", "--messages", str(N), "--json", os.path.join(tmp, "sub.json"))
    deadline = time.monotonic() + 60
    while "replays on" not in open(os.path.join(tmp, "arch.log")).read():
        assert time.monotonic() < deadline, "archiver did not start"
        time.sleep(0.1)
    yield {"tmp": tmp, "control": control, "group": group, "archiver": archiver, "cpp_sub": sub}
    # `timeout` runs the command in a process group of its own (its pid): kill the whole group, or
    # a SIGKILLed `timeout` leaves its seqcast running.
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    subprocess.run(["rm", "-rf", tmp], check=False)


def test_settings_errors_name_the_field():
    with pytest.raises(seqcast.SetupError) as e:
        seqcast.Publisher(window=3)
    assert e.value.field == "window"
    with pytest.raises(seqcast.SetupError) as e:
        seqcast.Subscriber(group="10.1.2.3:5000")
    assert e.value.field == "group"
    with pytest.raises(seqcast.SetupError) as e:
        seqcast.Subscriber(nak_deadline_ms=0)
    assert e.value.field == "nak_deadline_ms"
    with pytest.raises(TypeError):
        seqcast.Subscriber(no_such_option=1)


def test_python_subscriber_matches_cpp_subscriber_under_loss(stream):
    sub = seqcast.Subscriber(group=stream["group"], idle_timeout=60)
    deadline = time.monotonic() + 30
    while not sub.started:
        assert time.monotonic() < deadline, "the Python subscriber never heard the stream"
        sub.poll()
        time.sleep(0.001)
    confirmed = []
    pub = seqcast.Publisher(sequencer=stream["control"], on_confirm=lambda s, o, l: confirmed.append(o))
    state, got, repaired, lost = 0xFFFFFFFF, 0, 0, []
    start = time.monotonic()
    for i in range(N):
        payload = b"quote %08d " % i + bytes((i + k) & 0xFF for k in range(i % 48))
        while True:
            r = pub.offer(payload)
            if r == seqcast.ACCEPTED:
                break
            assert r == seqcast.BACK_PRESSURED, f"offer: {r} ({pub.fatal_error})"
            pub.do_work()
            for m in drain(sub):
                state, got, repaired = digest_update(state, m), got + 1, repaired + m.repaired
            assert time.monotonic() - start < 300, "publishing took longer than 300 s"
        if i % 64 == 0:
            pub.do_work()
    assert pub.flush(timeout=60), f"{pub.unconfirmed} messages not confirmed"
    deadline = time.monotonic() + 120
    while got < N and time.monotonic() < deadline:
        n = 0
        for m in drain(sub):
            state, got, repaired, n = digest_update(state, m), got + 1, repaired + m.repaired, n + 1
        lost += sub.losses()
        if n == 0:
            time.sleep(0.001)
    lost += sub.losses()
    assert len(confirmed) == N
    assert lost == [], f"the Python subscriber reported losses: {lost[:5]}"
    assert got == N
    assert repaired > 0, "a 2 % lossy sequencer, yet nothing was repaired: the loss was not injected"
    cpp = stream["cpp_sub"]
    assert cpp.wait(timeout=120) == 0
    with open(os.path.join(stream["tmp"], "sub.json")) as f:
        cpp_json = json.load(f)
    assert cpp_json["messages"] == N
    assert "%08x" % (~state & 0xFFFFFFFF) == cpp_json["digest"]
    stream["digest"] = cpp_json["digest"]
    # The objects' own counters: the repairs the loss caused, nothing lost, every message offered.
    # The loss is the sequencer's, so both subscribers see the same gaps: the C++ subscriber's NAK
    # may bring the repair before this one's NAK timer fires (naks_sent can be 0 here, by design).
    sc = sub.counters()
    assert sc["gaps_detected"] > 0 and sc["gap_offsets_repaired"] > 0 and sc["offsets_lost"] == 0, sc
    assert sc["naks_sent"] + sc["naks_suppressed"] > 0, sc
    assert sc["messages_in"] >= N, sc
    pc = pub.counters()
    assert pc["drop_too_large"] == 0 and pc["datagrams_out"] > 0, pc
    sub.close()
    pub.close()


def test_replay_into_a_list_and_a_numpy_array(stream):
    if "digest" not in stream:
        pytest.skip("needs the stream of the previous test")
    deadline = time.monotonic() + 60
    msgs = None
    while time.monotonic() < deadline:  # the archiver may still be writing the end of the stream
        msgs = seqcast.replay(stream["archiver"], 0, N, timeout=60)
        if len(msgs) == N:
            break
        time.sleep(0.5)
    assert msgs is not None and len(msgs) == N
    assert msgs.losses == []
    assert digest_of(msgs) == stream["digest"]
    stream["replayed"] = msgs
    np = pytest.importorskip("numpy", reason="python3-numpy is not installed: the NumPy form is not tested")
    arr = seqcast.replay_numpy(stream["archiver"], 0, 1000)
    assert arr.shape == (1000,)
    assert list(arr["offset"][:3]) == [0, 1, 2]
    assert arr["payload"][5] == msgs[5].payload
    assert np.all(np.diff(arr["offset"].astype("i8")) == 1)


def test_paced_replay_keeps_the_published_pace(stream):
    if "replayed" not in stream:
        pytest.skip("needs the replay of the previous test")
    with pytest.raises(seqcast.SetupError) as e:
        seqcast.Replay(archiver=stream["archiver"], **{"from": 0, "to": 10}, speed=-1)
    assert e.value.field == "speed"
    msgs = stream["replayed"]
    ts = [m.publish_ts_ns for m in msgs]
    # A range the publisher took at least 0.3 s to publish (or the whole stream).
    k = next((i for i in range(len(ts)) if ts[i] - ts[0] >= 300_000_000), len(ts) - 1) + 1
    for speed in (1.0, 4.0):
        r = seqcast.Replay(archiver=stream["archiver"], **{"from": 0, "to": k}, speed=speed)
        got, at = [], []
        start = time.monotonic()
        deadline = start + 120
        while not r.finished:
            assert time.monotonic() < deadline, f"paced replay at {speed}x not finished"
            r.poll(lambda m: (got.append(m), at.append(time.monotonic())))
            r.wait(1000)
        assert r.failure == ""
        r.close()
        assert [m.payload for m in got] == [m.payload for m in msgs[:k]]
        # Never early: each message no sooner than its publish-time distance from the first,
        # divided by the speed (2 ms of slack for the clock reads). Late is allowed (a busy machine).
        run_max = list(itertools.accumulate(ts[:k], max))
        early = [i for i in range(k) if (at[i] - at[0]) * 1e9 < (run_max[i] - ts[0]) / speed - 2e6]
        assert early == [], f"{len(early)} messages delivered early at {speed}x, first {early[:3]}"
        span = (run_max[-1] - ts[0]) / 1e9
        assert at[-1] - at[0] >= span / speed * 0.99, (at[-1] - at[0], span, speed)


def drain(sub):
    sub.poll()
    return sub.pending()



def test_try_claim_threads_and_allow(stream):
    """Zero copy, the opt-in threads and a network_extra option, on the live stream of the fixture
    (its sequencer still drops 2 %): a publisher driven by its own thread takes half its messages
    by try_claim (an aborted claim before each, never delivered); a subscriber polled by its own
    thread delivers every one, in order; a subscriber that only allows 10.9.9.9 hears nothing and
    counts what it refused."""
    got, confirmed = [], []
    sub = seqcast.Subscriber(group=stream["group"])
    deadline = time.monotonic() + 30
    while not sub.started:
        assert time.monotonic() < deadline, "the subscriber never heard the stream"
        sub.poll()
        time.sleep(0.001)
    sub.pending()
    fenced = seqcast.Subscriber(group=stream["group"], allow="10.9.9.9/32")
    with pytest.raises(seqcast.SetupError) as e:
        seqcast.Subscriber(group=stream["group"], allow="10.9.9.9/40")
    assert e.value.field == "network_extra.allow"
    sub.start_thread(lambda m: got.append(m))
    pub = seqcast.Publisher(sequencer=stream["control"], on_confirm=lambda s, o, l: confirmed.append(s))
    pub.start_thread()
    with pytest.raises(seqcast.SetupError) as e:
        pub.start_thread()
    assert e.value.field == "thread"
    n, claimed, sent = 2000, 0, []
    deadline = time.monotonic() + 120
    for i in range(n):
        text = b"claimed %05d" % i if i % 2 else b"offered %05d" % i
        while True:
            assert time.monotonic() < deadline, f"publishing {n} messages took longer than 120 s"
            if i % 2:
                r, view = pub.try_claim(64)
                if r == seqcast.ACCEPTED:
                    view[:5] = b"never"
                    pub.abort()  # given back: not published
                    r, view = pub.try_claim(64)
                if r == seqcast.ACCEPTED:
                    assert len(view) == 64
                    view[:len(text)] = text
                    pub.commit(len(text))
                    claimed += 1
            else:
                r = pub.offer(text)
            if r == seqcast.ACCEPTED:
                break
            assert r == seqcast.BACK_PRESSURED, r
            time.sleep(0.0005)
        sent.append(text)
    while (len(got) < n or len(confirmed) < n) and time.monotonic() < deadline:
        fenced.poll()
        time.sleep(0.01)
    pub.stop_thread()
    sub.stop_thread()
    mine = [m.payload for m in got if m.publisher == pub.id]
    assert claimed == n // 2
    assert len(confirmed) == n, f"{len(confirmed)} of {n} confirmed"
    assert mine == sent, f"{len(mine)} delivered of {n}; first difference at " + str(
        next((k for k, (a, b) in enumerate(zip(mine, sent)) if a != b), min(len(mine), len(sent))))
    for _ in range(50):
        fenced.poll()
    fc = fenced.counters()
    assert not fenced.started and fenced.pending() == [], "a subscriber allowing only 10.9.9.9 heard the stream"
    assert fc["drop_not_allowed"] > 0, fc
    for o in (sub, pub, fenced):
        o.close()
