"""The GPU stressor's kernels, as PTX text the CUDA driver JIT-compiles for whatever card it finds.

No CUDA toolkit on the host: the driver's own JIT turns this PTX into machine code. The PTX targets
sm_52 with ISA 7.0 so every driver since R440 accepts it and it runs on Ada (sm_89), Hopper (sm_90)
and Blackwell (sm_100/sm_120) alike. Checked by `ptxas` in the tests when it is installed.

Kernels (all deterministic; results are checked by the host, see burnin.gpu_load):

fma_burn(out: u64, iters: u32)
    Each thread runs 8 independent FP32 chains x := fma(x, -1, 10) (8 chains x 8 unrolled steps = 64 FMAs
    per loop trip). The map is its own inverse up to rounding, so values stay in [1, 9] and do not
    contract to a fixed point: a value corrupted mid-run stays corrupted to the end. Chain k of thread g
    starts at k + 1 + (g mod 1024) / 1024, so out[g] must equal out[g mod 1024] bit for bit, on every
    launch, on every correct GPU (fma.rn is IEEE-exact); and the host checks every word against the
    closed form too (fma_closed_form): a chain ends at its start value after an even number of steps.
mem_write(buf: u64, n_vec: u64, seed: u32)
    word i := pattern(i, seed) for i < 4 * n_vec, in 128-bit stores (st.global.v4.u32), MEM_UNROLL
    vectors per thread per trip. n_vec is a whole number of trips of the whole grid (the host sizes it).
mem_check(buf: u64, n_vec: u64, seed: u32, errors: u64)
    the same walk with 128-bit loads (ld.global.v4.u32, MEM_UNROLL in flight before the first compare);
    counts words where word i != pattern(i, seed) per thread, then adds the count into *errors (u64, one
    red.global.add per thread that found any: never wraps).

pattern(i, seed) = (lo32(i) * 0x9E3779B1) xor hi32(i) xor seed: distinct per word (odd multiplier,
a bijection on 32 bits), so address-line faults show up as well as stuck bits; the host alternates the
seed with its complement so every bit is written both ways, and reads back a few windows of each pass
to check them against pattern() itself (a mem_check that counts nothing cannot pass a pass alone).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

FMA_CHAINS = 8  # independent accumulators per thread (instruction-level parallelism)
FMA_UNROLL = 8  # steps per chain per loop trip
FMA_PER_TRIP = FMA_CHAINS * FMA_UNROLL
FMA_PERIOD = 1024  # out[g] == out[g % FMA_PERIOD]

_HEADER = """.version 7.0
.target sm_52
.address_size 64
"""


def _fma_kernel() -> str:
    init = []
    for k in range(FMA_CHAINS):
        # f_k = (g mod 1024) / 1024 + (k + 1): exact in FP32.
        init.append(f"\tadd.rn.f32 %f{k}, %f20, 0f{_f32_hex(k + 1.0)};")
    steps = []
    for _ in range(FMA_UNROLL):
        for k in range(FMA_CHAINS):
            steps.append(f"\tfma.rn.f32 %f{k}, %f{k}, %f21, %f22;")
    total = ["\tadd.rn.f32 %f23, %f0, %f1;"]
    for k in range(2, FMA_CHAINS):
        total.append(f"\tadd.rn.f32 %f23, %f23, %f{k};")
    return "\n".join(
        [
            ".visible .entry fma_burn(",
            "\t.param .u64 p_out,",
            "\t.param .u32 p_iters",
            ")",
            "{",
            "\t.reg .pred %p<2>;",
            "\t.reg .b32 %r<8>;",
            "\t.reg .f32 %f<24>;",
            "\t.reg .b64 %rd<4>;",
            "",
            "\tld.param.u64 %rd0, [p_out];",
            "\tld.param.u32 %r0, [p_iters];",
            "\tcvta.to.global.u64 %rd0, %rd0;",
            "\tmov.u32 %r1, %ctaid.x;",
            "\tmov.u32 %r2, %ntid.x;",
            "\tmov.u32 %r3, %tid.x;",
            "\tmad.lo.u32 %r4, %r1, %r2, %r3;",  # g, the global thread index
            f"\tand.b32 %r5, %r4, {FMA_PERIOD - 1};",
            "\tcvt.rn.f32.u32 %f20, %r5;",
            f"\tmul.rn.f32 %f20, %f20, 0f{_f32_hex(1.0 / FMA_PERIOD)};",
            *init,
            f"\tmov.f32 %f21, 0f{_f32_hex(-1.0)};",
            f"\tmov.f32 %f22, 0f{_f32_hex(10.0)};",
            "\tsetp.eq.u32 %p0, %r0, 0;",
            "\t@%p0 bra FMA_DONE;",
            "FMA_LOOP:",
            *steps,
            "\tsub.u32 %r0, %r0, 1;",
            "\tsetp.ne.u32 %p0, %r0, 0;",
            "\t@%p0 bra FMA_LOOP;",
            "FMA_DONE:",
            *total,
            "\tmul.wide.u32 %rd1, %r4, 4;",
            "\tadd.u64 %rd2, %rd0, %rd1;",
            "\tst.global.f32 [%rd2], %f23;",
            "\tret;",
            "}",
        ]
    )


MEM_UNROLL = 4  # 128-bit vectors each thread has in flight per loop trip
MEM_VEC_BYTES = 16  # one ld/st.global.v4.u32
_GOLDEN = 0x9E3779B1  # the pattern's odd multiplier


def _mem_kernel(check: bool) -> str:
    """mem_write / mem_check over n_vec 16-byte vectors. Thread t handles vectors t + j*S (j < MEM_UNROLL,
    S = the grid's thread count) per trip, then moves on by MEM_UNROLL*S: the host sizes n_vec to a
    whole number of trips of the whole grid, so no thread tests a bound inside the loop and every
    trip's MEM_UNROLL loads are issued before the first compare. Word w = 4v + l holds pattern(w, seed);
    lo32(4v + l) = lo32(4v) + l, so lane l's value is (lo32(4v) * K + l * K) xor hi32(4v) xor seed."""
    name, tag = ("mem_check", "C") if check else ("mem_write", "W")
    lines = [
        f".visible .entry {name}(",
        "\t.param .u64 p_buf,",
        "\t.param .u64 p_n,",
        "\t.param .u32 p_seed" + (",\n\t.param .u64 p_errors" if check else ""),
        ")",
        "{",
        "\t.reg .pred %p<4>;",
        "\t.reg .b32 %r<40>;",
        "\t.reg .b64 %rd<24>;",
        "",
        "\tld.param.u64 %rd0, [p_buf];",
        "\tcvta.to.global.u64 %rd0, %rd0;",
        "\tld.param.u64 %rd1, [p_n];",
        "\tld.param.u32 %r0, [p_seed];",
        "\tmov.u32 %r1, %ctaid.x;",
        "\tmov.u32 %r2, %ntid.x;",
        "\tmov.u32 %r3, %tid.x;",
        "\tmul.wide.u32 %rd3, %r1, %r2;",
        "\tcvt.u64.u32 %rd5, %r3;",
        "\tadd.u64 %rd3, %rd3, %rd5;",  # t, the first vector of this thread
        "\tmov.u32 %r4, %nctaid.x;",
        "\tmul.wide.u32 %rd4, %r4, %r2;",  # S, the grid's thread count
        f"\tmul.lo.u64 %rd8, %rd4, {MEM_UNROLL};",  # one trip of the whole grid
        "\tmov.u64 %rd9, 0;",  # this thread's mismatch count
        "\tsetp.ge.u64 %p0, %rd3, %rd1;",
        f"\t@%p0 bra {tag}_DONE;",
        f"{tag}_LOOP:",
        "\tmov.u64 %rd10, %rd3;",
    ]
    for j in range(1, MEM_UNROLL):
        lines.append(f"\tadd.u64 %rd{10 + j}, %rd{9 + j}, %rd4;")
    for j in range(MEM_UNROLL):
        lines.append(f"\tshl.b64 %rd{14 + j}, %rd{10 + j}, 4;")
        lines.append(f"\tadd.u64 %rd{14 + j}, %rd0, %rd{14 + j};")
    if check:
        for j in range(MEM_UNROLL):
            regs = ", ".join(f"%r{16 + 4 * j + lane}" for lane in range(4))
            lines.append(f"\tld.global.v4.u32 {{{regs}}}, [%rd{14 + j}];")
    for j in range(MEM_UNROLL):
        lines += [
            f"\tshl.b64 %rd5, %rd{10 + j}, 2;",
            "\tcvt.u32.u64 %r5, %rd5;",
            "\tshr.u64 %rd6, %rd5, 32;",
            "\tcvt.u32.u64 %r6, %rd6;",
            f"\tmul.lo.u32 %r7, %r5, 0x{_GOLDEN:08X};",
            "\txor.b32 %r6, %r6, %r0;",
            "\txor.b32 %r8, %r7, %r6;",
        ]
        for lane in range(1, 4):
            lines.append(f"\tadd.u32 %r12, %r7, 0x{(lane * _GOLDEN) & 0xFFFFFFFF:08X};")
            lines.append(f"\txor.b32 %r{8 + lane}, %r12, %r6;")
        if check:
            for lane in range(4):
                lines.append(f"\tsetp.ne.u32 %p1, %r{16 + 4 * j + lane}, %r{8 + lane};")
                lines.append("\tselp.u64 %rd7, 1, 0, %p1;")
                lines.append("\tadd.u64 %rd9, %rd9, %rd7;")
        else:
            lines.append(f"\tst.global.v4.u32 [%rd{14 + j}], {{%r8, %r9, %r10, %r11}};")
    lines += [
        "\tadd.u64 %rd3, %rd3, %rd8;",
        "\tsetp.lt.u64 %p0, %rd3, %rd1;",
        f"\t@%p0 bra {tag}_LOOP;",
        f"{tag}_DONE:",
    ]
    if check:
        lines += [
            "\tsetp.eq.u64 %p2, %rd9, 0;",
            f"\t@%p2 bra {tag}_END;",
            "\tld.param.u64 %rd2, [p_errors];",
            "\tcvta.to.global.u64 %rd2, %rd2;",
            "\tred.global.add.u64 [%rd2], %rd9;",
            f"{tag}_END:",
        ]
    lines += ["\tret;", "}"]
    return "\n".join(lines)


_MEM_WRITE = _mem_kernel(check=False)
_MEM_CHECK = _mem_kernel(check=True)


def _f32_hex(value: float) -> str:
    """PTX's exact FP32 literal (0fXXXXXXXX)."""
    import struct

    return "{:08X}".format(struct.unpack("<I", struct.pack("<f", value))[0])


def _f32(value: float) -> float:
    """`value` rounded to FP32 (what an .rn FP32 instruction stores)."""
    import struct

    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def fma_closed_form(iters: int) -> bytes:
    """The fma_burn output period (FMA_PERIOD little-endian FP32 words) a correct GPU writes after
    `iters` loop trips. x := fma(x, -1, 10) is x -> 10 - x, exact for these starts (multiples of 1/1024
    below 16), so after an even number of steps each chain holds its start value and after an odd one
    10 minus it; the sum of the 8 chains is exact too. Computed the way the kernel does, in FP32."""
    import struct

    odd = (iters * FMA_UNROLL) % 2 == 1
    out = []
    for j in range(FMA_PERIOD):
        base = _f32(_f32(float(j)) * _f32(1.0 / FMA_PERIOD))
        chains = [_f32(base + (k + 1.0)) for k in range(FMA_CHAINS)]
        if odd:
            chains = [_f32(10.0 - c) for c in chains]
        total = _f32(chains[0] + chains[1])
        for c in chains[2:]:
            total = _f32(total + c)
        out.append(struct.pack("<f", total))
    return b"".join(out)


def pattern(index: int, seed: int) -> int:
    """The host's copy of the memory kernels' pattern, for tests and for reading back a bad word."""
    lo = index & 0xFFFFFFFF
    hi = (index >> 32) & 0xFFFFFFFF
    return ((lo * 0x9E3779B1) & 0xFFFFFFFF) ^ hi ^ (seed & 0xFFFFFFFF)


PTX = "\n".join([_HEADER, _fma_kernel(), "", _MEM_WRITE, "", _MEM_CHECK, ""])
KERNELS = ("fma_burn", "mem_write", "mem_check")


# ---- the power kernel: tensor cores on high-toggle data ---------------------------------------------
MMA_SETS = 4  # independent accumulator sets per thread (4 f32 each)
MMA_UNROLL = 8  # mma.sync per set per loop trip (alternating the two A operands)
MMA_PERIOD = 1024  # out[g] == out[g % MMA_PERIOD]
# A operands: each 32-bit register holds the same FP16 value twice (k = 2j and 2j + 1); A1 is the bitwise
# complement of A0, so every A bit toggles between consecutive mma. B holds -1.0 (0xBC00) for even k and
# +1.0 (0x3C00) for odd k: each product pair a*(-1) + a*(+1) cancels exactly, so D = A x B + C leaves C
# unchanged bit for bit (every partial sum is exact in FP32) while the multipliers see full-toggle data.
MMA_A0 = (0x35553555, 0xAAAAAAAA, 0x35553555, 0xAAAAAAAA)  # 0.3333, -0.05206, ...
MMA_A1 = tuple(~a & 0xFFFFFFFF for a in MMA_A0)  # -13.33 (0xCAAA), 85.31 (0x5555), ...
MMA_B = 0x3C00BC00
MMA_OP = "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"  # FP16 in, FP32 accumulate (sm_80 and later)

_POWER_HEADER = """.version 7.0
.target sm_80
.address_size 64
"""


def _mma_kernel() -> str:
    """mma_burn(out: u64, iters: u32): each thread's MMA_SETS x 4 FP32 accumulators start at
    (g mod MMA_PERIOD) + s * 4 + c, go through iters x MMA_UNROLL x MMA_SETS tensor-core mma (m16n8k16,
    FP16 in, FP32 accumulate) that add exactly zero, and their sum is stored at out[g]."""
    acc = [[f"%f{4 * s + c}" for c in range(4)] for s in range(MMA_SETS)]
    lines = [
        ".visible .entry mma_burn(",
        "\t.param .u64 p_out,",
        "\t.param .u32 p_iters",
        ")",
        "{",
        "\t.reg .pred %p<2>;",
        "\t.reg .b32 %r<24>;",
        f"\t.reg .f32 %f<{4 * MMA_SETS + 4}>;",
        "\t.reg .b64 %rd<4>;",
        "",
        "\tld.param.u64 %rd0, [p_out];",
        "\tld.param.u32 %r0, [p_iters];",
        "\tcvta.to.global.u64 %rd0, %rd0;",
        "\tmov.u32 %r1, %ctaid.x;",
        "\tmov.u32 %r2, %ntid.x;",
        "\tmov.u32 %r3, %tid.x;",
        "\tmad.lo.u32 %r4, %r1, %r2, %r3;",
        f"\tand.b32 %r5, %r4, {MMA_PERIOD - 1};",
        f"\tcvt.rn.f32.u32 %f{4 * MMA_SETS}, %r5;",
    ]
    base = f"%f{4 * MMA_SETS}"
    for s in range(MMA_SETS):
        for c in range(4):
            lines.append(f"\tadd.rn.f32 {acc[s][c]}, {base}, 0f{_f32_hex(float(4 * s + c))};")
    for n, value in enumerate(MMA_A0 + MMA_A1):
        lines.append(f"\tmov.b32 %r{8 + n}, 0x{value:08X};")
    lines += [f"\tmov.b32 %r16, 0x{MMA_B:08X};", f"\tmov.b32 %r17, 0x{MMA_B:08X};"]
    a_sets = ("{%r8, %r9, %r10, %r11}", "{%r12, %r13, %r14, %r15}")
    lines += ["\tsetp.eq.u32 %p0, %r0, 0;", "\t@%p0 bra MMA_DONE;", "MMA_LOOP:"]
    for step in range(MMA_UNROLL):
        for s in range(MMA_SETS):
            d = "{" + ", ".join(acc[s]) + "}"
            lines.append(f"\t{MMA_OP} {d}, {a_sets[step % 2]}, {{%r16, %r17}}, {d};")
    lines += ["\tsub.u32 %r0, %r0, 1;", "\tsetp.ne.u32 %p0, %r0, 0;", "\t@%p0 bra MMA_LOOP;", "MMA_DONE:"]
    total = f"%f{4 * MMA_SETS + 1}"
    lines.append(f"\tadd.rn.f32 {total}, {acc[0][0]}, {acc[0][1]};")
    for reg in [r for row in acc for r in row][2:]:
        lines.append(f"\tadd.rn.f32 {total}, {total}, {reg};")
    lines += [
        "\tmul.wide.u32 %rd1, %r4, 4;",
        "\tadd.u64 %rd2, %rd0, %rd1;",
        f"\tst.global.f32 [%rd2], {total};",
        "\tret;",
        "}",
    ]
    return "\n".join(lines)


def mma_closed_form() -> bytes:
    """The mma_burn output period (MMA_PERIOD little-endian FP32 words), whatever `iters`: the sum of the
    accumulators' start values, added in the kernel's order in FP32."""
    import struct

    out = []
    for j in range(MMA_PERIOD):
        vals = [_f32(float(j) + float(k)) for k in range(4 * MMA_SETS)]
        total = _f32(vals[0] + vals[1])
        for v in vals[2:]:
            total = _f32(total + v)
        out.append(struct.pack("<f", total))
    return b"".join(out)


POWER_PTX = "\n".join([_POWER_HEADER, _mma_kernel(), ""])
POWER_KERNELS = ("mma_burn",)
