# Installs the built library into a staging prefix (find_package mode) or
# points the consumer at the source tree (add_subdirectory mode), then
# configures, builds and runs the consumer project: a small program and two
# of the examples. In find_package mode the file_transfer example is built a
# second time, with only what `pkg-config --cflags --libs tessenger` says.
file(REMOVE_RECURSE "${WORK}")
set(stage "${WORK}/stage")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

set(args -S "${CMAKE_CURRENT_LIST_DIR}/project" -B "${WORK}/build" -G "${GENERATOR}"
  -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install "${TESSENGER_BUILD}" --prefix "${stage}")
  if(NOT EXISTS "${stage}/lib/cmake/tessenger/tessengerConfigVersion.cmake"
     OR NOT EXISTS "${stage}/lib/pkgconfig/tessenger.pc"
     OR NOT EXISTS "${stage}/include/tessenger/protocol.hpp"
     OR NOT EXISTS "${stage}/include/tessenger/export.hpp")
    message(FATAL_ERROR "the install tree lacks the package files, headers or tessenger.pc")
  endif()
  if(NOT EXISTS "${stage}/lib/cmake/tessenger/tessengerFindAsio.cmake"
     OR NOT EXISTS "${stage}/include/tessenger/file_transfer.hpp"
     OR NOT EXISTS "${stage}/include/tessenger/transfer_engine.hpp")
    message(FATAL_ERROR "the install tree lacks the Asio module or the file transfer headers")
  endif()
  list(APPEND args -DCMAKE_PREFIX_PATH=${stage} -DUSE_SUBDIRECTORY=OFF)
else()
  list(APPEND args -DUSE_SUBDIRECTORY=ON)
endif()
list(APPEND args -DTESSENGER_SOURCE=${TESSENGER_SOURCE})
run(${CMAKE_COMMAND} ${args})
run(${CMAKE_COMMAND} --build "${WORK}/build" -j 2)
run("${WORK}/build/consumer")
run(sh "${CMAKE_CURRENT_LIST_DIR}/run_embedded_server.sh" "${WORK}/build/embedded_server"
  "${WORK}/embedded")
set(send_example "${TESSENGER_SOURCE}/tests/integration/transfer/run_file_transfer_example.cmake")
run(${CMAKE_COMMAND} -DEXAMPLE=${WORK}/build/file_transfer -DFILE=${WORK}/build/file_transfer
  -DWORK=${WORK}/sent -P "${send_example}")

if(MODE STREQUAL "find_package")
  set(ENV{PKG_CONFIG_PATH} "${stage}/lib/pkgconfig")
  execute_process(COMMAND pkg-config --cflags --libs --static tessenger
    RESULT_VARIABLE rc OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config cannot use ${stage}/lib/pkgconfig/tessenger.pc")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${CXX} -Wall -Wextra -Wpedantic -Werror "${TESSENGER_SOURCE}/examples/file_transfer/main.cpp"
    -o "${WORK}/file_transfer_pc" ${flags})
  run(${CMAKE_COMMAND} -DEXAMPLE=${WORK}/file_transfer_pc -DFILE=${WORK}/file_transfer_pc
    -DWORK=${WORK}/sent_pc -P "${send_example}")
endif()
