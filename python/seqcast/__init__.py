"""seqcast for Python: publish to, subscribe to and replay seqcast streams.

A thin layer over libseqcast's C ABI (include/seqcast/seqcast.h) through ctypes: the same engine
as the C++ API and the seqcast command. The library is SEQCAST_LIBRARY (a path to libseqcast.so)
when set; else, installed by `meson install`, the libseqcast.so.0 installed beside this module
(its path is in _paths.py); else libseqcast.so.0 from the dynamic loader's search
(LD_LIBRARY_PATH, the ld.so cache).

    import seqcast
    pub = seqcast.Publisher(sequencer="127.0.0.1:40000")
    pub.offer(b"hello"); pub.flush()
    for m in seqcast.Subscriber(group="239.1.1.1:40001", start="earliest", archiver="127.0.0.1:40100"):
        print(m.offset, m.payload)
    rows = seqcast.replay("127.0.0.1:40100", 0, 1000)          # a list of Message
    arr = seqcast.replay_numpy("127.0.0.1:40100", 0, 1000)     # a NumPy structured array

Like the C++ API, nothing runs in the background: the calling thread drives each object through
poll() / do_work() (the iterator and flush() do it for you). An object is used from one thread at
a time.
"""

import ctypes
import os
import time

__all__ = ["SetupError", "Message", "Publisher", "Subscriber", "Replay", "replay", "replay_numpy",
           "crc32c", "ACCEPTED", "BACK_PRESSURED", "TOO_LARGE", "NOT_CONNECTED", "CLAIM_OPEN",
           "AT_LEAST_ONCE", "AT_MOST_ONCE", "EXACTLY_ONCE", "IDLE_BACKOFF", "IDLE_BUSY_SPIN", "IDLE_YIELD"]

ACCEPTED, BACK_PRESSURED, TOO_LARGE, NOT_CONNECTED, CLAIM_OPEN = 0, 1, 2, 3, 4
IDLE_BACKOFF, IDLE_BUSY_SPIN, IDLE_YIELD = 0, 1, 2
AT_LEAST_ONCE, AT_MOST_ONCE, EXACTLY_ONCE = 0, 1, 2
_ABI_VERSION = 1


