/*
 * Fuzz the settings-file reader (lethe_settings_read in src/unlearn/settings.c, which
 * reads configs/tuned.json for `lethe bench` and `lethe demo`). The input is
 * written to a scratch file and read for every registered method under both
 * scenarios. Property: a configuration it accepts passes
 * lethe_unlearn_validate, and its method is the registry's own (the one
 * asked for, or the one a variant entry names).
 */
#include "lethe.h"
#include "fuzz.h"

static char path[512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_scratch(path, sizeof path, "tuned.json");
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const scenarios[] = {"fmnist-cw", "fmnist-rnd"};
    fuzz_write(path, data, size);
    int nm;
    const char *const *methods = lethe_methods(&nm);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < nm; i++) {
            lethe_unlearn_config cfg;
            lethe_unlearn_config_default(&cfg);
            cfg.method = methods[i];
            if (lethe_settings_read(path, scenarios[s], methods[i], &cfg) == LETHE_OK) {
                int known = 0;
                for (int k = 0; k < nm; k++) known |= cfg.method == methods[k];
                FUZZ_CHECK(known);
                FUZZ_CHECK(lethe_unlearn_validate(&cfg) == LETHE_OK);
            }
        }
    return 0;
}
