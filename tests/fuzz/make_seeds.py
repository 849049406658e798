#!/usr/bin/env python3
"""Writes the seed corpus, tests/fuzz/corpus/<target>/, from the input
layouts the targets read (fuzz_input.h's reader: little-endian integers,
"scaled" numbers as shift byte + 16-bit mantissa). The seeds are committed;
this script says what each one is and rebuilds them if a layout changes:

    python3 tests/fuzz/make_seeds.py

Each seed starts the fuzzer on a path that random bytes take long to find:
a well-formed virtio-pci capability list, a queue doing real work, QEMU's
e820 map, a persona's stats buffer."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)


def scaled(v):
    """take_scaled: the smallest shift whose 16-bit mantissa holds v."""
    top = v > 1 << 63
    if top:
        v = (1 << 64) - 1 - v
    shift = 0
    while v >> shift > 0xFFFF or (v >> shift << shift) != v:
        shift += 1
        assert shift < 64, hex(v)
    return u8(shift | (0x80 if top else 0)) + u16(v >> shift)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- parse: mode byte (0 words, 1 numbers, 2 cmdline_find, 3 edge numbers), then text ---
write("parse", "words", b"\x00  alloc   3\t\t0x10  ")
write("parse", "words_too_many", b"\x00" + b"1 2 3 4 5 6 7 8 9")
write("parse", "size_hex_suffix", b"\x01" + b"0x10M")
write("parse", "u64_max", b"\x01" + b"18446744073709551615")
# out_len, NULL-out flag, key, NUL, command line
# edges: 2^64 / 1024 - 1 in decimal with the K that just fits (sel 0x21, delta -1)
write("parse", "edge_k", b"\x03" + u8(0x21) + u8(0xFF))
write("parse", "cmdline", b"\x02" + u8(16) + u8(0) + b"crash\0quiet crashes=1 mem=64M  log=debug\tcrash seed=0x1234")

# --- mmio_cmdline: the word itself ---
write("mmio_cmdline", "qemu_microvm", b"512@0xfeb00e00:12")
write("mmio_cmdline", "size_suffix", b"4K@0xd0000000:5")
write("mmio_cmdline", "top", b"0x1000@0xfffffffffffff000:255")


# --- stats: see fuzz_plan() in fuzz_stats.c ---
def stats(persona, flags, dup, extra=None, tags=None, mask=0, over=(), vals=None, cap=4096, seq=1, fmt_len=300,
          rest=b""):
    b = u8(persona) + u8(flags)
    if flags & 8:
        b += u8(len(tags)) + b"".join(u8(t) for t in tags)
    b += u8(dup)
    if flags & 0x40:
        trunc, pad, ff, first_len, first_byte = extra
        b += u16(trunc) + u16(pad) + u8(ff) + u16(first_len) + u8(first_byte)
    if flags & 0x80:
        b += u32(mask)
    vals = vals or [1000 + t for t in range(16)]
    over = list(over)
    for t in range(16):
        b += scaled(vals[t])
        if mask >> t & 1:
            b += scaled(over.pop(0))
    return b + u16(cap) + u64(seq) + u16(fmt_len) + rest


# ballast's own answer, 256 MiB free; the tail is a tag name for the console
write("stats", "ballast", stats(0, 0, 0x80, vals=[0, 0, 0, 4321, 256 << 20, 512 << 20, 260 << 20, 4 << 20] +
                                [0] * 8, rest=b"free-memory"))
# windows' priming buffer (70 bytes of 0xff), as the first answer
write("stats", "windows_first", stats(3, 1, 0x80, rest=b"stat-swap-in"))
# linux-6.12 reversed, unknown tags, duplicate of tag 4, truncated, padded,
# two trailing 0xff entries, tag 5 forced; into a 100-byte buffer
write("stats", "faults", stats(2, 0x02 | 0x04 | 0x40 | 0x80, 4, extra=(3, 20, 2, 0, 0), mask=1 << 5,
                               over=[(1 << 64) - 1], cap=100, rest=b"7"))
# an own tag list with unknown tags, filled with 0xff
write("stats", "own_tags_ff", stats(4, 0x08 | 0x30, 0x80, tags=[9, 10, 16, 23, 0], cap=64))


# --- pci_caps: 256 bytes of config space, a flags byte, six BARs, an index ---
def cfg_space(caps, status_cap=True):
    c = bytearray(256)
    c[0:4] = bytes([0xF4, 0x1A, 0x45, 0x10])  # virtio, modern balloon
    c[6] = 0x10 if status_cap else 0
    c[0x34] = caps[0][0] if caps else 0
    for i, (off, data) in enumerate(caps):
        nxt = caps[i + 1][0] if i + 1 < len(caps) else 0
        c[off:off + len(data)] = data
        c[off + 1] = nxt
    return bytes(c)


def vcap(cfg_type, bar, offset, length, mult=None):
    cap_len = 16 if mult is None else 20
    b = bytes([0x09, 0, cap_len, cfg_type, bar, 0, 0, 0]) + u32(offset) + u32(length)
    return b + (u32(mult) if mult is not None else b"")


def msix(entries, bir, offset):
    return bytes([0x11, 0]) + u16(entries - 1) + u32(offset | bir) + u32((offset + 0x800) | bir)


def bars(spec):
    """spec: per BAR, None (absent), ("io", log2), log2 of a memory BAR, or
    ("reads", lo, mask_lo, hi, mask_hi) of a 64-bit memory BAR to decode."""
    out = b""
    for s in spec:
        if s is None:
            out += u8(0x20)
        elif isinstance(s, tuple) and s[0] == "reads":
            out += u8(0x70) + b"".join(u32(v) for v in s[1:])
        elif isinstance(s, tuple):
            out += u8(0x80 | s[1])
        else:
            out += u8(s)
    return out


# QEMU's virtio-balloon-pci, modern: the four caps in BAR 4, MSI-X in BAR 1
qemu = [(0x40, msix(3, 1, 0)), (0x50, vcap(1, 4, 0, 0x1000)), (0x80, vcap(2, 4, 0x3000, 0x1000, 4)),
        (0x60, vcap(3, 4, 0x1000, 0x1000)), (0x70, vcap(4, 4, 0x2000, 0x1000))]
write("pci_caps", "qemu_modern", cfg_space(qemu) + u8(0) + bars([None, 12, None, None, 14, None]) + u16(1))
# the same with BAR 4 as QEMU answers its sizing: 64-bit prefetchable, 16 KiB at 8 GiB
bar4 = ("reads", 0x0000000C, 0xFFFFC00C, 0x2, 0xFFFFFFFF)
write("pci_caps", "qemu_modern_sized", cfg_space(qemu) + u8(0) + bars([None, 12, None, None, bar4, None]) + u16(1))
# transitional: I/O BAR 0, the notify cap too short first, then a good one
trans = [(0x98, vcap(2, 4, 0x3000, 0x1000)), (0x84, vcap(1, 4, 0, 0x1000)), (0x70, vcap(3, 4, 0x1000, 0x1000)),
         (0x58, vcap(2, 4, 0x3000, 0x1000, 4))]
write("pci_caps", "short_notify", cfg_space(trans) + u8(0) + bars([("io", 6), None, None, None, 14, None]) + u16(0))
# a list that loops back to its head
loop = [(0x40, vcap(1, 0, 0, 0x38)), (0x50, vcap(3, 0, 0x40, 1))]
c = bytearray(cfg_space(loop))
c[0x51] = 0x40
write("pci_caps", "loop", bytes(c) + u8(0) + bars([12] + [None] * 5) + u16(7))

# --- virtqueue: config byte (size 2^(b%9), 0x10 event index), then ops ---
ADD, COMPLETE, LIE, JUMP, SCRIBBLE, GET, KICK = 0, 2, 3, 4, 5, 6, 7


def add(n_out, n_in, lens=None):
    b = u8(ADD) + u8(n_out | n_in << 2)
    for k in range(n_out + n_in):
        ln = lens[k] if lens else 64 * (k + 1)
        b += scaled(0x100000 + 0x1000 * k)
        b += u8(1) + u16(0xFFFFFFFF - ln) if ln > 0xFFFF else u8(0) + u16(ln)
    return b


# event index on, 8 entries: buffers added, kicked, completed in another
# order (all and part of the bytes), collected, kicked again
honest = u8(3 | 0x10) + add(1, 1) + add(2, 0) + add(0, 3) + u8(KICK) + u8(COMPLETE) + u8(1) + u8(0xFF)
honest += u8(COMPLETE) + u8(0) + u8(0x80) + u8(GET) + u8(GET) + add(1, 2) + u8(KICK) + u8(COMPLETE) + u8(1) + u8(0)
honest += u8(GET) + u8(GET) + u8(GET) + u8(KICK)
write("virtqueue", "honest", honest)
# a device that lies: an id past the ring, then (broken) a true completion
hostile = u8(4) + add(1, 1) + add(1, 0) + u8(LIE) + u8(1) + scaled(0x30000) + u8(0) + u8(GET)
hostile += u8(COMPLETE) + u8(0) + u8(0xFF) + u8(GET) + add(1, 0)
write("virtqueue", "hostile", hostile)
# 256 entries, no event index: fill it, scribble descriptors, jump the index
big = u8(8) + b"".join(add(1, 1, [16, 0xFFFFFFFF]) for _ in range(20))
big += u8(SCRIBBLE) + u8(0) + u8(3) + u64(0xDEAD) + u32(7) + u16(0xFFFF) + u16(0xFFFF)
big += u8(COMPLETE) + u8(5) + u8(0xFF) + u8(GET) + u8(JUMP) + u8(1) + u16(0x8000) + u8(GET)
write("virtqueue", "big_scribble", big)


# --- virtqueue_packed: config byte (0x01 event index), size u16 (1 + v %
# 300), then ops (byte % 7): 0 add, 2 complete, 4 lie, 5 get, 6 kick ---
PADD, PCOMPLETE, PLIE, PGET, PKICK = 0, 2, 4, 5, 6


def padd(n_out, n_in):
    b = u8(PADD) + u8(n_out | n_in << 2)
    for k in range(n_out + n_in):
        b += scaled(0x100000 + 0x1000 * k) + u8(0) + u16(64 * (k + 1))
    return b


# event index on, 5 entries (not a power of two): chains that wrap the
# ring, completed out of order, collected, the device naming a position
ph = u8(1) + u16(4) + padd(1, 1) + padd(2, 0) + u8(PKICK) + u8(1) + u8(0) + u8(PCOMPLETE) + u8(1) + u8(0xFF)
ph += u8(PCOMPLETE) + u8(0) + u8(0x80) + u8(PGET) + u8(PGET) + padd(1, 2) + padd(1, 0) + u8(PKICK) + u8(0)
ph += u8(PCOMPLETE) + u8(0) + u8(0xFF) + u8(PCOMPLETE) + u8(0) + u8(0xFF) + u8(PGET) + u8(PGET) + padd(0, 2)
ph += u8(PKICK) + u8(1) + u8(1)
write("virtqueue_packed", "honest_wrap", ph)
# no event index, 128 entries: a used descriptor with an id never given
pl = u8(0) + u16(127) + padd(1, 1) + u8(PLIE) + u8(1 | 2) + u16(77) + u8(0) + u8(PGET) + padd(1, 0)
write("virtqueue_packed", "hostile_id", pl)


# --- virtio_core: shape (0x01 modern, 0x02 a must_accept mask follows),
# offered u64, [must_accept u64], reset reads, status, config size; then
# steps: byte % 4 == 0 negotiates (wanted u64, required u64, packed
# allowed byte), anything else is a config access (offset form, offset,
# generation form, [moves], read or write, [value]) ---
V1, PACKED, ACCESS_PLATFORM, EVENT_IDX = 1 << 32, 1 << 34, 1 << 33, 1 << 29
BALLOON_STATS = 1 << 1


def negotiate(wanted, required=0, packed=1):
    return u8(0) + u64(wanted) + u64(required) + u8(packed)


def cfg_read(off, moves=None):
    return u8(1) + u8(0) + u8(off) + (u8(1) + u8(moves) if moves is not None else u8(0)) + u8(0)


# QEMU's modern balloon: version 1, packed, event index offered; the
# driver wants stats; negotiated with packed allowed then refused
write("virtio_core", "modern_negotiate", u8(1) + u64(V1 | PACKED | EVENT_IDX | BALLOON_STATS) + u8(2) + u8(0) + u8(8)
      + negotiate(BALLOON_STATS, BALLOON_STATS) + cfg_read(4) + negotiate(BALLOON_STATS, packed=0))
# a device that insists on ACCESS_PLATFORM (it refuses FEATURES_OK without it)
write("virtio_core", "access_platform_refused", u8(3) + u64(V1 | ACCESS_PLATFORM) + u64(ACCESS_PLATFORM) + u8(0)
      + u8(0) + u8(8) + negotiate(0))
# a legacy device whose config generation moves on every read
write("virtio_core", "config_moving", u8(0) + u64(BALLOON_STATS) + u8(0) + u8(0) + u8(8) + cfg_read(0, 1)
      + cfg_read(4, 0xFF) + negotiate(BALLOON_STATS))


# --- boot_info: 0 = disjoint map (then overlapping-mode seeds use 1) ---
U, BR, K, R, AR, AN, IO = range(7)  # take_type: 1 + byte % 7


def disjoint(cursor, ranges, carves, shuffle=b""):
    b = u8(0) + scaled(cursor) + u16(len(ranges))
    for gap, size, t in ranges:
        b += (u8(1) + scaled(gap) if gap else u8(0)) + scaled(size) + u8(t)
    b += shuffle.ljust(max(len(ranges) - 1, 0), b"\x00")
    b += u8(len(carves))
    for base, size, t in carves:
        b += scaled(base) + scaled(size) + u8(t)
    return b


# QEMU pc, 128 MiB, PVH: low RAM, the EBDA, the BIOS, RAM, the top; the
# kernel image carved out at 1 MiB
pc = [(0, 0x9FC00, U), (0, 0x400, R), (0x50000, 0x10000, R), (0, 0x7EE0000, U), (0, 0x20000, R),
      (0xF7FC0000, 0x40000, R)]
write("boot_info", "qemu_pc_pvh", disjoint(0, pc, [(0x100000, 0x200000, K)], shuffle=bytes([3, 1, 4, 1, 5])))
# a byte-granular low page in pieces, a range ending at the top of the
# address space (the gap counts down from it)
write("boot_info", "pieces_top", disjoint(0, [(0, 0x800, U), (0, 0x800, U), (0, 0x3000, BR),
                                              ((1 << 64) - 1 - 0xFFFF, 0xC000, IO)], [(0x800, 0x1000, K)]))
# 260 one-page ranges of alternating type: the table fills, carves then lose pieces
full = [(0x1000 if i % 3 == 0 else 0, 0x1000, (U, K, R)[i % 3]) for i in range(260)]
write("boot_info", "full_table", disjoint(0, full, [(0x3800, 0x800, AN), (0x10000, 0x30000, BR)]))
write("boot_info", "overlapping", u8(1) + u16(4) + scaled(0) + scaled(0x10000) + u8(U) + scaled(0x8000) +
      scaled(0x10000) + u8(R) + scaled(0) + scaled(0x1000) + u8(K) + scaled(1 << 63) + scaled(1 << 63) + u8(IO) +
      u8(2) + scaled(0x4000) + scaled(0x8000) + u8(K) + scaled(0) + scaled((1 << 64) - 1) + u8(AR))
