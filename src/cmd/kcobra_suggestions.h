/* kcobra_suggestions.h - `kcobra suggestions show|accept|reject|done|assign`
 * (kcobra_suggestions.c); `kcobra suggestions [list]` is kcobra_problem.c's. */
#ifndef KCOBRA_SUGGESTIONS_H
#define KCOBRA_SUGGESTIONS_H

#include "kcobra_common.h"

enum { KCOBRA_SUGGESTION_TIME_BYTES = 32 };

/* A keeper's ts (ms, "<ms>.<counter>" or text) as "YYYY-MM-DD HH:MM:SS"
 * UTC, or the text as it is (kcobra_problem.c). */
void kcobra_suggestion_time(const json_t *ts, char text[KCOBRA_SUGGESTION_TIME_BYTES]);

/* positional[0] is the subcommand; note: --note or NULL. */
int kcobra_suggestions_handle(const kcobra_command *command, const kcobra_invocation *invocation,
                              const char *note);

#endif
