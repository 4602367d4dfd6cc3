// Public. Static files under a directory (Go's http.FileServer and http.ServeContent, with
// nginx's rules where the two differ).
//
//   nbio::http::file_server_options files;
//   files.strip_prefix = "/static/";
//   nbio::http::serve_mux mux;
//   mux.handle("GET /static/", nbio::http::file_server("/srv/www", files));
//
// What a request gets:
//   - GET and HEAD only; any other method 405 with "Allow: GET, HEAD".
//   - The path is percent-decoded, strip_prefix removed (a path outside the prefix: 404), and
//     the rest opened relative to the root. A decoded path with a NUL byte, a backslash or a
//     ".." segment gets 404 (not 403, so nothing about the tree is revealed), as does a
//     symbolic link that leads outside the root, and anything that is neither a regular file
//     nor a directory (a FIFO, a device). Symbolic links inside the root are followed where the
//     kernel has openat2(2) (Linux 5.6); without it no symbolic link below the root is followed.
//   - A directory: "/dir" gets 301 to "dir/" (relative, query kept); "/dir/" serves its index
//     file, else a listing (list_directories), else 403 as nginx does (Go would list).
//   - A file: 200 with Content-Type from its extension (".html" -> "text/html; charset=utf-8",
//     unknown -> "application/octet-stream"), Content-Length, Last-Modified (its mtime),
//     ETag, Accept-Ranges: bytes and, when set, Cache-Control. The body goes out with
//     response_writer::send_file: the handler never reads the file (the server uses sendfile).
//   - Validators: the ETag is strong and has nginx's form, "<mtime hex>-<size hex>" (seconds
//     of st_mtime, st_size), so a file replaced within the same second by one of the same size
//     keeps its ETag, as with nginx. Preconditions in RFC 9110 13.2.2 order: If-Match (strong
//     comparison, "*" and lists) failing -> 412; else (no If-Match) If-Unmodified-Since older
//     than the mtime -> 412; If-None-Match (weak comparison, "*" and lists) matching -> 304;
//     else (no If-None-Match) If-Modified-Since not older than the mtime -> 304. A 304
//     carries ETag, Last-Modified and Cache-Control, no body. Dates are accepted in the three
//     formats of RFC 9110 5.6.7; an unparseable one is ignored.
//   - Range (GET only, RFC 9110 14): "bytes=a-b", "a-", "-n". One satisfiable range (several
//     that overlap or touch are merged into one) -> 206 with Content-Range: bytes a-b/size.
//     Several disjoint ranges -> 200 with the whole file: multipart/byteranges is not
//     implemented (the writer carries one file body, and the parts would have to be copied).
//     No satisfiable range -> 416 with Content-Range: bytes */size. A malformed Range, another
//     unit, a Range on HEAD, or on an empty file is ignored (200 whole). If-Range (an ETag,
//     compared strongly, or a date equal to Last-Modified) that does not match -> 200 whole.
//   - Errors: no such file (ENOENT, ENOTDIR, ELOOP) 404 "404 page not found\n", EACCES and
//     EPERM 403, anything else 500; bodies never name a filesystem path.
//
// Cost: per request, one openat2 (or one openat per path segment without openat2), one fstat
// and a few small strings; a directory listing reads the whole directory into memory.
//
// Thread affinity: the handler is const and may run on any number of threads at once. It
// holds the root directory open (a shared descriptor, closed when the last copy of the
// handler goes): renaming or replacing the root's path later does not move what is served.
#pragma once

#include <string>

#include "nbio/http/response_writer.hpp"

namespace nbio::http {

struct file_server_options {
  // The file served for a directory ("/dir/" -> "/dir/index.html"); "" disables it. A plain
  // name: no '/', not "." or "..".
  std::string index = "index.html";
  // A directory without an index gets a simple HTML listing (names escaped, sorted, directories
  // with a trailing '/') instead of 403.
  bool list_directories = false;
  // Removed from the decoded request path before it is mapped ("/static/": "/static/css/a.css"
  // -> "css/a.css"; "/static" -> the root, redirected to "static/"). A path that does not start
  // with it gets 404. "" or "/": nothing is removed.
  std::string strip_prefix;
  // The Cache-Control value of file responses and their 304s ("max-age=3600"); "" sends none.
  std::string cache_control;
};

// A handler serving the files under `root`, which is opened now. Throws std::invalid_argument
// when `root` is not a directory that can be opened, or options.index is not a plain name.
handler file_server(std::string root, file_server_options options = {});

}  // namespace nbio::http
