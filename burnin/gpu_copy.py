"""Host<->GPU and GPU<->GPU copy bandwidth through libcuda (ctypes), every copied byte verified.

Per GPU, one at a time (they share the host's memory and links, and must be comparable), with the
calling thread pinned to the GPU's local CPUs (sysfs numa_node / local_cpulist of its PCI function):
pinned host memory (cuMemHostAlloc), host->device and device->host each alone, then both together on
two streams, timed with CUDA events, the median of `repeats`; the data that went to the GPU comes back
and is compared with what was sent, byte for byte. The link the copies ran over is read from sysfs
(current_link_speed / current_link_width) right after them.

Peers: the cuDeviceCanAccessPeer matrix; where a pair can, a peer copy (cuMemcpyPeerAsync) timed
the same way and checked bit for bit at the destination; where it cannot, the same data goes through
pinned host memory and is checked all the same (its rate is reported, not judged).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from burnin.gpu_load import CudaError, CudaStressor, Device

BLOCK = 1 << 20  # the data pattern repeats every MiB; a copy's size is a whole number of blocks
CU_MEMHOSTALLOC_PORTABLE = 1
CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704
# PCIe generation -> GT/s per lane; the theoretical rate is GT/s x width / 8 (8b/10b for Gen1-2).
PCIE_GTS = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}


@dataclass
class HostCopy:
    """One GPU's copies with host memory."""

    ordinal: int
    pci_bus_id: str
    numa_node: Optional[int] = None
    cpus: Optional[str] = None  # the GPU's local_cpulist as sysfs writes it
    pinned: bool = False  # the copies ran with the thread on those CPUs
    link_gen: Optional[int] = None
    link_width: Optional[int] = None
    h2d_bytes_per_s: Optional[float] = None
    d2h_bytes_per_s: Optional[float] = None
    both_bytes_per_s: Optional[float] = None  # H2D + D2H at once, both directions' bytes over the time
    mismatched_bytes: int = 0  # bytes that came back different from what was sent
    error: Optional[str] = None


@dataclass
class PeerCopy:
    """One ordered pair of GPUs."""

    src: int
    dst: int
    can_access: Optional[bool] = None  # cuDeviceCanAccessPeer(src -> dst)
    via: str = "peer"  # "peer" (cuMemcpyPeerAsync) or "host" (through pinned host memory)
    bytes_per_s: Optional[float] = None
    mismatched_bytes: int = 0
    error: Optional[str] = None


@dataclass
class CopyReport:
    hosts: List[HostCopy] = field(default_factory=list)
    peers: List[PeerCopy] = field(default_factory=list)


def pcie_theoretical_gbs(gen: Optional[int], width: Optional[int]) -> Optional[float]:
    """The link's theoretical rate per direction in GB/s (Gen5 x16 -> 64, Gen4 x16 -> 32)."""
    if gen not in PCIE_GTS or not width:
        return None
    return PCIE_GTS[gen] * width / 8 * (0.8 if gen <= 2 else 1.0)


def parse_cpulist(text: str) -> Set[int]:
    """'0-3,8,10-11' -> {0, 1, 2, 3, 8, 10, 11}; ValueError on anything else."""
    cpus: Set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def pattern_block(seed: int) -> bytes:
    """BLOCK bytes of high-entropy data, the same for a seed on every run (sha256 in counter mode)."""
    out = bytearray()
    n = 0
    while len(out) < BLOCK:
        out += hashlib.sha256(f"{seed}:{n}".encode()).digest()
        n += 1
    return bytes(out[:BLOCK])


class _Sysfs:
    """What sysfs says about one PCI function (root is "/sys"; tests give a tree of their own)."""

    def __init__(self, root: str, bus_id: str) -> None:
        self.dir = Path(root) / "bus" / "pci" / "devices" / bus_id.lower()

    def read(self, name: str) -> Optional[str]:
        try:
            return (self.dir / name).read_text().strip()
        except OSError:
            return None

    def numa(self) -> Tuple[Optional[int], Optional[str]]:
        node = self.read("numa_node")
        try:
            n = int(node) if node is not None else None
        except ValueError:
            n = None
        return (None if n is None or n < 0 else n), self.read("local_cpulist")

    def link(self) -> Tuple[Optional[int], Optional[int]]:
        speed, width = self.read("current_link_speed"), self.read("current_link_width")
        gen = None
        if speed:
            try:
                gts = float(speed.split()[0])
            except ValueError:
                gts = 0.0
            gen = next((g for g, v in PCIE_GTS.items() if abs(v - gts) < 0.01), None)
        try:
            return gen, int(width) if width else None
        except ValueError:
            return gen, None


