# integration.security (included from tests/CMakeLists.txt): TLS and SASL/SCRAM through the
# kafka.* pass-through, tests/integration/test_kafka_security.py. The test starts a broker of
# its own with an SSL and a SASL_SSL listener (scripts/kafka-broker.sh start DIR --secure,
# DIR = ${CMAKE_BINARY_DIR}/kafka-secure) and stops it at the end, so it needs no fixture.
# It holds the tally_kafka lock so that its broker does not compete with the shared one's
# tests for the CPU. About a minute on two cores.
#
# Exit code 77 means skipped (java, kcat or openssl absent).
option(TALLY_KAFKA_TESTS "Add the tests that need a real Kafka broker" ON)
set(TALLY_PYTHON python3 CACHE STRING "Python interpreter of the integration tests")

if(TALLY_KAFKA_TESTS)
  add_test(NAME integration.security
    COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_kafka_security.py)
  set_tests_properties(integration.security PROPERTIES
    LABELS integration TIMEOUT 600 SKIP_RETURN_CODE 77 RESOURCE_LOCK tally_kafka
    ENVIRONMENT "TALLY_BIN=$<TARGET_FILE:tally>;TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR};TALLY_TEST_SECURE_DIR=${CMAKE_BINARY_DIR}/kafka-secure")
endif()
