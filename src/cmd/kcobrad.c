/* kcobrad - the KingCobra daemon: the NATS-protocol broker plus the
 * built-in components, each an ordinary client of the broker.
 *
 * Threads: the broker's event loop runs on its own thread; components run
 * on theirs (nats.c's); the main thread only waits for signals. That order
 * matters at shutdown: components drain through a broker that is still
 * serving, and only then does the broker stop.
 *
 * Exit status: 0 after a clean shutdown (SIGTERM/SIGINT) or --help;
 * 1 when the configuration is invalid or a listener cannot be opened. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/options.h"
#include "broker/roles.h"
#include "broker/server.h"
#include "common/log.h"
#include "components.h"
#include "console/gather.h"

typedef struct broker_thread {
    kci_server *server;
    kc_err result;
} broker_thread;

static int write_pid_file(const char *path)
{
    FILE *file = fopen(path, "w");
    if (file == NULL) return -1;
    fprintf(file, "%d\n", (int)getpid());
    return fclose(file);
}

/* Blocked before any thread exists, so every thread inherits the mask and
 * only sigwait() in the main thread ever takes these signals. */
static void block_signals(sigset_t *mask)
{
    sigemptyset(mask);
    sigaddset(mask, SIGTERM);
    sigaddset(mask, SIGINT);
    sigaddset(mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, mask, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void *run_broker(void *argument)
{
    broker_thread *thread = argument;
    thread->result = kci_server_run(thread->server);
    if (thread->result != KC_OK) kill(getpid(), SIGTERM); /* wake the main thread */
    return NULL;
}

enum { RELOAD_WAIT_MS = 10 * 1000 };

/* The web console's gatherer, when the monitoring port is on (its panels
 * then show the components; docs/console.md). Failing to start it costs
 * only those panels. */
static kci_console_gatherer *start_console(const kci_server *server)
{
    if (server->options.http_port == 0) return NULL;
    char url[64], error[256] = "";
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", server->internal_port);
    kci_console_gatherer *console = NULL;
    if (kci_console_gather_start(&console, url, kci_role_user(KCI_ROLE_CONSOLE),
                                 server->internal_password, error, sizeof error) != KC_OK)
        kci_warn("%s: the console shows the broker only", error);
    return console;
}

/* SIGHUP: the broker re-reads the file on its loop, then the components
 * whose settings changed start, stop or restart (components.h). */
static void wait_for_shutdown(const sigset_t *mask, kci_server *server, kci_components *components,
                              kci_components_config *config)
{
    for (;;) {
        int signal_number = 0;
        if (sigwait(mask, &signal_number) != 0) continue;
        if (signal_number == SIGHUP) {
            if (kci_server_reload_wait(server, RELOAD_WAIT_MS))
                kci_components_reload(components, config, &server->options, server);
            continue;
        }
        kci_info("received %s, shutting down", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
}

static int start(kci_options *options, const sigset_t *mask)
{
    char error[1024] = "";
    kci_components_config components_config;
    kc_err err = kci_components_config_load(&components_config, options, error, sizeof error);
    if (err != KC_OK) { /* checked at load already; only out of memory is left */
        kci_error("components: %s", error);
        kci_options_free(options);
        return 1;
    }
    kci_server *server = NULL;
    err = kci_server_create(&server, options, error, sizeof error);
    if (err != KC_OK) {
        kci_error("%s", error[0] ? error : kc_strerror(err));
        kci_options_free(options);
        return 1;
    }
    kci_server_hold_public(server); /* components first */
    broker_thread broker = {.server = server};
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_broker, &broker) != 0) {
        kci_error("cannot start the broker thread: %s", strerror(errno));
        kci_server_destroy(server);
        return 1;
    }
    kci_components *components = NULL;
    err = kci_components_start(&components, &components_config, server, error, sizeof error);
    if (err != KC_OK) kci_error("components: %s", error[0] ? error : kc_strerror(err));
    kci_console_gatherer *console = err == KC_OK ? start_console(server) : NULL;
    if (err == KC_OK) {
        kci_server_open_public(server);
        wait_for_shutdown(mask, server, components, &components_config);
    }
    kci_console_gather_stop(console);
    kci_components_stop(components);
    kci_server_stop(server);
    pthread_join(thread, NULL);
    kci_server_destroy(server);
    kci_components_config_free(&components_config);
    return err == KC_OK && broker.result == KC_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    sigset_t mask;
    block_signals(&mask);
    kci_options options;
    char error[1024] = "";
    kci_options_set_part_check(kci_components_check);
    kci_options_set_part_adjust(kci_components_adjust);
    kc_err err = kci_options_load(&options, argc, argv, error, sizeof error);
    if (err == KC_ERR_HELP) return 0;
    if (err != KC_OK) {
        fprintf(stderr, "kcobrad: %s\n", error[0] ? error : kc_strerror(err));
        fprintf(stderr, "Try 'kcobrad --help'.\n");
        return 1;
    }
    kci_configure_logging(&options);
    if (options.log_file != NULL && kci_log_open_file(options.log_file) != 0) {
        fprintf(stderr, "kcobrad: cannot open log file %s: %s\n", options.log_file,
                strerror(errno));
        kci_options_free(&options);
        return 1;
    }
    kci_info("Starting kcobrad version %s", KC_VERSION);
    if (options.config_file != NULL) kci_info("Using configuration file: %s", options.config_file);
    if (options.pid_file != NULL && write_pid_file(options.pid_file) != 0)
        kci_warn("cannot write pid file %s: %s", options.pid_file, strerror(errno));
    return start(&options, &mask);
}
