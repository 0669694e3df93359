/* PQClean's randombytes for the vendored ML-DSA-65: the OS's getrandom(2), except that
 * cm_mldsa65_keypair arms one call with the caller's FIPS 204 seed (per thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "randombytes.h"

static _Thread_local const uint8_t *pending_seed;
static _Thread_local size_t pending_len;

void cm_randombytes_use_seed(const uint8_t *seed, size_t n);

void cm_randombytes_use_seed(const uint8_t *seed, size_t n)
{
    pending_seed = seed;
    pending_len = n;
}

int randombytes(uint8_t *output, size_t n)
{
    if (pending_seed != NULL) {
        const uint8_t *seed = pending_seed;
        size_t len = pending_len;
        pending_seed = NULL;
        pending_len = 0;
        if (len != n) {
            abort(); /* the keypair asked for something other than its seed: never a weak key */
        }
        memcpy(output, seed, n);
        return 0;
    }
    while (n > 0) {
        ssize_t got = getrandom(output, n, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            abort(); /* PQClean ignores the result: never sign or make keys without randomness */
        }
        output += got;
        n -= (size_t)got;
    }
    return 0;
}
