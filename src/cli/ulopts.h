/* Unlearning options shared by several subcommands. */
#ifndef LETHE_CLI_ULOPTS_H
#define LETHE_CLI_ULOPTS_H

#include "cli/cli.h"

/* --method and every option of the unlearning methods, made from the
 * methods' tables (lethe_all_params) when the command's table is parsed. */
#define CLI_UNLEARN_OPTS {"", NULL, NULL, CLI_ROW_UNLEARN}

/* Fill c from the options: --method, then each method option given, set
 * by name (lethe_unlearn_set: an option the method does not take, or a
 * value out of its range, is refused naming both); c keeps what is not
 * given. Returns 0, or the exit status (2) after printing the error. */
int cli_unlearn_config(const cli_args *a, lethe_unlearn_config *c);
/* The same with c->method as the caller set it (a tuned variant's name,
 * eupmu-log, resolved into its method); --method is not read. */
int cli_unlearn_options(const cli_args *a, lethe_unlearn_config *c);
/* The diagnostics line of a run made with cfg.diagnostics (gradient
 * conflicts, |λ − λ*|) and the audit line, on stdout; nothing otherwise. */
void cli_print_diagnostics(const lethe_unlearn_result *r);
/* Non-zero (after printing) if the model cannot take the data set. */
int cli_check_model_data(const char *cmd, const char *path, const lethe_metadata *md,
                         const lethe_model *m, const lethe_dataset *ds);

#endif
