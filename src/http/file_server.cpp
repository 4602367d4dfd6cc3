// Private. file_server: path mapping, safe opening beneath the root, conditional and range
// requests (their parsers: date.hpp, etag.hpp, byte_range.hpp) and directory listings.
#include "nbio/http/file_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/byte_range.hpp"
#include "http/date.hpp"
#include "http/etag.hpp"
#include "http/lexical.hpp"
#include "nbio/http/error.hpp"
#include "nbio/http/parser.hpp"
#include "nbio/http/request.hpp"

#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif

namespace nbio::http {
namespace {

using detail::byte_range;
using detail::etag_listed;
using detail::format_http_date;
using detail::parse_http_date;
using detail::parse_range;
using detail::range_answer;
using detail::trim_ows;

// --- descriptors and opening beneath the root ---------------------------------------------

class unique_fd {
 public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_;
};

// Flags of the descriptor a response is served from. O_NONBLOCK so that opening a FIFO
// someone left in the tree does not block the loop (it is refused after fstat); it has no
// effect on regular files or sendfile.
constexpr int open_flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

// Cleared when the kernel says openat2 does not exist (ENOSYS, Linux < 5.6), so later opens go
// straight to the fallback.
std::atomic<bool> openat2_usable{true};

// Opens `rel` (no ".." segment, not absolute: checked before) beneath the directory `root`.
//
// Why this way: a request path is attacker-chosen and the tree may hold symbolic links, so the
// check has to be made by the kernel during the lookup, not by a string check before it or a
// realpath() comparison after it (both race with a rename or a new link). openat2's
// RESOLVE_BENEATH fails (EXDEV) any lookup that would leave `root`, through ".." or through a
// symbolic link, absolute or relative, while links that stay inside are followed;
// RESOLVE_NO_MAGICLINKS refuses /proc-style links. Without openat2 the path is walked one
// segment at a time with O_NOFOLLOW, so no symbolic link is followed at all: stricter than
// needed (links inside the root are refused too) but safe without the kernel's help.
unique_fd open_beneath(int root, const std::string& rel) {
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
  if (openat2_usable.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(open_flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd;
    do {
      fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof(how));
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));  // EAGAIN: a rename raced
    if (fd >= 0) return unique_fd(static_cast<int>(fd));
    if (errno == EXDEV) errno = ENOENT;  // escaped the root: answered as not found
    if (errno != ENOSYS && errno != EPERM) return unique_fd();
    // ENOSYS: an old kernel. EPERM: a seccomp filter that does not know openat2 (older
    // container runtimes answer that for unknown system calls); the walk below is safe there.
    if (errno == ENOSYS) openat2_usable.store(false, std::memory_order_relaxed);
  }
#endif
  unique_fd dir;
  int at = root;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = rel.find('/', start);
    const std::string segment =
        rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (slash == std::string::npos) {
      const int fd = ::openat(at, segment.empty() ? "." : segment.c_str(), open_flags | O_NOFOLLOW);
      return unique_fd(fd);  // ELOOP for a symbolic link
    }
    start = slash + 1;
    if (segment.empty() || segment == ".") continue;
    // O_PATH needs no read permission (search permission is what a lookup needs); with
    // O_NOFOLLOW it opens a link itself, which fstat then shows.
    unique_fd next(::openat(at, segment.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return unique_fd();
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) return unique_fd();
    if (!S_ISDIR(st.st_mode)) {
      errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
      return unique_fd();
    }
    dir = std::move(next);
    at = dir.get();
  }
}

// --- answers -------------------------------------------------------------------------------

void answer(response_writer& w, int status) {
  w.reset();
  w.set_header("Content-Type", "text/plain; charset=utf-8");
  w.set_header("X-Content-Type-Options", "nosniff");
  w.write_header(status);
  if (status == 404) {
    w.write("404 page not found\n");  // Go's words, as serve_mux answers
  } else {
    w.write(std::to_string(status));
    w.write(" ");
    w.write(reason_phrase(status));
    w.write("\n");
  }
}

// The status for a failed open or lookup. Not-found-like errors include ELOOP (a link refused)
// and ENAMETOOLONG; nothing says which path failed.
int status_for(int error) noexcept {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EXDEV:
      return 404;
    case EACCES:
    case EPERM:
      return 403;
    default:
      return 500;
  }
}

// --- MIME types ----------------------------------------------------------------------------

struct mime_entry {
  std::string_view ext;
  std::string_view type;
};

constexpr std::array<mime_entry, 28> mime_types{{
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "text/xml; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"mp3", "audio/mpeg"},
}};

