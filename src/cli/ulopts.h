/* Unlearning options shared by several subcommands. */
#ifndef LETHE_CLI_ULOPTS_H
#define LETHE_CLI_ULOPTS_H

#include "cli/cli.h"

#define CLI_UNLEARN_OPTS                                                                   \
    {"method", "NAME", "eupmu | eupmu-fast | eupmu-lookahead | ungrad | ungrad-mixed | ft | "\
                       "ga | rl | neggrad+ | salun | l1-sparse | esd (diffusion)", 0},       \
    {"loss", "NAME", "unlearning loss of eupmu*/ungrad: rl | ga | nc (default rl)", 0},       \
    {"lr", "X", "learning rate α (default 0.01, or the tuned value)", 0},                    \
    {"schedule", "NAME", "constant | cosine | step (default constant)", 0},                  \
    {"momentum", "X", "SGD momentum (default 0: plain SGD, as the theory assumes)", 0},      \
    {"optim", "NAME", "sgd | adam: the optimiser of the steps (default sgd)", 0},            \
    {"adam-beta1", "X", "Adam's β1 (default 0.9)", 0},                                       \
    {"adam-beta2", "X", "Adam's β2 (default 0.999)", 0},                                     \
    {"wd", "X", "weight decay (Adam: decoupled, AdamW's; default 0)", 0},                    \
    {"clip-grad", "N", "scale each step's direction to norm ≤ N (default 0: off)", 0},       \
    {"lambda-form", "NAME", "paper (§3, default) | log (the authors' code, §7): EUPMU family", 0},\
    {"w0", "X", "log form: initial weight w of log ℓ_r (default 0)", 0},                    \
    {"w-lr", "X", "log form: Adam learning rate of w (default 0.025)", 0},                   \
    {"w-decay", "X", "log form: weight decay of w (default 0.01)", 0},                       \
    {"retain-weight", "X", "diffusion: ℓ_r = X·denoising MSE, in every method (default 1)", 0},\
    {"esd-eta", "X", "ESD: negative-guidance strength η (default 1)", 0},                    \
    {"eps", "X", "ε, tolerated retain-loss increase rate (default 0.01)", 0},                \
    {"eps-budget", "X", "ε_max: choose ε_t so that Σ α_t ε_t = ε_max", 0},                  \
    {"beta", "X", "β_0 of the λ update (default 1)", 0},                                     \
    {"beta-schedule", "NAME", "decay (β_0·α_t·(t+1)^-1/3) | constant", 0},                   \
    {"lambda0", "X", "initial λ (default 1)", 0},                                            \
    {"lambda-max", "X", "clip bound D of λ (default 100)", 0},                               \
    {"a", "X", "NegGrad+ weight a in (0, 1) (default 0.9)", 0},                              \
    {"gamma", "X", "SalUn mask fraction (default 0.5)", 0},                                  \
    {"l1", "X", "l1-sparse initial penalty (default 5e-4)", 0},                              \
    {"ungrad-form", "NAME", "grouped (one backward) | mixed (two, autograd's way)", 0},      \
    {"steps", "N", "steps (default 5·ceil(|D_f|/batch))", 0},                               \
    {"batch", "N", "batch per set and step (default 128)", 0},                               \
    {"seed", "N", "seed of batches and random labels (default 0)", 0}

/* Fill c from the options (c holds the defaults to use when absent).
 * Returns 0, or the exit status after printing the error. */
int cli_unlearn_config(const cli_args *a, lethe_unlearn_config *c);
/* Non-zero (after printing) if the model cannot take the data set. */
int cli_check_model_data(const char *cmd, const char *path, const lethe_metadata *md,
                         const lethe_model *m, const lethe_dataset *ds);

#endif
