/* STREAM-style copy/scale/add/triad memory-bandwidth probe for the burn-in agent.
 *
 * Usage: triad ARRAY_BYTES NTIMES
 * Three arrays of ARRAY_BYTES each, first-touched in parallel (so pages land on the NUMA node of
 * the thread that uses them; pin threads with OMP_PROC_BIND/OMP_PLACES), best of NTIMES per
 * kernel, then every element is checked against the analytically expected value.
 * Prints one JSON line. Exit 0 = measured and verified, 1 = verification failed, 2 = bad usage or
 * no memory. Bandwidth counts 2 (copy, scale) or 3 (add, triad) arrays moved per pass, as STREAM.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static double now(void) { return omp_get_wtime(); }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: triad ARRAY_BYTES NTIMES\n");
        return 2;
    }
    size_t n = (size_t)strtoull(argv[1], NULL, 10) / sizeof(double);
    int ntimes = atoi(argv[2]);
    if (n < 1024 || ntimes < 2) {
        fprintf(stderr, "triad: ARRAY_BYTES >= 8192 and NTIMES >= 2 required\n");
        return 2;
    }
    double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double)), *c = malloc(n * sizeof(double));
    if (!a || !b || !c) {
        fprintf(stderr, "triad: cannot allocate 3 x %zu bytes\n", n * sizeof(double));
        return 2;
    }
    const double scalar = 3.0;
    size_t j;
#pragma omp parallel for schedule(static)
    for (j = 0; j < n; j++) { a[j] = 1.0; b[j] = 2.0; c[j] = 0.0; }

    double best[4] = {DBL_MAX, DBL_MAX, DBL_MAX, DBL_MAX};
    for (int k = 0; k < ntimes; k++) {
        double t = now();
#pragma omp parallel for schedule(static)
        for (j = 0; j < n; j++) c[j] = a[j];
        double t1 = now();
#pragma omp parallel for schedule(static)
        for (j = 0; j < n; j++) b[j] = scalar * c[j];
        double t2 = now();
#pragma omp parallel for schedule(static)
        for (j = 0; j < n; j++) c[j] = a[j] + b[j];
        double t3 = now();
#pragma omp parallel for schedule(static)
        for (j = 0; j < n; j++) a[j] = b[j] + scalar * c[j];
        double t4 = now();
        double dt[4] = {t1 - t, t2 - t1, t3 - t2, t4 - t3};
        if (k > 0) /* the first pass pays for page faults and warm-up */
            for (int i = 0; i < 4; i++) if (dt[i] < best[i]) best[i] = dt[i];
    }

    /* The same recurrence on scalars gives the exact expected values. */
    double ea = 1.0, eb = 2.0, ec = 0.0;
    for (int k = 0; k < ntimes; k++) { ec = ea; eb = scalar * ec; ec = ea + eb; ea = eb + scalar * ec; }
    size_t bad = 0;
    double max_rel = 0.0;
#pragma omp parallel for reduction(+ : bad) reduction(max : max_rel) schedule(static)
    for (j = 0; j < n; j++) {
        double ra = fabs(a[j] - ea) / ea, rb = fabs(b[j] - eb) / eb, rc = fabs(c[j] - ec) / ec;
        double r = ra > rb ? ra : rb;
        r = r > rc ? r : rc;
        if (r > 1e-13) bad++;
        if (r > max_rel) max_rel = r;
    }
    double bytes = (double)n * sizeof(double);
    printf("{\"copy_gbs\": %.2f, \"scale_gbs\": %.2f, \"add_gbs\": %.2f, \"triad_gbs\": %.2f, "
           "\"array_bytes\": %.0f, \"ntimes\": %d, \"threads\": %d, \"bad_elements\": %zu, "
           "\"max_rel_err\": %.3g, \"check\": \"%s\"}\n",
           2 * bytes / best[0] / 1e9, 2 * bytes / best[1] / 1e9, 3 * bytes / best[2] / 1e9,
           3 * bytes / best[3] / 1e9, bytes, ntimes, omp_get_max_threads(), bad, max_rel,
           bad ? "failed" : "ok");
    free(a); free(b); free(c);
    return bad ? 1 : 0;
}
