/* A stand-in for libcuda.so.1 on hosts without a GPU, so the stressor's real ctypes code
 * (burnin/gpu_load.py) runs end to end: the same driver-API symbols and signatures, "device" memory
 * in host RAM, and the three PTX kernels emulated in C with the semantics documented in
 * burnin/gpu_ptx.py (fmaf is IEEE-exact, like PTX fma.rn.f32). It checks that the module image it is
 * given is the stressor's PTX. Faults are injected through environment variables read at each call:
 *   FAKE_CUDA_DEVICES=N          devices (default 2); ordinal i sits at PCI bus 0x41 + 0x20 * (N-1-i)
 *   FAKE_CUDA_FREE_MIB=M         free memory per device (default 16)
 *   FAKE_CUDA_CORRUPT_DEV=d      mem_check on device d finds one flipped word per pass
 *   FAKE_CUDA_FMA_FLIP_DEV=d     fma_burn on device d flips one bit of thread 1500 after its first launch
 *   FAKE_CUDA_FAIL_DEV=d, FAKE_CUDA_FAIL_AFTER=k  launches after the k-th on device d fail with 214
 *   FAKE_CUDA_FAIL_CODE=c        ... with c instead (e.g. 700 ILLEGAL_ADDRESS, 719 LAUNCH_FAILED)
 *   FAKE_CUDA_EXTRA_ERRORS=n     mem_check on FAKE_CUDA_CORRUPT_DEV also adds n (u64) to the counter
 *   FAKE_CUDA_BAD_PTX=1          cuModuleLoadDataEx fails with 218 and writes a JIT log
 *   FAKE_CUDA_SMS=s, FAKE_CUDA_THREADS_PER_SM=t  SM count (default 1) and max threads per SM (1536);
 *                                the memory kernels refuse (1, INVALID_VALUE) a grid that is not one full
 *                                wave (s * t threads) or a vector count that is not whole grid trips
 * Timing: events read the device's clock, which advances only while the device works: by a kernel's
 * real emulation time, and by a copy's real time or, with a modelled rate (GB/s, 1e9 bytes/s), by
 * bytes / rate exactly. The host's own time between calls never counts, so modelled rates come back
 * exactly. Async copies on streams run side by side: an event waits for the slowest stream.
 *   FAKE_CUDA_H2D_GBS=r, FAKE_CUDA_D2H_GBS=r, FAKE_CUDA_PEER_GBS=r, FAKE_CUDA_DTOD_GBS=r (0/unset: real)
 *   FAKE_CUDA_SLOW_DEV=d, FAKE_CUDA_SLOW_FACTOR=f  host copies on device d run f times slower
 *   FAKE_CUDA_COPY_CORRUPT_DEV=d  host->device copies to device d flip one bit of the copy's middle byte
 *   FAKE_CUDA_P2P=0|1            cuDeviceCanAccessPeer answer (default 1)
 *   FAKE_CUDA_PEER_CORRUPT=1     peer copies flip one bit of the copy's middle byte
 *   FAKE_CUDA_NO_HOST_ALLOC=1    cuMemHostAlloc fails with 2 (OUT_OF_MEMORY)
 * The power module (gpu_ptx.POWER_PTX, mma_burn) is a second image; mma_burn writes its closed form:
 *   FAKE_CUDA_MMA_FLIP_DEV=d     mma_burn on device d flips one bit of word 100 of every launch
 *   FAKE_CUDA_NO_MMA=1           the power image is refused (218), as a driver without sm_80 would
 * Build: cc -O2 -shared -fPIC -o libcuda.so.1 fake_libcuda.c -lm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
enum { FMA = 0, MEM_WRITE = 1, MEM_CHECK = 2, MMA = 3 };
static const char *KERNEL_NAMES[] = {"fma_burn", "mem_write", "mem_check", "mma_burn"};
static int kernel_ids[] = {FMA, MEM_WRITE, MEM_CHECK, MMA};
static __thread int current_dev = -1;
static int launches[64];

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

CUresult cuInit(unsigned flags) {
    (void)flags;
    memset(launches, 0, sizeof launches); /* each stressor session counts its own launches */
    return 0;
}

CUresult cuGetErrorName(CUresult code, const char **name) {
    switch (code) {
    case 0: *name = "CUDA_SUCCESS"; break;
    case 2: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case 214: *name = "CUDA_ERROR_ECC_UNCORRECTABLE"; break;
    case 218: *name = "CUDA_ERROR_INVALID_PTX"; break;
    case 700: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
    case 719: *name = "CUDA_ERROR_LAUNCH_FAILED"; break;
    case 500: *name = "CUDA_ERROR_NOT_FOUND"; break;
    default: *name = "CUDA_ERROR_UNKNOWN"; break;
    }
    return 0;
}