class SetupError(Exception):
    """A setting that is not valid, or a socket or file that could not be opened. `field` names
    the option (as the keyword argument is spelt)."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def _load():
    path = os.environ.get("SEQCAST_LIBRARY")
    if not path:
        try:
            from . import _paths  # written by meson install
            if os.path.exists(_paths.LIBRARY):
                path = _paths.LIBRARY
        except ImportError:
            pass
    try:
        lib = ctypes.CDLL(path or "libseqcast.so.0")
    except OSError as e:
        raise ImportError(f"libseqcast not found ({e}): install seqcast or set SEQCAST_LIBRARY to libseqcast.so") from e
    if lib.seqcast_abi_version() != _ABI_VERSION:
        raise ImportError(f"{path}: ABI version {lib.seqcast_abi_version()}, this module needs {_ABI_VERSION}")
    return lib


_lib = _load()
_u32, _u64, _i32 = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int32
_cstr = ctypes.c_char_p


class _Network(ctypes.Structure):
    _fields_ = [("interface", _cstr), ("ttl", _i32), ("loopback", _i32), ("rcvbuf", _u64), ("sndbuf", _u64),
                ("use_uring", _i32), ("auth_key_file", _cstr)]


class _NetworkExtra(ctypes.Structure):
    _fields_ = [("gso", _i32), ("gro", _i32), ("allow", _cstr), ("auth_key_id", _u32)]


_NETWORK_KEYS = {f for f, _ in _Network._fields_}
_EXTRA_KEYS = {f for f, _ in _NetworkExtra._fields_}


class _ThreadOptions(ctypes.Structure):
    _fields_ = [("size", _u32), ("idle", _i32), ("max_sleep_us", _u32), ("cpu", _i32)]


class _PubOptions(ctypes.Structure):
    _fields_ = [("size", _u32), ("stream", _u32), ("sequencer", _cstr), ("bind", _cstr), ("id", _u32),
                ("journal", _cstr), ("mtu", _u64), ("window", _u32), ("window_bytes", _u64),
                ("max_message", _u32), ("network", _Network), ("network_extra", _NetworkExtra)]


class _SubOptions(ctypes.Structure):
    _fields_ = [("size", _u32), ("stream", _u32), ("group", _cstr), ("start", _cstr), ("archiver", _cstr),
                ("sequencer", _cstr), ("delivery", _i32), ("commit_file", _cstr), ("reorder_bytes", _u64),
                ("max_datagram", _u64), ("max_message", _u32), ("nak_deadline_ms", _u64), ("network", _Network),
                ("network_extra", _NetworkExtra), ("nak_initial_rtt_us", _u64)]


class _ReplayOptions(ctypes.Structure):
    _fields_ = [("size", _u32), ("stream", _u32), ("archiver", _cstr), ("from_", _u64), ("to", _u64),
                ("earliest", _i32), ("network", _Network), ("speed", ctypes.c_double),
                ("wait_for_data", _i32), ("bind", _cstr), ("network_extra", _NetworkExtra)]


class _Confirmation(ctypes.Structure):
    _fields_ = [("pub_seq", _u64), ("offset", _u64), ("offset_known", _i32), ("latency_ns", _u64)]


class _Message(ctypes.Structure):
    _fields_ = [("offset", _u64), ("publisher", _u32), ("epoch", _u32), ("pub_seq", _u64),
                ("publish_ts_ns", _u64), ("sequenced_ts_ns", _u64), ("repaired", _i32),
                ("payload", ctypes.c_void_p), ("length", _u64)]


_CONFIRM_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Confirmation), ctypes.c_void_p)
_MESSAGE_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Message), ctypes.c_void_p)
_LOSS_FN = ctypes.CFUNCTYPE(None, _u64, _u64, ctypes.c_void_p)
_COUNTER_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, _u64, ctypes.c_void_p)


def _sig(name, res, *args):
    f = getattr(_lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


_vp = ctypes.c_void_p
_last_error = _sig("seqcast_last_error", _cstr)
_last_field = _sig("seqcast_last_error_field", _cstr)
_crc = _sig("seqcast_crc32c_update", _u32, _u32, ctypes.c_char_p, ctypes.c_size_t)
_pub_init = _sig("seqcast_publisher_options_init", None, ctypes.POINTER(_PubOptions))
_pub_create = _sig("seqcast_publisher_create", ctypes.c_int, ctypes.POINTER(_PubOptions), _CONFIRM_FN, _vp, ctypes.POINTER(_vp))
_pub_close = _sig("seqcast_publisher_close", None, _vp)
_pub_offer = _sig("seqcast_publisher_offer", ctypes.c_int, _vp, ctypes.c_char_p, ctypes.c_size_t)
_pub_work = _sig("seqcast_publisher_do_work", ctypes.c_int, _vp)
_pub_wait = _sig("seqcast_publisher_wait", None, _vp, _u32)
_pub_id = _sig("seqcast_publisher_id", _u32, _vp)
_pub_unconfirmed = _sig("seqcast_publisher_unconfirmed", _u64, _vp)
_pub_fatal = _sig("seqcast_publisher_fatal_error", _cstr, _vp)
_sub_init = _sig("seqcast_subscriber_options_init", None, ctypes.POINTER(_SubOptions))
_sub_create = _sig("seqcast_subscriber_create", ctypes.c_int, ctypes.POINTER(_SubOptions), ctypes.POINTER(_vp))
_sub_close = _sig("seqcast_subscriber_close", None, _vp)
_sub_poll = _sig("seqcast_subscriber_poll", ctypes.c_int, _vp, _MESSAGE_FN, _LOSS_FN, _vp)
_sub_wait = _sig("seqcast_subscriber_wait", None, _vp, _u32)
_pub_claim = _sig("seqcast_publisher_try_claim", ctypes.c_int, _vp, ctypes.c_size_t, ctypes.POINTER(_vp))
_pub_commit = _sig("seqcast_publisher_commit", None, _vp, ctypes.c_size_t)
_pub_abort = _sig("seqcast_publisher_abort", None, _vp)
_thread_init = _sig("seqcast_thread_options_init", None, ctypes.POINTER(_ThreadOptions))
_pub_start = _sig("seqcast_publisher_start_thread", ctypes.c_int, _vp, ctypes.POINTER(_ThreadOptions))
_pub_stop = _sig("seqcast_publisher_stop_thread", None, _vp)
_sub_start = _sig("seqcast_subscriber_start_thread", ctypes.c_int, _vp, _MESSAGE_FN, _LOSS_FN, _vp,
                  ctypes.POINTER(_ThreadOptions))
_sub_stop = _sig("seqcast_subscriber_stop_thread", None, _vp)
_sub_eos = _sig("seqcast_subscriber_end_of_stream", ctypes.c_int, _vp)
_sub_started = _sig("seqcast_subscriber_started", ctypes.c_int, _vp)
_sub_next = _sig("seqcast_subscriber_next_offset", _u64, _vp)
_sub_head = _sig("seqcast_subscriber_head_offset", _u64, _vp)
_rep_init = _sig("seqcast_replay_options_init", None, ctypes.POINTER(_ReplayOptions))
_rep_create = _sig("seqcast_replay_create", ctypes.c_int, ctypes.POINTER(_ReplayOptions), ctypes.POINTER(_vp))
_rep_close = _sig("seqcast_replay_close", None, _vp)
_rep_poll = _sig("seqcast_replay_poll", ctypes.c_int, _vp, _MESSAGE_FN, _LOSS_FN, _vp)
_rep_wait = _sig("seqcast_replay_wait", None, _vp, _u32)
_rep_finished = _sig("seqcast_replay_finished", ctypes.c_int, _vp)
_rep_failure = _sig("seqcast_replay_failure", _cstr, _vp)
_rep_next = _sig("seqcast_replay_next_offset", _u64, _vp)
_pub_counters = _sig("seqcast_publisher_counters", ctypes.c_int, _vp, _COUNTER_FN, _vp)
_sub_counters = _sig("seqcast_subscriber_counters", ctypes.c_int, _vp, _COUNTER_FN, _vp)
_rep_counters = _sig("seqcast_replay_counters", ctypes.c_int, _vp, _COUNTER_FN, _vp)


def _thread_options(idle, max_sleep_us, cpu):
    o = _ThreadOptions()
    _thread_init(ctypes.byref(o))
    o.idle = idle
    if max_sleep_us is not None:
        o.max_sleep_us = max_sleep_us
    o.cpu = cpu
    return o


def _counters(fn, handle):
    """An object's own counters as a dict, name -> value (as `seqcast stat` shows them)."""
    out = {}

    def one(name, value, _user):
        out[name.decode()] = value

    cb = _COUNTER_FN(one)
    if fn(handle, cb, None) < 0:
        _raise()
    return out


