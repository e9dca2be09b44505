# No Catch2 test name may hold a semicolon: catch_discover_tests hands names to CTest as a
# list, so "a; b" becomes two CTest entries whose filters match no test case - and Catch2 exits
# 0 when nothing matched, so the case silently never ran under ctest.
#   cmake -DTESTS_DIR=<tests/> -P test_names.cmake
file(GLOB_RECURSE sources "${TESTS_DIR}/*.cpp")
set(bad "")
foreach(source IN LISTS sources)
  file(STRINGS "${source}" lines REGEX "TEST_CASE\\(\"[^\"]*;")
  if(lines)
    file(RELATIVE_PATH relative "${TESTS_DIR}" "${source}")
    string(APPEND bad "\n  ${relative}")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "test names with a ';' (CTest splits them and runs nothing):${bad}")
endif()
