/* Keccak-f[1600] and the sponge construction of FIPS 202 (SHA-3, SHAKE).
 *
 * Written for ChaosMagnet from the text of FIPS 202.  The state lives in a
 * struct the caller allocates (Python does, through cffi), so the pool can
 * keep one sponge for its whole life, copy it, and wipe it.
 *
 * A sponge is parameterised by its rate in bytes (a multiple of 8 from 72 to
 * 168: 136 for SHA3-256 and SHAKE256, 72 for SHA3-512, 168 for SHAKE128) and
 * by its domain/padding byte (0x06 for SHA3-*, 0x1F for SHAKE*): the byte that
 * holds the domain suffix bits followed by the first bit of pad10*1.
 *
 * Absorb any number of bytes any number of times; the first squeeze pads and
 * switches the sponge to squeezing, later squeezes continue the same output
 * stream.  Absorbing after squeezing has started is refused.
 */
#ifndef CHAOS_KECCAK_H
#define CHAOS_KECCAK_H
#include <stdint.h>
#include <stddef.h>

/* CDEF-BEGIN */
#define CHAOS_KECCAK_MIN_RATE 72
#define CHAOS_KECCAK_MAX_RATE 168
#define CHAOS_KECCAK_OK 0
#define CHAOS_KECCAK_EBADRATE -1
#define CHAOS_KECCAK_EBADPAD -2
#define CHAOS_KECCAK_ESQUEEZING -3

typedef struct {
    uint64_t lanes[25];    /* lane A[x, y] is lanes[x + 5y]; bytes little-endian */
    uint32_t rate;         /* bytes per block */
    uint32_t pos;          /* bytes absorbed into, or squeezed from, this block */
    uint8_t  pad;          /* domain/padding byte */
    uint8_t  squeezing;    /* 0 while absorbing, 1 once the first squeeze padded */
    uint8_t  reserved[6];
} chaos_keccak_state;

/* Start an empty sponge.  Returns CHAOS_KECCAK_OK, CHAOS_KECCAK_EBADRATE
 * (rate not a multiple of 8 in [72, 168]) or CHAOS_KECCAK_EBADPAD (pad 0
 * or with bit 7 set, which would collide with the final bit of pad10*1). */
int chaos_keccak_init(chaos_keccak_state *st, uint32_t rate, uint8_t pad);

/* Absorb len bytes.  Returns CHAOS_KECCAK_OK or CHAOS_KECCAK_ESQUEEZING. */
int chaos_keccak_absorb(chaos_keccak_state *st, const uint8_t *data, size_t len);

/* Write the next len output bytes; the first call pads the message. */
void chaos_keccak_squeeze(chaos_keccak_state *st, uint8_t *out, size_t len);

/* dst becomes an independent copy of src (they may not overlap). */
void chaos_keccak_copy(chaos_keccak_state *dst, const chaos_keccak_state *src);

/* Zero the whole state in a way the compiler may not optimise away. */
void chaos_keccak_wipe(chaos_keccak_state *st);

/* One shot: out = first outlen bytes of the sponge (rate, pad) over in.
 * Returns as chaos_keccak_init. */
int chaos_keccak_hash(uint32_t rate, uint8_t pad, const uint8_t *in, size_t inlen,
                      uint8_t *out, size_t outlen);

/* Which copy of the permutation runs here (for benchmarks and reports). */
const char *chaos_keccak_implementation(void);

/* Tests and benchmarks: on != 0 forces the portable copy even where a faster
 * one exists; returns the previous setting.  Results never depend on it. */
int chaos_keccak_force_portable(int on);

/* The bare permutation, for tests: lanes[25] in place. */
void chaos_keccak_f1600(uint64_t *lanes);
/* CDEF-END */

#endif
