# Poison-pill test on a real broker (included from tests/CMakeLists.txt, after
# integration.cmake, which defines tally_kafka_test() and the "kafka" broker fixture).
#
#   integration.poison   every kind of bad input among valid events into a running
#                        `tally run` (exactly_once): each bad record on the dead-letter topic
#                        once with its reason, each valid event's outputs once, tally never
#                        exits, a restart writes nothing, corrupt changelog records are
#                        quarantined (tests/integration/test_poison.py)
#
# Exit code 77 means skipped (no broker configured).

if(NOT TALLY_PYTHON)
  set(TALLY_PYTHON python3)
endif()

if(COMMAND tally_kafka_test)
  tally_kafka_py_test(integration.poison test_poison.py 600)
else()
  message(STATUS "tally: integration.poison not added (tests/integration/integration.cmake "
                 "was not included before poison.cmake)")
endif()
