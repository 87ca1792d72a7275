# Project options, validated at configure time (in the spirit of oneDNN's cmake/options.cmake).
option(INFERMARK_BUILD_TESTS "Build the GoogleTest suites" ON)
set(INFERMARK_SANITIZE "none" CACHE STRING "Sanitizer build: none | address-undefined")
set_property(CACHE INFERMARK_SANITIZE PROPERTY STRINGS none address-undefined)
option(INFERMARK_WITH_ONEDNN "Build the oneDNN matmul peer implementation (libdnnl-dev)" ON)
option(INFERMARK_WITH_OPENBLAS "Build the OpenBLAS sgemm peer implementation (libopenblas-dev)" ON)

if(NOT INFERMARK_SANITIZE MATCHES "^(none|address-undefined)$")
  message(FATAL_ERROR "INFERMARK_SANITIZE='${INFERMARK_SANITIZE}' is not valid; choose one of: none, address-undefined")
endif()

if(INFERMARK_SANITIZE STREQUAL "address-undefined")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(INFERMARK_SANITIZED=1)
endif()
