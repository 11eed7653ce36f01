# Tests that need a real Kafka broker (included from tests/CMakeLists.txt).
#
# A ctest fixture "kafka" starts one single-node broker (scripts/kafka-broker.sh start) before
# the first test that requires it and stops it after the last one. Its address is written to
# ${CMAKE_BINARY_DIR}/kafka/bootstrap at test time.
#
#   tally_kafka_test(NAME <name> COMMAND <cmd> [<arg>...]
#                    [TIMEOUT <seconds>] [PARALLEL] [LABELS <label>...]
#                    [ENVIRONMENT <VAR=value>...] [WORKING_DIRECTORY <dir>])
#
# adds a test that requires the fixture, labelled "integration", skipped when <cmd> exits
# with 77, and runs <cmd> with:
#   TALLY_TEST_BOOTSTRAP       the broker's address, 127.0.0.1:PORT
#   TALLY_TEST_BOOTSTRAP_FILE  the file that holds it (${CMAKE_BINARY_DIR}/kafka/bootstrap)
#   TALLY_BIN                  $<TARGET_FILE:tally>
#   TALLY_SOURCE_DIR           the source tree
# <cmd> may be a target name (replaced by its file) and args may use generator expressions;
# an argument must not contain ';' (CMake would split it in two).
# The broker is shared: use topic, group and transactional ids unique to the test. Tests hold
# RESOURCE_LOCK tally_kafka (one at a time on the broker) unless PARALLEL is given.
#
# Example (from any CMakeLists.txt processed after this file):
#   tally_kafka_test(NAME integration.pipeline
#                    COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/integration/pipeline.py)
#
#   tally_kafka_py_test(<name> <script> <timeout>)
#
# is tally_kafka_test(NAME <name> COMMAND ${TALLY_PYTHON} tests/integration/<script>
# TIMEOUT <timeout>), the form of the Python tests beside this file.
#
# Set -DTALLY_KAFKA_TESTS=OFF to leave out every test that needs the broker (the function
# then adds nothing).

option(TALLY_KAFKA_TESTS "Add the tests that need a real Kafka broker" ON)
set(TALLY_PYTHON python3 CACHE STRING "Python interpreter of the integration tests")

set(TALLY_KAFKA_DIR ${CMAKE_BINARY_DIR}/kafka)
set(TALLY_KAFKA_BOOTSTRAP_FILE ${TALLY_KAFKA_DIR}/bootstrap)
set(TALLY_KAFKA_BROKER_SH ${CMAKE_SOURCE_DIR}/scripts/kafka-broker.sh)

function(tally_kafka_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "PARALLEL" "NAME;TIMEOUT;WORKING_DIRECTORY"
                        "COMMAND;LABELS;ENVIRONMENT")
  if(NOT arg_NAME OR NOT arg_COMMAND)
    message(FATAL_ERROR "tally_kafka_test: NAME and COMMAND are required")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "tally_kafka_test(${arg_NAME}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TALLY_KAFKA_TESTS)
    return()
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 300)
  endif()
  if(NOT arg_WORKING_DIRECTORY)
    set(arg_WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  endif()

  # The command runs under sh, which reads the bootstrap file when the test runs (the port
  # is only known once the fixture started the broker).
  list(POP_FRONT arg_COMMAND cmd)
  if(TARGET ${cmd})
    set(cmd $<TARGET_FILE:${cmd}>)
  endif()
  add_test(NAME ${arg_NAME}
    COMMAND sh -c
      [[f=$TALLY_TEST_BOOTSTRAP_FILE; [ -s "$f" ] || { echo "no Kafka broker: $f is missing (kafka.start failed?)" >&2; exit 1; }; TALLY_TEST_BOOTSTRAP=$(cat "$f"); export TALLY_TEST_BOOTSTRAP; exec "$@"]]
      sh ${cmd} ${arg_COMMAND}
    WORKING_DIRECTORY ${arg_WORKING_DIRECTORY})

  # Every tally the test starts serves HTTP on a free port (several run at once).
  set(env
    TALLY_HTTP_LISTEN=127.0.0.1:0
    TALLY_TEST_BOOTSTRAP_FILE=${TALLY_KAFKA_BOOTSTRAP_FILE}
    TALLY_SOURCE_DIR=${CMAKE_SOURCE_DIR}
    ${arg_ENVIRONMENT})
  if(TARGET tally)
    list(APPEND env TALLY_BIN=$<TARGET_FILE:tally>)
  endif()
  set_tests_properties(${arg_NAME} PROPERTIES
    FIXTURES_REQUIRED kafka
    SKIP_RETURN_CODE 77
    LABELS "integration;${arg_LABELS}"
    TIMEOUT ${arg_TIMEOUT}
    ENVIRONMENT "${env}")
  if(NOT arg_PARALLEL)
    set_tests_properties(${arg_NAME} PROPERTIES RESOURCE_LOCK tally_kafka)
  endif()
endfunction()

function(tally_kafka_py_test name script timeout)
  tally_kafka_test(NAME ${name}
    COMMAND ${TALLY_PYTHON} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script}
    TIMEOUT ${timeout})
endfunction()

if(TALLY_KAFKA_TESTS)
  # Fixture: one broker for the whole ctest run. Start may first fetch the broker's jars
  # (once, into the cache), hence the long timeout.
  add_test(NAME kafka.start COMMAND ${TALLY_KAFKA_BROKER_SH} start ${TALLY_KAFKA_DIR})
  set_tests_properties(kafka.start PROPERTIES
    FIXTURES_SETUP kafka LABELS integration TIMEOUT 600 RESOURCE_LOCK tally_kafka)
  add_test(NAME kafka.stop COMMAND ${TALLY_KAFKA_BROKER_SH} stop ${TALLY_KAFKA_DIR})
  set_tests_properties(kafka.stop PROPERTIES
    FIXTURES_CLEANUP kafka LABELS integration TIMEOUT 120 RESOURCE_LOCK tally_kafka)

  # The broker does what tally needs: transactions, read_committed, consumer groups, and
  # Debian's librdkafka (through kcat) talks to it.
  add_test(NAME integration.kafka_roundtrip
    COMMAND sh -c [[TALLY_TEST_BOOTSTRAP=$(cat "$1") && export TALLY_TEST_BOOTSTRAP && exec "$2" "$3"]]
      sh ${TALLY_KAFKA_BOOTSTRAP_FILE} ${TALLY_PYTHON}
      ${CMAKE_CURRENT_LIST_DIR}/kafka_roundtrip.py)
  set_tests_properties(integration.kafka_roundtrip PROPERTIES
    FIXTURES_REQUIRED kafka LABELS integration TIMEOUT 300 RESOURCE_LOCK tally_kafka)
endif()
