/*
 * Content types of static files, from the file name's extension.
 */
#ifndef WEFT_PROTOCOLS_HTTP_MIME_H
#define WEFT_PROTOCOLS_HTTP_MIME_H

#include <stddef.h>

/*
 * The media type for name[0..len) from its last extension, matched
 * without regard to case ("index.HTML" is text/html; charset=utf-8);
 * "application/octet-stream" when the extension is unknown or absent.
 * The extension follows the last '.' after the last '/'; a name starting
 * with its only '.' (".bashrc") or ending with '.' ("a.") has none, and
 * "a.tar.gz" is gz.
 * Text types carry "; charset=utf-8". The table covers at least html,
 * htm, css, js, mjs, json, txt, xml, svg, png, jpg, jpeg, gif, webp, ico,
 * avif, woff, woff2, ttf, otf, pdf, wasm, mp4, webm, mp3, ogg, wav, zip,
 * gz, tar, csv, md, map.
 */
const char *http_mime_type(const char *name, size_t len);

#endif
