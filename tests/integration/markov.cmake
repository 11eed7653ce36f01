# integration.markov (included from tests/CMakeLists.txt, as the other tests here that need no broker): `tally paths` on
# ChannelAttribution's example path file (../shared/data/channelattribution/path_data.csv),
# against an exact numpy solve and against the ChannelAttribution package. No Kafka
# broker. Exits 77 (skipped) when the data is absent.
set(TALLY_PYTHON python3 CACHE STRING "Python interpreter of the integration tests")
add_test(NAME integration.markov
  COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_markov.py)
set_tests_properties(integration.markov PROPERTIES
  LABELS integration
  TIMEOUT 600
  SKIP_RETURN_CODE 77
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# integration.markov_bootstrap: the coverage of `tally paths --bootstrap`'s intervals over
# 200 data sets simulated from a chain with known removal effects. No Kafka broker, no data.
add_test(NAME integration.markov_bootstrap
  COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_markov_bootstrap.py)
set_tests_properties(integration.markov_bootstrap PROPERTIES
  LABELS integration
  TIMEOUT 600
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# integration.truth: the ground-truth generator (`tally gen --truth`) and the reference of
# its true credits (truth.py) checked against hand-computed values and their own formula;
# bench/attribution_truth.py scores the methods with them. No Kafka broker.
add_test(NAME integration.truth
  COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_truth.py)
set_tests_properties(integration.truth PROPERTIES
  LABELS integration
  TIMEOUT 600
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# integration.explanations: every attribution sentence rebuilt from its record (articles,
# channels, times, the time-decay maximum and ties) on generated data and, when
# ../shared/data is present, the Taobao journeys and slice. No Kafka broker.
add_test(NAME integration.explanations
  COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_explanations.py)
set_tests_properties(integration.explanations PROPERTIES
  LABELS integration
  TIMEOUT 600
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# integration.next_categories: the next_categories records of a replay against the input
# and their own fields (sums, moved, like, sentences), the other records unchanged, and on
# the Taobao journeys the five listed against the user's five most recent categories.
add_test(NAME integration.next_categories
  COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_next_categories.py)
set_tests_properties(integration.next_categories PROPERTIES
  LABELS integration
  TIMEOUT 600
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# integration.report: `tally report` against sums made in Python from a replay's records
# (every dimension and window, ranges, CSV/table, consume-shaped input, channel groups),
# and its HTML page rendered by Debian's chromium: the bars in the screenshot have the
# widths the numbers give. No Kafka broker.
add_test(NAME integration.report
  COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_report.py)
set_tests_properties(integration.report PROPERTIES
  LABELS integration
  TIMEOUT 600
  ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
