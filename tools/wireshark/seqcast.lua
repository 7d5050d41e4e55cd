-- Wireshark dissector for the seqcast wire protocol v2 (docs/PROTOCOL.md, fabric/wire.h).
--
-- Install: copy this file into your personal Lua plugins folder (Wireshark: Help > About >
-- Folders > "Personal Lua Plugins", usually ~/.local/lib/wireshark/plugins/), or load it for one
-- run:
--     wireshark -X lua_script:tools/wireshark/seqcast.lua
--     tshark -X lua_script:tools/wireshark/seqcast.lua -r capture.pcap -Y seqcast
--
-- It finds seqcast datagrams on any UDP port by themselves (a heuristic that checks the magic
-- 'SQCT', major version 2 and that header_len + body_len is the datagram length; switch it off
-- under Analyze > Enabled Protocols > seqcast_udp). For datagrams the heuristic refuses (truncated
-- or damaged ones), use Decode As > seqcast, tshark's `-d udp.port==40001,seqcast`, or set the
-- port preference (Edit > Preferences > Protocols > seqcast, or `-o seqcast.port:40001`).
--
-- Filter examples:
--     seqcast.type == 1 && seqcast.stream == 1           DATA of stream 1
--     seqcast.flags.retransmit                           repairs
--     seqcast.flags.end                                  heartbeats after the end of the stream
--     seqcast.msg.publisher == 7 && seqcast.msg.pub_seq == 42
--     seqcast.nak                                        every NAK
--     seqcast.crc32c.status == 0                         CRC failures (with CRC checking on)
--     seqcast.msg.crc32c.status == 0                     entries failing the publisher's CRC
--
-- Works with Wireshark 3.x / 4.x (Lua 5.1 .. 5.4).

local HEADER_LEN = 48
local MSG_HEADER_LEN = 40
local MSG_CRC_COVERED = 32 -- header bytes an entry CRC covers, after the payload
local MAGIC = 0x54435153 -- 'S' 'Q' 'C' 'T' read little-endian
local VERSION_MAJOR = 2
local OFFSET_OPEN = "18446744073709551615" -- 0xFFFFFFFFFFFFFFFF as UInt64 decimal

local seqcast = Proto("seqcast", "seqcast reliable multicast")

---------------------------------------------------------------------------------------------------
-- Value names

local TYPE_DATA, TYPE_HEARTBEAT, TYPE_NAK, TYPE_PUB, TYPE_PUB_ACK = 1, 2, 3, 4, 5
local TYPE_PUB_NAK, TYPE_REPLAY_REQUEST, TYPE_REPLAY_END, TYPE_END_OF_STREAM = 6, 7, 8, 9
local TYPE_REPL_ACK, TYPE_REPL_JOIN, TYPE_REPL_SNAPSHOT = 10, 11, 12

local type_names = {
    [TYPE_DATA] = "DATA",
    [TYPE_HEARTBEAT] = "HEARTBEAT",
    [TYPE_NAK] = "NAK",
    [TYPE_PUB] = "PUB",
    [TYPE_PUB_ACK] = "PUB_ACK",
    [TYPE_PUB_NAK] = "PUB_NAK",
    [TYPE_REPLAY_REQUEST] = "REPLAY_REQUEST",
    [TYPE_REPLAY_END] = "REPLAY_END",
    [TYPE_END_OF_STREAM] = "END_OF_STREAM",
    [TYPE_REPL_ACK] = "REPL_ACK",
    [TYPE_REPL_JOIN] = "REPL_JOIN",
    [TYPE_REPL_SNAPSHOT] = "REPL_SNAPSHOT",
}

local pub_nak_reasons = {
    [1] = "Gap",
    [2] = "UnknownPublisher",
    [3] = "TooManyPublishers",
    [4] = "TooLarge",
    [5] = "NotLeader",
}

local replay_statuses = {
    [0] = "Complete",
    [1] = "Overwritten",
    [2] = "BeyondHead",
    [3] = "Refused",
    [4] = "Failed",
    [5] = "Lost",
}

local checksum_statuses = { [0] = "Bad", [1] = "Good", [2] = "Unverified" }

---------------------------------------------------------------------------------------------------
-- Fields

local f = {}
-- header
f.magic = ProtoField.uint32("seqcast.magic", "Magic", base.HEX)
f.version_major = ProtoField.uint8("seqcast.version.major", "Version major", base.DEC)
f.version_minor = ProtoField.uint8("seqcast.version.minor", "Version minor", base.DEC)
f.header_len = ProtoField.uint16("seqcast.header_len", "Header length", base.DEC)
f.header_ext = ProtoField.bytes("seqcast.header_ext", "Unknown header extension")
f.type = ProtoField.uint8("seqcast.type", "Frame type", base.DEC, type_names)
f.reserved = ProtoField.uint8("seqcast.reserved", "Reserved", base.HEX)
f.flags = ProtoField.uint16("seqcast.flags", "Flags", base.HEX)
f.flags_retransmit = ProtoField.bool("seqcast.flags.retransmit", "RETRANSMIT", 16, nil, 0x0001,
    "DATA re-sent in answer to a NAK")
f.flags_replay = ProtoField.bool("seqcast.flags.replay", "REPLAY", 16, nil, 0x0002,
    "DATA served from an archive replay")
f.flags_end = ProtoField.bool("seqcast.flags.end", "END", 16, nil, 0x0004,
    "HEARTBEAT: the stream has ended at its next offset (sent after END_OF_STREAM)")
f.flags_unknown = ProtoField.uint16("seqcast.flags.unknown", "Unknown flag bits", base.HEX, nil, 0xFFF8)
f.stream = ProtoField.uint32("seqcast.stream", "Stream id", base.DEC)
f.epoch = ProtoField.uint32("seqcast.epoch", "Epoch", base.DEC)
f.crc = ProtoField.uint32("seqcast.crc32c", "CRC32C", base.HEX)
f.crc_computed = ProtoField.uint32("seqcast.crc32c.computed", "Computed CRC32C", base.HEX)
f.crc_status = ProtoField.uint8("seqcast.crc32c.status", "CRC32C status", base.DEC, checksum_statuses)
f.first_offset = ProtoField.uint64("seqcast.first_offset", "First offset", base.DEC)
f.sender_ts = ProtoField.uint64("seqcast.sender_ts", "Sender timestamp (ns)", base.DEC)
f.sender_time = ProtoField.absolute_time("seqcast.sender_time", "Sender time", base.UTC)
f.count = ProtoField.uint32("seqcast.count", "Count", base.DEC)
f.body_len = ProtoField.uint32("seqcast.body_len", "Body length", base.DEC)
f.body = ProtoField.bytes("seqcast.body", "Body")
f.last_offset = ProtoField.uint64("seqcast.last_offset", "Last offset", base.DEC)