std::string_view content_type(std::string_view name) noexcept {
  const std::size_t dot = name.rfind('.');
  if (dot != std::string_view::npos && name.find('/', dot) == std::string_view::npos) {
    const std::string_view ext = name.substr(dot + 1);
    for (const mime_entry& m : mime_types)
      if (iequals(m.ext, ext)) return m.type;
  }
  return "application/octet-stream";
}

// --- directory listings --------------------------------------------------------------------

void append_html_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    const std::string_view entity = c == '<'    ? "&lt;"
                                    : c == '>'  ? "&gt;"
                                    : c == '&'  ? "&amp;"
                                    : c == '"'  ? "&#34;"
                                    : c == '\'' ? "&#39;"
                                                : "";
    if (entity.empty())
      out += c;
    else
      out += entity;
  }
}

// A path segment as a relative URL reference: every byte outside the unreserved set escaped
// (so ':' cannot start a scheme, '?' and '#' stay in the name).
void append_url_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
}

// Go's listing: a <pre> of links, names sorted, directories with a trailing '/'.
void list_directory(response_writer& w, int dir_fd) {
  const int copy = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  DIR* d = copy < 0 ? nullptr : ::fdopendir(copy);
  if (!d) {
    if (copy >= 0) ::close(copy);
    answer(w, status_for(errno));
    return;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    bool dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      dir = ::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    names.push_back(std::string(name) + (dir ? "/" : ""));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::string page =
      "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n";
  for (const std::string& name : names) {
    const bool dir = name.back() == '/';
    const std::string_view bare = std::string_view(name).substr(0, name.size() - (dir ? 1 : 0));
    std::string href;
    append_url_escaped(href, bare);
    if (dir) href += '/';
    page += "<a href=\"./";
    append_html_escaped(page, href);
    page += "\">";
    append_html_escaped(page, name);
    page += "</a>\n";
  }
  page += "</pre>\n";
  w.set_header("Content-Type", "text/html; charset=utf-8");
  w.write(page);
}

// --- the handler ---------------------------------------------------------------------------

struct file_server_state {
  unique_fd root;
  file_server_options options;
  std::string prefix;  // strip_prefix without its trailing '/'s

  void serve(response_writer& w, request& r) const;
  // `name`: the file's path (its extension gives the Content-Type).
  void serve_file(response_writer& w, request& r, int fd, const struct stat& st,
                  std::string_view name) const;
};

// The decoded path relative to the root ("" for the root itself), or nothing: 404.
std::optional<std::string> map_path(std::string_view raw, std::string_view prefix) {
  if (raw.empty() || raw.front() != '/') return std::nullopt;  // authority- or asterisk-form
  std::string path = percent_decode(raw);
  if (!prefix.empty()) {
    if (path.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    if (path.size() > prefix.size() && path[prefix.size()] != '/') return std::nullopt;
    path.erase(0, prefix.size());
  }
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos)
    return std::nullopt;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (std::string_view(path).substr(start, slash - start) == "..") return std::nullopt;
    start = slash + 1;
  }
  const std::size_t first = path.find_first_not_of('/');
  return first == std::string::npos ? std::string() : path.substr(first);
}

