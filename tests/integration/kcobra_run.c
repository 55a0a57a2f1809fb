/* kcobra_run.c - see kcobra_run.h. stdout is read to its end before the
 * wait, so a long output cannot block the child on a full pipe. */
#include "kcobra_run.h"

#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int kcobra_run(const char *url, const char *const *arguments, char *output, size_t size)
{
    const char *kcobra = getenv("KCOBRA");
    int pipe_fds[2];
    if (kcobra == NULL || size == 0 || pipe(pipe_fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_fds[1], 1);
        close(pipe_fds[0]);
        const char *argv[KCOBRA_RUN_ARGUMENTS_MAX + 4] = {kcobra};
        int argc = 1;
        for (int i = 0; arguments[i] != NULL && i < KCOBRA_RUN_ARGUMENTS_MAX; i++)
            argv[argc++] = arguments[i];
        argv[argc++] = "--server";
        argv[argc++] = url;
        execv(kcobra, (char *const *)argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t got;
    while ((got = read(pipe_fds[0], output + used, size - used - 1)) > 0)
        if ((used += (size_t)got) == size - 1) {
            char sink[4096]; /* the rest is read and dropped */
            while (read(pipe_fds[0], sink, sizeof sink) > 0) {
            }
            break;
        }
    output[used] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