-- message entries (DATA, PUB)
f.msg = ProtoField.none("seqcast.msg", "Message entry")
f.msg_index = ProtoField.uint32("seqcast.msg.index", "Index", base.DEC)
f.msg_offset = ProtoField.uint64("seqcast.msg.offset", "Offset", base.DEC)
f.msg_length = ProtoField.uint32("seqcast.msg.length", "Length", base.DEC)
f.msg_flags = ProtoField.uint16("seqcast.msg.flags", "Flags", base.HEX)
f.msg_flags_first = ProtoField.bool("seqcast.msg.flags.first", "FIRST", 16, nil, 0x0001)
f.msg_flags_last = ProtoField.bool("seqcast.msg.flags.last", "LAST", 16, nil, 0x0002)
f.msg_reserved = ProtoField.uint16("seqcast.msg.reserved", "Reserved", base.HEX)
f.msg_publisher = ProtoField.uint32("seqcast.msg.publisher", "Publisher id", base.DEC)
f.msg_frag_offset = ProtoField.uint32("seqcast.msg.frag_offset", "Fragment offset", base.DEC)
f.msg_pub_seq = ProtoField.uint64("seqcast.msg.pub_seq", "Pub seq", base.DEC)
f.msg_publish_ts = ProtoField.uint64("seqcast.msg.publish_ts", "Publish timestamp (ns)", base.DEC)
f.msg_publish_time = ProtoField.absolute_time("seqcast.msg.publish_time", "Publish time", base.UTC)
f.msg_crc = ProtoField.uint32("seqcast.msg.crc32c", "Entry CRC32C", base.HEX)
f.msg_crc_status = ProtoField.uint8("seqcast.msg.crc32c.status", "Entry CRC32C status", base.DEC, checksum_statuses)
f.msg_reserved2 = ProtoField.uint32("seqcast.msg.reserved2", "Reserved", base.HEX)
f.msg_payload = ProtoField.bytes("seqcast.msg.payload", "Payload")

-- HEARTBEAT
f.hb_oldest = ProtoField.uint64("seqcast.heartbeat.oldest_retained", "Oldest retained", base.DEC)

-- NAK
f.nak = ProtoField.none("seqcast.nak", "NAK range")
f.nak_first = ProtoField.uint64("seqcast.nak.first", "First", base.DEC)
f.nak_count = ProtoField.uint32("seqcast.nak.count", "Count", base.DEC)
f.nak_last = ProtoField.uint64("seqcast.nak.last", "Last", base.DEC)
f.nak_reserved = ProtoField.uint32("seqcast.nak.reserved", "Reserved", base.HEX)

-- PUB_ACK
f.ack_publisher = ProtoField.uint32("seqcast.ack.publisher", "Publisher id", base.DEC)
f.ack_reserved = ProtoField.uint32("seqcast.ack.reserved", "Reserved", base.HEX)
f.ack_run = ProtoField.none("seqcast.ack.run", "Run")
f.ack_first_pub_seq = ProtoField.uint64("seqcast.ack.first_pub_seq", "First pub seq", base.DEC)
f.ack_first_offset = ProtoField.uint64("seqcast.ack.first_offset", "First offset", base.DEC)
f.ack_count = ProtoField.uint32("seqcast.ack.count", "Count", base.DEC)
f.ack_stride = ProtoField.uint32("seqcast.ack.stride", "Stride", base.DEC)

-- PUB_NAK
f.pubnak_publisher = ProtoField.uint32("seqcast.pubnak.publisher", "Publisher id", base.DEC)
f.pubnak_reason = ProtoField.uint32("seqcast.pubnak.reason", "Reason", base.DEC, pub_nak_reasons)
f.pubnak_expected = ProtoField.uint64("seqcast.pubnak.expected_pub_seq", "Expected pub seq", base.DEC)
f.pubnak_held_from = ProtoField.uint64("seqcast.pubnak.held_from_pub_seq", "Held from pub seq", base.DEC)

-- REPLAY_REQUEST
f.rr_request_id = ProtoField.uint64("seqcast.replay.request_id", "Request id", base.DEC)
f.rr_from = ProtoField.uint64("seqcast.replay.from", "From", base.DEC)
f.rr_to = ProtoField.uint64("seqcast.replay.to", "To (exclusive)", base.DEC)
f.rr_flags = ProtoField.uint32("seqcast.replay.flags", "Flags", base.HEX)
f.rr_flags_live = ProtoField.bool("seqcast.replay.flags.live", "LIVE", 32, nil, 0x1,
    "after `to`, continue with the live stream")
f.rr_flags_wait = ProtoField.bool("seqcast.replay.flags.wait", "WAIT", 32, nil, 0x2,
    "wait for offsets beyond the head instead of failing")
f.rr_flags_cancel = ProtoField.bool("seqcast.replay.flags.cancel", "CANCEL", 32, nil, 0x4,
    "end this request")
f.rr_flags_earliest = ProtoField.bool("seqcast.replay.flags.earliest", "EARLIEST", 32, nil, 0x8,
    "start at the earliest retained offset if `from` is no longer retained")
f.rr_reserved = ProtoField.uint32("seqcast.replay.reserved", "Reserved", base.HEX)

-- REPLAY_END
f.re_request_id = ProtoField.uint64("seqcast.replay_end.request_id", "Request id", base.DEC)
f.re_status = ProtoField.uint32("seqcast.replay_end.status", "Status", base.DEC, replay_statuses)
f.re_reserved = ProtoField.uint32("seqcast.replay_end.reserved", "Reserved", base.HEX)
f.re_next = ProtoField.uint64("seqcast.replay_end.next_offset", "Next offset", base.DEC)
f.re_earliest = ProtoField.uint64("seqcast.replay_end.earliest_offset", "Earliest offset", base.DEC)
f.repl_session = ProtoField.uint64("seqcast.repl.session", "Session", base.HEX)
f.repl_chunk = ProtoField.uint32("seqcast.repl.chunk", "Chunk", base.DEC)
f.repl_chunks = ProtoField.uint32("seqcast.repl.chunks", "Chunks", base.DEC)
f.repl_table_head = ProtoField.uint64("seqcast.repl.table_head", "Publisher positions as of offset", base.DEC)
f.repl_pub_id = ProtoField.uint32("seqcast.repl.publisher_id", "Publisher id", base.DEC)
f.repl_pub_frag = ProtoField.uint32("seqcast.repl.next_frag", "Next fragment byte", base.DEC)
f.repl_pub_seq = ProtoField.uint64("seqcast.repl.next_pub_seq", "Next pub_seq", base.DEC)

