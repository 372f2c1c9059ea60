/*
 * libFuzzer target for tools/json.c, the JSON reader of weftctl.
 *
 * The input is the text to parse, copied to a buffer of exactly its size
 * so that the sanitizer sees any read past the end. When json_parse
 * refuses it, the error must name an offset within the input. When it
 * accepts it:
 *   - the tree is consistent: member counts match the sibling chains,
 *     strings are NUL-terminated at their length, only object members
 *     have names, json_get finds the first member of each name, and an
 *     exact integer has the value of its double;
 *   - the tree is written back as compact JSON (strings re-escaped,
 *     numbers by their lexeme) and parsed again: the second tree equals
 *     the first, and writing it gives the same text;
 *   - an object or array at the top cannot lose its closing bracket and
 *     still parse.
 *
 * Build and run from the top of the source tree (README.md in this
 * directory says more; the scratch corpus comes first, the seeds second):
 *
 *   clang -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -I. tools/json.c tests/fuzz/fuzz_json.c -o /tmp/fuzz_json
 *   mkdir -p /tmp/corpus_json
 *   /tmp/fuzz_json -max_total_time=60 /tmp/corpus_json tests/fuzz/corpus_json
 */
#undef NDEBUG
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A growing output buffer. */
struct out {
    char *buf;
    size_t len, cap;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (o->cap - o->len < n) {
        o->cap = 2 * (o->len + n) + 16;
        o->buf = realloc(o->buf, o->cap);
        assert(o->buf != NULL);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* A string, quoted: '"', '\\' and control bytes escaped, the rest raw
 * (the reader only hands out valid UTF-8). */
static void write_string(struct out *o, const char *s, size_t n)
{
    char esc[8];

    out_put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            out_put(o, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            out_put(o, esc, 6);
        } else {
            out_put(o, s + i, 1);
        }
    }
    out_put(o, "\"", 1);
}

static void write_value(struct out *o, const struct json_doc *d,
                        const struct json_node *n)
{
    const struct json_node *c;

    switch (n->type) {
    case JSON_NULL: out_put(o, "null", 4); break;
    case JSON_BOOL: out_put(o, n->b ? "true" : "false", n->b ? 4 : 5); break;
    case JSON_NUMBER: out_put(o, n->str, n->len); break;
    case JSON_STRING: write_string(o, n->str, n->len); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        out_put(o, n->type == JSON_ARRAY ? "[" : "{", 1);
        for (c = json_first(d, n); c != NULL; c = json_next(d, c)) {
            if (c != json_first(d, n))
                out_put(o, ",", 1);
            if (n->type == JSON_OBJECT) {
                write_string(o, c->key, c->key_len);
                out_put(o, ":", 1);
            }
            write_value(o, d, c);
        }
        out_put(o, n->type == JSON_ARRAY ? "]" : "}", 1);
        break;
    }
}

/* The node's own invariants, and its children's, recursively. */
static void check_node(const struct json_doc *d, const struct json_node *n,
                       int depth)
{
    assert(depth < JSON_MAX_DEPTH);
    if (n->type == JSON_STRING || n->type == JSON_NUMBER) {
        assert(n->str != NULL && n->str[n->len] == '\0');
    } else {
        assert(n->str == NULL);
    }
    if (n->type == JSON_NUMBER && n->integral) {
        double v = (double)n->mag;
        assert(n->num == (n->neg ? -v : v));
    }
    if (n->type != JSON_ARRAY && n->type != JSON_OBJECT) {
        assert(json_first(d, n) == NULL);
        return;
    }
    size_t count = 0;
    for (const struct json_node *c = json_first(d, n); c != NULL;
         c = json_next(d, c)) {
        count++;
        if (n->type == JSON_ARRAY) {
            assert(c->key == NULL);
        } else {
            assert(c->key != NULL && c->key[c->key_len] == '\0');
            /* json_get takes a C string: only names without a NUL. */
            const struct json_node *hit = json_get(d, n, c->key);
            if (strlen(c->key) == c->key_len) {
                assert(hit != NULL && hit->key_len == c->key_len);
                for (const struct json_node *e = json_first(d, n); e != hit;
                     e = json_next(d, e))
                    assert(e->key_len != c->key_len ||
                           memcmp(e->key, c->key, c->key_len) != 0);
            }
        }
        check_node(d, c, depth + 1);
    }
    assert(count == n->len);
}

/* Two trees are the same values, names and lexemes. */
static void check_same(const struct json_doc *a, const struct json_node *x,
                       const struct json_doc *b, const struct json_node *y)
{
    assert(x->type == y->type && x->len == y->len && x->b == y->b);
    assert(x->key_len == y->key_len);
    if (x->key_len > 0)
        assert(memcmp(x->key, y->key, x->key_len) == 0);
    if (x->str != NULL)
        assert(memcmp(x->str, y->str, x->len) == 0);
    if (x->type == JSON_NUMBER)
        assert(x->integral == y->integral && x->mag == y->mag &&
               x->neg == y->neg && memcmp(&x->num, &y->num,
                                          sizeof(x->num)) == 0);
    const struct json_node *c = json_first(a, x), *e = json_first(b, y);
    for (; c != NULL && e != NULL; c = json_next(a, c), e = json_next(b, e))
        check_same(a, c, b, e);
    assert(c == NULL && e == NULL);
}

/* Parsing size bytes of data in a buffer of exactly that size. */
static int parse_copy(struct json_doc *d, const void *data, size_t size,
                      char *err, size_t errlen)
{
    char *copy = malloc(size > 0 ? size : 1);
    int rc;

    assert(copy != NULL);
    memcpy(copy, data, size);
    rc = json_parse(d, copy, size, err, errlen);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_doc d, again;
    struct out first = { 0 }, second = { 0 };
    char err[128];
    unsigned long at;

    if (parse_copy(&d, data, size, err, sizeof(err)) == -1) {
        assert(sscanf(err, "offset %lu: ", &at) == 1 && at <= size);
        assert(d.nodes == NULL && d.pool == NULL);
        return 0;
    }
    const struct json_node *root = json_root(&d);
    assert(root != NULL);
    check_node(&d, root, 0);

    write_value(&first, &d, root);
    assert(parse_copy(&again, first.buf, first.len, err, sizeof(err)) == 0);
    check_same(&d, root, &again, json_root(&again));
    write_value(&second, &again, json_root(&again));
    assert(second.len == first.len &&
           memcmp(first.buf, second.buf, first.len) == 0);

    if (root->type == JSON_ARRAY || root->type == JSON_OBJECT) {
        struct json_doc cut;
        assert(parse_copy(&cut, first.buf, first.len - 1, err,
                          sizeof(err)) == -1);
    }
    json_free(&d);
    json_free(&again);
    free(first.buf);
    free(second.buf);
    return 0;
}
