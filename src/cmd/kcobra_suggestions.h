/* kcobra_suggestions.h - `kcobra suggestions show|accept|reject|done|assign`
 * (kcobra_suggestions.c); `kcobra suggestions [list]` is kcobra_problem.c's. */
#ifndef KCOBRA_SUGGESTIONS_H
#define KCOBRA_SUGGESTIONS_H

#include "kcobra_common.h"

/* positional[0] is the subcommand; note: --note or NULL. */
int kcobra_suggestions_handle(const kcobra_command *command, const kcobra_invocation *invocation,
                              const char *note);

#endif