local field_list = {}
for _, v in pairs(f) do field_list[#field_list + 1] = v end
seqcast.fields = field_list

---------------------------------------------------------------------------------------------------
-- Expert info

local ef = {
    truncated = ProtoExpert.new("seqcast.truncated", "Truncated seqcast datagram",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_magic = ProtoExpert.new("seqcast.bad_magic", "Not a seqcast datagram (bad magic)",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_version = ProtoExpert.new("seqcast.bad_version", "Unsupported seqcast major version",
        expert.group.PROTOCOL, expert.severity.ERROR),
    bad_header_len = ProtoExpert.new("seqcast.bad_header_len", "Header length below 48",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_body_len = ProtoExpert.new("seqcast.bad_body_len", "header_len + body_len is not the datagram length",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_crc = ProtoExpert.new("seqcast.bad_crc", "Bad CRC32C",
        expert.group.CHECKSUM, expert.severity.ERROR),
    unknown_type = ProtoExpert.new("seqcast.unknown_type", "Unknown frame type",
        expert.group.PROTOCOL, expert.severity.ERROR),
    bad_body = ProtoExpert.new("seqcast.bad_body", "Malformed seqcast body",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_entry_crc = ProtoExpert.new("seqcast.bad_entry_crc", "Entry fails the publisher's CRC32C",
        expert.group.CHECKSUM, expert.severity.ERROR),
    header_ext = ProtoExpert.new("seqcast.header_ext.note", "Header longer than v2.0 (newer minor version)",
        expert.group.PROTOCOL, expert.severity.NOTE),
    retransmit = ProtoExpert.new("seqcast.retransmit.note", "Retransmitted DATA",
        expert.group.SEQUENCE, expert.severity.NOTE),
}
seqcast.experts = { ef.truncated, ef.bad_magic, ef.bad_version, ef.bad_header_len, ef.bad_body_len,
    ef.bad_crc, ef.bad_entry_crc, ef.unknown_type, ef.bad_body, ef.header_ext, ef.retransmit }

---------------------------------------------------------------------------------------------------
-- Preferences

seqcast.prefs.port = Pref.uint("UDP port", 0,
    "Dissect this UDP port as seqcast regardless of the heuristic (0 = none)")
seqcast.prefs.verify_crc = Pref.bool("Verify CRC32C", true,
    "Compute the CRC32C of every datagram and mark it good or bad")

---------------------------------------------------------------------------------------------------
-- CRC32C (Castagnoli, reflected polynomial 0x82F63B78)

local bxor, band, rshift
if bit32 then
    bxor, band, rshift = bit32.bxor, bit32.band, bit32.rshift
else
    -- Lua 5.3+: native integer operators (a syntax error before 5.3, hence the string)
    local ok, native = pcall(load, [[
        return function(a, b) return a ~ b end,
               function(a, b) return a & b end,
               function(a, n) return a >> n end ]])
    if ok and type(native) == "function" then
        bxor, band, rshift = native()
    elseif bit then
        -- LuaBitOp returns signed 32-bit numbers: normalise to 0 .. 2^32-1
        bxor = function(a, b) return bit.bxor(a, b) % 4294967296 end
        band = function(a, b) return bit.band(a, b) % 4294967296 end
        rshift = function(a, n) return bit.rshift(a, n) % 4294967296 end
    end
end

local crc_table
local function crc32c_init()
    if crc_table or not bxor then return end
    crc_table = {}
    for i = 0, 255 do
        local c = i
        for _ = 1, 8 do
            if band(c, 1) ~= 0 then
                c = bxor(rshift(c, 1), 0x82F63B78)
            else
                c = rshift(c, 1)
            end
        end
        crc_table[i] = c
    end
end

-- CRC32C of the string s with bytes [skip_from, skip_from+4) (1-based) taken as zero.
local function crc32c(s, skip_from)
    crc32c_init()
    if not crc_table then return nil end
    local crc = 0xFFFFFFFF
    local byte = string.byte
    for i = 1, #s do
        local b = byte(s, i)
        if i >= skip_from and i < skip_from + 4 then b = 0 end
        crc = bxor(crc_table[band(bxor(crc, b), 0xFF)], rshift(crc, 8))
    end
    return bxor(crc, 0xFFFFFFFF)
end

---------------------------------------------------------------------------------------------------
-- Helpers

local function flag_names(value, names)
    local out = {}
    for _, p in ipairs(names) do
        if value % (p[1] * 2) >= p[1] then out[#out + 1] = p[2] end
    end
    return table.concat(out, "|")
end

local HEADER_FLAG_NAMES = { { 1, "RETRANSMIT" }, { 2, "REPLAY" }, { 4, "END" } }
local MSG_FLAG_NAMES = { { 1, "FIRST" }, { 2, "LAST" } }
local REPLAY_FLAG_NAMES = { { 1, "LIVE" }, { 2, "WAIT" }, { 4, "CANCEL" }, { 8, "EARLIEST" } }

-- UInt64 nanoseconds since the epoch -> NSTime
local function ns_to_nstime(ns)
    local secs = (ns / 1000000000):tonumber()
    local nsecs = (ns % 1000000000):tonumber()
    return NSTime.new(secs, nsecs)
end

local function u64_str(v)
    local s = tostring(v)
    if s == OFFSET_OPEN then return "open" end
    return s
end

local function printable_preview(s, max)
    if #s == 0 then return "" end
    local cut = s:sub(1, max)
    if cut:find("[^\32-\126]") then return nil end
    if #s > max then cut = cut .. "..." end
    return '"' .. cut .. '"'
end

-- Adds a time pair (ns as integer + absolute time) for an 8-byte LE timestamp at range r.
local function add_time(tree, f_ns, f_abs, r)
    tree:add_le(f_ns, r)
    local ns = r:le_uint64()
    local item = tree:add(f_abs, r, ns_to_nstime(ns))
    item:set_generated()
end

-- Checks that a fixed-size body has count 0 and exactly `size` bytes; returns true if dissectable.
local function check_fixed_body(tree, body_item, count, body_len, avail, size, name)
    local ok = true
    if count ~= 0 then
        tree:add_proto_expert_info(ef.bad_body, name .. ": count must be 0 (is " .. count .. ")")
        ok = false
    end
    if body_len ~= size then
        tree:add_proto_expert_info(ef.bad_body, name .. ": body must be " .. size .. " bytes (is " .. body_len .. ")")
        ok = false
    end
    if avail < size then
        tree:add_proto_expert_info(ef.truncated, "Truncated: " .. name .. " body has " .. avail .. " of " .. size .. " bytes")
        return false, ok
    end
    return true, ok
end

---------------------------------------------------------------------------------------------------
-- Body dissectors. Each gets (tvb, tree, hdr) where hdr has the decoded header fields, body_start,
-- avail (captured body bytes within body_len) and returns the Info-column tail.

local function dissect_entries(tvb, tree, hdr)
    local is_data = hdr.type == TYPE_DATA
    local pos = hdr.body_start
    local body_end = hdr.body_start + hdr.avail
    local n = 0
    local first_pub, min_seq, max_seq
    local nfrag = 0
    local bad_entries = 0
    for i = 0, hdr.count - 1 do
        if pos + MSG_HEADER_LEN > body_end then
            local what = (body_end < hdr.body_start + hdr.body_len) and ef.truncated or ef.bad_body
            tree:add_proto_expert_info(what, string.format(
                "entry %d: header overruns the body (%d entries announced, %d found)", i, hdr.count, n))
            break
        end
        local length = tvb(pos, 4):le_uint()
        local flags = tvb(pos + 4, 2):le_uint()
        local pub = tvb(pos + 8, 4):le_uint()
        local frag_off = tvb(pos + 12, 4):le_uint()
        local pub_seq = tvb(pos + 16, 8):le_uint64()
        local entry_len = MSG_HEADER_LEN + length
        local room = body_end - pos
        local shown = math.min(entry_len, room)
        local et = tree:add(f.msg, tvb(pos, shown))
        local idx_item = et:add(f.msg_index, i)
        idx_item:set_generated()
        local label = string.format("Entry %d: ", i)
        if is_data then
            local off = hdr.first_offset + i
            local oi = et:add(f.msg_offset, off)
            oi:set_generated()
            label = label .. "offset " .. tostring(off) .. ", "
        end
        et:add_le(f.msg_length, tvb(pos, 4))
        local fl = et:add_le(f.msg_flags, tvb(pos + 4, 2))
        fl:append_text(" (" .. (flag_names(flags, MSG_FLAG_NAMES) ~= "" and flag_names(flags, MSG_FLAG_NAMES) or "middle fragment") .. ")")
        fl:add_le(f.msg_flags_first, tvb(pos + 4, 2))
        fl:add_le(f.msg_flags_last, tvb(pos + 4, 2))
        et:add_le(f.msg_reserved, tvb(pos + 6, 2))
        et:add_le(f.msg_publisher, tvb(pos + 8, 4))
        et:add_le(f.msg_frag_offset, tvb(pos + 12, 4))
        et:add_le(f.msg_pub_seq, tvb(pos + 16, 8))
        add_time(et, f.msg_publish_ts, f.msg_publish_time, tvb(pos + 24, 8))
        local eci = et:add_le(f.msg_crc, tvb(pos + 32, 4))
        et:add_le(f.msg_reserved2, tvb(pos + 36, 4))
        local entry_crc_status = 2
        if seqcast.prefs.verify_crc and entry_len <= room then
            -- CRC-32C of the payload followed by header bytes 0..31 (docs/PROTOCOL.md, "Entry CRC")
            local covered = (length > 0 and tvb:raw(pos + MSG_HEADER_LEN, length) or "") .. tvb:raw(pos, MSG_CRC_COVERED)
            local computed = crc32c(covered, #covered + 1)
            local carried = tvb(pos + 32, 4):le_uint()
            if computed then
                if computed == carried then
                    entry_crc_status = 1
                    eci:append_text(" [correct]")
                else
                    entry_crc_status = 0
                    eci:append_text(string.format(" [incorrect, should be 0x%08x]", computed))
                    eci:add_proto_expert_info(ef.bad_entry_crc, string.format(
                        "entry %d fails the publisher's CRC32C: 0x%08x, computed 0x%08x", i, carried, computed))
                    bad_entries = bad_entries + 1
                end
            end
        end
        local ecs = eci:add(f.msg_crc_status, entry_crc_status)
        ecs:set_generated()

        local is_first = flags % 2 == 1
        local is_last = flags % 4 >= 2
        if is_first ~= (frag_off == 0) then
            et:add_proto_expert_info(ef.bad_body, "FIRST must be set exactly when frag_offset is 0")
        end
        if frag_off + length > 4294967295 then
            et:add_proto_expert_info(ef.bad_body, "frag_offset + length exceeds 2^32 - 1")
        end
        if not (is_first and is_last) then nfrag = nfrag + 1 end

        label = label .. string.format("%d bytes, publisher %d, pub_seq %s", length, pub, tostring(pub_seq))
        if not (is_first and is_last) then
            label = label .. string.format(", fragment @%d %s", frag_off,
                flag_names(flags, MSG_FLAG_NAMES) ~= "" and flag_names(flags, MSG_FLAG_NAMES) or "(middle)")
        end
        if entry_len > room then
            if length > 0 and room > MSG_HEADER_LEN then
                et:add(f.msg_payload, tvb(pos + MSG_HEADER_LEN, room - MSG_HEADER_LEN))
            end
            local what = (body_end < hdr.body_start + hdr.body_len) and ef.truncated or ef.bad_body
            et:add_proto_expert_info(what, string.format(
                "entry %d: payload of %d bytes overruns the body (%d left)", i, length, room - MSG_HEADER_LEN))
            et:set_text(label .. " [overrun]")
            n = n + 1
            pos = body_end
            break
        end
        if length > 0 then
            local pr = tvb(pos + MSG_HEADER_LEN, length)
            et:add(f.msg_payload, pr)
            local preview = printable_preview(pr:raw(0, math.min(length, 33)), 32)
            if preview then label = label .. ": " .. preview end
        end
        et:set_text(label)

        if first_pub == nil then first_pub = pub end
        if min_seq == nil or pub_seq < min_seq then min_seq = pub_seq end
        if max_seq == nil or max_seq < pub_seq then max_seq = pub_seq end
        pos = pos + entry_len
        n = n + 1
    end
    if n == hdr.count and hdr.avail == hdr.body_len and pos < body_end then
        tree:add_proto_expert_info(ef.bad_body, string.format(
            "%d bytes after the last entry", hdr.body_start + hdr.body_len - pos))
    end

    local info
    local entries = hdr.count == 1 and "1 entry" or (hdr.count .. " entries")
    if nfrag > 0 then entries = entries .. ", " .. nfrag .. (nfrag == 1 and " fragment" or " fragments") end
    if bad_entries > 0 then entries = entries .. ", " .. bad_entries .. " failing the entry CRC" end
    if is_data then
        if hdr.count == 0 then
            info = string.format("offset %s (no entries)", tostring(hdr.first_offset))
        else
            local last = hdr.first_offset + (hdr.count - 1)
            local li = tree:add(f.last_offset, last)
            li:set_generated()
            if hdr.count == 1 then
                info = string.format("offset %s (%s)", tostring(hdr.first_offset), entries)
            else
                info = string.format("offsets %s..%s (%s)", tostring(hdr.first_offset), tostring(last), entries)
            end
        end
    else
        info = string.format("publisher=%s", first_pub and tostring(first_pub) or "?")
        if min_seq then
            if min_seq == max_seq then
                info = info .. " pub_seq " .. tostring(min_seq)
            else
                info = info .. " pub_seq " .. tostring(min_seq) .. ".." .. tostring(max_seq)
            end
        end
        info = info .. string.format(" (%s) window base %s", entries, tostring(hdr.first_offset))
    end
    return info
end

local function dissect_heartbeat(tvb, tree, hdr)
    local ok = check_fixed_body(tree, nil, hdr.count, hdr.body_len, hdr.avail, 8, "HEARTBEAT")
    local info = "next=" .. tostring(hdr.first_offset)
    if ok then
        local r = tvb(hdr.body_start, 8)
        tree:add_le(f.hb_oldest, r)
        info = info .. " oldest_retained=" .. tostring(r:le_uint64())
    end
    if hdr.flags % 8 >= 4 then info = info .. " END (the stream has ended)" end
    return info
end

local function dissect_nak(tvb, tree, hdr)
    if hdr.count == 0 then
        tree:add_proto_expert_info(ef.bad_body, "NAK: count must be >= 1")
    end
    if hdr.body_len ~= 16 * hdr.count then
        tree:add_proto_expert_info(ef.bad_body, string.format("NAK: body must be 16 x count = %d bytes (is %d)",
            16 * hdr.count, hdr.body_len))
    end
    local ranges = {}
    local pos = hdr.body_start
    local body_end = hdr.body_start + hdr.avail
    for i = 0, hdr.count - 1 do
        if pos + 16 > body_end then
            local what = (body_end < hdr.body_start + hdr.body_len) and ef.truncated or ef.bad_body
            tree:add_proto_expert_info(what, string.format("range %d overruns the body", i))
            break
        end
        local first = tvb(pos, 8):le_uint64()
        local cnt = tvb(pos + 8, 4):le_uint()
        local rt = tree:add(f.nak, tvb(pos, 16))
        rt:add_le(f.nak_first, tvb(pos, 8))
        rt:add_le(f.nak_count, tvb(pos + 8, 4))
        rt:add_le(f.nak_reserved, tvb(pos + 12, 4))
        local text
        if cnt == 0 or cnt > 1048576 then
            rt:add_proto_expert_info(ef.bad_body, "range count must be 1 .. 2^20 (is " .. cnt .. ")")
            text = tostring(first) .. " (+" .. cnt .. ")"
        else
            local last = first + (cnt - 1)
            if last < first then
                rt:add_proto_expert_info(ef.bad_body, "range wraps past 2^64 - 1")
            end
            local li = rt:add(f.nak_last, last)
            li:set_generated()
            text = cnt == 1 and tostring(first) or (tostring(first) .. ".." .. tostring(last))
        end
        rt:set_text(string.format("Range %d: %s (%d offsets)", i, text, cnt))
        ranges[#ranges + 1] = text
        pos = pos + 16
    end
    local shown = table.concat(ranges, ", ", 1, math.min(#ranges, 8))
    if #ranges > 8 then shown = shown .. ", ..." end
    return string.format("%d range%s: %s", hdr.count, hdr.count == 1 and "" or "s", shown)
end

local function dissect_pub_ack(tvb, tree, hdr)
    if hdr.body_len ~= 8 + 24 * hdr.count then
        tree:add_proto_expert_info(ef.bad_body, string.format("PUB_ACK: body must be 8 + 24 x count = %d bytes (is %d)",
            8 + 24 * hdr.count, hdr.body_len))
    end
    local body_end = hdr.body_start + hdr.avail
    if hdr.avail < 8 then
        tree:add_proto_expert_info(ef.truncated, "PUB_ACK: body shorter than 8 bytes")
        return "(truncated)"
    end
    local pub = tvb(hdr.body_start, 4):le_uint()
    tree:add_le(f.ack_publisher, tvb(hdr.body_start, 4))
    tree:add_le(f.ack_reserved, tvb(hdr.body_start + 4, 4))
    local runs = {}
    local pos = hdr.body_start + 8
    for i = 0, hdr.count - 1 do
        if pos + 24 > body_end then
            local what = (body_end < hdr.body_start + hdr.body_len) and ef.truncated or ef.bad_body
            tree:add_proto_expert_info(what, string.format("run %d overruns the body", i))
            break
        end
        local fps = tvb(pos, 8):le_uint64()
        local fo = tvb(pos + 8, 8):le_uint64()
        local cnt = tvb(pos + 16, 4):le_uint()
        local stride = tvb(pos + 20, 4):le_uint()
        local rt = tree:add(f.ack_run, tvb(pos, 24))
        rt:add_le(f.ack_first_pub_seq, tvb(pos, 8))
        local foi = rt:add_le(f.ack_first_offset, tvb(pos + 8, 8))
        if tostring(fo) == OFFSET_OPEN then foi:append_text(" (offsets no longer remembered)") end
        rt:add_le(f.ack_count, tvb(pos + 16, 4))
        rt:add_le(f.ack_stride, tvb(pos + 20, 4))
        if cnt == 0 then rt:add_proto_expert_info(ef.bad_body, "run count must be >= 1") end
        if stride == 0 then rt:add_proto_expert_info(ef.bad_body, "run stride must be >= 1") end
        local seqs = cnt <= 1 and tostring(fps) or (tostring(fps) .. ".." .. tostring(fps + (cnt - 1)))
        local offs
        if tostring(fo) == OFFSET_OPEN then
            offs = "forgotten offsets"
        elseif cnt <= 1 then
            offs = "offset " .. tostring(fo)
        else
            offs = "offsets " .. tostring(fo) .. ".." .. tostring(fo + (cnt - 1) * stride)
            if stride ~= 1 then offs = offs .. " stride " .. stride end
        end
        local text = "pub_seq " .. seqs .. " @ " .. offs
        rt:set_text(string.format("Run %d: %s", i, text))
        runs[#runs + 1] = text
        pos = pos + 24
    end
    local shown = table.concat(runs, ", ", 1, math.min(#runs, 4))
    if #runs > 4 then shown = shown .. ", ..." end
    local info = string.format("publisher=%d %d run%s", pub, hdr.count, hdr.count == 1 and "" or "s")
    if #runs > 0 then info = info .. ": " .. shown end
    return info
end

local function dissect_pub_nak(tvb, tree, hdr)
    local ok = check_fixed_body(tree, nil, hdr.count, hdr.body_len, hdr.avail, 24, "PUB_NAK")
    if not ok then return "(truncated)" end
    local b = hdr.body_start
    local pub = tvb(b, 4):le_uint()
    local reason = tvb(b + 4, 4):le_uint()
    tree:add_le(f.pubnak_publisher, tvb(b, 4))
    local ri = tree:add_le(f.pubnak_reason, tvb(b + 4, 4))
    if not pub_nak_reasons[reason] then
        ri:add_proto_expert_info(ef.bad_body, "unknown PUB_NAK reason " .. reason)
    end
    tree:add_le(f.pubnak_expected, tvb(b + 8, 8))
    local hi = tree:add_le(f.pubnak_held_from, tvb(b + 16, 8))
    local held = tvb(b + 16, 8):le_uint64()
    if tostring(held) == "0" then hi:append_text(" (nothing held)") end
    return string.format("publisher=%d %s expected_pub_seq=%s held_from=%s", pub,
        pub_nak_reasons[reason] or ("reason " .. reason), tostring(tvb(b + 8, 8):le_uint64()),
        tostring(held) == "0" and "none" or tostring(held))
end

local function dissect_replay_request(tvb, tree, hdr)
    local ok = check_fixed_body(tree, nil, hdr.count, hdr.body_len, hdr.avail, 32, "REPLAY_REQUEST")
    if not ok then return "(truncated)" end
    local b = hdr.body_start
    local id = tvb(b, 8):le_uint64()
    local from = tvb(b + 8, 8):le_uint64()
    local to = tvb(b + 16, 8):le_uint64()
    local flags = tvb(b + 24, 4):le_uint()
    tree:add_le(f.rr_request_id, tvb(b, 8))
    tree:add_le(f.rr_from, tvb(b + 8, 8))
    local ti = tree:add_le(f.rr_to, tvb(b + 16, 8))
    if tostring(to) == OFFSET_OPEN then ti:append_text(" (open: no end)") end
    local fi = tree:add_le(f.rr_flags, tvb(b + 24, 4))
    local names = flag_names(flags, REPLAY_FLAG_NAMES)
    if names ~= "" then fi:append_text(" (" .. names .. ")") end
    fi:add_le(f.rr_flags_live, tvb(b + 24, 4))
    fi:add_le(f.rr_flags_wait, tvb(b + 24, 4))
    fi:add_le(f.rr_flags_cancel, tvb(b + 24, 4))
    fi:add_le(f.rr_flags_earliest, tvb(b + 24, 4))
    tree:add_le(f.rr_reserved, tvb(b + 28, 4))
    if not (from < to) then
        ti:add_proto_expert_info(ef.bad_body, "`to` must be greater than `from`")
    end
    local info = string.format("id=%s from=%s to=%s", tostring(id), tostring(from), u64_str(to))
    if names ~= "" then info = info .. " [" .. names .. "]" end
    return info
end

local function dissect_replay_end(tvb, tree, hdr)
    local ok = check_fixed_body(tree, nil, hdr.count, hdr.body_len, hdr.avail, 32, "REPLAY_END")
    if not ok then return "(truncated)" end
    local b = hdr.body_start
    local id = tvb(b, 8):le_uint64()
    local status = tvb(b + 8, 4):le_uint()
    tree:add_le(f.re_request_id, tvb(b, 8))
    local si = tree:add_le(f.re_status, tvb(b + 8, 4))
    if not replay_statuses[status] then
        si:add_proto_expert_info(ef.bad_body, "unknown REPLAY_END status " .. status)
    end
    tree:add_le(f.re_reserved, tvb(b + 12, 4))
    tree:add_le(f.re_next, tvb(b + 16, 8))
    tree:add_le(f.re_earliest, tvb(b + 24, 8))
    return string.format("id=%s %s next=%s earliest=%s", tostring(id),
        replay_statuses[status] or ("status " .. status),
        tostring(tvb(b + 16, 8):le_uint64()), tostring(tvb(b + 24, 8):le_uint64()))
end

local function dissect_end_of_stream(tvb, tree, hdr)
    check_fixed_body(tree, nil, hdr.count, hdr.body_len, hdr.avail, 0, "END_OF_STREAM")
    return "next=" .. tostring(hdr.first_offset)
end

local function dissect_repl_session(name)
    return function(tvb, tree, hdr)
        local ok = check_fixed_body(tree, nil, hdr.count, hdr.body_len, hdr.avail, 8, name)
        local parts = {}
        if name == "REPL_ACK" then parts[#parts + 1] = "next=" .. tostring(hdr.first_offset) end
        if ok then
            tree:add_le(f.repl_session, tvb(hdr.body_start, 8))
            parts[#parts + 1] = "session=" .. string.format("%x", tvb(hdr.body_start, 8):le_uint64():tonumber())
        end
        return table.concat(parts, " ")
    end
end

local function dissect_repl_snapshot(tvb, tree, hdr)
    local b = hdr.body_start
    local want = 24 + 16 * hdr.count
    if hdr.body_len ~= want then
        tree:add_proto_expert_info(ef.bad_body, "REPL_SNAPSHOT: body must be 24 + 16 x count = " .. want .. " bytes (is " .. hdr.body_len .. ")")
    end
    if hdr.avail < 24 then
        tree:add_proto_expert_info(ef.truncated, "Truncated: REPL_SNAPSHOT body has " .. hdr.avail .. " of 24 bytes")
        return "ring_start=" .. tostring(hdr.first_offset)
    end
    tree:add_le(f.repl_session, tvb(b, 8))
    tree:add_le(f.repl_chunk, tvb(b + 8, 4))
    tree:add_le(f.repl_chunks, tvb(b + 12, 4))
    tree:add_le(f.repl_table_head, tvb(b + 16, 8))
    local chunk, chunks = tvb(b + 8, 4):le_uint(), tvb(b + 12, 4):le_uint()
    if chunks == 0 or chunk >= chunks then
        tree:add_proto_expert_info(ef.bad_body, "REPL_SNAPSHOT: chunk " .. chunk .. " of " .. chunks)
    end
    local at = b + 24
    for i = 1, hdr.count do
        if at + 16 > b + hdr.avail then break end
        local rt = tree:add(seqcast, tvb(at, 16), "Publisher " .. tvb(at, 4):le_uint())
        rt:add_le(f.repl_pub_id, tvb(at, 4))
        rt:add_le(f.repl_pub_frag, tvb(at + 4, 4))
        rt:add_le(f.repl_pub_seq, tvb(at + 8, 8))
        at = at + 16
    end
    return string.format("ring_start=%s chunk %d/%d table_head=%s publishers=%d", tostring(hdr.first_offset), chunk + 1, chunks,
        tostring(tvb(b + 16, 8):le_uint64()), hdr.count)
end

local body_dissectors = {
    [TYPE_DATA] = dissect_entries,
    [TYPE_HEARTBEAT] = dissect_heartbeat,
    [TYPE_NAK] = dissect_nak,
    [TYPE_PUB] = dissect_entries,
    [TYPE_PUB_ACK] = dissect_pub_ack,
    [TYPE_PUB_NAK] = dissect_pub_nak,
    [TYPE_REPLAY_REQUEST] = dissect_replay_request,
    [TYPE_REPLAY_END] = dissect_replay_end,
    [TYPE_END_OF_STREAM] = dissect_end_of_stream,
    [TYPE_REPL_ACK] = dissect_repl_session("REPL_ACK"),
    [TYPE_REPL_JOIN] = dissect_repl_session("REPL_JOIN"),
    [TYPE_REPL_SNAPSHOT] = dissect_repl_snapshot,
}

---------------------------------------------------------------------------------------------------
-- Main dissector

local function dissect_one(tvb, pinfo, tree)
    local caplen = tvb:len()
    local replen = tvb:reported_length_remaining()
    if caplen < 4 then return 0 end
    if tvb(0, 4):le_uint() ~= MAGIC then return 0 end

    pinfo.cols.protocol:set("SEQCAST")
    local st = tree:add(seqcast, tvb(0, math.min(caplen, replen)))

    st:add_le(f.magic, tvb(0, 4)):append_text(" ('SQCT')")
    if caplen < HEADER_LEN then
        if caplen >= 5 then st:add(f.version_major, tvb(4, 1)) end
        st:add_proto_expert_info(ef.truncated, string.format("Truncated: datagram of %d bytes is shorter than the 48-byte header", caplen))
        return caplen, string.format("seqcast [truncated: %d bytes]", caplen)
    end

    local vmaj = tvb(4, 1):uint()
    local vmin = tvb(5, 1):uint()
    local hlen = tvb(6, 2):le_uint()
    local ftype = tvb(8, 1):uint()
    local flags = tvb(10, 2):le_uint()
    local stream = tvb(12, 4):le_uint()
    local epoch = tvb(16, 4):le_uint()
    local crc = tvb(20, 4):le_uint()
    local first_offset = tvb(24, 8):le_uint64()
    local count = tvb(40, 4):le_uint()
    local body_len = tvb(44, 4):le_uint()
    local tname = type_names[ftype] or ("type " .. ftype)

    local vi = st:add(f.version_major, tvb(4, 1))
    if vmaj ~= VERSION_MAJOR then
        vi:add_proto_expert_info(ef.bad_version, "seqcast major version " .. vmaj .. " (this dissector speaks 1)")
    end
    st:add(f.version_minor, tvb(5, 1))
    local hi = st:add_le(f.header_len, tvb(6, 2))
    local ti = st:add(f.type, tvb(8, 1))
    if not type_names[ftype] then
        ti:add_proto_expert_info(ef.unknown_type, "unknown frame type " .. ftype)
    end
    st:add(f.reserved, tvb(9, 1))
    local fi = st:add_le(f.flags, tvb(10, 2))
    local fnames = flag_names(flags, HEADER_FLAG_NAMES)
    if fnames ~= "" then fi:append_text(" (" .. fnames .. ")") end
    fi:add_le(f.flags_retransmit, tvb(10, 2))
    fi:add_le(f.flags_replay, tvb(10, 2))
    fi:add_le(f.flags_end, tvb(10, 2))
    if flags >= 8 then fi:add_le(f.flags_unknown, tvb(10, 2)) end
    st:add_le(f.stream, tvb(12, 4))
    st:add_le(f.epoch, tvb(16, 4))

    -- CRC
    local ci = st:add_le(f.crc, tvb(20, 4))
    local dgram_len = hlen + body_len
    local crc_status = 2
    if seqcast.prefs.verify_crc and caplen == replen and dgram_len == caplen then
        local computed = crc32c(tvb:raw(0, caplen), 21)
        if computed then
            local cc = ci:add(f.crc_computed, tvb(20, 4), computed)
            cc:set_generated()
            if computed == crc then
                crc_status = 1
                ci:append_text(" [correct]")
            else
                crc_status = 0
                ci:append_text(string.format(" [incorrect, should be 0x%08x]", computed))
                ci:add_proto_expert_info(ef.bad_crc, string.format("Bad CRC32C: 0x%08x, computed 0x%08x", crc, computed))
            end
        end
    elseif seqcast.prefs.verify_crc then
        ci:append_text(" [unverified]")
    end
    local cs = ci:add(f.crc_status, crc_status)
    cs:set_generated()

    st:add_le(f.first_offset, tvb(24, 8))
    add_time(st, f.sender_ts, f.sender_time, tvb(32, 8))
    st:add_le(f.count, tvb(40, 4))
    local bi = st:add_le(f.body_len, tvb(44, 4))

    local info = string.format("%s stream=%d", tname, stream)
    if ftype ~= TYPE_PUB and ftype ~= TYPE_REPLAY_REQUEST then
        info = info .. string.format(" epoch=%d", epoch)
    end

    -- length checks, in wire::decode's order
    local problem
    if vmaj ~= VERSION_MAJOR then
        problem = "unsupported version"
    elseif hlen < HEADER_LEN then
        hi:add_proto_expert_info(ef.bad_header_len, "header_len " .. hlen .. " < 48")
        problem = "bad header length"
    elseif hlen > replen or body_len > replen - hlen then
        bi:add_proto_expert_info(ef.truncated, string.format(
            "Truncated: header_len %d + body_len %d > datagram length %d", hlen, body_len, replen))
        problem = "truncated"
    elseif body_len < replen - hlen then
        bi:add_proto_expert_info(ef.bad_body_len, string.format(
            "%d trailing bytes after header_len %d + body_len %d", replen - hlen - body_len, hlen, body_len))
        problem = "trailing bytes"
    end

    if hlen > HEADER_LEN and vmaj == VERSION_MAJOR then
        local ext_len = math.min(hlen, caplen) - HEADER_LEN
        if ext_len > 0 then
            local xi = st:add(f.header_ext, tvb(HEADER_LEN, ext_len))
            xi:add_proto_expert_info(ef.header_ext, string.format(
                "%d header bytes beyond 48 (version %d.%d): skipped", hlen - HEADER_LEN, vmaj, vmin))
        end
    end

    if problem == nil or problem == "truncated" or problem == "trailing bytes" then
        if hlen >= HEADER_LEN and vmaj == VERSION_MAJOR and type_names[ftype] then
            local body_start = hlen
            local avail = math.max(0, math.min(body_len, caplen - hlen))
            local hdr = {
                type = ftype, flags = flags, stream = stream, epoch = epoch, first_offset = first_offset,
                count = count, body_len = body_len, body_start = body_start, avail = avail,
            }
            local body_tree = st
            if avail > 0 then
                body_tree = st:add(f.body, tvb(body_start, avail))
                body_tree:set_text(string.format("%s body (%d bytes)", tname, body_len))
            end
            local ok, tail = pcall(body_dissectors[ftype], tvb, body_tree, hdr)
            if ok then
                info = info .. " " .. tail
            else
                body_tree:add_proto_expert_info(ef.bad_body, "dissector error: " .. tostring(tail))
                info = info .. " [malformed]"
            end
        end
    end

    if fnames ~= "" then
        info = info .. " [" .. fnames .. "]"
        if flags % 2 == 1 and ftype == TYPE_DATA then st:add_proto_expert_info(ef.retransmit) end
    end
    if problem then info = info .. " [" .. problem .. "]" end
    if crc_status == 0 then info = info .. " [bad CRC]" end
    if vmin ~= 0 then info = info .. string.format(" (v2.%d)", vmin) end

    st:append_text(string.format(", %s", info))
    return caplen, info
end

-- A UDP payload holds one seqcast datagram, or, in a capture taken on a host that sends with UDP
-- GSO (seqcast's default), a run of them that the kernel segments later: walk the run.
local function datagram_run(tvb)
    local len = tvb:len()
    local at, n = 0, 0
    while at < len do
        if len - at < HEADER_LEN or tvb(at, 4):le_uint() ~= MAGIC or tvb(at + 4, 1):uint() ~= VERSION_MAJOR then
            return nil
        end
        local hlen = tvb(at + 6, 2):le_uint()
        local dlen = hlen + tvb(at + 44, 4):le_uint()
        if hlen < HEADER_LEN or dlen > len - at then return nil end
        at = at + dlen
        n = n + 1
    end
    return n
end

function seqcast.dissector(tvb, pinfo, tree)
    local caplen = tvb:len()
    if caplen < 4 or tvb(0, 4):le_uint() ~= MAGIC then return 0 end
    pinfo.cols.protocol:set("SEQCAST")
    local n = (caplen == tvb:reported_length_remaining()) and datagram_run(tvb) or nil
    if n == nil or n == 1 then
        local used, info = dissect_one(tvb, pinfo, tree)
        pinfo.cols.info:set(info)
        return used
    end
    local at, infos = 0, {}
    while at < caplen do
        local dlen = tvb(at + 6, 2):le_uint() + tvb(at + 44, 4):le_uint()
        local _, info = dissect_one(tvb(at, dlen):tvb(), pinfo, tree)
        infos[#infos + 1] = info
        at = at + dlen
    end
    pinfo.cols.info:set(string.format("%d datagrams (GSO): %s ... %s", n, infos[1], infos[#infos]))
    return caplen
end

---------------------------------------------------------------------------------------------------
-- Heuristic: the payload is one datagram, or a GSO run of them, each with the magic, major
-- version 2, header_len >= 48, and header_len + body_len within the payload, tiling it exactly.

local function heuristic(tvb, pinfo, tree)
    local len = tvb:len()
    if len < HEADER_LEN or tvb:reported_length_remaining() ~= len then return false end
    if datagram_run(tvb) == nil then return false end
    seqcast.dissector(tvb, pinfo, tree)
    return true
end

seqcast:register_heuristic("udp", heuristic)

---------------------------------------------------------------------------------------------------
-- Decode As and the port preference

local udp_port = DissectorTable.get("udp.port")
if udp_port.add_for_decode_as then
    udp_port:add_for_decode_as(seqcast)
end

local registered_port = 0
function seqcast.prefs_changed()
    local port = seqcast.prefs.port
    if port ~= registered_port then
        if registered_port ~= 0 then udp_port:remove(registered_port, seqcast) end
        registered_port = port
        if port ~= 0 then udp_port:add(port, seqcast) end
    end
end
