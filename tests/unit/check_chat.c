/*
 * Unit tests for the pure parts of the chat protocol: the command line
 * parser (protocols/chat/parse.c) and the bus records
 * (protocols/chat/record.c). Lines are copied to buffers of their exact
 * size, so ASan sees any read past the end.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/chat.h"
#include "tests/unit/check_run.h"

/* Parse line (strlen) from an exact copy; the slices are made strings. */
struct parsed {
    enum chat_cmd_type type;
    enum chat_perr err;
    char word[128], target[128], text[1024];
    bool to_room;
};

static void slice_str(char *dst, size_t cap, const char *base,
                      const char *copy, struct chat_slice s)
{
    ck_assert_uint_lt(s.len, cap);
    if (s.len > 0) {
        /* The slice points into the copy that was parsed. */
        ck_assert(s.p >= copy && s.p + s.len <= copy + strlen(base));
        memcpy(dst, s.p, s.len);
    }
    dst[s.len] = '\0';
}

static struct parsed parse(const char *line)
{
    size_t len = strlen(line);
    char *copy = malloc(len > 0 ? len : 1);
    struct chat_cmd cmd;
    struct parsed p;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, line, len);
    chat_parse(copy, len, &cmd);
    p.type = cmd.type;
    p.err = cmd.err;
    p.to_room = cmd.to_room;
    slice_str(p.word, sizeof(p.word), line, copy, cmd.word);
    slice_str(p.target, sizeof(p.target), line, copy, cmd.target);
    slice_str(p.text, sizeof(p.text), line, copy, cmd.text);
    free(copy);
    return p;
}

START_TEST(test_empty)
{
    ck_assert_int_eq(parse("").type, CHAT_CMD_NONE);
    ck_assert_int_eq(parse("\r").type, CHAT_CMD_NONE);
    ck_assert_int_eq(parse("   ").type, CHAT_CMD_NONE);
    ck_assert_int_eq(parse("  \r").type, CHAT_CMD_NONE);
}
END_TEST

