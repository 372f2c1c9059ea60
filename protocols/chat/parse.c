/*
 * chat: a client's command line into a struct chat_cmd. A pure function
 * of (line, len): no allocation, the result points into the line.
 */
#include <string.h>
#include <strings.h>

#include "protocols/chat/chat.h"

static const struct {
    const char *word;
    enum chat_cmd_type type;
} chat_words[] = {
    {"NICK", CHAT_CMD_NICK},   {"JOIN", CHAT_CMD_JOIN},
    {"PART", CHAT_CMD_PART},   {"MSG", CHAT_CMD_MSG},
    {"NAMES", CHAT_CMD_NAMES}, {"QUIT", CHAT_CMD_QUIT},
};

static bool chat_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool chat_chars_valid(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!chat_name_char(p[i]))
            return false;
    return true;
}

bool chat_nick_valid(const char *p, size_t len)
{
    return len >= 1 && len <= CHAT_NICK_MAX && chat_chars_valid(p, len);
}

bool chat_room_valid(const char *p, size_t len)
{
    return len >= 2 && len <= CHAT_ROOM_MAX && p[0] == '#' &&
           chat_chars_valid(p + 1, len - 1);
}

/* The word at the start of s (up to a space), and s moved past it and
 * the spaces after it. */
static struct chat_slice chat_word(struct chat_slice *s)
{
    struct chat_slice w = {s->p, 0};

    while (w.len < s->len && s->p[w.len] != ' ')
        w.len++;
    s->p += w.len;
    s->len -= w.len;
    while (s->len > 0 && s->p[0] == ' ') {
        s->p++;
        s->len--;
    }
    return w;
}

/* s without the spaces at its end. */
static struct chat_slice chat_trim_end(struct chat_slice s)
{
    while (s.len > 0 && s.p[s.len - 1] == ' ')
        s.len--;
    return s;
}

static enum chat_cmd_type chat_word_type(struct chat_slice w)
{
    for (size_t i = 0; i < sizeof(chat_words) / sizeof(chat_words[0]); i++)
        if (strlen(chat_words[i].word) == w.len &&
            strncasecmp(chat_words[i].word, w.p, w.len) == 0)
            return chat_words[i].type;
    return CHAT_CMD_UNKNOWN;
}

/* MSG target text: a room or a nick, then the rest of the line. */
static void chat_parse_msg(struct chat_slice rest, struct chat_cmd *cmd)
{
    cmd->target = chat_word(&rest);
    cmd->text = rest;
    cmd->to_room = cmd->target.len > 0 && cmd->target.p[0] == '#';
    if (cmd->target.len == 0 || cmd->text.len == 0)
        cmd->err = CHAT_PERR_SYNTAX;
    else if (cmd->to_room && !chat_room_valid(cmd->target.p, cmd->target.len))
        cmd->err = CHAT_PERR_BADROOM;
    else if (!cmd->to_room &&
             !chat_nick_valid(cmd->target.p, cmd->target.len))
        cmd->err = CHAT_PERR_BADNICK;
}

void chat_parse(const char *line, size_t len, struct chat_cmd *cmd)
{
    struct chat_slice rest = {line, len};

    *cmd = (struct chat_cmd){.type = CHAT_CMD_NONE};
    if (rest.len > 0 && rest.p[rest.len - 1] == '\r')
        rest.len--;
    while (rest.len > 0 && rest.p[0] == ' ') {
        rest.p++;
        rest.len--;
    }
    if (rest.len == 0)
        return;
    cmd->word = chat_word(&rest);
    cmd->type = chat_word_type(cmd->word);
    switch (cmd->type) {
    case CHAT_CMD_NICK:
        cmd->target = chat_trim_end(rest);
        if (!chat_nick_valid(cmd->target.p, cmd->target.len))
            cmd->err = CHAT_PERR_BADNICK;
        break;
    case CHAT_CMD_JOIN:
    case CHAT_CMD_PART:
    case CHAT_CMD_NAMES:
        cmd->target = chat_trim_end(rest);
        cmd->to_room = true;
        if (!chat_room_valid(cmd->target.p, cmd->target.len))
            cmd->err = CHAT_PERR_BADROOM;
        break;
    case CHAT_CMD_MSG:
        chat_parse_msg(rest, cmd);
        break;
    case CHAT_CMD_QUIT:
        cmd->text = rest;
        break;
    default:
        break;
    }
}
