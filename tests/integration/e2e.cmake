# End-to-end tests against the reference implementation (included from tests/CMakeLists.txt,
# after integration.cmake, which defines tally_kafka_test() and the "kafka" broker fixture).
#
#   integration.reference   reference.py and compare.py checked on hand-computed cases
#   integration.replay      `tally replay` = reference.py, record for record (real Taobao
#                           journeys from ../shared/data beside the repository, and synthetic
#                           canonical CSVs written by the test)
#   integration.e2e_kafka   produce -> run --until-end -> output topics = reference = replay;
#                           bad input lands in the dead-letter topic with its reason
#   integration.http        tally run's HTTP endpoints (tests/integration/test_http.py)
#
# Exit code 77 means skipped (the real data or the broker is absent).

if(NOT TALLY_PYTHON)
  set(TALLY_PYTHON python3)
endif()
set(_tally_it_dir ${CMAKE_CURRENT_LIST_DIR})

add_test(NAME integration.reference
  COMMAND ${TALLY_PYTHON} ${_tally_it_dir}/test_reference.py)
set_tests_properties(integration.reference PROPERTIES
  LABELS integration TIMEOUT 120 SKIP_RETURN_CODE 77)

add_test(NAME integration.replay
  COMMAND ${TALLY_PYTHON} ${_tally_it_dir}/test_replay.py)
set_tests_properties(integration.replay PROPERTIES
  LABELS integration TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

if(COMMAND tally_kafka_test)
  tally_kafka_py_test(integration.e2e_kafka test_e2e_kafka.py 1200)
  # /metrics, /healthz, /readyz, /v1/users against a running tally; graceful shutdown
  tally_kafka_py_test(integration.http test_http.py 600)
  # the compacted roll-up topic against sums of the published records; 1 vs 3 instances,
  # a rebalance and a SIGKILL
  tally_kafka_py_test(integration.rollup_topic test_rollup_topic.py 900)
  # model.kind=seq across two instances: the attention step's updates, the same weights
  tally_kafka_py_test(integration.model_share_seq test_model_share_seq.py 600)
else()
  message(STATUS "tally: integration.e2e_kafka not added (tests/integration/integration.cmake "
                 "was not included before e2e.cmake)")
endif()