class CopyBench:
    """The copy measurements over an open CudaStressor's libcuda."""

    def __init__(
        self, stressor: CudaStressor, size_mib: int = 256, repeats: int = 5, sysfs: str = "/sys"
    ) -> None:
        self.s, self.lib = stressor, stressor._lib
        self.size = max(1, size_mib) * BLOCK
        self.repeats = max(1, repeats)
        self.sysfs = sysfs
        self._data = pattern_block(0x5EED)

    def run(self, devices: List[Device], stop: Optional[Any] = None) -> CopyReport:
        report = CopyReport()
        for d in devices:
            if stop is not None and stop.is_set():
                break
            report.hosts.append(self.host(d))
        if len(devices) > 1 and not (stop is not None and stop.is_set()):
            report.peers = self.peers(devices)
        return report

    # -- one GPU and the host -------------------------------------------------------------------
    def host(self, device: Device) -> HostCopy:
        res = HostCopy(device.ordinal, device.pci_bus_id)
        sysfs = _Sysfs(self.sysfs, device.pci_bus_id)
        res.numa_node, res.cpus = sysfs.numa()
        saved = _pin(res)
        try:
            with _Context(self.s, device.ordinal) as ctx:
                self._host_copies(ctx, res)
            res.link_gen, res.link_width = sysfs.link()
        except CudaError as exc:
            res.error = str(exc)
        finally:
            if saved is not None:
                os.sched_setaffinity(0, saved)
        return res

    def _host_copies(self, ctx: "_Context", res: HostCopy) -> None:
        size = self.size
        src, back = ctx.host_alloc(size), ctx.host_alloc(size)
        dev_a, dev_b = ctx.dev_alloc(size), ctx.dev_alloc(size)
        s1, s2 = ctx.stream(), ctx.stream()
        self._fill(src, size)
        h2d = [ctx.timed(lambda: ctx.h2d(dev_a, src, size, s1)) for _ in range(self.repeats)]
        d2h = [ctx.timed(lambda: ctx.d2h(back, dev_a, size, s1)) for _ in range(self.repeats)]
        res.mismatched_bytes += self._compare(back, size)  # what went to the GPU came back unchanged
        ctx.h2d(dev_b, src, size, s1)

        def both() -> None:
            ctx.h2d(dev_a, src, size, s1)
            ctx.d2h(back, dev_b, size, s2)

        pair = [ctx.timed(both) for _ in range(self.repeats)]
        res.mismatched_bytes += self._compare(back, size)
        res.h2d_bytes_per_s = _rate(size, h2d)
        res.d2h_bytes_per_s = _rate(size, d2h)
        res.both_bytes_per_s = _rate(2 * size, pair)

    # -- GPU pairs --------------------------------------------------------------------------------
    def peers(self, devices: List[Device]) -> List[PeerCopy]:
        """Every ordered pair. Each GPU holds a source (the pattern) and a destination buffer; the host
        buffers are shared (portable pinned memory), so memory use does not grow with the pairs."""
        out: List[PeerCopy] = []
        ctxs: Dict[int, _Context] = {}
        try:
            for d in devices:
                ctxs[d.ordinal] = _Context(self.s, d.ordinal).__enter__()
            first = ctxs[devices[0].ordinal]
            first.current()
            host, back = first.host_alloc(self.size), first.host_alloc(self.size)
            self._fill(host, self.size)
            bufs: Dict[int, Tuple[int, int]] = {}
            for n, c in ctxs.items():
                c.current()
                bufs[n] = (c.dev_alloc(self.size), c.dev_alloc(self.size))
                c.h2d(bufs[n][0], host, self.size, None)
            for a in devices:
                for b in devices:
                    if a.ordinal != b.ordinal:
                        ca, cb = ctxs[a.ordinal], ctxs[b.ordinal]
                        out.append(self._pair(ca, cb, bufs[a.ordinal][0], bufs[b.ordinal][1], back))
        except CudaError as exc:
            out.append(PeerCopy(-1, -1, error=str(exc)))
        finally:
            for c in reversed(list(ctxs.values())):
                c.__exit__(None, None, None)
        return out

    def _pair(self, a: "_Context", b: "_Context", src: int, dst: int, back: int) -> PeerCopy:
        res = PeerCopy(a.ordinal, b.ordinal)
        size = self.size
        try:
            can = ctypes.c_int()
            self.s._check(
                "cuDeviceCanAccessPeer", self.lib.cuDeviceCanAccessPeer(ctypes.byref(can), a.dev, b.dev)
            )
            res.can_access = bool(can.value)
            b.current()
            self.s._check("cuMemsetD32", self.lib.cuMemsetD32_v2(dst, 0, ctypes.c_size_t(size // 4)))
            # the copy runs in the other context: nothing orders it after this memset but the wait
            self.s._check("cuCtxSynchronize", self.lib.cuCtxSynchronize())
            if res.can_access:
                a.enable_peer(b)
                stream = a.stream_once()
                times = [a.timed(lambda: a.peer_copy(dst, b, src, size, stream)) for _ in range(self.repeats)]
            else:
                res.via = "host"

                def through_host() -> None:
                    a.current()
                    a.d2h(back, src, size, None)
                    b.current()
                    b.h2d(dst, back, size, None)

                times = [a.timed(through_host) for _ in range(self.repeats)]
            res.bytes_per_s = _rate(size, times)
            b.current()
            ctypes.memset(back, 0, size)
            b.d2h(back, dst, size, None)
            res.mismatched_bytes = self._compare(back, size)
        except CudaError as exc:
            res.error = str(exc)
        return res

    # -- data -----------------------------------------------------------------------------------
    def _fill(self, host: int, size: int) -> None:
        for off in range(0, size, BLOCK):
            ctypes.memmove(host + off, self._data, BLOCK)

    def _compare(self, host: int, size: int) -> int:
        bad = 0
        for off in range(0, size, BLOCK):
            got = ctypes.string_at(host + off, BLOCK)
            if got != self._data:
                bad += sum(1 for i in range(BLOCK) if got[i] != self._data[i])
        return bad


def _rate(size: int, seconds: List[float]) -> Optional[float]:
    good = [s for s in seconds if s > 0]
    return size / statistics.median(good) if good else None


def _pin(res: HostCopy) -> Optional[Set[int]]:
    """Pin the calling thread to the GPU's local CPUs (those of them it may use); the previous set,
    or None when nothing was changed (no NUMA information, or no overlap)."""
    if not res.cpus or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        want = parse_cpulist(res.cpus)
    except ValueError:
        return None
    saved = os.sched_getaffinity(0)
    use = want & saved
    if not use:
        return None
    os.sched_setaffinity(0, use)
    res.pinned = True
    return saved


class _Context:
    """One GPU's context in the calling thread, and what was allocated in it (freed on exit)."""

    def __init__(self, stressor: CudaStressor, ordinal: int) -> None:
        self.s, self.lib, self.ordinal = stressor, stressor._lib, ordinal
        self.dev = ctypes.c_int()
        self.ctx = ctypes.c_void_p()
        self._host: List[int] = []
        self._dev: List[int] = []
        self._streams: List[ctypes.c_void_p] = []
        self._events: List[ctypes.c_void_p] = []
        self._peers: Set[int] = set()

    def __enter__(self) -> "_Context":
        self.s._check("cuDeviceGet", self.lib.cuDeviceGet(ctypes.byref(self.dev), self.ordinal))
        self.s._check("cuCtxCreate", self.lib.cuCtxCreate_v2(ctypes.byref(self.ctx), 0, self.dev))
        self.start, self.end = self.event(), self.event()
        return self

    def __exit__(self, *_: Any) -> None:
        if not self.ctx.value:
            return
        self.current()
        for p in self._dev:
            self.lib.cuMemFree_v2(p)
        for h in self._host:
            self.lib.cuMemFreeHost(h)
        for st in self._streams:
            self.lib.cuStreamDestroy_v2(st)
        for ev in self._events:
            self.lib.cuEventDestroy_v2(ev)
        self.lib.cuCtxDestroy_v2(self.ctx)
        self.ctx = ctypes.c_void_p()

    def current(self) -> None:
        self.s._check("cuCtxSetCurrent", self.lib.cuCtxSetCurrent(self.ctx))

    def event(self) -> ctypes.c_void_p:
        ev = ctypes.c_void_p()
        self.s._check("cuEventCreate", self.lib.cuEventCreate(ctypes.byref(ev), 0))
        self._events.append(ev)
        return ev

    def stream(self) -> ctypes.c_void_p:
        st = ctypes.c_void_p()
        self.s._check("cuStreamCreate", self.lib.cuStreamCreate(ctypes.byref(st), 0))
        self._streams.append(st)
        return st

    def stream_once(self) -> ctypes.c_void_p:
        """This context's copy stream, created on first use."""
        if not self._streams:
            self.stream()
        return self._streams[0]

    def host_alloc(self, size: int) -> int:
        p = ctypes.c_void_p()
        flags = CU_MEMHOSTALLOC_PORTABLE  # usable from every context (the peer path crosses them)
        self.s._check(
            "cuMemHostAlloc", self.lib.cuMemHostAlloc(ctypes.byref(p), ctypes.c_size_t(size), flags)
        )
        self._host.append(p.value or 0)
        return p.value or 0

    def dev_alloc(self, size: int) -> int:
        p = ctypes.c_uint64()
        self.s._check("cuMemAlloc", self.lib.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(size)))
        self._dev.append(p.value)
        return p.value

    def h2d(self, dst: int, src: int, size: int, stream: Any) -> None:
        """Async on `stream`; on None (the null stream) it is waited for."""
        self.s._check(
            "cuMemcpyHtoDAsync", self.lib.cuMemcpyHtoDAsync_v2(dst, src, ctypes.c_size_t(size), stream)
        )
        if stream is None:
            self.s._check("cuCtxSynchronize", self.lib.cuCtxSynchronize())

    def d2h(self, dst: int, src: int, size: int, stream: Any) -> None:
        self.s._check(
            "cuMemcpyDtoHAsync", self.lib.cuMemcpyDtoHAsync_v2(dst, src, ctypes.c_size_t(size), stream)
        )
        if stream is None:
            self.s._check("cuCtxSynchronize", self.lib.cuCtxSynchronize())

    def peer_copy(self, dst: int, dst_ctx: "_Context", src: int, size: int, stream: Any) -> None:
        code = self.lib.cuMemcpyPeerAsync(dst, dst_ctx.ctx, src, self.ctx, ctypes.c_size_t(size), stream)
        self.s._check("cuMemcpyPeerAsync", code)

    def enable_peer(self, other: "_Context") -> None:
        if other.ordinal in self._peers:
            return
        self.current()
        code = self.lib.cuCtxEnablePeerAccess(other.ctx, 0)
        if code not in (0, CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED):
            self.s._check("cuCtxEnablePeerAccess", code)
        self._peers.add(other.ordinal)

    def timed(self, work: Callable[[], None]) -> float:
        """Seconds between events recorded on the null stream around `work` (which waits for the
        blocking streams' copies: the legacy default stream's semantics)."""
        self.current()
        self.s._check("cuEventRecord", self.lib.cuEventRecord(self.start, None))
        work()
        self.current()
        self.s._check("cuEventRecord", self.lib.cuEventRecord(self.end, None))
        self.s._check("cuEventSynchronize", self.lib.cuEventSynchronize(self.end))
        ms = ctypes.c_float()
        self.s._check(
            "cuEventElapsedTime", self.lib.cuEventElapsedTime(ctypes.byref(ms), self.start, self.end)
        )
        return ms.value / 1000.0
