/*
 * What a caller from another language needs to hold Lethe's structs
 * without mirroring them: their sizes by name, and the library's version
 * (a binding refuses a library of another major version).
 */
#include <string.h>

#include "lethe.h"

const char *lethe_version(void) { return LETHE_VERSION; }

size_t lethe_sizeof(const char *type)
{
    static const struct { const char *name; size_t size; } types[] = {
        {"lethe_dataset", sizeof(lethe_dataset)},
        {"lethe_subset", sizeof(lethe_subset)},
        {"lethe_forget_spec", sizeof(lethe_forget_spec)},
        {"lethe_metadata", sizeof(lethe_metadata)},
        {"lethe_metrics", sizeof(lethe_metrics)},
        {"lethe_igs", sizeof(lethe_igs)},
        {"lethe_unlearn_config", sizeof(lethe_unlearn_config)},
        {"lethe_unlearn_result", sizeof(lethe_unlearn_result)},
        {"lethe_rng", sizeof(lethe_rng)},
        {"lethe_stream", sizeof(lethe_stream)},
    };
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, type) == 0) return types[i].size;
    return 0;
}
