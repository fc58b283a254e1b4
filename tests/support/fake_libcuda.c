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
 * Build: cc -O2 -shared -fPIC -o libcuda.so.1 fake_libcuda.c -lm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
enum { FMA = 0, MEM_WRITE = 1, MEM_CHECK = 2 };
static const char *KERNEL_NAMES[] = {"fma_burn", "mem_write", "mem_check"};
static int kernel_ids[] = {FMA, MEM_WRITE, MEM_CHECK};
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
    if (attr != 16) return 1; /* only MULTIPROCESSOR_COUNT is modelled */
    *value = 1;
    return 0;
}

CUresult cuCtxCreate_v2(void **ctx, unsigned flags, int dev) {
    (void)flags;
    current_dev = dev;
    *ctx = (void *)(intptr_t)(dev + 1);
    return 0;
}

CUresult cuCtxDestroy_v2(void *ctx) { (void)ctx; current_dev = -1; return 0; }

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned n, int *opts, void **vals) {
    const char *ptx = (const char *)image;
    int bad = env_int("FAKE_CUDA_BAD_PTX", 0) || strncmp(ptx, ".version 7.0", 12) != 0;
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
    for (int k = 0; k < 3; k++)
        if (strcmp(name, KERNEL_NAMES[k]) == 0) {
            *fn = &kernel_ids[k];
            return 0;
        }
    return 500;
}

CUresult cuEventCreate(void **ev, unsigned flags) {
    (void)flags;
    *ev = calloc(1, sizeof(struct timespec));
    return 0;
}

CUresult cuEventRecord(void *ev, void *stream) {
    (void)stream;
    clock_gettime(CLOCK_MONOTONIC, (struct timespec *)ev);
    return 0;
}

CUresult cuEventSynchronize(void *ev) { (void)ev; return 0; }

CUresult cuEventElapsedTime(float *ms, void *start, void *end) {
    struct timespec *a = start, *b = end;
    *ms = (float)((b->tv_sec - a->tv_sec) * 1e3 + (b->tv_nsec - a->tv_nsec) / 1e6);
    return 0;
}

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

CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void *stream, void **params, void **extra) {
    (void)gy; (void)gz; (void)by; (void)bz; (void)shmem; (void)stream; (void)extra;
    int dev = current_dev;
    if (dev < 0) return 201; /* CUDA_ERROR_INVALID_CONTEXT */
    launches[dev]++;
    if (dev == env_int("FAKE_CUDA_FAIL_DEV", -1) && launches[dev] > env_int("FAKE_CUDA_FAIL_AFTER", 0))
        return env_int("FAKE_CUDA_FAIL_CODE", 214);
    uint64_t threads = (uint64_t)gx * bx;
    switch (*(int *)fn) {
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
    case MEM_WRITE: {
        uint32_t *buf = (uint32_t *)(uintptr_t)*(uint64_t *)params[0];
        uint64_t n = *(uint64_t *)params[1];
        uint32_t seed = *(uint32_t *)params[2];
        for (uint64_t i = 0; i < n; i++) buf[i] = pattern(i, seed);
        return 0;
    }
    case MEM_CHECK: {
        uint32_t *buf = (uint32_t *)(uintptr_t)*(uint64_t *)params[0];
        uint64_t n = *(uint64_t *)params[1];
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
