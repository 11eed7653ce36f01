# fuzz.cmake -- the libFuzzer harnesses (docs/fuzzing.md), included by tests/CMakeLists.txt.
#
# With -DTALLY_FUZZ=ON and clang (CC=clang): the product libraries are compiled with
# coverage instrumentation and AddressSanitizer/UndefinedBehaviorSanitizer
# (-fsanitize=fuzzer-no-link,address,undefined), each harness tests/fuzz/fuzz_<name>.c is
# linked with libFuzzer into build/tests/fuzz_<name>, and fuzz_seeds writes the seed
# corpora and dictionaries into build/tests/fuzz/seeds/ at build time. Everything linking
# the libraries in such a tree (tally, the unit tests) gets the sanitizer runtime; use a
# build tree of its own (scripts/test.sh uses build-fuzz/). Off by default.
#
# ctest, label "fuzz":
#   fuzz.<name>        fuzzes for TALLY_FUZZ_SECONDS (FUZZ_SECONDS overrides it when the
#                      test runs) from the working corpus build/tests/fuzz/corpus/<name>/,
#                      the seeds and tests/fuzz/regressions/<name>/; a crash fails it and
#                      leaves the input in build/tests/fuzz/artifacts/<name>/
#   fuzz.regressions   every harness once over each input of tests/fuzz/regressions/
# (tests/fuzz/run.sh does both.)
option(TALLY_FUZZ "Build the libFuzzer harnesses (needs clang) and their ctest runs (label fuzz)" OFF)
if(NOT TALLY_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "TALLY_FUZZ needs clang for libFuzzer (CC=clang or -DCMAKE_C_COMPILER=clang), "
                      "not ${CMAKE_C_COMPILER_ID}")
endif()
set(TALLY_FUZZ_SECONDS 30 CACHE STRING
    "Seconds each fuzz.<harness> test fuzzes (the FUZZ_SECONDS environment variable overrides it)")

set(fuzz_src ${CMAKE_CURRENT_LIST_DIR})
set(fuzz_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
set(fuzz_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)

# The product libraries: instrumented for coverage, sanitized; whatever links them gets
# the sanitizer runtime.
foreach(lib tally_lib tally_domain tally_engine tally_ingest tally_features tally_model tally_sink tally_app)
  target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link ${fuzz_sanitizers})
  target_link_options(${lib} INTERFACE -fsanitize=address,undefined)
endforeach()

# What the harnesses and the seed generator share.
add_library(tally_fuzz_common STATIC ${fuzz_src}/fuzz_common.c)
target_include_directories(tally_fuzz_common PUBLIC ${fuzz_src} ${CMAKE_SOURCE_DIR})
target_link_libraries(tally_fuzz_common PUBLIC tally_app tally_ingest tally_features tally_model tally_sink
                      tally_engine)
target_compile_definitions(tally_fuzz_common PUBLIC TALLY_SCHEMA_DIR="${CMAKE_SOURCE_DIR}/schemas")
target_compile_options(tally_fuzz_common PRIVATE -fsanitize=fuzzer-no-link ${fuzz_sanitizers})

# The command's files but main.c, for the decoders that are static functions of cmd/ (the
# Markov path file parser): their harnesses call the public entry of the cmd/ file
# (tl_cmd_paths). A library, so a harness links only the files it needs, whichever they
# come to be. The HTTP handler is the application's (tl_observe_start, tally_app).
file(GLOB fuzz_cmd_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/cmd/*.c)
list(REMOVE_ITEM fuzz_cmd_srcs ${CMAKE_SOURCE_DIR}/cmd/main.c)
add_library(tally_fuzz_cmd STATIC ${fuzz_cmd_srcs})
target_link_libraries(tally_fuzz_cmd PUBLIC tally_app tally_ingest tally_features tally_model tally_sink
                      tally_engine)
target_compile_options(tally_fuzz_cmd PRIVATE -fsanitize=fuzzer-no-link ${fuzz_sanitizers})

# One executable per harness.
set(TALLY_FUZZ_HARNESSES codec writer_schema registry json jsonl_event file_source config
    user_record restore model_checkpoint paths http report rollup markov_share model_share
    category_embedding)
set(fuzz_libs_paths tally_fuzz_cmd)
set(fuzz_libs_report tally_fuzz_cmd)
set(fuzz_libs_http tally_fuzz_cmd)
set(fuzz_targets "")
set(fuzz_pairs "")
foreach(h ${TALLY_FUZZ_HARNESSES})
  add_executable(fuzz_${h} ${fuzz_src}/fuzz_${h}.c)
  target_link_libraries(fuzz_${h} PRIVATE ${fuzz_libs_${h}} tally_fuzz_common)
  target_compile_options(fuzz_${h} PRIVATE -fsanitize=fuzzer ${fuzz_sanitizers})
  target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer ${fuzz_sanitizers})
  list(APPEND fuzz_targets fuzz_${h})
  list(APPEND fuzz_pairs "${h}=$<TARGET_FILE:fuzz_${h}>")
endforeach()

# The seed corpora and dictionaries, made by the product's own encoders at build time.
add_executable(fuzz_seeds ${fuzz_src}/fuzz_seeds.c)
target_link_libraries(fuzz_seeds PRIVATE tally_fuzz_common)
target_compile_options(fuzz_seeds PRIVATE ${fuzz_sanitizers})
target_link_options(fuzz_seeds PRIVATE ${fuzz_sanitizers})
add_custom_command(OUTPUT ${fuzz_out}/seeds.stamp
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${fuzz_out}/seeds ${fuzz_out}/seeds-tmp
  COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_out}/seeds-tmp
  COMMAND ${CMAKE_COMMAND} -E env TMPDIR=${fuzz_out}/seeds-tmp ASAN_OPTIONS=detect_leaks=0
          $<TARGET_FILE:fuzz_seeds> ${fuzz_out}/seeds
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${fuzz_out}/seeds-tmp
  COMMAND ${CMAKE_COMMAND} -E touch ${fuzz_out}/seeds.stamp
  DEPENDS fuzz_seeds
  COMMENT "Writing the fuzzing seed corpora (tests/fuzz/fuzz_seeds.c)"
  VERBATIM)
add_custom_target(fuzz_seed_corpora ALL DEPENDS ${fuzz_out}/seeds.stamp)
# `cmake --build B --target tally_fuzz`: the harnesses and their seeds, nothing else.
add_custom_target(tally_fuzz DEPENDS ${fuzz_targets} fuzz_seed_corpora)

foreach(h ${TALLY_FUZZ_HARNESSES})
  add_test(NAME fuzz.${h}
    COMMAND ${fuzz_src}/run.sh fuzz ${h} $<TARGET_FILE:fuzz_${h}> ${fuzz_out} ${fuzz_src})
  math(EXPR fuzz_timeout "${TALLY_FUZZ_SECONDS} + 300")
  set_tests_properties(fuzz.${h} PROPERTIES LABELS fuzz TIMEOUT ${fuzz_timeout} PROCESSORS 1
    ENVIRONMENT "TALLY_FUZZ_SECONDS=${TALLY_FUZZ_SECONDS}")
endforeach()
add_test(NAME fuzz.regressions
  COMMAND ${fuzz_src}/run.sh regressions ${fuzz_out} ${fuzz_src} ${fuzz_pairs})
set_tests_properties(fuzz.regressions PROPERTIES LABELS fuzz TIMEOUT 600)
