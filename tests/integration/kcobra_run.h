/* kcobra_run.h - runs the kcobra binary the test was given (the KCOBRA
 * environment variable, set by meson) against a server, for tests of the
 * command line through a real kcobrad. */
#ifndef KC_TESTS_INTEGRATION_KCOBRA_RUN_H
#define KC_TESTS_INTEGRATION_KCOBRA_RUN_H

#include <stddef.h>

enum { KCOBRA_RUN_ARGUMENTS_MAX = 32 };

/* Runs KCOBRA arguments... --server url (arguments NULL-terminated), its
 * stdout into output (NUL-terminated, cut at size - 1); returns its exit
 * status, or -1 if it could not run (no KCOBRA, or killed by a signal). */
int kcobra_run(const char *url, const char *const *arguments, char *output, size_t size);

#endif
