/* clock.c - see clock.h. */
#include "clock.h"

#include <time.h>

static int64_t read_clock(clockid_t clock, int64_t per_second)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * per_second + now.tv_nsec / (1000000000 / per_second);
}

int64_t kci_monotonic_ms(void)
{
    return read_clock(CLOCK_MONOTONIC, 1000);
}

int64_t kci_monotonic_us(void)
{
    return read_clock(CLOCK_MONOTONIC, 1000000);
}

int64_t kci_wall_ms(void)
{
    return read_clock(CLOCK_REALTIME, 1000);
}

struct timespec kci_deadline_after(clockid_t clock, int64_t after_ms)
{
    struct timespec deadline;
    clock_gettime(clock, &deadline);
    deadline.tv_sec += after_ms / 1000;
    deadline.tv_nsec += (after_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    return deadline;
}
