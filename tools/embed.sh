#!/bin/sh
# embed.sh SYMBOL FILE: the contents of FILE as a C string constant named
# SYMBOL, on standard output (for the built-in configuration and the
# admin listener's page).
set -e
printf '/* Generated from %s: do not edit. */\n' "$2"
printf 'extern const char %s[];\nconst char %s[] =\n' "$1" "$1"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$2"
printf '    ;\n'
