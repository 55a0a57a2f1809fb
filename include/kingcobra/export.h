/* export.h - symbol visibility for the public API. The library is built with
 * -fvisibility=hidden; only declarations marked KC_EXPORT are exported. */
#ifndef KINGCOBRA_EXPORT_H
#define KINGCOBRA_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define KC_EXPORT __attribute__((visibility("default")))
#else
#define KC_EXPORT
#endif

#endif
