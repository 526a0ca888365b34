/*
 * The library's error setter: internal, so neither in lethe.h nor exported
 * by liblethe.so (hidden visibility; abi/lethe.map lists it local too).
 * A failing call sets the thread's last error (lethe_last_error) and
 * returns its status in one line:
 *
 *     return lethe_fail(LETHE_ERR_ARG, "batch %d: not positive", bs);
 *
 * The name keeps the lethe_ prefix of the ~600 calls made before it was
 * internal; new internal helpers take their module's prefix (core_, ul_, …).
 */
#ifndef LETHE_CORE_FAIL_H
#define LETHE_CORE_FAIL_H

#include "lethe.h"

/* Set the message (printf-style) and return `s`. */
__attribute__((visibility("hidden"), format(printf, 2, 3)))
lethe_status lethe_fail(lethe_status s, const char *fmt, ...);

#endif
