# Turns each GoogleTest case of one binary into its own CTest test, with labels from its name.
# Run by ctest itself (the binary's TEST_INCLUDE_FILES entry, written by tests/CMakeLists.txt),
# so the binary is listed only when it changed. It exists because gtest_discover_tests cannot
# give one test two labels (its PROPERTIES flatten "integration;threading" into two words).
#
# Inputs: EXE (the test binary), TIER (unit | integration: the first label), TIMEOUT,
# HEAVY_TIMEOUT (seconds), OUT (the generated test list), WORKDIR; for a run of the same cases
# on another engine back-end, BACKEND (io_uring): the tests are named "BACKEND/case", carry
# the label BACKEND and run with NBIO_BACKEND=BACKEND in their environment; cases whose names
# match BACKEND_SKIP (and not BACKEND_KEEP) are not run again (tests/CMakeLists.txt says which
# and why).
# Labels from the name: "threading_" anywhere adds "threading"; "heavy_" adds "heavy" (with
# HEAVY_TIMEOUT and RUN_SERIAL).
if(NOT EXISTS "${EXE}")
  add_test("${TIER}_tests_NOT_BUILT" "${EXE}")
elseif(NOT EXISTS "${OUT}" OR "${EXE}" IS_NEWER_THAN "${OUT}")
  execute_process(COMMAND "${EXE}" --gtest_list_tests
    WORKING_DIRECTORY "${WORKDIR}" OUTPUT_VARIABLE listing RESULT_VARIABLE rc TIMEOUT 60)
  set(script "")
  if(NOT rc EQUAL 0)
    string(APPEND script "add_test([==[${TIER}_tests_LIST_FAILED]==] [==[${EXE}]==] --gtest_list_tests)\n")
  else()
    # List splitting must not meet brackets or semicolons from GetParam() comments.
    string(REGEX REPLACE "[][;\\\\]" "_" listing "${listing}")
    string(REPLACE "\n" ";" lines "${listing}")
    set(suite "")
    foreach(line IN LISTS lines)
      if(line MATCHES "^([^ #]+)\\.[ ]*(#.*)?$")
        set(suite "${CMAKE_MATCH_1}")
      elseif(line MATCHES "^  ([^ #]+)" AND suite AND NOT line MATCHES "^  DISABLED_")
        string(REGEX REPLACE "^  ([^ #]+).*$" "\\1" test "${line}")
        set(name "${suite}.${test}")
        if(BACKEND AND BACKEND_SKIP AND name MATCHES "${BACKEND_SKIP}" AND
           NOT (BACKEND_KEEP AND name MATCHES "${BACKEND_KEEP}"))
          continue()
        endif()
        set(labels "${TIER}")
        set(env "")
        set(ctest_name "${name}")
        if(BACKEND)
          set(ctest_name "${BACKEND}/${name}")
          string(APPEND labels ";${BACKEND}")
          set(env "ENVIRONMENT NBIO_BACKEND=${BACKEND} ")
        endif()
        set(timeout "${TIMEOUT}")
        set(serial FALSE)
        if(name MATCHES "threading_")
          string(APPEND labels ";threading")
        endif()
        if(name MATCHES "heavy_")
          string(APPEND labels ";heavy")
          set(timeout "${HEAVY_TIMEOUT}")
          set(serial TRUE)
        endif()
        string(APPEND script
          "add_test([==[${ctest_name}]==] [==[${EXE}]==] [==[--gtest_filter=${name}]==])\n"
          "set_tests_properties([==[${ctest_name}]==] PROPERTIES ${env}LABELS \"${labels}\" "
          "TIMEOUT ${timeout} RUN_SERIAL ${serial} WORKING_DIRECTORY [==[${WORKDIR}]==] "
          "SKIP_REGULAR_EXPRESSION [==[\\[  SKIPPED \\]]==])\n")
      endif()
    endforeach()
  endif()
  file(WRITE "${OUT}" "${script}")
endif()
if(EXISTS "${OUT}")
  include("${OUT}")
endif()
