/* Tests for common/random: bytes from the kernel, alphanumeric ids. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/random.h"

static void test_random_bytes_fill_the_buffer_and_differ(void **state)
{
    (void)state;
    unsigned char a[64], b[64], zero[64] = {0};
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    random_bytes(a, sizeof a);
    random_bytes(b, sizeof b);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a); /* 2^-512 to fail by chance */
}

static void test_random_alnum_is_alphanumeric_and_terminated(void **state)
{
    (void)state;
    char id[33];
    memset(id, '!', sizeof id);
    random_alnum(id, 32);
    assert_int_equal(strlen(id), 32);
    for (int i = 0; i < 32; i++)
        assert_true(isalnum((unsigned char)id[i]));
    char other[33];
    random_alnum(other, 32);
    assert_string_not_equal(id, other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes_fill_the_buffer_and_differ),
        cmocka_unit_test(test_random_alnum_is_alphanumeric_and_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
