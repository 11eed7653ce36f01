# tally with a Confluent-API schema registry (included from tests/CMakeLists.txt, after
# integration.cmake, which defines tally_kafka_test() and the "kafka" broker fixture).
#
#   integration.registry   input decoded by registry id; output schemas registered under
#                          <topic>-value and outputs framed with the registry's ids; HTTPS
#                          with basic auth; schema.registry.auto.register=false; an unknown
#                          id to the dead-letter topic (tests/integration/test_registry.py)
#
# Exit code 77 means skipped (no broker, or openssl absent).

if(COMMAND tally_kafka_test)
  tally_kafka_py_test(integration.registry test_registry.py 300)

  # integration.apicurio: a real Apicurio Registry 2.4.2 (scripts/schema-registry.sh, built
  # from Maven Central by scripts/deps.sh), producers and consumers with confluent-kafka's
  # AvroSerializer / AvroDeserializer, the input schema evolving to a v2 through the
  # registry (tests/integration/test_apicurio.py).
  tally_kafka_py_test(integration.apicurio test_apicurio.py 600)
endif()
