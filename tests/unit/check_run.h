/* The main() tail shared by the unit test programs. */
#ifndef WEFT_TESTS_CHECK_RUN_H
#define WEFT_TESTS_CHECK_RUN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run every test of s; the exit status for main. */
static inline int check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* prefix followed by the six placeholder characters mkstemp/mkdtemp want. */
static inline void check_tmp_template(char *buf, size_t size,
                                      const char *prefix)
{
    char x[7];

    memset(x, 'X', 6);
    x[6] = '\0';
    snprintf(buf, size, "%s%s", prefix, x);
}

#endif
