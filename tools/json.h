/*
 * A small JSON reader (RFC 8259) for weftctl: enough to walk the control
 * socket's replies and print them as tables.
 *
 * json_parse() is a pure function of (buf, len): it reads one complete
 * document into a tree of nodes held by a struct json_doc, and never
 * looks past len (buf needs no terminating NUL). Strings are decoded
 * (escapes, surrogate pairs) and must be valid UTF-8. Integers are kept
 * exactly, beside their double value, because counters go past 2^53.
 */
#ifndef WEFT_TOOLS_JSON_H
#define WEFT_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Containers deeper than this are refused (the parser recurses). */
#define JSON_MAX_DEPTH 64

enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
};

/*
 * One value. Nodes live in the document's array and point at each other
 * by index (0 = none: the root, node 0, is nobody's child).
 */
struct json_node {
    enum json_type type;
    const char *key;  /* member of an object: its decoded name, else NULL */
    size_t key_len;
    const char *str;  /* string: decoded text; number: its lexeme; both
                         NUL-terminated. NULL for other types */
    size_t len;       /* bytes of str, or members of an array/object */
    bool b;           /* JSON_BOOL */
    double num;       /* JSON_NUMBER, as strtod reads it */
    bool integral;    /* number written without fraction or exponent,
                         its magnitude fitting in 64 bits */
    bool neg;         /* number starts with '-' */
    uint64_t mag;     /* magnitude when integral */
    size_t first;     /* first member or element */
    size_t next;      /* next sibling */
};

/* A parsed document; owns its nodes and the text they point into. */
struct json_doc {
    struct json_node *nodes;
    size_t n, cap;
    char *pool;       /* decoded strings and number lexemes */
    size_t pool_len, pool_cap;
};

/*
 * Parse the len bytes at buf as one JSON value with optional whitespace
 * around it. Returns 0, or -1 with "offset N: what" in err (errlen bytes)
 * and d left empty. Free a parsed d with json_free.
 */
int json_parse(struct json_doc *d, const char *buf, size_t len, char *err,
               size_t errlen);

/* Release what d holds; d may be empty (zeroed) or freed already. */
void json_free(struct json_doc *d);

/* The root value of a parsed document. */
const struct json_node *json_root(const struct json_doc *d);

/* First member or element of n, or NULL (also for a NULL n). */
const struct json_node *json_first(const struct json_doc *d,
                                   const struct json_node *n);

/* The sibling after n, or NULL. */
const struct json_node *json_next(const struct json_doc *d,
                                  const struct json_node *n);

/*
 * The first member of object obj named key, or NULL when obj is NULL,
 * not an object, or has no such member.
 */
const struct json_node *json_get(const struct json_doc *d,
                                 const struct json_node *obj,
                                 const char *key);

/* The decoded text of a string node, or NULL (also for a NULL n). */
const char *json_str(const struct json_node *n);

/* Store n's value and return 0, or return -1 when n (possibly NULL) has
 * another type or, for integers, is not an exact integer in range. */
int json_uint(const struct json_node *n, uint64_t *out);
int json_int(const struct json_node *n, int64_t *out);
int json_num(const struct json_node *n, double *out);
int json_bool(const struct json_node *n, bool *out);

#endif