CUresult cuDeviceGetCount(int *n) { *n = env_int("FAKE_CUDA_DEVICES", 2); return 0; }

CUresult cuDeviceGet(int *dev, int ordinal) {
    if (ordinal < 0 || ordinal >= env_int("FAKE_CUDA_DEVICES", 2)) return 101;
    *dev = ordinal;
    return 0;
}

CUresult cuDeviceGetName(char *buf, int len, int dev) {
    snprintf(buf, (size_t)len, "Fake GPU %d", dev);
    return 0;
}

CUresult cuDeviceGetPCIBusId(char *buf, int len, int dev) {
    int n = env_int("FAKE_CUDA_DEVICES", 2);
    snprintf(buf, (size_t)len, "0000:%02X:00.0", 0x41 + 0x20 * (n - 1 - dev));
    return 0;
}

CUresult cuDeviceGetAttribute(int *value, int attr, int dev) {
    (void)dev;
    if (attr == 16) *value = env_int("FAKE_CUDA_SMS", 1);                      /* MULTIPROCESSOR_COUNT */
    else if (attr == 39) *value = env_int("FAKE_CUDA_THREADS_PER_SM", 1536);  /* MAX_THREADS_PER_MULTIPROCESSOR */
    else return 1;
    return 0;
}

CUresult cuDeviceCanAccessPeer(int *can, int dev, int peer) {
    *can = dev != peer && env_int("FAKE_CUDA_P2P", 1);
    return 0;
}

CUresult cuCtxCreate_v2(void **ctx, unsigned flags, int dev) {
    (void)flags;
    current_dev = dev;
    *ctx = (void *)(intptr_t)(dev + 1);
    return 0;
}

CUresult cuCtxDestroy_v2(void *ctx) { (void)ctx; current_dev = -1; return 0; }

CUresult cuCtxSetCurrent(void *ctx) {
    current_dev = ctx ? (int)(intptr_t)ctx - 1 : -1;
    return 0;
}

CUresult cuCtxSynchronize(void) { return current_dev < 0 ? 201 : 0; }

CUresult cuCtxEnablePeerAccess(void *peer_ctx, unsigned flags) {
    (void)flags;
    if (!env_int("FAKE_CUDA_P2P", 1)) return 217; /* CUDA_ERROR_PEER_ACCESS_UNSUPPORTED */
    return peer_ctx ? 0 : 201;
}

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned n, int *opts, void **vals) {
    const char *ptx = (const char *)image;
    int bad = env_int("FAKE_CUDA_BAD_PTX", 0) || strncmp(ptx, ".version 7.0", 12) != 0;
    if (!bad && strstr(ptx, ".visible .entry mma_burn(")) { /* the power image */
        bad = env_int("FAKE_CUDA_NO_MMA", 0) || strstr(ptx, "mma.sync.aligned.m16n8k16") == NULL;
        if (!bad) {
            *module = (void *)KERNEL_NAMES;
            return 0;
        }
    }
    for (int k = 0; k < 3 && !bad; k++) {
        char entry[64];
        snprintf(entry, sizeof entry, ".visible .entry %s(", KERNEL_NAMES[k]);
        bad = strstr(ptx, entry) == NULL;
    }
    if (bad) {
        for (unsigned i = 0; i + 1 < n; i++)
            if (opts[i] == 5 && opts[i + 1] == 6)
                snprintf((char *)vals[i], (size_t)(intptr_t)vals[i + 1], "ptxas fatal   : fake JIT refused the image");
        return 218;
    }
    *module = (void *)KERNEL_NAMES;
    return 0;
}

CUresult cuModuleGetFunction(void **fn, void *module, const char *name) {
    (void)module;
    for (int k = 0; k < 4; k++)
        if (strcmp(name, KERNEL_NAMES[k]) == 0) {
            *fn = &kernel_ids[k];
            return 0;
        }
    return 500;
}

/* The events' clock: the device's busy time (see the header). */
#define MAX_STREAMS 16
static __thread double device_s;
static __thread double pending_s[MAX_STREAMS + 1]; /* per stream (0 = the null stream) */
static int next_stream = 1;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int stream_slot(void *stream) {
    intptr_t s = (intptr_t)stream;
    return s > 0 && s <= MAX_STREAMS ? (int)s : 0;
}

static double env_rate(const char *name) {
    const char *v = getenv(name);
    return v && *v ? atof(v) * 1e9 : 0.0;
}

/* A copy of n bytes that really took `real` seconds: on the events' clock it takes n / rate (modelled)
 * or `real`, on its stream. */
static void model_copy(const char *rate_env, size_t n, double real, void *stream, int dev) {
    double rate = env_rate(rate_env);
    double took = rate > 0 ? (double)n / rate : real;
    if (rate > 0 && dev >= 0 && dev == env_int("FAKE_CUDA_SLOW_DEV", -1)) took *= env_int("FAKE_CUDA_SLOW_FACTOR", 2);
    pending_s[stream_slot(stream)] += took;
}

