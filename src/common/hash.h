/* hash.h - a fast non-cryptographic 64-bit hash of byte strings.
 *
 * For hash tables and caches inside one process. Values depend on the CPU's
 * byte order and may change between versions: never store or send them.
 * Not a MAC. kci_hash_bytes uses a fixed seed, so anyone can compute
 * colliding inputs for it offline; a table keyed by input from the network
 * should use kci_hash_bytes_seeded with a secret, per-process seed, which
 * makes aimed collisions hard in practice (no proof backs that). */
#ifndef KCI_HASH_H
#define KCI_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Hash of the len bytes at data (data may be NULL when len is 0). */
uint64_t kci_hash_bytes(const void *data, size_t len);
/* As kci_hash_bytes, with the seed mixed into every step. */
uint64_t kci_hash_bytes_seeded(const void *data, size_t len, uint64_t seed);

#endif
