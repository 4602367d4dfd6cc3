# Checks the include graph of a public header tree. Usage:
#   cmake -DINCLUDE_DIR=<dir holding nbio/> -P check_layering.cmake
# Fails (non-zero exit) with one line per violation:
#   1. Layers depend downward only: engine <- tls <- http <- websocket. nbio/engine/** and
#      nbio/core/** include nothing from nbio/tls, nbio/http, nbio/websocket; nbio/tls/**
#      nothing from nbio/http or nbio/websocket; nbio/http/** nothing from nbio/websocket.
#   2. every nbio header includes project headers only as "nbio/..." paths that exist under
#      INCLUDE_DIR: nothing from src/ (private), no relative paths.
if(NOT INCLUDE_DIR OR NOT IS_DIRECTORY "${INCLUDE_DIR}/nbio")
  message(FATAL_ERROR "check_layering: INCLUDE_DIR must hold nbio/ (got '${INCLUDE_DIR}')")
endif()

file(GLOB_RECURSE headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/nbio/*")
set(violations 0)
foreach(header IN LISTS headers)
  file(STRINGS "${INCLUDE_DIR}/${header}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "#[ \t]*include[ \t]*([<\"])([^>\"]+)[>\"]")
      continue()
    endif()
    set(delim "${CMAKE_MATCH_1}")
    set(target "${CMAKE_MATCH_2}")
    if((header MATCHES "^nbio/(engine|core)/" AND target MATCHES "^nbio/(tls|http|websocket)/")
       OR (header MATCHES "^nbio/tls/" AND target MATCHES "^nbio/(http|websocket)/")
       OR (header MATCHES "^nbio/http/" AND target MATCHES "^nbio/websocket/"))
      message("${header}: includes upper layer ${target}")
      math(EXPR violations "${violations} + 1")
    endif()
    if(target MATCHES "(^|/)src/" OR target MATCHES "\\.\\./" OR target MATCHES "(^|/)detail/.*\\.(cpp|cc)$")
      message("${header}: includes private path ${target}")
      math(EXPR violations "${violations} + 1")
    elseif(delim STREQUAL "\"" AND NOT target MATCHES "^nbio/")
      message("${header}: quoted include ${target} is not a public nbio/ header")
      math(EXPR violations "${violations} + 1")
    elseif(target MATCHES "^nbio/" AND NOT EXISTS "${INCLUDE_DIR}/${target}")
      message("${header}: includes ${target}, which is not under ${INCLUDE_DIR}")
      math(EXPR violations "${violations} + 1")
    endif()
  endforeach()
endforeach()

list(LENGTH headers count)
if(violations GREATER 0)
  message(FATAL_ERROR "check_layering: ${violations} violation(s) in ${count} headers")
endif()
message("check_layering: ${count} headers, include graph ok")