static void flush_streams(void) {
    double longest = 0;
    for (int i = 0; i <= MAX_STREAMS; i++) {
        if (pending_s[i] > longest) longest = pending_s[i];
        pending_s[i] = 0;
    }
    device_s += longest;
}

CUresult cuEventCreate(void **ev, unsigned flags) {
    (void)flags;
    *ev = calloc(1, sizeof(double));
    return 0;
}

CUresult cuEventDestroy_v2(void *ev) { free(ev); return 0; }

CUresult cuEventRecord(void *ev, void *stream) {
    (void)stream;
    flush_streams();
    *(double *)ev = device_s;
    return 0;
}

CUresult cuEventSynchronize(void *ev) { (void)ev; return 0; }

CUresult cuEventElapsedTime(float *ms, void *start, void *end) {
    *ms = (float)((*(double *)end - *(double *)start) * 1e3);
    return 0;
}

CUresult cuStreamCreate(void **stream, unsigned flags) {
    (void)flags;
    if (next_stream > MAX_STREAMS) next_stream = 1;
    *stream = (void *)(intptr_t)next_stream++;
    return 0;
}

CUresult cuStreamDestroy_v2(void *stream) { (void)stream; return 0; }

CUresult cuStreamSynchronize(void *stream) { (void)stream; flush_streams(); return 0; }

CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b) {
    *free_b = (size_t)env_int("FAKE_CUDA_FREE_MIB", 16) << 20;
    *total_b = *free_b + (64u << 20);
    return 0;
}

CUresult cuMemAlloc_v2(uint64_t *dptr, size_t size) {
    void *p = malloc(size);
    if (!p) return 2;
    *dptr = (uint64_t)(uintptr_t)p;
    return 0;
}

CUresult cuMemFree_v2(uint64_t dptr) { free((void *)(uintptr_t)dptr); return 0; }

CUresult cuMemsetD32_v2(uint64_t dptr, unsigned value, size_t n) {
    uint32_t *p = (uint32_t *)(uintptr_t)dptr;
    for (size_t i = 0; i < n; i++) p[i] = value;
    return 0;
}

CUresult cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t size) {
    memcpy(dst, (void *)(uintptr_t)src, size);
    return 0;
}

CUresult cuMemHostAlloc(void **p, size_t size, unsigned flags) {
    (void)flags;
    if (env_int("FAKE_CUDA_NO_HOST_ALLOC", 0)) return 2;
    *p = malloc(size);
    return *p ? 0 : 2;
}

CUresult cuMemFreeHost(void *p) { free(p); return 0; }

static void flip_middle(unsigned char *p, size_t size) {
    if (size) p[size / 2] ^= 0x10u;
}

CUresult cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t size, void *stream) {
    if (current_dev < 0) return 201;
    double t = now_s();
    memcpy((void *)(uintptr_t)dst, src, size);
    if (current_dev == env_int("FAKE_CUDA_COPY_CORRUPT_DEV", -1)) flip_middle((unsigned char *)(uintptr_t)dst, size);
    model_copy("FAKE_CUDA_H2D_GBS", size, now_s() - t, stream, current_dev);
    return 0;
}

CUresult cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t size) {
    return cuMemcpyHtoDAsync_v2(dst, src, size, NULL);
}

CUresult cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t size, void *stream) {
    if (current_dev < 0) return 201;
    double t = now_s();
    memcpy(dst, (void *)(uintptr_t)src, size);
    model_copy("FAKE_CUDA_D2H_GBS", size, now_s() - t, stream, current_dev);
    return 0;
}

CUresult cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t size) {
    double t = now_s();
    memmove((void *)(uintptr_t)dst, (void *)(uintptr_t)src, size);
    model_copy("FAKE_CUDA_DTOD_GBS", size, now_s() - t, NULL, current_dev);
    return 0;
}

CUresult cuMemcpyPeerAsync(uint64_t dst, void *dst_ctx, uint64_t src, void *src_ctx, size_t size, void *stream) {
    if (!dst_ctx || !src_ctx) return 201;
    double t = now_s();
    memcpy((void *)(uintptr_t)dst, (void *)(uintptr_t)src, size);
    if (env_int("FAKE_CUDA_PEER_CORRUPT", 0)) flip_middle((unsigned char *)(uintptr_t)dst, size);
    model_copy("FAKE_CUDA_PEER_GBS", size, now_s() - t, stream, -1);
    return 0;
}

static uint32_t pattern(uint64_t i, uint32_t seed) {
    return ((uint32_t)i * 0x9E3779B1u) ^ (uint32_t)(i >> 32) ^ seed;
}

