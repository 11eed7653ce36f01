# FTRL-Proximal against independent implementations (included from tests/CMakeLists.txt).
#
#   integration.ftrl   tests/integration/test_ftrl.py: seeded streams replayed through
#                      `bench_ftrl --replay` and through ftrl_reference.py (written from the
#                      paper; and River's FTRLProximal when river is installed): every
#                      prediction must agree to 1e-9.
#
# Needs the bench_ftrl target (TALLY_BENCH=ON); without it the test is not added.

if(NOT TALLY_PYTHON)
  set(TALLY_PYTHON python3)
endif()

if(TARGET bench_ftrl)
  add_test(NAME integration.ftrl
    COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_ftrl.py)
  set_tests_properties(integration.ftrl PROPERTIES
    LABELS integration TIMEOUT 300
    ENVIRONMENT "TALLY_FTRL_DRIVER=$<TARGET_FILE:bench_ftrl>")
else()
  message(STATUS "tally: integration.ftrl not added (TALLY_BENCH is OFF, no bench_ftrl)")
endif()
