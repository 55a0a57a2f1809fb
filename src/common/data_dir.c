/* data_dir.c - the rule of data_dir.h: which configuration a program reads
 * by default and where a configuration's data_dir is. One place, so kcobrad
 * (which writes the data) and kcobra (which reads it offline) never disagree
 * about the directory. */
#include "common/data_dir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"

static bool running_from_bindir(void)
{
    char executable[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", executable, sizeof executable - 1);
    if (length <= 0) return false;
    executable[length] = '\0';
    char *slash = strrchr(executable, '/');
    if (slash == NULL) return false;
    *slash = '\0';
    return strcmp(executable, KC_BINDIR) == 0;
}

const char *kci_default_config_path(void)
{
    if (!running_from_bindir() || access(KCI_DEFAULT_CONFIG, R_OK) != 0) return NULL;
    return KCI_DEFAULT_CONFIG;
}

const char *kci_data_dir_default(void)
{
    return running_from_bindir() ? KCI_DATA_DIR_INSTALLED : KCI_DATA_DIR_DEFAULT;
}

char *kci_data_dir_resolve(const char *config_path, const char *data_dir)
{
    const char *slash = config_path != NULL ? strrchr(config_path, '/') : NULL;
    if (data_dir[0] == '/' || slash == NULL) return strdup(data_dir); /* "x.conf": here */
    size_t directory_length = (size_t)(slash - config_path);
    if (directory_length == 0) directory_length = 1; /* "/x.conf": the root */
    size_t size = directory_length + 1 + strlen(data_dir) + 1;
    char *path = malloc(size);
    if (path == NULL) return NULL;
    snprintf(path, size, "%.*s/%s", (int)directory_length, config_path, data_dir);
    return path;
}

kc_err kci_data_dir_from_config(const char *config_path, char **out, char *error, size_t error_size)
{
    kci_conf_value *root = NULL;
    kc_err err = kci_conf_parse_file(config_path, &root, error, error_size);
    if (err != KC_OK) return err;
    const kci_conf_value *value = kci_conf_get(root, "data_dir");
    if (value != NULL && value->kind != KCI_CONF_STRING) {
        snprintf(error, error_size, "%s: data_dir is not a string", config_path);
        kci_conf_free(root);
        return KC_ERR_CONFIG;
    }
    *out = value != NULL ? kci_data_dir_resolve(config_path, value->as.string)
                         : strdup(kci_data_dir_default());
    kci_conf_free(root);
    return *out != NULL ? KC_OK : KC_ERR_NOMEM;
}