def crc32c(data, state=0xFFFFFFFF):
    """Incremental CRC32C (the wire's checksum): feed pieces, finish with `~state & 0xFFFFFFFF`."""
    return _crc(state, bytes(data), len(data))


def _raise():
    raise SetupError(_last_field().decode(), _last_error().decode())


def _apply(opts, kwargs, names):
    """Copies keyword arguments onto a C options struct; strings are kept alive in the result."""
    keep = []
    for key, value in kwargs.items():
        target, field = opts, key
        if key in _NETWORK_KEYS:
            target = opts.network
        elif key in _EXTRA_KEYS:
            target = opts.network_extra
        elif key not in names or key in ("size", "network", "network_extra"):
            raise TypeError(f"unknown option {key!r}")
        if field == "from":
            field = "from_"
        if isinstance(value, str):
            value = value.encode()
            keep.append(value)
        elif isinstance(value, bool):
            value = int(value)
        setattr(target, field, value)
    return keep


class Message:
    """A delivered message: the payload is a copy (bytes)."""

    __slots__ = ("offset", "publisher", "pub_seq", "publish_ts_ns", "sequenced_ts_ns", "epoch", "repaired", "payload")

    def __init__(self, m):
        self.offset = m.offset
        self.publisher = m.publisher
        self.pub_seq = m.pub_seq
        self.publish_ts_ns = m.publish_ts_ns
        self.sequenced_ts_ns = m.sequenced_ts_ns
        self.epoch = m.epoch
        self.repaired = bool(m.repaired)
        self.payload = ctypes.string_at(m.payload, m.length) if m.length else b""

    def __repr__(self):
        return f"Message(offset={self.offset}, publisher={self.publisher}, pub_seq={self.pub_seq}, {len(self.payload)} bytes)"