void file_server_state::serve(response_writer& w, request& r) const {
  const bool head = r.method() == "HEAD";
  if (r.method() != "GET" && !head) {
    answer(w, 405);
    w.set_header("Allow", "GET, HEAD");
    return;
  }
  const std::optional<std::string> rel = map_path(r.path(), prefix);
  if (!rel) return answer(w, 404);
  unique_fd fd = open_beneath(root.get(), rel->empty() ? std::string(".") : *rel);
  if (!fd) return answer(w, status_for(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return answer(w, status_for(errno));
  if (S_ISREG(st.st_mode)) return serve_file(w, r, fd.get(), st, *rel);
  if (!S_ISDIR(st.st_mode)) return answer(w, 404);  // a FIFO, a socket, a device

  const std::string_view raw = r.path();
  if (raw.back() != '/') {
    // Relative, as Go does, so the redirect is right behind any prefix a proxy or a mux
    // removed, and cannot name another host ("//host" paths).
    std::string location;
    append_url_escaped(location, percent_decode(raw.substr(raw.rfind('/') + 1)));
    location += '/';
    if (!r.raw_query().empty()) {
      location += '?';
      location += r.raw_query();
    }
    w.set_header("Location", location);
    w.set_header("Content-Type", "text/html; charset=utf-8");
    w.write_header(301);
    w.write("<a href=\"");
    std::string escaped;
    append_html_escaped(escaped, location);
    w.write(escaped);
    w.write("\">Moved Permanently</a>.\n");
    return;
  }
  if (!options.index.empty()) {
    unique_fd index = open_beneath(root.get(), (rel->empty() ? "" : *rel + "/") + options.index);
    if (index) {
      struct stat ist {};
      if (::fstat(index.get(), &ist) != 0) return answer(w, status_for(errno));
      if (S_ISREG(ist.st_mode)) return serve_file(w, r, index.get(), ist, options.index);
      // An index that is a directory or a FIFO: as if there were none.
    } else if (errno != ENOENT) {
      return answer(w, status_for(errno));
    }
  }
  if (!options.list_directories) return answer(w, 403);
  list_directory(w, fd.get());
}

void file_server_state::serve_file(response_writer& w, request& r, int fd, const struct stat& st,
                                   std::string_view name) const {
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::time_t mtime = st.st_mtim.tv_sec;
  char etag_buf[48];
  std::snprintf(etag_buf, sizeof(etag_buf), "\"%llx-%llx\"", static_cast<unsigned long long>(mtime),
                static_cast<unsigned long long>(size));
  const std::string_view etag = etag_buf;
  const std::string last_modified = format_http_date(mtime);
  const auto validators = [&] {
    w.set_header("ETag", etag);
    w.set_header("Last-Modified", last_modified);
    if (!options.cache_control.empty()) w.set_header("Cache-Control", options.cache_control);
  };

  // RFC 9110 13.2.2: If-Match, else If-Unmodified-Since; If-None-Match, else If-Modified-Since.
  if (const std::string_view m = r.header("If-Match"); !m.empty()) {
    if (!etag_listed(m, etag, true)) return answer(w, 412);
  } else if (const auto since = parse_http_date(r.header("If-Unmodified-Since"))) {
    if (mtime > *since) return answer(w, 412);
  }
  bool not_modified = false;
  if (const std::string_view m = r.header("If-None-Match"); !m.empty()) {
    not_modified = etag_listed(m, etag, false);
  } else if (const auto since = parse_http_date(r.header("If-Modified-Since"))) {
    not_modified = mtime <= *since;
  }
  if (not_modified) {
    validators();
    w.write_header(304);
    return;
  }

  std::uint64_t offset = 0, length = size;
  const std::string_view range = r.header("Range");
  bool use_range = !range.empty() && r.method() == "GET" && size > 0;
  if (use_range) {
    if (const std::string_view if_range = trim_ows(r.header("If-Range")); !if_range.empty()) {
      if (if_range.front() == '"' || if_range.substr(0, 2) == "W/") {
        use_range = if_range == etag;  // strong comparison: a weak tag never matches
      } else {
        const auto date = parse_http_date(if_range);
        use_range = date && *date == mtime;
      }
    }
  }
  validators();
  w.set_header("Accept-Ranges", "bytes");
  byte_range br{};
  const range_answer ra = use_range ? parse_range(range, size, br) : range_answer::whole;
  if (ra == range_answer::unsatisfiable) {
    const std::string unsatisfiable = "bytes */" + std::to_string(size);
    answer(w, 416);
    validators();
    w.set_header("Accept-Ranges", "bytes");
    w.set_header("Content-Range", unsatisfiable);
    return;
  }
  w.set_header("Content-Type", content_type(name));
  if (ra == range_answer::partial) {
    offset = br.first;
    length = br.last - br.first + 1;
    w.set_header("Content-Range", "bytes " + std::to_string(br.first) + "-" +
                                      std::to_string(br.last) + "/" + std::to_string(size));
    w.write_header(206);
  } else {
    w.write_header(200);
  }
  if (w.send_file(fd, offset, length)) answer(w, 500);  // dup() failed: EMFILE
}

}  // namespace

handler file_server(std::string root, file_server_options options) {
  const std::string_view index = options.index;
  if (index.find('/') != std::string_view::npos || index == "." || index == ".." ||
      index.find('\0') != std::string_view::npos)
    throw std::invalid_argument("nbio::http::file_server: index must be a plain file name: " +
                                options.index);
  auto state = std::make_shared<file_server_state>();
  state->root = unique_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!state->root)
    throw std::invalid_argument("nbio::http::file_server: " + root +
                                " is not a directory: " + std::strerror(errno));
  state->prefix = options.strip_prefix;
  while (!state->prefix.empty() && state->prefix.back() == '/')
    state->prefix.pop_back();
  state->options = std::move(options);
  return [state = std::shared_ptr<const file_server_state>(std::move(state))](
             response_writer& w, request& r) { state->serve(w, r); };
}

}  // namespace nbio::http
