/* ML-DSA-65 (FIPS 204) through PQClean's AVX2 implementation, vendored in vendor/.
 *
 * The `pqclean` PQC backend (host/chaosmagnet/pqc/pqclean_backend.py) calls these.
 * Seeded key generation follows FIPS 204 ML-DSA.KeyGen_internal: the 32-byte seed
 * xi is what PQClean's keypair draws from randombytes, so it is handed over through
 * randombytes.c for exactly that call.  Signing is hedged (FIPS 204 default: 32
 * fresh bytes from the OS per signature) with an empty context, as OpenSSL's.
 * Built for x86-64 only (ARCH below); cm_mldsa65_cpu_ok() says whether this CPU
 * has the instructions the code was compiled for.
 *
 * ARCH: x86_64
 * COMPILE-ARGS: -mavx2 -mpopcnt -mbmi2 -std=c99
 */
#ifndef CM_MLDSA65_H
#define CM_MLDSA65_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
#define CM_MLDSA65_PUBLICKEYBYTES 1952
#define CM_MLDSA65_SECRETKEYBYTES 4032
#define CM_MLDSA65_SIGNATUREBYTES 3309
#define CM_MLDSA65_SEEDBYTES 32

int cm_mldsa65_cpu_ok(void);
int cm_mldsa65_keypair(uint8_t *pk, uint8_t *sk, const uint8_t *seed);
int cm_mldsa65_sign(uint8_t *sig, size_t *siglen, const uint8_t *m, size_t mlen, const uint8_t *sk);
int cm_mldsa65_verify(const uint8_t *sig, size_t siglen, const uint8_t *m, size_t mlen, const uint8_t *pk);
/* CDEF-END */

#endif
