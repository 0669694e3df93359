/* ChaosMagnet's entry points into the vendored PQClean ML-DSA-65 (AVX2); see mldsa65.h. */
#include "mldsa65.h"

#include "api.h"
#include "randombytes.h"

/* randombytes.c: the next `randombytes` call of this thread returns this seed. */
void cm_randombytes_use_seed(const uint8_t *seed, size_t n);

int cm_mldsa65_cpu_ok(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi2");
#else
    return 0;
#endif
}

/* A key pair; from the FIPS 204 seed xi when `seed` is not NULL, else from the OS. */
int cm_mldsa65_keypair(uint8_t *pk, uint8_t *sk, const uint8_t *seed)
{
    if (seed != NULL) {
        cm_randombytes_use_seed(seed, CM_MLDSA65_SEEDBYTES);
    }
    int rc = PQCLEAN_MLDSA65_AVX2_crypto_sign_keypair(pk, sk);
    cm_randombytes_use_seed(NULL, 0); /* never left armed, whatever keypair did */
    return rc;
}

int cm_mldsa65_sign(uint8_t *sig, size_t *siglen, const uint8_t *m, size_t mlen, const uint8_t *sk)
{
    return PQCLEAN_MLDSA65_AVX2_crypto_sign_signature_ctx(sig, siglen, m, mlen, (const uint8_t *)"", 0, sk);
}

/* 0 when the signature is valid. */
int cm_mldsa65_verify(const uint8_t *sig, size_t siglen, const uint8_t *m, size_t mlen, const uint8_t *pk)
{
    return PQCLEAN_MLDSA65_AVX2_crypto_sign_verify_ctx(sig, siglen, m, mlen, (const uint8_t *)"", 0, pk);
}
