/* kcobrad - the KingCobra daemon: a NATS-protocol broker (and, as the
 * other components land, the persister, arbiter, ledger and ingress).
 *
 * Exit status: 0 after a clean shutdown (SIGTERM/SIGINT) or --help;
 * 1 when the configuration is invalid or the listeners cannot be opened. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/options.h"
#include "broker/server.h"
#include "common/log.h"

static int write_pid_file(const char *path)
{
    FILE *file = fopen(path, "w");
    if (file == NULL) return -1;
    fprintf(file, "%d\n", (int)getpid());
    return fclose(file);
}

int main(int argc, char **argv)
{
    kci_options options;
    char error[1024] = "";
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
    kci_server *server = NULL;
    err = kci_server_create(&server, &options, error, sizeof error);
    if (err != KC_OK) {
        kci_error("%s", error[0] ? error : kc_strerror(err));
        kci_options_free(&options);
        return 1;
    }
    err = kci_server_run(server);
    kci_server_destroy(server);
    return err == KC_OK ? 0 : 1;
}
