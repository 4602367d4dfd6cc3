# An example stays within its line budget: usage
#   cmake -DFILE=<example.cpp> -DBUDGET=<lines> -P line_budget.cmake
# Counts the lines that are neither blank nor comments (// lines), includes counted, as the
# README's hello worlds are measured. Fails naming the file, its count and its budget.
cmake_policy(SET CMP0007 NEW)
if(NOT FILE OR NOT BUDGET)
  message(FATAL_ERROR "line_budget: FILE and BUDGET are required")
endif()
file(READ "${FILE}" text)
# One line, one list item: code's ';' would split a line, and a '[' would keep a list from
# splitting at the ';' that follow it.
string(REPLACE ";" "," text "${text}")
string(REPLACE "[" "(" text "${text}")
string(REPLACE "]" ")" text "${text}")
string(REPLACE "\n" ";" lines "${text}")
set(count 0)
foreach(line IN LISTS lines)
  string(STRIP "${line}" stripped)
  if(stripped STREQUAL "" OR stripped MATCHES "^//")
    continue()
  endif()
  math(EXPR count "${count} + 1")
endforeach()
get_filename_component(name "${FILE}" NAME)
if(count GREATER BUDGET)
  message(FATAL_ERROR "${name}: ${count} lines, over its budget of ${BUDGET}")
endif()
message("${name}: ${count} lines, within its budget of ${BUDGET}")