class Publisher:
    """Offers messages to a stream's sequencer. Keyword options are seqcast_publisher_options'
    (stream, sequencer, bind, id, journal, mtu, window, window_bytes, max_message) and the network
    ones (interface, ttl, loopback, rcvbuf, sndbuf, use_uring, auth_key_file, and network_extra's gso,
    gro, allow, auth_key_id). `on_confirm(pub_seq, offset, latency_ns)` runs inside do_work(), or on
    the publisher's thread after start_thread()."""

    def __init__(self, on_confirm=None, **options):
        opts = _PubOptions()
        _pub_init(ctypes.byref(opts))
        self._keep = _apply(opts, options, {f for f, _ in _PubOptions._fields_})
        self._errors = []

        def confirmed(c, _user):
            try:
                if on_confirm is not None:
                    on_confirm(c.contents.pub_seq, c.contents.offset, c.contents.latency_ns)
            except BaseException as e:  # raised again from do_work(), not lost inside ctypes
                self._errors.append(e)

        self._cb = _CONFIRM_FN(confirmed)
        h = _vp()
        if _pub_create(ctypes.byref(opts), self._cb, None, ctypes.byref(h)) != 0:
            _raise()
        self._h = h

    def offer(self, data):
        """ACCEPTED, BACK_PRESSURED, TOO_LARGE or NOT_CONNECTED."""
        return _pub_offer(self._h, bytes(data), len(data))

    def try_claim(self, max_length):
        """Zero copy: (ACCEPTED, a writable memoryview of max_length bytes inside the publisher), or
        (BACK_PRESSURED / TOO_LARGE / NOT_CONNECTED / CLAIM_OPEN, None). Write the message into the
        view, then commit(length) publishes its first length bytes or abort() gives the room back;
        the view must not be used after either."""
        buf = _vp()
        r = _pub_claim(self._h, max_length, ctypes.byref(buf))
        if r != ACCEPTED:
            return r, None
        return r, memoryview((ctypes.c_char * max_length).from_address(buf.value)).cast("B")

    def commit(self, length):
        _pub_commit(self._h, length)

    def abort(self):
        _pub_abort(self._h)

    def start_thread(self, idle=IDLE_BACKOFF, max_sleep_us=None, cpu=-1):
        """A thread of the publisher's own drives it (on_confirm then runs on that thread); every
        call on the publisher is thread-safe meanwhile. An exception on_confirm raised there is
        raised again by stop_thread()."""
        o = _thread_options(idle, max_sleep_us, cpu)
        if _pub_start(self._h, ctypes.byref(o)) != 0:
            _raise()

    def stop_thread(self):
        _pub_stop(self._h)
        if self._errors:
            raise self._errors.pop(0)

    def do_work(self):
        n = _pub_work(self._h)
        if self._errors:
            raise self._errors.pop(0)
        return n

    def wait(self, max_us=1000):
        """Sleeps until a datagram arrives for this publisher or max_us passed."""
        _pub_wait(self._h, max_us)

    def publish(self, data, timeout=10.0):
        """Offers, driving do_work() while back-pressured; raises on TOO_LARGE, NOT_CONNECTED or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.offer(data)
            if r == ACCEPTED:
                return
            if r == TOO_LARGE:
                raise ValueError(f"message of {len(data)} bytes is larger than max_message")
            if r == NOT_CONNECTED:
                raise ConnectionError(self.fatal_error or "the sequencer refused this publisher")
            if self.do_work() == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("back-pressured for longer than the timeout")
                time.sleep(0.0001)

    def flush(self, timeout=10.0):
        """Drives do_work() until every offered message is confirmed (False on timeout)."""
        deadline = time.monotonic() + timeout
        while self.unconfirmed:
            if self.do_work() == 0:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.0005)
        return True

    @property
    def id(self):
        return _pub_id(self._h)

    @property
    def unconfirmed(self):
        return _pub_unconfirmed(self._h)

    @property
    def fatal_error(self):
        return _pub_fatal(self._h).decode()

    def counters(self):
        """This publisher's counters: back_pressure, pub_retransmits, drop_too_large, ..."""
        return _counters(_pub_counters, self._h)

    def close(self):
        if getattr(self, "_h", None):
            _pub_close(self._h)
            self._h = None

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Receiver:
    _close = None

    def _setup_callbacks(self):
        self._batch = []
        self._losses = []
        self._errors = []
        self._on_message = None
        self._on_loss = None

        def message(m, _user):
            try:
                if self._on_message is not None:
                    self._on_message(Message(m.contents))
                else:
                    self._batch.append(Message(m.contents))
            except BaseException as e:
                self._errors.append(e)

        def loss(first, count, _user):
            try:
                if self._on_loss is not None:
                    self._on_loss(first, count)
                else:
                    self._losses.append((first, count))
            except BaseException as e:
                self._errors.append(e)

        self._mcb = _MESSAGE_FN(message)
        self._lcb = _LOSS_FN(loss)

    def poll(self, on_message=None, on_loss=None):
        """Delivers what arrived: to on_message(Message) / on_loss(first, count) when given, else
        into the lists `pending` and `losses` take from. Never blocks; returns the work done."""
        self._on_message, self._on_loss = on_message, on_loss
        try:
            n = self._poll(self._h, self._mcb, self._lcb, None)
        finally:
            self._on_message = self._on_loss = None
        if self._errors:
            raise self._errors.pop(0)
        return n

    def wait(self, max_us=1000):
        """Sleeps until a datagram arrives, a timer (or, paced, the next message) is due, or max_us passed."""
        self._wait(self._h, max_us)

    def pending(self):
        out, self._batch = self._batch, []
        return out

    def losses(self):
        """(first, count) ranges reported lost since the last call."""
        out, self._losses = self._losses, []
        return out

    def close(self):
        if getattr(self, "_h", None):
            type(self)._close(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Subscriber(_Receiver):
    """Receives a stream: every message once, in offset order, or a loss notice. Keyword options
    are seqcast_subscriber_options' (stream, group, start, archiver, sequencer, delivery,
    commit_file, reorder_bytes, max_datagram, max_message, nak_deadline_ms, nak_initial_rtt_us) and the
    network ones.
    Iterating yields Message objects until the stream ends (end of stream from the sequencer) or,
    with `idle_timeout`, until nothing arrived for that many seconds."""

    _close = staticmethod(_sub_close)

    def __init__(self, idle_timeout=None, **options):
        opts = _SubOptions()
        _sub_init(ctypes.byref(opts))
        self._keep = _apply(opts, options, {f for f, _ in _SubOptions._fields_})
        self._setup_callbacks()
        self._idle_timeout = idle_timeout
        self._poll = _sub_poll
        self._wait = _sub_wait
        h = _vp()
        if _sub_create(ctypes.byref(opts), ctypes.byref(h)) != 0:
            _raise()
        self._h = h

    @property
    def started(self):
        """The stream's position is known (heard from the sequencer, or the replay began)."""
        return bool(_sub_started(self._h))

    @property
    def end_of_stream(self):
        return bool(_sub_eos(self._h))

    @property
    def next_offset(self):
        return _sub_next(self._h)

    def start_thread(self, on_message, on_loss=None, idle=IDLE_BACKOFF, max_sleep_us=None, cpu=-1):
        """A thread of the subscriber's own polls it into on_message(Message) and on_loss(first,
        count), which then run on that thread; every call on the subscriber is thread-safe
        meanwhile. An exception a handler raised there is raised again by stop_thread()."""
        if on_message is None:
            raise TypeError("start_thread needs on_message")
        self._thread_on_message, self._thread_on_loss = on_message, on_loss

        def message(m, _user):
            try:
                self._thread_on_message(Message(m.contents))
            except BaseException as e:
                self._errors.append(e)

        def loss(first, count, _user):
            try:
                if self._thread_on_loss is not None:
                    self._thread_on_loss(first, count)
            except BaseException as e:
                self._errors.append(e)

        self._tmcb, self._tlcb = _MESSAGE_FN(message), _LOSS_FN(loss)  # kept alive while the thread runs
        o = _thread_options(idle, max_sleep_us, cpu)
        if _sub_start(self._h, self._tmcb, self._tlcb, None, ctypes.byref(o)) != 0:
            _raise()

    def stop_thread(self):
        _sub_stop(self._h)
        if self._errors:
            raise self._errors.pop(0)

    def counters(self):
        """This subscriber's counters: gaps_detected, naks_sent, offsets_lost, ..."""
        return _counters(_sub_counters, self._h)

    @property
    def head_offset(self):
        return _sub_head(self._h)

    def __iter__(self):
        last = time.monotonic()
        while True:
            work = self.poll()
            batch = self.pending()
            yield from batch
            if batch or work:
                last = time.monotonic()
            elif self.end_of_stream:
                return
            elif self._idle_timeout is not None and time.monotonic() - last > self._idle_timeout:
                return
            else:
                time.sleep(0.0002)


class Replay(_Receiver):
    """Offsets [from, to) from an archiver. Keyword options: stream, archiver, from, to, earliest,
    speed (0: as fast as taken; > 0: paced as published, times speed), wait_for_data (wait for
    offsets not recorded yet instead of failing), bind and the network ones."""

    _close = staticmethod(_rep_close)

    def __init__(self, **options):
        opts = _ReplayOptions()
        _rep_init(ctypes.byref(opts))
        self._keep = _apply(opts, options, {f for f, _ in _ReplayOptions._fields_} | {"from"})
        self._setup_callbacks()
        self._poll = _rep_poll
        self._wait = _rep_wait
        h = _vp()
        if _rep_create(ctypes.byref(opts), ctypes.byref(h)) != 0:
            _raise()
        self._h = h

    @property
    def finished(self):
        return bool(_rep_finished(self._h))

    @property
    def failure(self):
        return _rep_failure(self._h).decode()

    @property
    def next_offset(self):
        return _rep_next(self._h)

    def counters(self):
        """This replay's counters: messages_in, datagrams_in, ..."""
        return _counters(_rep_counters, self._h)

    def __iter__(self):
        while True:
            work = self.poll()
            yield from self.pending()
            if self.finished:
                yield from self.pending()
                return
            if not work:
                time.sleep(0.0002)


def replay(archiver, first, end, timeout=60.0, **options):
    """Messages [first, end) from an archiver, as a list of Message. Raises RuntimeError if the
    archiver refused or could not finish, or on timeout; losses inside the range are in the
    returned list's `losses` attribute."""
    r = Replay(archiver=archiver, **{"from": first, "to": end}, **options)
    out = _MessageList()
    deadline = time.monotonic() + timeout
    try:
        while not r.finished:
            if r.poll() == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replay of [{first}, {end}) not finished in {timeout} s")
                time.sleep(0.0002)
            out.extend(r.pending())
            out.losses.extend(r.losses())
        out.extend(r.pending())
        out.losses.extend(r.losses())
        if r.failure:
            raise RuntimeError(r.failure)
    finally:
        r.close()
    return out


class _MessageList(list):
    def __init__(self):
        super().__init__()
        self.losses = []


def replay_numpy(archiver, first, end, timeout=60.0, **options):
    """As replay(), into a NumPy structured array (offset, publisher, pub_seq, publish_ts_ns,
    sequenced_ts_ns, repaired, payload as a bytes object column) for analysis."""
    import numpy as np
    msgs = replay(archiver, first, end, timeout, **options)
    dtype = np.dtype([("offset", "u8"), ("publisher", "u4"), ("pub_seq", "u8"), ("publish_ts_ns", "u8"),
                      ("sequenced_ts_ns", "u8"), ("repaired", "?"), ("payload", "O")])
    arr = np.empty(len(msgs), dtype=dtype)
    for i, m in enumerate(msgs):
        arr[i] = (m.offset, m.publisher, m.pub_seq, m.publish_ts_ns, m.sequenced_ts_ns, m.repaired, m.payload)
    return arr
