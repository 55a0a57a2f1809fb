/* clock.h - the process's clocks, in the units the code counts in.
 * Monotonic for deadlines and durations (never jumps with the wall clock);
 * wall (CLOCK_REALTIME) for timestamps that leave the process. */
#ifndef KCI_CLOCK_H
#define KCI_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t kci_monotonic_ms(void);
int64_t kci_monotonic_us(void);
int64_t kci_wall_ms(void);
/* clock's time after_ms from now, for pthread_cond_timedwait (whose
 * condition variable must wait on the same clock). */
struct timespec kci_deadline_after(clockid_t clock, int64_t after_ms);

#endif
