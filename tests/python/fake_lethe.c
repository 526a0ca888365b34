/* Not Lethe: a library that answers lethe_version() with FAKE_VERSION and
 * has nothing else of the API but lethe_sizeof. tests/test_python.c builds
 * it twice (1.0.0: another major version; 0.0.1: a 0.x that lacks the
 * calls the binding needs) for check_binding.py, which must refuse both
 * with a LetheError, never crash. */
#include <stddef.h>

const char *lethe_version(void);
size_t lethe_sizeof(const char *type);

const char *lethe_version(void) { return FAKE_VERSION; }
size_t lethe_sizeof(const char *type) { return type ? 8 : 0; }
