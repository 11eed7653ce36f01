# integration.eos (included from tests/CMakeLists.txt, after integration.cmake, which defines
# tally_kafka_test() and the "kafka" broker fixture): exactly-once processing on the real
# broker, tests/integration/test_eos.py. A crash run killed 24 times, a zombie fenced by its
# successor, a lost state directory restored from the changelog, scale-out across
# instances, and a restart of a private broker (started by the test itself with
# scripts/kafka-broker.sh) under a running instance; each one's outputs are compared with
# reference.py's on the files produced to its input topic. About 5 minutes on two cores;
# longer under the sanitizers, hence the timeout.
#
# Exit code 77 means skipped (the real data or the broker is absent).
set(TALLY_PYTHON python3 CACHE STRING "Python interpreter of the integration tests")

if(COMMAND tally_kafka_test)
  tally_kafka_py_test(integration.eos test_eos.py 1500)
else()
  message(STATUS "tally: integration.eos not added (tests/integration/integration.cmake "
                 "was not included before eos.cmake)")
endif()