static void fma_burn(float *out, uint32_t iters, uint64_t threads) {
    /* out[g] depends on g mod 1024 only (see gpu_ptx): compute one period, then copy it. */
    for (uint64_t g = 0; g < threads && g < 1024; g++) {
        float f[8], base = (float)(g & 1023) * (1.0f / 1024.0f);
        for (int k = 0; k < 8; k++) f[k] = base + (float)(k + 1);
        for (uint32_t t = 0; t < iters; t++)
            for (int s = 0; s < 8; s++)
                for (int k = 0; k < 8; k++) f[k] = fmaf(f[k], -1.0f, 10.0f);
        float sum = f[0] + f[1];
        for (int k = 2; k < 8; k++) sum += f[k];
        out[g] = sum;
    }
    for (uint64_t g = 1024; g < threads; g++) out[g] = out[g & 1023];
}

static CUresult launch(void *fn, unsigned gx, unsigned bx, void **params);

CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void *stream, void **params, void **extra) {
    (void)gy; (void)gz; (void)by; (void)bz; (void)shmem; (void)extra;
    double t = now_s();
    CUresult code = launch(fn, gx, bx, params);
    pending_s[stream_slot(stream)] += now_s() - t; /* the kernel's run time, on its stream */
    return code;
}

static CUresult launch(void *fn, unsigned gx, unsigned bx, void **params) {
    int dev = current_dev;
    if (dev < 0) return 201; /* CUDA_ERROR_INVALID_CONTEXT */
    launches[dev]++;
    if (dev == env_int("FAKE_CUDA_FAIL_DEV", -1) && launches[dev] > env_int("FAKE_CUDA_FAIL_AFTER", 0))
        return env_int("FAKE_CUDA_FAIL_CODE", 214);
    uint64_t threads = (uint64_t)gx * bx;
    int kind = *(int *)fn;
    if (kind == MEM_WRITE || kind == MEM_CHECK) {
        uint64_t wave = (uint64_t)env_int("FAKE_CUDA_SMS", 1) * (uint64_t)env_int("FAKE_CUDA_THREADS_PER_SM", 1536);
        uint64_t n_vec = *(uint64_t *)params[1];
        if (threads != wave || n_vec % (threads * 4) != 0) return 1; /* CUDA_ERROR_INVALID_VALUE */
    }
    switch (kind) {
    case FMA: {
        float *out = (float *)(uintptr_t)*(uint64_t *)params[0];
        fma_burn(out, *(uint32_t *)params[1], threads);
        if (dev == env_int("FAKE_CUDA_FMA_FLIP_DEV", -1) && launches[dev] > 1 && threads > 1500) {
            uint32_t bits;
            memcpy(&bits, &out[1500], 4);
            bits ^= 1u;
            memcpy(&out[1500], &bits, 4);
        }
        return 0;
    }
    case MMA: { /* the accumulators start at (g mod 1024) + k, k < 16, and mma adds exactly zero */
        float *out = (float *)(uintptr_t)*(uint64_t *)params[0];
        for (uint64_t g = 0; g < threads; g++) {
            float base = (float)(g & 1023), sum = (base + 0.0f) + (base + 1.0f);
            for (int k = 2; k < 16; k++) sum += base + (float)k;
            out[g] = sum;
        }
        if (dev == env_int("FAKE_CUDA_MMA_FLIP_DEV", -1) && threads > 100) {
            uint32_t bits;
            memcpy(&bits, &out[100], 4);
            bits ^= 1u << 7;
            memcpy(&out[100], &bits, 4);
        }
        return 0;
    }
    case MEM_WRITE: {
        uint32_t *buf = (uint32_t *)(uintptr_t)*(uint64_t *)params[0];
        uint64_t n = *(uint64_t *)params[1] * 4; /* 128-bit vectors -> words */
        uint32_t seed = *(uint32_t *)params[2];
        for (uint64_t i = 0; i < n; i++) buf[i] = pattern(i, seed);
        return 0;
    }
    case MEM_CHECK: {
        uint32_t *buf = (uint32_t *)(uintptr_t)*(uint64_t *)params[0];
        uint64_t n = *(uint64_t *)params[1] * 4; /* 128-bit vectors -> words */
        uint32_t seed = *(uint32_t *)params[2];
        uint64_t *errors = (uint64_t *)(uintptr_t)*(uint64_t *)params[3]; /* u64, like the PTX's red.add.u64 */
        if (dev == env_int("FAKE_CUDA_CORRUPT_DEV", -1) && n > 7) {
            const char *extra = getenv("FAKE_CUDA_EXTRA_ERRORS");
            buf[n / 2] ^= 0x100u;
            if (extra && *extra) *errors += strtoull(extra, NULL, 10);
        }
        for (uint64_t i = 0; i < n; i++)
            if (buf[i] != pattern(i, seed)) (*errors)++;
        return 0;
    }
    }
    return 1;
}
