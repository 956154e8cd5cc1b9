# Installs the built library into a staging prefix (find_package mode) or
# points the consumer at the source tree (add_subdirectory mode), then
# configures, builds and runs the consumer project.
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
  list(APPEND args -DCMAKE_PREFIX_PATH=${stage} -DUSE_SUBDIRECTORY=OFF)
else()
  list(APPEND args -DTESSENGER_SOURCE=${TESSENGER_SOURCE} -DUSE_SUBDIRECTORY=ON)
endif()
run(${CMAKE_COMMAND} ${args})
run(${CMAKE_COMMAND} --build "${WORK}/build" -j 2)
run("${WORK}/build/consumer")