START_TEST(test_words_any_case)
{
    static const struct {
        const char *line;
        enum chat_cmd_type type;
    } t[] = {
        {"NICK bob", CHAT_CMD_NICK},   {"nick bob", CHAT_CMD_NICK},
        {"NiCk bob", CHAT_CMD_NICK},   {"join #a", CHAT_CMD_JOIN},
        {"Part #a", CHAT_CMD_PART},    {"msg #a hi", CHAT_CMD_MSG},
        {"names #a", CHAT_CMD_NAMES},  {"quit", CHAT_CMD_QUIT},
        {"QUIT", CHAT_CMD_QUIT},       {"  NICK bob", CHAT_CMD_NICK},
        {"NICKS bob", CHAT_CMD_UNKNOWN}, {"NIC bob", CHAT_CMD_UNKNOWN},
        {"PRIVMSG a b", CHAT_CMD_UNKNOWN}, {"#a", CHAT_CMD_UNKNOWN},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(parse(t[i].line).type == t[i].type, "%s", t[i].line);
    struct parsed p = parse("Hello world\r");
    ck_assert_int_eq(p.type, CHAT_CMD_UNKNOWN);
    ck_assert_str_eq(p.word, "Hello");
}
END_TEST

START_TEST(test_nick)
{
    struct parsed p = parse("NICK bob_2-x\r");

    ck_assert_int_eq(p.err, CHAT_PERR_OK);
    ck_assert_str_eq(p.target, "bob_2-x");
    ck_assert_int_eq(parse("NICK bob  ").err, CHAT_PERR_OK);
    ck_assert_str_eq(parse("NICK   bob  ").target, "bob");
    ck_assert_int_eq(parse("NICK").err, CHAT_PERR_BADNICK);
    ck_assert_int_eq(parse("NICK ").err, CHAT_PERR_BADNICK);
    ck_assert_int_eq(parse("NICK bob smith").err, CHAT_PERR_BADNICK);
    ck_assert_int_eq(parse("NICK b.b").err, CHAT_PERR_BADNICK);
    ck_assert_int_eq(parse("NICK #bob").err, CHAT_PERR_BADNICK);
    ck_assert_int_eq(parse("NICK b\xc3\xa9").err, CHAT_PERR_BADNICK);
    /* 32 is the most. */
    ck_assert_int_eq(parse("NICK 01234567890123456789012345678901").err,
                     CHAT_PERR_OK);
    ck_assert_int_eq(parse("NICK 012345678901234567890123456789012").err,
                     CHAT_PERR_BADNICK);
}
END_TEST

START_TEST(test_rooms)
{
    char line[80];

    ck_assert_int_eq(parse("JOIN #a").err, CHAT_PERR_OK);
    ck_assert_int_eq(parse("JOIN #A_b-9\r").err, CHAT_PERR_OK);
    ck_assert_str_eq(parse("PART #A_b-9\r").target, "#A_b-9");
    ck_assert(parse("NAMES #a").to_room);
    ck_assert_int_eq(parse("JOIN a").err, CHAT_PERR_BADROOM);
    ck_assert_int_eq(parse("JOIN #").err, CHAT_PERR_BADROOM);
    ck_assert_int_eq(parse("JOIN").err, CHAT_PERR_BADROOM);
    ck_assert_int_eq(parse("JOIN ##a").err, CHAT_PERR_BADROOM);
    ck_assert_int_eq(parse("JOIN #a #b").err, CHAT_PERR_BADROOM);
    ck_assert_int_eq(parse("NAMES #a/b").err, CHAT_PERR_BADROOM);
    /* '#' and 64 is the most. */
    memset(line, 0, sizeof(line));
    strcpy(line, "JOIN #");
    memset(line + 6, 'r', 64);
    ck_assert_int_eq(parse(line).err, CHAT_PERR_OK);
    line[70] = 'r';
    ck_assert_int_eq(parse(line).err, CHAT_PERR_BADROOM);
}
END_TEST

START_TEST(test_msg)
{
    struct parsed p = parse("MSG #room hello  there \r");

    ck_assert_int_eq(p.type, CHAT_CMD_MSG);
    ck_assert_int_eq(p.err, CHAT_PERR_OK);
    ck_assert(p.to_room);
    ck_assert_str_eq(p.target, "#room");
    ck_assert_str_eq(p.text, "hello  there ");
    p = parse("msg bob  psst");
    ck_assert_int_eq(p.err, CHAT_PERR_OK);
    ck_assert(!p.to_room);
    ck_assert_str_eq(p.target, "bob");
    ck_assert_str_eq(p.text, "psst");
    ck_assert_int_eq(parse("MSG").err, CHAT_PERR_SYNTAX);
    ck_assert_int_eq(parse("MSG #room").err, CHAT_PERR_SYNTAX);
    ck_assert_int_eq(parse("MSG #room ").err, CHAT_PERR_SYNTAX);
    ck_assert_int_eq(parse("MSG bob").err, CHAT_PERR_SYNTAX);
    ck_assert_int_eq(parse("MSG #ro.om hi").err, CHAT_PERR_BADROOM);
    ck_assert_int_eq(parse("MSG b.b hi").err, CHAT_PERR_BADNICK);
}
END_TEST

START_TEST(test_quit)
{
    struct parsed p = parse("QUIT");

    ck_assert_int_eq(p.type, CHAT_CMD_QUIT);
    ck_assert_int_eq(p.err, CHAT_PERR_OK);
    ck_assert_str_eq(p.text, "");
    ck_assert_str_eq(parse("quit gone fishing\r").text, "gone fishing");
}
END_TEST

/* Every prefix of a few lines: no crash, no read past the end. */
START_TEST(test_prefixes)
{
    static const char *const lines[] = {
        "MSG #room some text here\r", "NICK abcdefghij\r", "JOIN #r\r",
        "QUIT reason\r", "   names   #x   ", "MSG   bob   x",
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        for (size_t n = 0; n <= strlen(lines[i]); n++) {
            char buf[64];
            memcpy(buf, lines[i], n);
            buf[n] = '\0';
            (void)parse(buf);
        }
}
END_TEST

static int slice_is(struct chat_slice s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

START_TEST(test_record_roundtrip)
{
    static const char text[] = "hello\0there";
    struct chat_rec r = {
        .type = CHAT_REC_MSG,
        .uid = 0x0123456789abcdefu,
        .nick = {"alice", 5},
        .arg = {"#room", 5},
        .text = {text, sizeof(text) - 1},
    }, d;
    char buf[256];
    size_t len = chat_rec_encode(&r, buf);

    ck_assert_uint_eq(len, chat_rec_size(&r));
    ck_assert_int_eq(chat_rec_decode(buf, len, &d), 0);
    ck_assert_int_eq(d.type, CHAT_REC_MSG);
    ck_assert(d.uid == r.uid);
    ck_assert(slice_is(d.nick, "alice") && slice_is(d.arg, "#room"));
    ck_assert_uint_eq(d.text.len, sizeof(text) - 1);
    ck_assert(memcmp(d.text.p, text, d.text.len) == 0);
    /* Every truncation that cuts a field is refused, none crashes. */
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n > 0 ? n : 1);
        memcpy(copy, buf, n);
        int rc = chat_rec_decode(copy, n, &d);
        ck_assert(n >= 1 + 8 + 1 + 5 + 1 + 5 ? rc == 0 : rc == -1);
        free(copy);
    }
    buf[0] = 99;
    ck_assert_int_eq(chat_rec_decode(buf, len, &d), -1);
    buf[0] = (char)CHAT_REC_JOIN;
    buf[9] = 40; /* a nick longer than a nick */
    ck_assert_int_eq(chat_rec_decode(buf, len, &d), -1);
}
END_TEST

START_TEST(test_record_sync)
{
    char buf[512];
    struct chat_rec r = {.type = CHAT_REC_SYNC, .flags = CHAT_SYNC_FIRST}, d;
    size_t len = chat_rec_encode(&r, buf);
    struct chat_slice body, nick, room;
    uint64_t uid;

    len += chat_sync_put(buf + len, 7, "bob", "");
    len += chat_sync_put(buf + len, 7, "bob", "#a");
    len += chat_sync_put(buf + len, 9, "eve", "#b");
    ck_assert_uint_eq(len, 2 + chat_sync_entry_size(3, 0) +
                               2 * chat_sync_entry_size(3, 2));
    ck_assert_int_eq(chat_rec_decode(buf, len, &d), 0);
    ck_assert_int_eq(d.type, CHAT_REC_SYNC);
    ck_assert_uint_eq(d.flags, CHAT_SYNC_FIRST);
    body = d.text;
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), 1);
    ck_assert(uid == 7 && slice_is(nick, "bob") && room.len == 0);
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), 1);
    ck_assert(uid == 7 && slice_is(room, "#a"));
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), 1);
    ck_assert(uid == 9 && slice_is(nick, "eve") && slice_is(room, "#b"));
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), 0);
    /* A cut entry is malformed. */
    ck_assert_int_eq(chat_rec_decode(buf, len - 1, &d), 0);
    body = d.text;
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), 1);
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), 1);
    ck_assert_int_eq(chat_sync_next(&body, &uid, &nick, &room), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("chat");

    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_words_any_case);
    tcase_add_test(tc, test_nick);
    tcase_add_test(tc, test_rooms);
    tcase_add_test(tc, test_msg);
    tcase_add_test(tc, test_quit);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_record_roundtrip);
    tcase_add_test(tc, test_record_sync);
    suite_add_tcase(s, tc);
    return check_run(s);
}
