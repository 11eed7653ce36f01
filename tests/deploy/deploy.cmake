# The deployment files (Dockerfile, docker-compose.yml, deploy/, docs/deploy.md), checked
# without Docker or a broker (included from tests/CMakeLists.txt).
if(NOT TALLY_PYTHON)
  set(TALLY_PYTHON python3)
endif()
add_test(NAME deploy.files COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_deploy.py)
set_tests_properties(deploy.files PROPERTIES LABELS unit TIMEOUT 180
  ENVIRONMENT "TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR};TALLY_BIN=$<TARGET_FILE:tally>")

# cmake --install into a temporary prefix, moved and run from elsewhere: the binary finds
# its installed schemas and never the source tree (tests/deploy/test_install.py).
add_test(NAME deploy.install COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_install.py)
set_tests_properties(deploy.install PROPERTIES LABELS unit TIMEOUT 300
  ENVIRONMENT "TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR};TALLY_BUILD_DIR=${CMAKE_BINARY_DIR}")
