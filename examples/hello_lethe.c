/* The smallest program against an installed Lethe: the λ controller of
 * EUPMU (ALGORITHM.md §3) driven by made-up loss values, and UNGrad's λ*.
 *     cc hello_lethe.c $(pkg-config --cflags --libs lethe) -o hello_lethe */
#include <stdio.h>

#include <lethe.h>

int main(void)
{
    lethe_igs igs;
    if (lethe_init(0) != LETHE_OK || lethe_igs_init(&igs, 0.01f, 1.0f, 1.0f, 100.0f) != LETHE_OK) {
        fprintf(stderr, "hello_lethe: %s\n", lethe_last_error());
        return 1;
    }
    /* The retain loss rises at each step: λ must grow. */
    float before = 0.30f;
    for (int t = 0; t < 5; t++) {
        float after = before + 0.01f;
        if (lethe_igs_observe(&igs, before, after, 0.1f) != LETHE_OK) return 1;
        before = after;
    }
    float lam = lethe_igs_weight(&igs);
    float star = lethe_ungrad_lambda(-2.0, 4.0, 0.0f, 100.0f);   /* −⟨g_r, g_u⟩/‖g_r‖² = 0.5 */
    printf("lethe %s: lambda after 5 rising steps %.4f (> 1: %s), UNGrad lambda* %.2f\n",
           LETHE_VERSION, lam, lam > 1.0f ? "yes" : "no", star);
    return lam > 1.0f && star == 0.5f ? 0 : 1;
}
