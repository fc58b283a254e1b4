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
mem_write(buf: u64, n_words: u64, seed: u32)
    buf[i] := pattern(i, seed) for i < n_words, grid-stride.
mem_check(buf: u64, n_words: u64, seed: u32, errors: u64)
    counts words where buf[i] != pattern(i, seed) into *errors (u64, atomically: never wraps).

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


# The grid-stride prologue shared by both memory kernels: %rd3 = i, %rd4 = stride, exits when i >= n.
_MEM_PROLOGUE = """\tld.param.u64 %rd0, [p_buf];
\tld.param.u64 %rd1, [p_n];
\tld.param.u32 %r0, [p_seed];
\tcvta.to.global.u64 %rd0, %rd0;
\tmov.u32 %r1, %ctaid.x;
\tmov.u32 %r2, %ntid.x;
\tmov.u32 %r3, %tid.x;
\tmul.wide.u32 %rd3, %r1, %r2;
\tcvt.u64.u32 %rd5, %r3;
\tadd.u64 %rd3, %rd3, %rd5;
\tmov.u32 %r4, %nctaid.x;
\tmul.wide.u32 %rd4, %r4, %r2;
\tsetp.ge.u64 %p0, %rd3, %rd1;
\t@%p0 bra {done};
{loop}:
\tcvt.u32.u64 %r5, %rd3;
\tshr.u64 %rd5, %rd3, 32;
\tcvt.u32.u64 %r6, %rd5;
\tmul.lo.u32 %r5, %r5, 0x9E3779B1;
\txor.b32 %r5, %r5, %r6;
\txor.b32 %r5, %r5, %r0;
\tshl.b64 %rd5, %rd3, 2;
\tadd.u64 %rd6, %rd0, %rd5;"""

_MEM_EPILOGUE = """\tadd.u64 %rd3, %rd3, %rd4;
\tsetp.lt.u64 %p0, %rd3, %rd1;
\t@%p0 bra {loop};
{done}:
\tret;
}}"""

_MEM_WRITE = (
    """.visible .entry mem_write(
\t.param .u64 p_buf,
\t.param .u64 p_n,
\t.param .u32 p_seed
)
{{
\t.reg .pred %p<2>;
\t.reg .b32 %r<8>;
\t.reg .b64 %rd<8>;

"""
    + _MEM_PROLOGUE
    + """
\tst.global.u32 [%rd6], %r5;
"""
    + _MEM_EPILOGUE
).format(loop="W_LOOP", done="W_DONE")

_MEM_CHECK = (
    """.visible .entry mem_check(
\t.param .u64 p_buf,
\t.param .u64 p_n,
\t.param .u32 p_seed,
\t.param .u64 p_errors
)
{{
\t.reg .pred %p<2>;
\t.reg .b32 %r<8>;
\t.reg .b64 %rd<8>;

\tld.param.u64 %rd7, [p_errors];
\tcvta.to.global.u64 %rd7, %rd7;
"""
    + _MEM_PROLOGUE
    + """
\tld.global.u32 %r7, [%rd6];
\tsetp.ne.u32 %p1, %r7, %r5;
\t@%p1 red.global.add.u64 [%rd7], 1;
"""
    + _MEM_EPILOGUE
).format(loop="C_LOOP", done="C_DONE")


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
